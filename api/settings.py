"""All settings, from environment variables (IVRGATE_..., nested with __) and an optional TOML file.

    IVRGATE_DATA_DIR=/srv/ivrgate IVRGATE_TTS__ENGINE=flite ivrgate prompt --text 'Hello'

The TOML file is named by IVRGATE_CONFIG (or `ivrgate --config FILE`); its tables mirror the nesting:
`[tts] engine = "flite"`. Environment variables win over the file. Invalid values stop start-up with a
message naming the setting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from audio.settings import AssembleSettings, DecodeLimits, TelephonySettings
from ivr.settings import FetchSettings
from tts.settings import TTSSettings


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ivrgate"


class SettingsError(ValueError):
    """Settings that do not validate; the message names each bad setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="IVRGATE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data_dir: Path = default_data_dir()
    decode: DecodeLimits = DecodeLimits()
    telephony: TelephonySettings = TelephonySettings()
    assemble: AssembleSettings = AssembleSettings()
    tts: TTSSettings = TTSSettings()
    fetch: FetchSettings = FetchSettings()

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get("IVRGATE_CONFIG")
        if config:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config)))
        return tuple(sources)


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build the settings, or raise SettingsError with one line per invalid setting."""
    if config_file is not None:
        if not Path(config_file).is_file():
            raise SettingsError(f"config file not found: {config_file}")
        os.environ["IVRGATE_CONFIG"] = os.fspath(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        ]
        raise SettingsError("invalid settings:\n" + "\n".join(lines)) from None
