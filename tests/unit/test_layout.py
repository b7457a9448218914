"""The package arrows of docs/DESIGN.md ("Layout"), checked on the source: each package imports only the
packages below it, api's rooms only the rooms below them, and a module over 500 lines says why in its
docstring (a line starting "Size:")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LEAF = "coded"  # the dependency-free error root every package may import
BELOW: dict[str, set[str]] = {
    "audio": set(),
    "tts": {"audio"},
    "store": set(),
    "sms": {"store"},
    "ivr": {"tts", "audio", "store"},
    "api": {"audio", "tts", "ivr", "sms", "store"},
}
ROOMS = ["core", "fronts", "runtime", "cli"]  # each imports only the rooms before it
MAX_LINES = 500


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _room(path: Path) -> str | None:
    parts = path.relative_to(ROOT / "api").parts
    return parts[0] if len(parts) > 1 and parts[0] in ROOMS else None


@pytest.mark.parametrize("package", sorted(BELOW))
def test_packages_import_only_the_packages_below_them(package: str) -> None:
    allowed = BELOW[package] | {package, LEAF}
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(package)
        for name in _imports(path)
        if name.split(".")[0] in BELOW.keys() | {LEAF} and name.split(".")[0] not in allowed
    }
    assert not wrong, sorted(wrong)


def test_api_rooms_point_one_way() -> None:
    wrong = set()
    for path in _modules("api"):
        room = _room(path)
        if room is None:  # api/__init__.py, api/__main__.py: the entry points above every room
            continue
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] != "api" or len(parts) < 2 or parts[1] not in ROOMS:
                continue
            if ROOMS.index(parts[1]) > ROOMS.index(room):
                wrong.add(f"{path.relative_to(ROOT)} ({room}) imports {name}")
    allowed_top = {"__init__.py", "__main__.py"}
    stray = [p.name for p in (ROOT / "api").glob("*.py") if p.name not in allowed_top]
    assert not wrong and not stray, (sorted(wrong), stray)


def test_long_modules_say_why() -> None:
    unexplained = []
    for package in BELOW:
        for path in _modules(package):
            text = path.read_text(encoding="utf-8")
            if text.count("\n") > MAX_LINES:
                doc = ast.get_docstring(ast.parse(text)) or ""
                if not any(line.startswith("Size:") for line in doc.splitlines()):
                    unexplained.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
    assert not unexplained, unexplained
