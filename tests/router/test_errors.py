from __future__ import annotations

import pickle

import pytest

from router.errors import BadRequest, HerdError, ModelNotFound, Overloaded


@pytest.mark.parametrize(
    "err",
    [ModelNotFound("llama3:8b"), Overloaded("busy", retry_after=2), BadRequest("bad n", param="n")],
)
def test_errors_cross_processes_with_their_fields(err: HerdError) -> None:
    """Ray pickles a pull's error from the manager to the router: class, text and fields survive."""
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and back.__dict__ == err.__dict__ and str(back) == str(err)
