"""Identifiers Herd makes up: request ids, and the ids each protocol shows its clients."""

from __future__ import annotations

import secrets
import string
import uuid

_ALNUM = string.ascii_letters + string.digits


def new_request_id() -> str:
    return uuid.uuid4().hex


def openai_id(prefix: str) -> str:
    """OpenAI's shape: a prefix (`chatcmpl-`, `cmpl-`, `call_`) and 24 letters or digits."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(24))


def ollama_call_id() -> str:
    """Ollama's tool-call ids: `call_` and 8 lowercase letters or digits."""
    return "call_" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def openai_call_id() -> str:
    return openai_id("call_")
