"""Anchor contender: Ray Serve LLM's stock OpenAI app (`build_openai_app`) on the same model.

python bench/rayllm_server.py MODEL_DIR PORT
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

import ray
from ray import serve
from ray.serve.llm import LLMConfig, build_openai_app


def main() -> None:
    model_dir, port = sys.argv[1], int(sys.argv[2])
    ray.init(num_cpus=8, include_dashboard=False, logging_level=logging.WARNING)
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"enable_access_log": False})
    config = LLMConfig(
        model_loading_config={"model_id": "smollm2", "model_source": model_dir},
        engine_kwargs={"max_model_len": 2048, "dtype": "bfloat16", "enforce_eager": True},
        # CPU only: the default placement group asks for a GPU.
        placement_group_config={"bundles": [{"CPU": 1}]},
        deployment_config={"num_replicas": 1},
        runtime_env={"env_vars": {"VLLM_CPU_KVCACHE_SPACE": "1"}},
    )
    serve.run(build_openai_app({"llm_configs": [config]}), name="rayllm", route_prefix="/")
    print("rayllm: ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()  # type: ignore[no-untyped-call]
    ray.shutdown()


if __name__ == "__main__":
    main()
