"""Server paths a request may name: only under the configured model roots, only regular files
and folders of bounded size, read off the event loop.

Every refusal of a path outside the roots has the same text whether the path exists or not, and
nothing read from a file is ever quoted back, so a request cannot probe the server's disk.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from router.errors import BadRequest

OUTSIDE = "local paths must be under a configured model root (HERD_MODEL_ROOTS)"


class LocalPaths:
    def __init__(self, roots: Sequence[Path], max_modelfile_bytes: int, max_import_bytes: int) -> None:
        self._roots = [Path(os.path.realpath(r)) for r in roots]
        self._max_modelfile = max_modelfile_bytes
        self._max_import = max_import_bytes

    def resolve(self, text: str, relative_to: Path | None = None) -> Path:
        """The real path `text` names (relative: to `relative_to`, else the first root); refused
        unless it lies under a root. Existence is not checked here."""
        path = Path(text)
        if not path.is_absolute():
            path = (relative_to or self._roots[0]) / path
        real = Path(os.path.realpath(path))
        if not any(real == root or real.is_relative_to(root) for root in self._roots):
            raise BadRequest(OUTSIDE, param="path")
        return real

    async def read_modelfile(self, text: str) -> tuple[str, Path]:
        """(the Modelfile's text, its real path)."""
        path = self.resolve(text)
        return await asyncio.to_thread(self._read, path, text), path

    async def weights(self, text: str, relative_to: Path | None = None) -> Path:
        """A GGUF file or model folder to import, checked for type and size."""
        path = self.resolve(text, relative_to)
        await asyncio.to_thread(self._check_weights, path, text)
        return path

    def _read(self, path: Path, shown: str) -> str:
        info = _stat(path, shown)
        if not stat.S_ISREG(info.st_mode):
            raise BadRequest(f"Modelfile {shown!r} is not a regular file", param="path")
        with path.open("rb") as f:
            data = f.read(self._max_modelfile + 1)
        if len(data) > self._max_modelfile:
            raise BadRequest(f"Modelfile {shown!r} is over {self._max_modelfile} bytes", param="path")
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise BadRequest(f"Modelfile {shown!r} is not UTF-8 text", param="path") from exc

    def _check_weights(self, path: Path, shown: str) -> None:
        info = _stat(path, shown)
        if stat.S_ISREG(info.st_mode):
            size = info.st_size
        elif stat.S_ISDIR(info.st_mode):
            size = self._folder_size(path, shown)
        else:
            raise BadRequest(f"{shown!r} is not a regular file or folder", param="path")
        if size > self._max_import:
            raise BadRequest(f"{shown!r} is over the import limit of {self._max_import} bytes", param="path")

    def _folder_size(self, folder: Path, shown: str) -> int:
        """Regular files only; a link leading out of the roots refuses the whole folder."""
        total = 0
        for parent, dirs, files in os.walk(folder):
            for name in (*dirs, *files):
                self.resolve(os.path.join(parent, name))
            for name in files:
                info = os.stat(os.path.join(parent, name))
                if not stat.S_ISREG(info.st_mode):
                    raise BadRequest(f"{shown!r} holds something other than regular files", param="path")
                total += info.st_size
                if total > self._max_import:
                    return total
        return total


def _stat(path: Path, shown: str) -> os.stat_result:
    try:
        return path.stat()
    except OSError as exc:  # under a root, so saying it is missing reveals nothing outside them
        raise BadRequest(f"no such file or folder under the model roots: {shown!r}", param="path") from exc
