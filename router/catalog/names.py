"""Ollama model names: `[scheme://][host/][namespace/]model[:tag][@digest]`.

Lookup is case-insensitive; the display form drops the default host and namespace and always
keeps the tag (`llama3:latest`). Ray Serve deployment names may not contain `:`, so each name
also maps to a safe, deterministic deployment id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from router.errors import BadRequest

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_HOST = re.compile(r"[A-Za-z0-9_.:-]{1,350}")
_NAMESPACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}")
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")


@dataclass(frozen=True)
class ModelName:
    host: str
    namespace: str
    model: str
    tag: str

    @property
    def key(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}".lower()

    @property
    def display(self) -> str:
        prefix = "" if self.host.lower() == DEFAULT_HOST else f"{self.host}/"
        if prefix or self.namespace.lower() != DEFAULT_NAMESPACE:
            prefix += f"{self.namespace}/"
        return f"{prefix}{self.model}:{self.tag}"

    @property
    def deployment_id(self) -> str:
        short = self.display.lower()
        safe = re.sub(r"[^a-z0-9_-]", "-", short.replace(":", "--"))
        if safe.replace("--", ":", 1) == short:
            return safe
        # Characters were replaced, so two names could collide: make the id unique by hash.
        return f"{safe}-{hashlib.sha256(self.key.encode()).hexdigest()[:8]}"


def parse_name(text: str) -> ModelName:
    """Parse and validate an Ollama model name, filling Ollama's defaults."""
    if not text:
        raise BadRequest("model is required")
    rest = text.split("://", 1)[1] if "://" in text else text
    rest = rest.split("@", 1)[0]
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag = DEFAULT_TAG
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
    parts = rest.split("/")
    if len(parts) > 3:
        raise BadRequest(f'name "{text}" is invalid')
    host = parts[-3] if len(parts) == 3 else DEFAULT_HOST
    namespace = parts[-2] if len(parts) >= 2 else DEFAULT_NAMESPACE
    model = parts[-1]
    valid = (
        _HOST.fullmatch(host) and _NAMESPACE.fullmatch(namespace) and _PART.fullmatch(model) and _PART.fullmatch(tag)
    )
    if not valid:
        raise BadRequest(f'name "{text}" is invalid')
    return ModelName(host, namespace, model, tag)
