"""v1's HTTP status is the error class's `http_status` attribute (coded.errors), never looked up from the
status text; the legacy answer to the same error stays HTTP 200 with the seed's code and text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.responses import Response

import audio.errors
import ivr.errors
import store.errors
import tts.errors
from api.core import errors
from api.core.idempotency import IdempotencyConflict
from api.core.manage import Forbidden, NotFound
from api.core.service import MessageInProgress
from api.core.throttle import LoginThrottled
from api.fronts.app import error_response as app_error_response
from api.fronts.v1.problems import error_response
from coded.errors import CodedError
from tests.unit.coded.test_errors import CODED_CLASSES

V1_STATUS = [
    (store.errors.MessageNotFound, 404),
    (errors.GroupNotFound, 404),
    (NotFound, 404),
    (store.errors.AccountNotFound, 404),
    (Forbidden, 403),
    (store.errors.AccountNotActive, 403),
    (store.errors.WrongCredentials, 401),
    (store.errors.InsufficientBalance, 402),
    (errors.SpendingLimitReached, 402),
    (store.errors.DuplicateEntry, 409),
    (MessageInProgress, 409),
    (IdempotencyConflict, 409),
    (errors.DoNotCall, 409),
    (errors.VoiceFileTooLarge, 413),
    (ivr.errors.FetchTooLarge, 413),
    (audio.errors.AudioTooLarge, 413),
    (tts.errors.EngineUnavailable, 503),
    (errors.SmsNotConfigured, 503),
    (store.errors.StoreError, 503),
    (store.errors.LeaseLost, 503),
    (store.errors.DatabaseWriteError, 503),
    (store.errors.DatabaseUnavailable, 503),
    (errors.InvalidTxt, 422),
    (errors.GatewayError, 422),
    (ivr.errors.UrlRefused, 422),
]
"""The v1 answers docs/api-v1.md lists (and tests/integration/v1 asserts), by class."""


def _instance(cls: type[CodedError]) -> CodedError:
    if cls is LoginThrottled:
        return LoginThrottled(7)
    if issubclass(cls, errors.InvalidParameter):
        return cls("repeat") if cls is errors.InvalidParameter else cls()
    if cls.__name__ == "FallbackRefused":
        return cls(503, "INSUFFICIENT BALANCE")  # type: ignore[call-arg]
    return cls("why")


def _body(response: Response) -> Any:
    return json.loads(bytes(response.body))


@pytest.mark.parametrize("cls", CODED_CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_the_v1_status_is_the_class_attribute(cls: type[CodedError]) -> None:
    exc = _instance(cls)
    response = error_response(exc)
    assert response is not None
    assert response.status_code == cls.http_status
    assert _body(response) == {"code": exc.code, "status": exc.status_text, "detail": exc.detail}


@pytest.mark.parametrize("cls", CODED_CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_the_legacy_answer_is_http_200_with_the_seed_status(cls: type[CodedError]) -> None:
    exc = _instance(cls)
    response = app_error_response(exc, "/matrix.json", 1409596234)
    assert response.status_code == 200
    body = _body(response)
    assert (body["STATUSCODE"], body["STATUSTXT"]) == exc.status


@pytest.mark.parametrize(("cls", "status"), V1_STATUS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_the_documented_v1_statuses(cls: type[CodedError], status: int) -> None:
    assert cls.http_status == status
    response = error_response(cls("why"))
    assert response is not None and response.status_code == status


def test_renaming_a_text_cannot_change_the_http_status() -> None:
    renamed = type("Renamed", (store.errors.MessageNotFound,), {"status_text": "ERROR: NO SUCH MESSAGE"})
    response = error_response(renamed("gone"))
    assert response is not None and response.status_code == 404
    assert _body(response)["status"] == "ERROR: NO SUCH MESSAGE"
    text = store.errors.MessageNotFound.status_text
    borrowed = type("Borrowed", (errors.GatewayError,), {"status_text": text})
    response = error_response(borrowed("a text alone says nothing"))
    assert response is not None and response.status_code == 422


def test_headers_follow_the_status() -> None:
    throttled = error_response(LoginThrottled(7))
    assert throttled is not None and throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7" and "WWW-Authenticate" not in throttled.headers
    wrong = error_response(store.errors.WrongCredentials("no"))
    assert wrong is not None and wrong.headers["WWW-Authenticate"] == "Bearer"
    legacy = app_error_response(LoginThrottled(7), "/matrix", 1409596234)
    assert legacy.status_code == 200 and legacy.headers["Retry-After"] == "7"


@pytest.mark.parametrize("exc", [ValueError("bug"), KeyError("k"), RuntimeError()])
def test_anything_else_is_left_to_the_app(exc: BaseException) -> None:
    assert error_response(exc) is None
    assert app_error_response(exc, "/matrix", 1409596234).status_code == 500
