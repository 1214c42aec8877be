"""Process limits of a router replica: runaway requests fail alone, they do not take the node down."""

from __future__ import annotations

import resource


def limit_heap(megabytes: int) -> None:
    """Cap this process's data segment (heap and anonymous mappings, RLIMIT_DATA): an allocation past
    it raises MemoryError in the request that made it. Ray's object store is file-backed shared
    memory and does not count; never raises the limit above what the process already has."""
    limit = megabytes * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
