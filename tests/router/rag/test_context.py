"""RAG chat's message merge (LlamaEdge's policies) and the upload checks."""

from __future__ import annotations

from typing import Any

import pytest

from router.errors import BadRequest, PayloadTooLarge
from router.rag.context import last_user_text, merge
from router.rag.files import decode_text

SYS, Q1, A1, Q2 = "Be brief.", "first?", "yes", "second?"
CHAT = [{"role": "system", "content": SYS}, {"role": "user", "content": Q1},
        {"role": "assistant", "content": A1}, {"role": "user", "content": Q2}]  # fmt: skip


@pytest.mark.parametrize(
    ("messages", "policy", "expected"),
    [
        (CHAT, "system-message", [{"role": "system", "content": f"{SYS}\nP:p1\n\np2"}, *CHAT[1:]]),
        (CHAT[1:], "system-message", [{"role": "system", "content": "P:p1\n\np2"}, *CHAT[1:]]),
        (CHAT, "last-user-message", [*CHAT[:3], {"role": "user", "content": f"P:p1\n\np2\n\n{Q2}"}]),
        ([CHAT[0]], "last-user-message", [{"role": "system", "content": f"{SYS}\nP:p1\n\np2"}]),
    ],
    ids=["into-system", "new-system", "into-last-user", "no-user-falls-back-to-system"],
)
def test_merge(messages: list[dict[str, Any]], policy: Any, expected: list[dict[str, Any]]) -> None:
    assert merge(messages, ["p1", "p2"], policy, "P:") == expected
    assert merge(messages, [], policy, "P:") == messages


def test_merge_leaves_the_callers_messages_and_other_fields_alone() -> None:
    messages = [{"role": "user", "content": Q1, "name": "ann"}]
    merged = merge(messages, ["p"], "last-user-message", "")
    assert merged == [{"role": "user", "content": f"p\n\n{Q1}", "name": "ann"}]
    assert messages == [{"role": "user", "content": Q1, "name": "ann"}]


def test_the_question_is_the_last_user_message() -> None:
    assert last_user_text(CHAT) == Q2 and last_user_text(CHAT[:1]) == ""


@pytest.mark.parametrize(
    ("filename", "content", "error"),
    [
        ("a.txt", b"", BadRequest),
        ("a.txt", b"x" * 11, PayloadTooLarge),
        ("a.pdf", b"%PDF-1.4", BadRequest),
        ("a.txt", b"\xff\xfe\x00", BadRequest),
        ("a.md", b"nul\x00inside", BadRequest),
    ],
    ids=["empty", "too-large", "not-text-suffix", "not-utf8", "binary"],
)
def test_uploads_that_are_refused(filename: str, content: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_text(filename, content, max_bytes=10)


def test_text_and_markdown_are_accepted() -> None:
    assert decode_text("notes.md", "# Café\n".encode(), 10) == "# Café\n"
    assert decode_text("README", b"plain", 10) == "plain"
