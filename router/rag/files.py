"""Uploaded files (LlamaEdge's `/v1/files`), kept in the shared Redis so any router replica can
chunk a file another one received. Only text is accepted, so it is stored decoded.

Keys: `herd:rag:file:<id>` hash with `filename`, `bytes`, `created_at`, `text`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from router.catalog.store import connect
from router.errors import BadRequest, NotFound, PayloadTooLarge

PREFIX = "herd:rag:file:"
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text")


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    filename: str
    size: int
    created_at: int
    text: str

    @property
    def markdown(self) -> bool:
        return self.filename.lower().endswith((".md", ".markdown"))


def decode_text(filename: str, content: bytes, max_bytes: int) -> str:
    """The upload as text; a 0-byte, binary or non-UTF-8 file is a 400, an oversized one a 413."""
    if len(content) > max_bytes:
        raise PayloadTooLarge(f"file '{filename}' is {len(content)} bytes; the limit is {max_bytes}")
    if not content:
        raise BadRequest(f"file '{filename}' is empty", param="file")
    if "." in filename and not filename.lower().endswith(TEXT_SUFFIXES):
        raise BadRequest(f"file '{filename}': only text (.txt) and Markdown (.md) files are supported", param="file")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"file '{filename}' is not UTF-8 text", param="file") from None
    if "\x00" in text:
        raise BadRequest(f"file '{filename}' is not text", param="file")
    return text


class FileStore:
    def __init__(self, redis: Redis) -> None:
        self._redis: Any = redis  # redis-py's async stubs type replies loosely

    @classmethod
    def from_url(cls, url: str) -> FileStore:
        return cls(connect(url))

    async def put(self, filename: str, text: str, size: int) -> StoredFile:
        stored = StoredFile(f"file_{uuid.uuid4()}", filename, size, int(time.time()), text)
        mapping = {"filename": filename, "bytes": size, "created_at": stored.created_at, "text": text}
        await self._redis.hset(PREFIX + stored.id, mapping=mapping)
        return stored

    async def get(self, file_id: str) -> StoredFile:
        fields = await self._redis.hgetall(PREFIX + file_id)
        if not fields:
            raise NotFound(f"no file with id '{file_id}'")
        return StoredFile(file_id, fields["filename"], int(fields["bytes"]), int(fields["created_at"]), fields["text"])

    async def close(self) -> None:
        await self._redis.aclose()
