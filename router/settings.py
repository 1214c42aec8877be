"""Process settings: one object, read from HERD_* environment variables; building it does no I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERD_", populate_by_name=True)

    host: str = Field("127.0.0.1", description="Address the HTTP proxy binds (Ollama's default).")
    port: int = Field(11434, description="Port for both APIs (Ollama's default).")
    config: Path | None = Field(None, description="Cluster config YAML; unset serves the embedded default.")
    data_dir: Path = Field(Path.home() / ".herd", description="Model store and other state.")
    ray_cpus: int = Field(8, description="Logical CPUs given to the local Ray cluster (more than cores is fine).")
    ray_address: str | None = Field(None, description="Join an existing Ray cluster instead of starting one.")
    ollama_version: str = Field("0.12.6", description="Version /api/version reports: the Ollama API level served.")
    log_level: str = Field("WARNING", description="Log level of Herd's Serve replicas.")
    access_log: bool = Field(False, description="Log one line per request in each replica (costs CPU).")
    origins: list[str] = Field(
        default_factory=list, description="Extra CORS origins (like OLLAMA_ORIGINS); local origins are always allowed."
    )
    router_replicas: int = Field(1, ge=1, description="Router (ingress) replicas.")
    redis_url: str | None = Field(
        None,
        validation_alias=AliasChoices("REDIS_URL", "HERD_REDIS_URL"),
        description="Shared Redis (catalog, loaded models); unset starts a private redis-server in data_dir.",
    )
    keep_alive: str = Field(
        "5m",
        validation_alias=AliasChoices("HERD_KEEP_ALIVE", "OLLAMA_KEEP_ALIVE"),
        description="How long a model stays loaded after its last request, unless the request says (Ollama's 5m).",
    )
    load_timeout_s: float = Field(
        180, gt=0, description="How long a request waits for its model's replicas to start before a 503."
    )
    request_timeout_s: float = Field(
        600, gt=0, description="A generation still running after this long is stopped (504, or an in-band error)."
    )
    router_memory_mb: int = Field(
        4096,
        ge=256,
        description="Heap a router replica may allocate; past it one request fails with a MemoryError (a 500) "
        "instead of the process growing until Ray's memory monitor kills engines or the controller.",
    )
    # RAG (LlamaEdge's rag-api-server options; see README "Retrieval (RAG)").
    qdrant_url: str | None = Field(
        None, description="Qdrant server for vector collections; unset keeps them in data_dir/qdrant (local mode)."
    )
    rag_chunk_capacity: int = Field(100, ge=1, description="Tokens per chunk (LlamaEdge's --chunk-capacity).")
    rag_limit: int = Field(5, ge=1, description="Passages retrieved per question (LlamaEdge's --qdrant-limit).")
    rag_score_threshold: float = Field(0.4, description="Least cosine similarity retrieved (--qdrant-score-threshold).")
    rag_policy: Literal["system-message", "last-user-message"] = Field(
        "system-message", description="Where RAG chat puts the passages (LlamaEdge's --rag-policy)."
    )
    rag_prompt: str | None = Field(None, description="Text before the passages; unset uses LlamaEdge's example.")
    rag_max_file_bytes: int = Field(10 * 2**20, ge=1, description="Largest upload to /v1/files, /v1/create/rag (413).")

    # -- security (README "Security") --------------------------------------------------------
    auth: Literal["auto", "required", "off"] = Field(
        "auto", description="API keys: auto (on once any key exists), required, or off (never checked)."
    )
    admin_key: str | None = Field(None, description="Bootstrap admin key registered at start (HERD_ADMIN_KEY).")
    model_roots: list[Path] = Field(
        default_factory=list, description="Folders local imports may come from; unset: <data_dir>/imports."
    )
    max_modelfile_bytes: int = Field(1 << 20, gt=0, description="Largest Modelfile /api/create reads from a path.")
    max_import_bytes: int = Field(1 << 40, gt=0, description="Largest local file or folder a pull or create imports.")
    max_body_bytes: int = Field(16 << 20, gt=0, description="Largest request body; larger ones are a 413.")
    max_choices: int = Field(8, ge=1, description="Largest OpenAI `n` a request may ask for.")
    max_tokens: int = Field(
        8192, ge=1, description="Largest max_tokens/num_predict a request may ask for; also the default cap."
    )

    responses_ttl_s: int = Field(
        30 * 24 * 3600, gt=0, description="How long a stored /v1/responses response stays in Redis (OpenAI's 30 days)."
    )

    def serve_logging(self) -> dict[str, Any]:
        """Ray Serve logging for every Herd component; no per-request access lines by default."""
        return {"log_level": self.log_level, "enable_access_log": self.access_log}

    @property
    def import_roots(self) -> list[Path]:
        return list(self.model_roots) or [self.data_dir / "imports"]

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "models"
