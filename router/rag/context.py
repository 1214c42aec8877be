"""Retrieved passages merged into a chat's messages (LlamaEdge's `--rag-policy` and `--rag-prompt`).

Messages are `{"role", "content"}` dicts with text content; nothing else of them is changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

Policy = Literal["system-message", "last-user-message"]
# LlamaEdge's documented example prompt (rag-api-server README, `--rag-prompt`).
DEFAULT_PROMPT = (
    "Use the following pieces of context to answer the user's question.\n"
    "If you don't know the answer, just say that you don't know, don't try to make up an answer.\n"
    "----------------\n"
)


def merge(
    messages: Sequence[dict[str, Any]], passages: Sequence[str], policy: Policy, prompt: str
) -> list[dict[str, Any]]:
    """`messages` with `prompt` and the passages in the system message (added first when there is
    none) or ahead of the last user message's text. No passages: the messages unchanged."""
    out = [dict(m) for m in messages]
    if not passages:
        return out
    context = prompt + "\n\n".join(passages)
    if policy == "last-user-message":
        last = max((i for i, m in enumerate(out) if m["role"] == "user"), default=None)
        if last is not None:
            out[last]["content"] = f"{context}\n\n{out[last]['content']}"
            return out
    if out and out[0]["role"] == "system":
        out[0]["content"] = f"{out[0]['content']}\n{context}" if out[0]["content"] else context
        return out
    return [{"role": "system", "content": context}, *out]


def last_user_text(messages: Sequence[dict[str, Any]]) -> str:
    """What retrieval searches for: the last user message (LlamaEdge's rule)."""
    return next((str(m["content"]) for m in reversed(messages) if m["role"] == "user" and m["content"]), "")
