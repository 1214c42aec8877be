"""What a model is, as the cluster config describes it: name, weight source, engine and replicas."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SourceSpec(BaseModel):
    """Where the weights come from. Exactly one of `package`, `gguf`, `hf` is set."""

    model_config = ConfigDict(extra="forbid")

    package: str | None = Field(None, description="Python module (installed distribution) that ships the weights.")
    path: str | None = Field(None, description="With `package`: the file or folder inside that module.")
    gguf: str | None = Field(None, description="A local GGUF file; converted once to a bf16 HF folder.")
    hf: str | None = Field(None, description="A local HF folder, or a hub repository id where the cluster has network.")

    @model_validator(mode="after")
    def _exactly_one(self) -> SourceSpec:
        given = [k for k in ("package", "gguf", "hf") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("set exactly one of 'package', 'gguf' or 'hf'")
        if self.package and not self.path:
            raise ValueError("'package' needs 'path' (the file or folder inside the package)")
        return self


class ModelSpec(BaseModel):
    """One served model. Replica and engine settings map onto Ray Serve and vLLM options."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Ollama-style name, e.g. 'smollm2:135m'.")
    aliases: list[str] = Field(default_factory=list, description="Other names that resolve to this model.")
    source: SourceSpec
    kind: Literal["generate", "embed"] = Field("generate", description="Text generation or embeddings (pooling).")
    family: str = Field("", description="Model family shown in /api/show and /api/tags details.")
    parameter_size: str = Field("", description="Human parameter count, e.g. '135M'.")
    quantization_level: str = Field("", description="Quantization of the served weights, e.g. 'BF16'.")
    replicas: int = Field(1, ge=0, description="Engine replicas (one per GPU, or per `gpus_per_replica` GPUs).")
    max_replicas: int | None = Field(
        None, ge=1, description="Autoscale between `replicas` and this many replicas on ongoing requests."
    )
    target_ongoing_requests: float = Field(
        16, gt=0, description="With `max_replicas`: the ongoing requests per replica autoscaling aims for."
    )
    routing: Literal["least-loaded", "prefix", "cache-aware"] = Field(
        "least-loaded",
        description="Replica choice: least in-flight work of two random replicas; Ray Serve's prefix affinity "
        "(a conversation returns to the replica holding its KV cache while queues differ by fewer than 8); "
        "or cache-aware (the replica holding the longest cached prefix unless it is busier than the least "
        "loaded one by more than a bound, then the least loaded).",
    )
    max_queued_requests: int = Field(
        512, ge=1, description="Requests the model may queue beyond its replicas' capacity before answering 503."
    )
    gpus_per_replica: float = Field(0, ge=0, description="GPUs per replica; 0 runs on CPU. >1 means tensor parallel.")
    cpus_per_replica: float = Field(1, gt=0, description="Logical CPUs Ray reserves for each replica.")
    max_ongoing_requests: int = Field(256, ge=1, description="Requests one replica takes at once before queueing.")
    engine: dict[str, Any] = Field(
        default_factory=dict, description="vLLM AsyncEngineArgs fields, e.g. max_model_len, dtype, enforce_eager."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables for the replica process.")
    defaults: dict[str, Any] = Field(
        default_factory=dict, description="Default Ollama options for this model (like Modelfile PARAMETER lines)."
    )
    system: str = Field("", description="Default system prompt (like a Modelfile SYSTEM line).")
    always_on: bool = Field(
        False,
        description="Load at start and never unload; otherwise replicas start on demand and stop after keep_alive.",
    )

    @model_validator(mode="after")
    def _replica_range(self) -> ModelSpec:
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError("'max_replicas' must be at least 'replicas'")
        return self
