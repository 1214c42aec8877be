from __future__ import annotations

from pathlib import Path

import pytest

from bench.configs import chat_only_yaml
from router.config import default_config, load_config
from router.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", ["local-cpu.yaml", "gpu-cluster.yaml", "gpu-8x-h100.yaml"])
def test_shipped_configs_load(name: str) -> None:
    config = load_config(CONFIGS / name)
    assert config.models and all(m.name for m in config.models)


def test_local_config_is_the_embedded_default() -> None:
    assert load_config(CONFIGS / "local-cpu.yaml") == default_config()


def test_gpu_example_has_two_chat_models_and_an_embedder() -> None:
    kinds = [m.kind for m in load_config(CONFIGS / "gpu-cluster.yaml").models]
    assert kinds.count("generate") == 2 and kinds.count("embed") == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: []", "models: List should have at least 1 item"),
        ("models:\n  - name: x\n    source: {hf: a}\n    replicas: -1", "models.0.replicas: Input should be greater"),
        ("models:\n  - name: x\n    source: {hf: a}\n    gpu: 1", "models.0.gpu: Extra inputs are not permitted"),
        ("models:\n  - name: x\n    source: {hf: a, gguf: b}", "models.0.source: Value error, set exactly one"),
        ("models:\n  - name: x\n    source: {package: p}", "models.0.source: Value error, 'package' needs 'path'"),
        ("models: [", "not valid YAML"),
        (
            "models:\n  - name: x\n    source: {hf: a}\n    replicas: 2\n    max_replicas: 1",
            "models.0: Value error, 'max_replicas' must be at least 'replicas'",
        ),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_chat_only_yaml_is_the_default_chat_model_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    path.write_text(chat_only_yaml(replicas=2, routing="cache-aware"))
    (model,) = load_config(path).models
    chat = next(m for m in default_config().models if m.kind == "generate")
    assert model == chat.model_copy(update={"replicas": 2, "routing": "cache-aware"})


@pytest.mark.parametrize("pyarrow", [True, False])
def test_prefix_routing_without_pyarrow_is_refused_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pyarrow: bool
) -> None:
    """Ray Serve LLM's prefix router imports pyarrow: without it the deployment fails later, unexplained."""
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return (object() if pyarrow else None) if name == "pyarrow" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    path = tmp_path / "prefix.yaml"
    path.write_text(chat_only_yaml(replicas=2, routing="prefix"))
    if pyarrow:
        assert load_config(path).models[0].routing == "prefix"
    else:
        with pytest.raises(ConfigError, match=r"models\.0\.routing: 'prefix' .* needs pyarrow .* 'cache-aware'"):
            load_config(path)
    path.write_text(chat_only_yaml(replicas=2, routing="cache-aware"))
    assert load_config(path).models[0].routing == "cache-aware"
