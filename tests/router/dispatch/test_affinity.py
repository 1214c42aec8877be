"""Cache-aware replica choice: a table of indexes, loads and prompts, and the replica each must pick."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from ray.serve._private.common import RequestMetadata
from ray.serve.request_router import PendingRequest

from router.dispatch.affinity import LoadBound, PrefixIndex, block_hashes, prompt_text, rank, rendezvous
from router.dispatch.cache_router import generation_of
from workers.events import ChatPrompt, GenerationRequest, TextPrompt

# Prompts as block hashes: P[:n] is a prefix of n blocks; Q shares nothing with P.
P = (11, 12, 13, 14, 15, 16)
Q = (21, 22, 23)


@dataclass
class Case:
    held: list[tuple[str, tuple[int, ...]]]  # (replica, prompt) sent, in this order
    loads: dict[str, int]
    prompt: tuple[int, ...]
    expect: str
    bound: LoadBound = field(default_factory=LoadBound)
    capacity: int = 64


CASES = {
    "empty index, the least loaded": Case([], {"a": 3, "b": 1, "c": 2}, P, "b"),
    "longest match wins": Case([("a", P[:2]), ("b", P[:4]), ("c", Q)], {"a": 0, "b": 0, "c": 0}, P, "b"),
    "a longer match wins over a lighter load within the bound": Case(
        [("a", P[:4]), ("b", P[:2])], {"a": 1, "b": 0}, P, "a"
    ),
    "an overloaded holder falls back to the least loaded": Case([("a", P)], {"a": 3, "b": 1}, P, "b"),
    "an overloaded holder falls back to the next best holder in bound": Case(
        [("a", P), ("b", P[:2])], {"a": 5, "b": 1, "c": 0}, P, "b"
    ),
    "at high load the bound is proportional": Case([("a", P)], {"a": 48, "b": 40}, P, "a"),
    "beyond the proportional bound, the least loaded": Case([("a", P)], {"a": 52, "b": 40}, P, "b"),
    "a tighter bound moves the request sooner": Case([("a", P)], {"a": 1, "b": 0}, P, "b", LoadBound(slack=0, ratio=0)),
    "equal matches go to the less loaded": Case([("a", P[:3]), ("b", P[:3])], {"a": 2, "b": 1}, P, "b"),
    "another prompt's blocks are no match": Case([("a", Q)], {"a": 1, "b": 0}, P, "b"),
    "a holder that is not a candidate (gone) is never chosen": Case([("z", P)], {"a": 0, "b": 1}, P, "a"),
    "an evicted prompt no longer attracts": Case([("a", P), ("a", Q)], {"a": 1, "b": 0}, P, "b", capacity=3),
    "eviction trims a prompt from its end, keeping the root": Case(
        [("a", P), ("b", P[:1])], {"a": 0, "b": 0}, P, "a", capacity=4
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rank_picks(case: Case) -> None:
    index = PrefixIndex(case.capacity)
    for replica, hashes in case.held:
        index.record(replica, hashes)
    ranked = rank(case.prompt, case.loads, index, case.bound)
    assert ranked[0] == case.expect
    assert sorted(ranked) == sorted(case.loads)  # every candidate stays reachable, once


def test_equal_load_and_match_follow_rendezvous_whatever_the_order_replicas_come_in() -> None:
    # Two routers that never saw a prompt still agree where it goes.
    loads = {f"r{i}": 0 for i in range(5)}
    first = rank(P, loads, PrefixIndex())[0]
    assert rank(P, dict(reversed(loads.items())), PrefixIndex())[0] == first
    assert first == max(loads, key=lambda r: rendezvous(P[0], r))


def test_rendezvous_moves_only_the_removed_replicas_keys() -> None:
    replicas = ["a", "b", "c", "d"]
    before = {k: max(replicas, key=lambda r: rendezvous(k, r)) for k in range(200)}
    after = {k: max(replicas[:-1], key=lambda r: rendezvous(k, r)) for k in range(200)}
    assert {k for k in before if before[k] != after[k]} == {k for k in before if before[k] == "d"}


def test_unknown_replicas_are_forgotten() -> None:
    index = PrefixIndex()
    index.record("a", P)
    index.record("b", Q)
    index.retain(["b", "c"])
    assert (index.match("a", P), index.match("b", Q), index.blocks("a")) == (0, 3, 0)


def test_an_index_holds_at_most_its_capacity_per_replica() -> None:
    index = PrefixIndex(capacity=4)
    index.record("a", P)
    index.record("a", Q)
    assert index.blocks("a") == 4 and index.match("a", Q) == 3 and index.match("a", P) == 1


def test_no_candidates_no_choice() -> None:
    assert rank(P, {}, PrefixIndex()) == []


def test_blocks_are_chained_and_a_partial_block_is_left_out() -> None:
    one, two = block_hashes("x" * 64, 64), block_hashes("x" * 150, 64)
    assert len(one) == 1 and len(two) == 2 and two[0] == one[0]
    assert two[1] != two[0]  # the same text at another position is another block


def _chat(*messages: tuple[str, str], tools: tuple[dict[str, object], ...] = ()) -> GenerationRequest:
    prompt = ChatPrompt(tuple({"role": r, "content": c} for r, c in messages), tools)
    return GenerationRequest(request_id="r", prompt=prompt)


SYSTEM = ("system", "You are a patient teacher. " * 20)


def test_conversations_share_their_system_prompt_and_a_turn_extends_its_history() -> None:
    gravity, tides = ("user", "What is gravity? " * 5), ("user", "What are tides? " * 5)
    first = block_hashes(prompt_text(_chat(SYSTEM, gravity)))
    other = block_hashes(prompt_text(_chat(SYSTEM, tides)))
    later = block_hashes(prompt_text(_chat(SYSTEM, gravity, ("assistant", "A force."))))
    shared = len(SYSTEM[1]) // 64 - 1
    assert first[:shared] == other[:shared] and first[: len(other)] != other
    assert later[: len(first)] == first


def test_tools_and_raw_prompts_change_the_root() -> None:
    plain = block_hashes(prompt_text(_chat(SYSTEM)))
    tools = block_hashes(prompt_text(_chat(SYSTEM, tools=({"name": "f"},))))
    raw = block_hashes(prompt_text(GenerationRequest(request_id="r", prompt=TextPrompt(SYSTEM[1]))))
    assert plain[0] != tools[0] and plain[0] != raw[0]


def _pending(method: str, *args: object) -> PendingRequest:
    loop = asyncio.new_event_loop()
    try:
        metadata = RequestMetadata(request_id="x", internal_request_id="x", call_method=method)
        return PendingRequest(args=list(args), kwargs={}, metadata=metadata, future=loop.create_future())
    finally:
        loop.close()


def test_only_generations_are_indexed() -> None:
    request = _chat(SYSTEM)
    assert generation_of(_pending("generate_to", request, "inbox")) is request
    assert generation_of(_pending("count_tokens", request)) is None
    assert generation_of(_pending("ping")) is None
    assert generation_of(None) is None
