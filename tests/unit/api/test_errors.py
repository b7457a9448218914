"""The gateway's error tree: seed codes and exact texts, and status_of over every layer's errors (the
account and message refusals are store.errors', raised by the store and the API layer alike)."""

from __future__ import annotations

import inspect

import pytest

import audio.errors
import ivr.errors
import store.errors
import tts.errors
from api.core import errors
from api.core.errors import (
    InvalidParameter,
    http_status_of,
    status_of,
)
from coded.errors import CodedError
from coded.statuses import is_success
from ivr.flow import InvalidFlowConfig

SEED_TABLE = [
    (store.errors.AccountNotFound, 404, "ACCOUNT OR USER DOES NOT EXIST"),
    (errors.GatewayError, 500, "ERROR"),
    (store.errors.MessageNotFound, 500, "ERROR: MESSAGE NOT FOUND"),
    (errors.VoiceFileTooLarge, 500, "ERROR: VOICE FILE TOO LARGE"),
    (errors.StartupFailed, 500, "ERROR: INVALID SETTINGS"),
    (errors.InvalidCallerId, 500, "ERROR: INVALID CALLERID"),
    (errors.GroupNotFound, 500, "ERROR: GROUP NOT FOUND"),
    (errors.InvalidTrunkTemplate, 500, "ERROR: INVALID TRUNK SETTINGS"),
    (errors.SmsNotConfigured, 500, "ERROR: SMS NOT CONFIGURED"),
    (errors.DoNotCall, 502, "PIN IN DO NOT CALL DATABASE"),
    (store.errors.InsufficientBalance, 503, "INSUFFICIENT BALANCE"),
    (errors.SpendingLimitReached, 503, "INSUFFICIENT BALANCE"),
    (store.errors.StoreError, 504, "DATABASE ERROR"),
    (store.errors.WrongCredentials, 505, "USER NOT FOUND OR WRONG PASSWORD"),
    (store.errors.AccountNotActive, 506, "ACCOUNT NOT ACTIVE"),
    (store.errors.DatabaseWriteError, 507, "DATABASE ERROR"),
    (store.errors.DatabaseUnavailable, 508, "DATABASE ERROR"),
    (store.errors.InvalidUsername, 510, "INVALID USERNAME"),
    (errors.InvalidTxt, 511, "INVALID TXT"),
    (store.errors.InvalidPassword, 512, "INVALID PASSWORD"),
    (errors.InvalidPin, 513, "INVALID PIN"),
    (errors.TooManyRecipients, 513, "INVALID PIN"),
    (errors.NoVoiceFile, 514, "NO VOICE FILE PROVIDED"),
    (errors.ParseError, 520, "ERROR PARSING XML"),
]


@pytest.mark.parametrize(("cls", "code", "text"), SEED_TABLE)
def test_each_class_carries_its_seed_code_and_text(cls: type[CodedError], code: int, text: str) -> None:
    exc = cls("some detail")
    assert (exc.code, exc.status_text) == (code, text)
    assert status_of(exc) == (code, text)
    assert exc.detail == "some detail"
    assert http_status_of(exc) == 200


def test_every_class_of_the_module_is_in_the_table() -> None:
    classes = {
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, CodedError) and obj is not InvalidParameter and obj.__module__ == errors.__name__
    }
    assert classes == {cls for cls, _, _ in SEED_TABLE if cls.__module__ == errors.__name__}


def test_every_seed_error_code_has_a_class() -> None:
    seed_codes = {404, 500, 502, 503, 504, 505, 506, 507, 508, 510, 511, 512, 513, 514, 520}
    assert {code for _, code, _ in SEED_TABLE} == seed_codes


def test_detail_defaults_to_the_status_text() -> None:
    exc = errors.DoNotCall()
    assert exc.detail == "PIN IN DO NOT CALL DATABASE"
    assert str(exc) == "PIN IN DO NOT CALL DATABASE"


def test_invalid_parameter_names_the_field() -> None:
    exc = InvalidParameter("repeat", "repeat must be 0..9")
    assert status_of(exc) == (500, "ERROR: INVALID REPEAT")
    assert exc.field == "repeat"
    assert exc.detail == "repeat must be 0..9"
    assert InvalidParameter("gender").detail == "invalid gender"


def _layer_classes() -> list[type[BaseException]]:
    found: list[type[BaseException]] = [InvalidFlowConfig]
    for module in (audio.errors, tts.errors, ivr.errors):
        found += [obj for _, obj in inspect.getmembers(module, inspect.isclass) if issubclass(obj, Exception)]
    return found


@pytest.mark.parametrize("cls", _layer_classes(), ids=lambda c: c.__name__)
def test_status_of_translates_every_lower_layer_error(cls: type[BaseException]) -> None:
    exc = cls("why")
    status = status_of(exc)
    assert status == (cls.code, cls.status_text)  # type: ignore[attr-defined]
    assert status is not None and (status[0] == 500 or status[0] >= 510)
    assert http_status_of(exc) == 200


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (audio.errors.AudioTooLarge("big"), (500, "ERROR: VOICE FILE TOO LARGE")),
        (audio.errors.EmptyAudio("empty"), (514, "NO VOICE FILE PROVIDED")),
        (tts.errors.InvalidText("empty"), (511, "INVALID TXT")),
        (ivr.errors.InvalidPromptSpec("bad"), (520, "ERROR PARSING XML")),
        (ivr.errors.FetchTooLarge("big"), (500, "ERROR: VOICE FILE TOO LARGE")),
        (ivr.errors.UrlRefused("ftp"), (500, "ERROR: VOICE URL REFUSED")),
        (InvalidFlowConfig("repeat"), (500, "ERROR: INVALID CALL FLOW SETTINGS")),
    ],
)
def test_status_of_known_lower_layer_examples(exc: BaseException, expected: tuple[int, str]) -> None:
    assert status_of(exc) == expected


def test_status_of_translates_store_errors() -> None:
    store_errors = pytest.importorskip("store.errors")
    classes = [
        obj for _, obj in inspect.getmembers(store_errors, inspect.isclass) if issubclass(obj, Exception)
    ]
    assert classes
    for cls in classes:
        assert status_of(cls("why")) == (cls.code, cls.status_text)  # type: ignore[attr-defined]


class _Odd(Exception):
    def __init__(self, code: object, text: object) -> None:
        super().__init__("odd")
        self.code = code
        self.status_text = text


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("plain"),
        KeyError("k"),
        RuntimeError(),
        _Odd("500", "ERROR"),
        _Odd(True, "ERROR"),
        _Odd(500, None),
        _Odd(500, ""),
        _Odd(-1, "ERROR"),
        _Odd(1000, "ERROR"),
    ],
)
def test_foreign_or_malformed_exceptions_have_no_status(exc: BaseException) -> None:
    assert status_of(exc) is None
    assert http_status_of(exc) == 500


def test_is_success_follows_the_seed_range() -> None:
    assert [is_success(c) for c in (0, 100, 200, 399, 400, 502, 600, -1)] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
