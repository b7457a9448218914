"""All settings, from environment variables (IVRGATE_..., nested with __) and an optional TOML file.

    IVRGATE_DATA_DIR=/srv/ivrgate IVRGATE_TTS__ENGINE=flite ivrgate prompt --text 'Hello'

The TOML file is named by IVRGATE_CONFIG (or `ivrgate --config FILE`); its tables mirror the nesting:
`[tts] engine = "flite"`. Environment variables win over the file. Invalid values stop start-up with a
message naming the setting.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from api.core.checks import FormLimits
from api.core.credentials import CacheSettings
from api.core.idempotency import IdempotencySettings
from api.core.phones import PhoneSettings, is_sender
from api.core.signing import CallbackSettings
from api.core.throttle import ThrottleSettings
from audio.settings import AssembleSettings, DecodeLimits, TelephonySettings
from ivr.settings import DialerSettings, FetchSettings, PromptSettings, SipSettings
from sms import keywords
from sms.smpp import SmppSettings
from store.settings import StoreSettings
from tts.settings import TTSSettings


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ivrgate"


@dataclass(frozen=True)
class WorkerSettings:
    """The voice worker of `ivrgate serve` (api/runtime/worker.py): how it polls, heartbeats and stops."""

    enabled: bool = True
    """Run the voice worker (and the SIP engine pool) inside `ivrgate serve`; False: an API-only node."""
    worker_id: str = ""
    """Names this worker's leases; empty: `<host>:<pid>`. Must differ between live workers."""
    poll_interval_s: float = 2.0
    """How often the store is polled for due messages when no submission woke the worker."""
    heartbeat_s: float = 0.0
    """How often held leases are extended; 0: a third of store.lease_s."""
    cancel_in_flight: bool = False
    """At shutdown, cancel calls in progress (unanswered ones return to the queue) rather than finish them."""
    shutdown_timeout_s: float = 30.0
    """Longest a shutdown waits for calls in progress before cancelling them."""

    def __post_init__(self) -> None:
        if self.poll_interval_s <= 0 or self.heartbeat_s < 0 or self.shutdown_timeout_s < 0:
            raise ValueError("poll_interval_s must be > 0; heartbeat_s and shutdown_timeout_s >= 0")


MAX_HTTP_PROCESSES = 64


@dataclass(frozen=True)
class ServerSettings:
    """The HTTP server of `ivrgate serve` and the process's logs."""

    host: str = "127.0.0.1"
    port: int = 8080
    certfile: str = ""
    """PEM certificate (chain); with keyfile set, the server speaks HTTPS only."""
    keyfile: str = ""
    log_format: str = "text"
    """text (human-readable lines) | json (one JSON object a line, for log collectors)."""
    log_level: str = "INFO"
    access_log: bool = False
    """Log every HTTP request (uvicorn's access log)."""
    http_processes: int = 1
    """Processes answering HTTP on the one listening socket: the first also runs the voice worker, SMTP
    and SMPP, the others only the API (one Python process tops out near 2,000 submissions/s here)."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, not {self.port}")
        if not 1 <= self.http_processes <= MAX_HTTP_PROCESSES:
            raise ValueError(f"http_processes must be 1..{MAX_HTTP_PROCESSES}, not {self.http_processes}")
        if bool(self.certfile) != bool(self.keyfile):
            raise ValueError("HTTPS needs both certfile and keyfile")
        if self.log_format not in ("text", "json"):
            raise ValueError(f"log_format must be text or json, not {self.log_format!r}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"log_level must be a logging level name, not {self.log_level!r}")


@dataclass(frozen=True)
class SmtpSettings:
    """The SMTP gateway of `ivrgate serve` (api/fronts/smtp.py, docs/smtp.md): mail to `address` becomes a
    job."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 2525
    """0: any free port (tests)."""
    address: str = "gateway@localhost"
    """The gateway's mailbox: RCPT TO must be this address (compared case-insensitively)."""
    max_bytes: int = 1024 * 1024
    """Largest mail accepted (advertised as SIZE; more is answered 552)."""
    certfile: str = ""
    """PEM certificate (chain); with keyfile set, STARTTLS is offered."""
    keyfile: str = ""
    require_starttls: bool = False
    """Refuse mail until the client has switched to TLS (needs certfile and keyfile)."""
    hostname: str = ""
    """Name in the greeting and EHLO reply; empty: the machine's FQDN."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, not {self.port}")
        if bool(self.certfile) != bool(self.keyfile):
            raise ValueError("STARTTLS needs both certfile and keyfile")
        if self.require_starttls and not self.certfile:
            raise ValueError("require_starttls needs certfile and keyfile")
        if self.max_bytes < 1024:
            raise ValueError(f"max_bytes must be at least 1024, not {self.max_bytes}")
        local, _, domain = self.address.partition("@")
        if not local or not domain or any(ch.isspace() or ch in "<>" for ch in self.address):
            raise ValueError(f"address must be a mailbox like gateway@example.com, not {self.address!r}")


@dataclass(frozen=True)
class SmsSettings:
    """The SMS side of `ivrgate serve` and `ivrgate worker` (api/runtime/sms_node.py, docs/sms.md): the
    sender's
    leases and the answers to incoming keywords. It runs when `sms.system_id` (the SMPP bind) is set."""

    enabled: bool = True
    """Run the SMS node in this process (when `sms.system_id` is set); false: this process only accepts
    SMS (an API-only node), another one sends them."""
    worker_id: str = ""
    """Names the sender's leases; empty: `<host>:<pid>:sms`. Must differ between live senders."""
    lease_s: float = 60.0
    """How long a claimed SMS stays this sender's while its parts are with the SMSC (heartbeated)."""
    batch: int = 64
    max_in_flight: int = 512
    poll_interval_s: float = 1.0
    default_source: str = ""
    """Source address of SMS submitted without a caller ID: an E.164 number (`+12505550100`), a short code
    (3-8 digits) or an alphanumeric sender (1-11 characters, a letter among them); empty: the SMSC's own
    default (sent as an unknown address, TON 0/NPI 0, never as an empty alphanumeric one)."""
    receipt_grace_s: float = 60.0
    """How long a receipt for an SMSC ID not (yet) in the store is retried."""
    receipt_timeout_s: float = 48 * 3600.0
    """An SMS the SMSC accepted and whose final receipt has not come this long after ends 210 `Sent, no
    receipt` (charged, like every accepted SMS); a later receipt still raises it (docs/sms.md)."""
    shutdown_timeout_s: float = 10.0
    orgserver: str = ""
    """The incoming-SMS webhook's `orgserver`; empty: this machine's host name."""
    brand: str = ""
    """The program's name in keyword answers (`{brand}`); empty: `orgserver` (else the host name)."""
    help_contact: str = ""
    """Where to get help (`{contact}`: a phone number, an e-mail address or a web page); empty: the
    sentence naming it is left out of the HELP answer."""
    help_text: str = keywords.DEFAULT_HELP
    """The SMS answering HELP (a template: {brand}, {contact}); empty: HELP is only forwarded."""
    stop_reply: str = keywords.DEFAULT_STOP
    """The confirmation answering STOP (after the sender is put on do-not-call); empty: none."""
    start_reply: str = keywords.DEFAULT_START
    """The confirmation answering START (after the sender is taken off do-not-call); empty: none."""

    def __post_init__(self) -> None:
        if self.lease_s <= 0 or self.poll_interval_s <= 0 or self.batch < 1 or self.max_in_flight < 1:
            raise ValueError("lease_s and poll_interval_s must be > 0, batch and max_in_flight >= 1")
        if self.receipt_timeout_s <= 0:
            raise ValueError(f"receipt_timeout_s must be > 0, not {self.receipt_timeout_s}")
        if self.default_source and not is_sender(self.default_source):
            raise ValueError(f"default_source {self.default_source!r} is not an E.164 number, a short code "
                             "(3-8 digits) or an alphanumeric sender (1-11 letters, digits, space, .&_-)")
        for name in ("help_text", "stop_reply", "start_reply"):
            try:
                keywords.placeholders(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None

    def replies(self, host: str) -> keywords.Replies:
        """The keyword answers, for a node whose host name is `host` (the brand's last fallback)."""
        return keywords.Replies.from_templates(
            brand=self.brand.strip() or self.orgserver.strip() or host, contact=self.help_contact,
            help=self.help_text, stop=self.stop_reply, start=self.start_reply)


def sms_configured(settings: Settings) -> bool:
    """Whether the deployment sends SMS: an SMSC bind is configured (`sms.system_id`). Every process of
    the deployment reads the same settings, so an API-only process (`serve --http-processes`, a
    `serve` with `sms_service.enabled = false` beside a worker that sends) accepts SMS exactly when the
    process that sends them is configured to; without it SMS submissions are refused (SmsNotConfigured)
    instead of queued for an SMSC that does not exist."""
    return bool(settings.sms.system_id)


def runs_sms_node(settings: Settings) -> bool:
    """Whether this process runs the SMS node (the ESME, the sender, incoming SMS): SMS is configured
    and `sms_service.enabled` (false on API-only processes)."""
    return sms_configured(settings) and settings.sms_service.enabled


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
    prompt: PromptSettings = PromptSettings()
    fetch: FetchSettings = FetchSettings()
    sip: SipSettings = SipSettings()
    dialer: DialerSettings = DialerSettings()
    phones: PhoneSettings = PhoneSettings()
    forms: FormLimits = FormLimits()
    credentials: CacheSettings = CacheSettings()
    login_throttle: ThrottleSettings = ThrottleSettings()
    idempotency: IdempotencySettings = IdempotencySettings()
    callbacks: CallbackSettings = CallbackSettings()
    store: StoreSettings = StoreSettings()
    """The database: IVRGATE_DATABASE_URL (read by store.db.resolve_url) or IVRGATE_STORE__DATABASE_URL."""
    worker: WorkerSettings = WorkerSettings()
    server: ServerSettings = ServerSettings()
    smtp: SmtpSettings = SmtpSettings()
    sms: SmppSettings = SmppSettings()
    """The SMSC (IVRGATE_SMS__HOST, IVRGATE_SMS__SYSTEM_ID, ...); SMS are sent only when system_id is set."""
    sms_service: SmsSettings = SmsSettings()

    @model_validator(mode="before")
    @classmethod
    def _decode_nested_collections(cls, data: Any) -> Any:
        """Environment variables for tuple/dict fields of the nested dataclasses arrive as strings:
        read them as JSON, or tuples as comma-separated lists (IVRGATE_SIP__CODECS=PCMA/8000,PCMU/8000)."""
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            section = data.get(name)
            if isinstance(section, dict) and dataclasses.is_dataclass(field.annotation):
                data[name] = _decode_section(field.annotation, section)
        return data

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


def _decode_section(kind: Any, section: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(kind)
    out = dict(section)
    for key, value in section.items():
        origin = typing.get_origin(hints.get(key))
        if not isinstance(value, str) or origin not in (tuple, dict):
            continue
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            if origin is tuple:
                out[key] = tuple(item.strip() for item in value.split(",") if item.strip())
    return out


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
