"""Cut a text or Markdown document into chunks of at most `capacity` tokens of the embedding
model's own tokenizer (LlamaEdge's `--chunk-capacity`, default 100).

Boundaries prefer paragraphs (and, in Markdown, headings), then sentences, then token windows;
neighbouring pieces are packed together while the packed text still fits, counted exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

DEFAULT_CAPACITY = 100
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
HEADING = re.compile(r"^#{1,6}[ \t]", re.MULTILINE)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class Tokenizer(Protocol):
    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character (start, end) of each token of `text`, without special tokens."""
        ...


@dataclass(frozen=True, slots=True)
class _Piece:
    text: str
    glue: str  # what joins it to the piece before it


def chunk(text: str, tokenizer: Tokenizer, capacity: int = DEFAULT_CAPACITY, *, markdown: bool = False) -> list[str]:
    """The document's chunks in order; none is empty and none is longer than `capacity` tokens."""
    if capacity < 1:
        raise ValueError("capacity must be at least 1")
    pieces = [p for block in _blocks(text, markdown) for p in _fit(block, tokenizer, capacity)]
    return _pack(pieces, tokenizer, capacity)


def _blocks(text: str, markdown: bool) -> list[str]:
    text = text.replace("\r\n", "\n")
    if markdown:
        text = HEADING.sub(lambda m: "\n\n" + m.group(0), text)
    return [b.strip() for b in PARAGRAPH_BREAK.split(text) if b.strip()]


def _fit(block: str, tokenizer: Tokenizer, capacity: int) -> list[_Piece]:
    """A paragraph as one piece if it fits, else its sentences, else token windows of them."""
    if len(tokenizer.spans(block)) <= capacity:
        return [_Piece(block, "\n\n")]
    pieces: list[_Piece] = []
    for sentence in SENTENCE_END.split(block):
        spans = tokenizer.spans(sentence)
        if len(spans) <= capacity:
            pieces.append(_Piece(sentence, " "))
            continue
        pieces += [_Piece(w, " ") for w in _windows(sentence, spans, tokenizer, capacity)]
    # The block's first piece still starts a paragraph.
    return [_Piece(pieces[0].text, "\n\n"), *pieces[1:]]


def _windows(text: str, spans: list[tuple[int, int]], tokenizer: Tokenizer, capacity: int) -> list[str]:
    """Runs of at most `capacity` tokens. A cut inside a word would tokenize differently on its
    own (WordPiece's `##` pieces), so cuts back off to a word start, and each run is recounted."""
    windows: list[str] = []
    i = 0
    while i < len(spans):
        end = min(i + capacity, len(spans))
        j = end
        while i + 1 < j < len(spans) and spans[j][0] == spans[j - 1][1]:
            j -= 1
        j = end if j == i + 1 and end < len(spans) else j  # one word longer than a window: cut it
        while j > i + 1 and len(tokenizer.spans(text[spans[i][0] : spans[j - 1][1]])) > capacity:
            j -= 1
        windows.append(text[spans[i][0] : spans[j - 1][1]])
        i = j
    return windows


def _pack(pieces: list[_Piece], tokenizer: Tokenizer, capacity: int) -> list[str]:
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}{piece.glue}{piece.text}" if current else piece.text
        if current and len(tokenizer.spans(candidate)) > capacity:
            chunks.append(current)
            candidate = piece.text
        current = candidate
    if current:
        chunks.append(current)
    return chunks
