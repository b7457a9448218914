"""Which engine speaks: chosen by `TTSSettings.engine`, created once per process and reused.

Engines are registered by name with a factory taking the settings; plug-ins (piper, later) call
`register_engine`. Factories import their engine module lazily, so an optional engine that is not
installed costs nothing until it is asked for.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

from tts.base import Engine
from tts.errors import TTSError, UnknownEngine
from tts.settings import TTSSettings

log = logging.getLogger(__name__)

EngineFactory = Callable[[TTSSettings], Engine]


def _espeak(settings: TTSSettings) -> Engine:
    from tts.espeak import EspeakEngine

    return EspeakEngine(settings)


def _flite(settings: TTSSettings) -> Engine:
    from tts.flite import FliteEngine

    return FliteEngine(settings)


def _festival(settings: TTSSettings) -> Engine:
    from tts.festival import FestivalEngine

    return FestivalEngine(settings)


def _gtts(settings: TTSSettings) -> Engine:
    from tts.gtts_engine import GttsEngine

    return GttsEngine(settings)


_factories: dict[str, EngineFactory] = {
    "espeak": _espeak,
    "flite": _flite,
    "festival": _festival,
    "gtts": _gtts,
}
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make `name` selectable by `TTSSettings.engine`; replacing a name drops its created engines."""
    with _lock:
        _factories[name] = factory
        for key in [k for k in _engines if k.startswith(f"{name}|")]:
            del _engines[key]


def engine_names() -> list[str]:
    """Registered engine names, sorted."""
    with _lock:
        return sorted(_factories)


def get_engine(settings: TTSSettings) -> Engine:
    """The engine `settings.engine` names, configured by `settings`; one instance per distinct settings.

    Raises UnknownEngine for a name nobody registered, EngineUnavailable when the engine is not
    installed, InvalidTTSSetting for settings it refuses.
    """
    key = f"{settings.engine}|{settings!r}"
    with _lock:
        engine = _engines.get(key)
        if engine is not None:
            return engine
        factory = _factories.get(settings.engine)
        if factory is None:
            known = ", ".join(sorted(_factories))
            raise UnknownEngine(f"unknown TTS engine {settings.engine!r}; known engines: {known}")
        engine = factory(settings)
        _engines[key] = engine
        log.info("TTS engine %s ready", settings.engine)
        return engine


def available_engines(settings: TTSSettings | None = None) -> dict[str, bool | str]:
    """Each registered engine: True when it can be created here, else the reason it cannot.

    Online engines are not contacted: gTTS is available when its package is installed.
    """
    base = settings or TTSSettings()
    result: dict[str, bool | str] = {}
    for name in engine_names():
        try:
            get_engine(dataclasses.replace(base, engine=name))
        except TTSError as exc:
            result[name] = exc.detail
        else:
            result[name] = True
    return result


def reset() -> None:
    """Forget created engines (tests; after a fork, engines holding subprocess state are rebuilt)."""
    with _lock:
        _engines.clear()
