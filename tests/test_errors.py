"""The one error registry: every error class carries its code, HTTP status and close
code, and an error rebuilt from its code (an answer from another process) is the
same error to whoever catches it."""

from __future__ import annotations

import pytest

import collab.gateway.app  # noqa: F401 - imports every module that defines errors
from collab.errors import _BY_CODE, CloseCode, CollabError, error_for
from collab.runtime.actions import ActionError, CallTimeout, RateLimited, UnknownAction
from collab.runtime.ownership import OwnedElsewhere


@pytest.mark.parametrize("code", sorted(_BY_CODE))
def test_an_error_rebuilt_from_its_code_keeps_its_status_and_close_code(code):
    cls = _BY_CODE[code]
    error = error_for(code, "said elsewhere", default=ActionError)
    assert (error.code, error.message) == (code, "said elsewhere")
    assert (error.status, error.close_code) == (cls.status, cls.close_code)
    assert 400 <= error.status < 600


def test_statuses_are_carried_by_the_classes():
    assert UnknownAction("x").status == 404 and CallTimeout("x").status == 504
    assert RateLimited("x").status == 429 and RateLimited("x").close_code == 4429
    assert OwnedElsewhere("x", "node").status == 503
    assert CollabError("a bug").status == 500
    assert CollabError("a bug").close_code == CloseCode.INTERNAL_ERROR


def test_a_code_an_actor_chose_comes_back_as_an_action_error_with_that_code():
    error = error_for("refused", "no", default=ActionError)
    assert isinstance(error, ActionError) and (error.code, error.status) == ("refused", 400)
