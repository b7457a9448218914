"""The one error root: every coded error class of every layer subclasses CodedError and states its seed
code, status text and v1 HTTP status as class attributes; the root's module imports nothing of ours."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

import coded
from coded.errors import HTTP_UNPROCESSABLE, CodedError

PACKAGES = ("coded", "audio", "tts", "ivr", "sms", "store", "api")
"""Our top-level packages (pyproject's package list)."""
LAYER_ROOTS = {
    "audio.errors": "AudioError",
    "tts.errors": "TTSError",
    "ivr.errors": "IvrError",
    "sms.errors": "SmsError",
    "store.errors": "StoreError",
    "api.core.errors": "GatewayError",
}


def _import_everything() -> None:
    """Import every module of ours, so that every coded error class is defined."""
    for name in PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, name + "."):
            if info.name.startswith("store.migrations") or info.name.endswith("__main__"):
                continue
            importlib.import_module(info.name)


def _descendants(cls: type[CodedError]) -> set[type[CodedError]]:
    found: set[type[CodedError]] = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _descendants(sub)
    return found


def _coded_classes() -> list[type[CodedError]]:
    _import_everything()
    ours = [c for c in _descendants(CodedError) if c.__module__.split(".")[0] in PACKAGES]
    return sorted({CodedError, *ours}, key=lambda c: f"{c.__module__}.{c.__qualname__}")


CODED_CLASSES = _coded_classes()


def test_the_tree_is_found_in_every_layer() -> None:
    layers = {cls.__module__.split(".")[0] for cls in CODED_CLASSES}
    assert layers == set(PACKAGES)
    assert len(CODED_CLASSES) > 60


@pytest.mark.parametrize("cls", CODED_CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_coded_class_states_code_text_and_http_status(cls: type[CodedError]) -> None:
    for name in ("code", "status_text", "http_status"):
        assert name in vars(CodedError) and hasattr(cls, name)
    assert isinstance(cls.code, int) and not isinstance(cls.code, bool)
    assert 0 <= cls.code <= 999
    assert isinstance(cls.status_text, str) and cls.status_text.strip() == cls.status_text != ""
    assert cls.status_text.isascii()
    assert isinstance(cls.http_status, int) and 400 <= cls.http_status <= 599
    assert cls.http_status not in (400, 500)  # a coded refusal is never "bad request" or a bug


def test_the_root_is_the_seeds_generic_error() -> None:
    exc = CodedError()
    assert (exc.code, exc.status_text, exc.http_status) == (500, "ERROR", HTTP_UNPROCESSABLE)
    assert exc.status == (500, "ERROR")
    assert exc.detail == str(exc) == "ERROR"
    assert CodedError("why").detail == "why"


@pytest.mark.parametrize(("module", "root"), sorted(LAYER_ROOTS.items()))
def test_every_layer_root_subclasses_the_one_root(module: str, root: str) -> None:
    cls = getattr(importlib.import_module(module), root)
    assert issubclass(cls, CodedError) and cls is not CodedError


def test_no_class_duplicates_another_layers_refusal() -> None:
    """The account and message refusals have one class each (store.errors): no two layer-root classes
    (other than subclasses of one another) share a class name."""
    by_name: dict[str, list[type[CodedError]]] = {}
    for cls in CODED_CLASSES:
        by_name.setdefault(cls.__name__, []).append(cls)
    for name in ("AccountNotFound", "MessageNotFound", "InsufficientBalance", "WrongCredentials",
                 "AccountNotActive", "InvalidUsername", "InvalidPassword"):
        assert [c.__module__ for c in by_name[name]] == ["store.errors"], name


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_leaf_imports_only_the_standard_library_and_itself() -> None:
    for path in Path(coded.__file__).parent.glob("*.py"):
        for root in _imported_roots(path) - {"coded", "__future__"}:
            assert root in sys.stdlib_module_names, f"{path.name} imports {root}"
