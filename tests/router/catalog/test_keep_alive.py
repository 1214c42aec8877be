"""Ollama's keep_alive values: numbers are seconds, strings Go durations; negative is forever."""

from __future__ import annotations

from typing import Any

import pytest

from router.catalog.keep_alive import keep_alive_ns
from router.errors import BadRequest

S = 10**9


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 300 * S),  # the default ("5m") applies
        ("5m", 300 * S),
        ("1h30m", 5400 * S),
        ("1.5h", 5400 * S),
        ("300ms", 300_000_000),
        ("0", 0),
        (0, 0),
        (10, 10 * S),
        (2.5, 2_500_000_000),
        ("10", 10 * S),  # a bare integer string is seconds, as OLLAMA_KEEP_ALIVE reads it
        (-1, None),
        ("-1", None),
        ("-5m", None),
    ],
)
def test_keep_alive_values(value: Any, expected: int | None) -> None:
    assert keep_alive_ns(value, "5m") == expected


@pytest.mark.parametrize("value", ["abc", "5x", "", "m5", True, [5]])
def test_invalid_keep_alive_is_a_400(value: Any) -> None:
    with pytest.raises(BadRequest):
        keep_alive_ns(value, "5m")
