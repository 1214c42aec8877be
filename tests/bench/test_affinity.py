"""bench.affinity's cluster config (one chat model under several names) and its per-replica summary."""

from bench.affinity import config, model_names, summary
from router.config import load_config


def test_models_are_the_chat_model_under_distinct_names_each_with_two_replicas() -> None:
    models = load_config(config("cache-aware", 3)).models
    assert [m.name for m in models][1:] == ["smollm2-2", "smollm2-3"]
    assert model_names(3) == ["smollm2", "smollm2-2", "smollm2-3"]
    assert all(m.replicas == 2 and m.routing == "cache-aware" for m in models)
    assert len({m.source.model_dump_json() for m in models}) == 1  # one converted folder for every deployment
    aliases = [a for m in models for a in m.aliases]
    assert len(aliases) == len(set(aliases))


def test_summary_gives_hit_rate_and_each_replicas_share_of_its_own_models_traffic() -> None:
    zero = dict.fromkeys(("queries", "hits", "prompt_tokens", "requests"), 0.0)
    before = {"m/a": zero | {"queries": 100.0, "hits": 50.0}, "m/b": dict(zero), "n/c": dict(zero)}
    after = {
        "m/a": {"queries": 400.0, "hits": 250.0, "prompt_tokens": 300.0, "requests": 3.0},
        "m/b": {"queries": 100.0, "hits": 0.0, "prompt_tokens": 100.0, "requests": 1.0},
        "n/c": {"queries": 100.0, "hits": 50.0, "prompt_tokens": 100.0, "requests": 2.0},
        "n/d": {"queries": 0.0, "hits": 0.0, "prompt_tokens": 0.0, "requests": 0.0},
    }
    out = summary(before, after)
    assert out["hit_rate"] == 0.5  # (200 + 0 + 50 + 0) / (300 + 100 + 100 + 0)
    assert out["prompt_token_share"] == [1.0, 0.75, 0.25, 0.0]  # n's one busy replica, then m's two
    assert out["request_share"] == [1.0, 0.75, 0.25, 0.0]
