"""A router replica's heap is capped: a runaway allocation fails alone instead of growing the process."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from router.api.limits import limit_heap
limit_heap(512)
small = bytearray(64 * 1024 * 1024)  # well within the cap
try:
    bytearray(2 * 1024 * 1024 * 1024)
except MemoryError:
    print("MemoryError", flush=True)
"""


def test_an_allocation_past_the_cap_is_a_memory_error_not_growth() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "MemoryError"
