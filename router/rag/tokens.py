"""The embedding model's own tokenizer, for chunking (Hugging Face `tokenizers`: no torch).

Loaded from the model's folder (`tokenizer.json`), or from the hub for a hub id, once per model.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tokenizers import Tokenizer

from router.catalog.catalog import ModelRecord


class HfTokenizer:
    """`router.rag.chunking.Tokenizer` over a `tokenizers.Tokenizer`."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer

    def spans(self, text: str) -> list[tuple[int, int]]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).offsets)


class Tokenizers:
    """Per model deployment, loaded on first use (off the event loop: it reads files)."""

    def __init__(self) -> None:
        self._loaded: dict[str, HfTokenizer] = {}

    async def get(self, record: ModelRecord) -> HfTokenizer:
        tokenizer = self._loaded.get(record.deployment_id)
        if tokenizer is None:
            tokenizer = HfTokenizer(await asyncio.to_thread(_load, record.model_path))
            self._loaded[record.deployment_id] = tokenizer
        return tokenizer


def _load(model_path: str) -> Tokenizer:
    folder = Path(model_path)
    if folder.is_dir():
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    else:
        tokenizer = Tokenizer.from_pretrained(model_path)
    # Some tokenizer.json files pad and truncate (MiniLM's to 128): counting needs neither.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer
