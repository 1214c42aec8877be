"""Cache-aware replica choice: the replica holding the longest cached prefix of a prompt, unless it is
loaded beyond a bound, then the least loaded one. Pure: no Ray, no clock, no I/O.

The router keeps its own exact index of what it sent where, as chained hashes of fixed-size blocks
of the prompt's text: block `i`'s hash covers blocks `0..i`, so one hash names a whole prefix and a
replica holds a prefix of `k` blocks when it holds hash `k-1`. Each replica's entries are an LRU
bounded in blocks, standing in for the engine's own KV-cache capacity (the engine evicts too; a
stale entry costs one cache miss, never a wrong answer).

Ties (equal match, including none) go to the least loaded replica, then to the replica that ranks
highest for the prompt's first block by rendezvous hashing. The hashes are blake2b, not Python's
per-process salted `hash`, so every router process ranks replicas the same way: a router that has
never seen a prompt still sends it where another idle router would.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from hashlib import blake2b

from workers.events import ChatPrompt, GenerationRequest

# ~16 tokens of English: fine enough that a shared system prompt and each turn of a conversation
# are whole blocks, coarse enough that a 100k-character prompt is 1,600 hashes.
BLOCK_CHARS = 64
# Per replica: 8,192 blocks of 64 characters (~130k tokens), about a CPU replica's 1 GiB KV cache
# for a small model; about 1 MB of router memory per replica.
INDEX_BLOCKS = 8192
# The load bound's defaults (LoadBound): one request of slack at low load, a quarter at high load.
SLACK, RATIO = 1, 0.25
# Separators that cannot appear in JSON-escaped text, so message boundaries never collide.
_FIELD, _MESSAGE = "\x1f", "\x1e"


def prompt_text(request: GenerationRequest) -> str:
    """The request's prompt as one string whose prefixes follow the rendered prompt's prefixes.

    Chat templates render tools first, then the messages in order, so this does the same: two
    requests share a text prefix exactly when they share tools and their first messages.
    """
    prefix = ",".join(map(str, request.prefix_token_ids))
    prompt = request.prompt
    if not isinstance(prompt, ChatPrompt):
        return prefix + _MESSAGE + prompt.text
    parts = [prefix, json.dumps(prompt.tools, sort_keys=True, default=str)]
    for message in prompt.messages:
        extra = {k: v for k, v in message.items() if k not in ("role", "content")}
        fields = [str(message.get("role", "")), str(message.get("content") or "")]
        if extra:
            fields.append(json.dumps(extra, sort_keys=True, default=str))
        parts.append(_FIELD.join(fields))
    return _MESSAGE.join(parts)


def block_hashes(text: str, block_chars: int = BLOCK_CHARS) -> tuple[int, ...]:
    """Chained hashes of the text's whole blocks (a partial last block is left out: no replica can
    be known to hold it)."""
    hashes: list[int] = []
    previous = b""
    for start in range(0, len(text) - block_chars + 1, block_chars):
        digest = blake2b(previous + text[start : start + block_chars].encode(), digest_size=8).digest()
        hashes.append(int.from_bytes(digest, "big"))
        previous = digest
    return tuple(hashes)


class PrefixIndex:
    """Which prompt prefixes (block hashes) each replica holds, an LRU of `capacity` blocks each."""

    def __init__(self, capacity: int = INDEX_BLOCKS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least one block")
        self._capacity = capacity
        self._held: dict[str, OrderedDict[int, None]] = {}

    def match(self, replica: str, hashes: Sequence[int]) -> int:
        """How many leading blocks of the prompt `replica` holds."""
        held = self._held.get(replica)
        if held is None:
            return 0
        n = 0
        for h in hashes:
            if h not in held:
                break
            n += 1
        return n

    def record(self, replica: str, hashes: Sequence[int]) -> None:
        """`replica` now holds this prompt. The deepest block is touched first so a prefix's root
        blocks are the most recently used: eviction trims prompts from their ends, as the engine
        does, instead of cutting the root that every longer match needs."""
        held = self._held.setdefault(replica, OrderedDict())
        for h in reversed(hashes):
            held[h] = None
            held.move_to_end(h)
        while len(held) > self._capacity:
            held.popitem(last=False)

    def retain(self, replicas: Iterable[str]) -> None:
        """Forget every replica not in `replicas` (stopped or dead: its cache went with it)."""
        keep = set(replicas)
        for replica in [r for r in self._held if r not in keep]:
            del self._held[replica]

    def blocks(self, replica: str) -> int:
        return len(self._held.get(replica, ()))


@dataclass(frozen=True, slots=True)
class LoadBound:
    """How much busier than the least loaded replica a cache holder may be and still get the request.

    A replica is within the bound when its in-flight requests exceed the least loaded replica's by
    at most `max(slack, ratio * least)`: a fixed slack at low load, where one request is a large
    share, and a proportional one at high load, where a few requests are noise.
    """

    slack: int = SLACK
    ratio: float = RATIO

    def within(self, load: int, least: int) -> bool:
        return load - least <= max(self.slack, self.ratio * least)


def rendezvous(key: int, replica: str) -> int:
    """Replica's weight for `key`: the highest weight wins, and removing a replica moves only its keys."""
    digest = blake2b(key.to_bytes(8, "big") + replica.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rank(
    hashes: Sequence[int], loads: Mapping[str, int], index: PrefixIndex, bound: LoadBound = LoadBound()
) -> list[str]:
    """Replicas best first: among those within the load bound, the longest match, then the least
    loaded, then the rendezvous order of the first block; the rest after, least loaded first.

    `loads` holds every candidate replica's in-flight requests (the caller leaves out replicas it
    cannot reach). The first entry is the choice; the others are for when it turns the request down.
    """
    if not loads:
        return []
    least = min(loads.values())
    key = hashes[0] if hashes else 0

    def preference(replica: str) -> tuple[bool, int, int, int]:
        eligible = bound.within(loads[replica], least)
        matched = index.match(replica, hashes) if eligible else 0
        return (eligible, matched, -loads[replica], rendezvous(key, replica))

    return sorted(loads, key=preference, reverse=True)
