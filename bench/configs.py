"""Cluster configs the benchmarks and integration tests start Herd with."""

from __future__ import annotations

from typing import Any

import yaml

from router.config import default_config
from workers.spec import ModelSpec


def default_chat() -> ModelSpec:
    """The embedded default's chat model."""
    return next(m for m in default_config().models if m.kind == "generate")


def chat_spec(**overrides: Any) -> dict[str, Any]:
    """The embedded default's chat model as a config entry, with `overrides`."""
    return default_chat().model_dump(mode="json", exclude_defaults=True) | overrides


def chat_only_yaml(**overrides: Any) -> str:
    """Config YAML for the embedded default's chat model alone, with `overrides`."""
    text: str = yaml.safe_dump({"models": [chat_spec(**overrides)]})
    return text
