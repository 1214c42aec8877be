"""Per-key admission and rate limits, atomic in Redis so every router replica shares one budget.

One script per request looks the key up by its hash and, for a key with limits, checks and
counts it: requests per minute in a sliding window (a sorted set of request times: exact, so
`--rpm 10` admits exactly 10 in any 60 s, however many replicas ask), tokens per minute in
fixed minute windows charged with the real usage once a request ends. Times are Redis's own
clock, so replicas with skewed clocks still agree.

Each script call is its own atomic run in Redis; the calls that wait for the same round trip are
only sent together (router/catalog/group_commit.py), so a burst of requests is a few round trips.

Keys: `herd:rl:r:<hash>` sorted set (request times, ms), `herd:rl:t:<hash>:<minute>` counter;
both expire on their own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError

from router.catalog.group_commit import GroupCommit
from router.catalog.keys import KEYS, ApiKey

WINDOW_MS = 60_000

ADMIT = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {0} end
local key = cjson.decode(raw)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local used_r, used_t, reset_r, reset_t = 0, 0, 0, 0
if type(key['tpm']) == 'number' then
  used_t = tonumber(redis.call('GET', 'herd:rl:t:' .. ARGV[1] .. ':' .. math.floor(now / 60000)) or '0')
  reset_t = 60000 - (now % 60000)
  if used_t >= key['tpm'] then return {3, raw, used_r, used_t, reset_r, reset_t} end
end
if type(key['rpm']) == 'number' then
  local rkey = 'herd:rl:r:' .. ARGV[1]
  redis.call('ZREMRANGEBYSCORE', rkey, '-inf', now - 60000)
  used_r = redis.call('ZCARD', rkey)
  if used_r >= key['rpm'] then
    local oldest = redis.call('ZRANGE', rkey, 0, 0, 'WITHSCORES')
    return {2, raw, used_r, used_t, tonumber(oldest[2]) + 60000 - now, reset_t}
  end
  redis.call('ZADD', rkey, now, ARGV[2])
  redis.call('PEXPIRE', rkey, 60000)
  used_r = used_r + 1
  local oldest = redis.call('ZRANGE', rkey, 0, 0, 'WITHSCORES')
  reset_r = tonumber(oldest[2]) + 60000 - now
end
return {1, raw, used_r, used_t, reset_r, reset_t}
"""

CHARGE = """
local t = redis.call('TIME')
local minute = math.floor((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) / 60000)
local key = 'herd:rl:t:' .. ARGV[1] .. ':' .. minute
redis.call('INCRBY', key, ARGV[2])
redis.call('PEXPIRE', key, 120000)
return 1
"""


@dataclass(frozen=True)
class Admission:
    """The script's verdict. `allowed` False with a key: over `reason` ("requests" or "tokens")."""

    key: ApiKey | None
    allowed: bool
    reason: str = ""
    used_requests: int = 0
    used_tokens: int = 0
    reset_requests_ms: int = 0
    reset_tokens_ms: int = 0


@dataclass
class Usage:
    """Tokens one request used, added as its generations finish; charged when it ends."""

    prompt: int = 0
    output: int = 0

    def add(self, prompt: int, output: int) -> None:
        self.prompt += prompt
        self.output += output


class Limiter:
    def __init__(self, redis: Any) -> None:
        self._admit = BatchedScript(redis, ADMIT)
        self._charge = BatchedScript(redis, CHARGE)

    async def admit(self, key_hash: str) -> Admission:
        """Look the key up and count the request against its limits, in one script run."""
        reply = await self._admit(((KEYS,), (key_hash, uuid.uuid4().hex)))
        if reply[0] == 0:
            return Admission(None, False)
        code, raw, used_r, used_t, reset_r, reset_t = reply
        reason = {2: "requests", 3: "tokens"}.get(int(code), "")
        key = ApiKey.from_json(raw)
        return Admission(key, code == 1, reason, int(used_r), int(used_t), int(reset_r), int(reset_t))

    async def charge(self, key_hash: str, tokens: int) -> None:
        if tokens > 0:
            await self._charge(((), (key_hash, tokens)))


Call = tuple[tuple[str, ...], tuple[Any, ...]]  # (keys, args) of one script run


class BatchedScript:
    """`await script((keys, args))`: one EVALSHA of `source`, sent in a pipeline with the calls
    that wait for the same round trip. Each run is atomic on its own; none is merged with another."""

    def __init__(self, redis: Any, source: str) -> None:
        self._redis = redis
        self._script = redis.register_script(source)
        self._batch = GroupCommit[Call, Any](self._send)

    async def __call__(self, call: Call) -> Any:
        return await self._batch(call)

    async def _send(self, calls: list[Call]) -> list[Any]:
        replies = await self._evalshas(calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:  # a restarted (or flushed) Redis: those runs did not happen, so they are safe to send again
            await self._redis.script_load(self._script.script)
            for i, reply in zip(missing, await self._evalshas([calls[i] for i in missing]), strict=True):
                replies[i] = reply
        return replies

    async def _evalshas(self, calls: list[Call]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(self._script.sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))
