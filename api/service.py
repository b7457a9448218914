"""The one submission and query path every front calls (legacy, v1, SMTP, GUI, CLI).

A submission is authenticated (`login`, `login_api_key`), validated (phones parsed to E.164 here, texts,
options, audio decoded, URLs fetched now), then written in ONE transaction: do-not-call recipients become
finished 502 messages while the rest go on, every other recipient is priced (513 when no rate covers it)
and gets one queued message, and the whole reservation is taken at once (503 rolls everything back).
Nothing is half-written. After the commit `wake()` tells the worker that jobs are queued.

Voice messages carry what the worker needs to rebuild the prompt in `settings` (docs/DESIGN.md): audio
arrives as content-addressed blobs in the database, so a submission costs no TTS and any node can dial.

Store failures are translated where they leave the store: 504 for a failed read, 507 for a failed write
(rolled back), 508 when the database cannot be reached, is locked or timed out.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, Concatenate, Literal, ParamSpec

from argon2 import PasswordHasher
from sqlalchemy import Connection, bindparam, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from api.carrier import CarrierInfo, CarrierProvider, PhonenumbersCarrierProvider, can_take_sms
from api.credentials import CredentialCache
from api.errors import (
    AccountNotActive,
    AccountNotFound,
    DatabaseError,
    DatabaseUnavailable,
    DatabaseWriteError,
    GatewayError,
    GroupNotFound,
    InvalidParameter,
    InvalidPin,
    NoVoiceFile,
    TooManyRecipients,
    VoiceFileTooLarge,
    WrongCredentials,
)
from api.forms import check_txt, check_url
from api.group_commit import GroupCommit
from api.phones import ParsedPhones, parse_caller_id, parse_phone, parse_recipients, split_entries
from api.settings import Settings
from audio.decode import decode
from ivr.errors import IvrError
from ivr.fetch import UrlFetcher
from ivr.prompt import AudioSegment, Fetcher, PromptSpec, TextSegment, UrlSegment
from sms import gsm
from store import accounts, blobs, ledger, lists, queue, rating
from store.db import Database, retrying
from store.errors import AccountNotFound as StoreAccountNotFound
from store.errors import InvalidUsername as StoreInvalidUsername
from store.errors import LeaseLost, StoreError
from store.models import Account, Message, MessageKind, Role
from tts.base import GENDERS, LANGUAGES

log = logging.getLogger(__name__)

DO_NOT_CALL = (502, "PIN IN DO NOT CALL DATABASE")
RATE_KINDS = ("sms", "voice", "tts")
LOGIN_SNAPSHOT_TTL_S = 30.0
"""How long a read of an account row may stand in for a fresh one when the write re-checks it anyway."""
POSTGRESQL_WRITERS = 1
"""Group commits in flight at once on PostgreSQL. Two overlapped one batch's reads with another's locked
part but halved the batches and added CPU: 896 against 1,300/s in bench_api (one account), 904 against
~770 with 16 accounts before the batch-wide owner statements. One it is; the knob stays for bigger boxes."""
GROUP_COMMIT_JOBS = 64
"""Jobs written by one transaction of submit_async's group commit at most."""
GROUP_COMMIT_RECIPIENTS = 5_000
"""Recipients of one group commit at most (a job larger than this is written alone)."""
_UNREACHABLE = ("locked", "timeout", "timed out", "could not connect", "connection", "unable to open")


def utc_now() -> dt.datetime:
    """The current time, aware UTC."""
    return dt.datetime.now(dt.UTC)


class NeedsThread(Exception):
    """Raised under `inline()` before anything is written when the call would block the event loop (an
    argon2 verify, the SQLite writer lock held by a thread): the caller runs it again in the thread pool."""


_INLINE: contextvars.ContextVar[bool] = contextvars.ContextVar("ivrgate_inline", default=False)


@contextmanager
def inline() -> Iterator[None]:
    """Run Gateway calls on the event loop: slow steps raise NeedsThread instead of blocking it."""
    token = _INLINE.set(True)
    try:
        yield
    finally:
        _INLINE.reset(token)


class _LoopGuardHasher(PasswordHasher):
    """argon2 (~90 ms) never runs on the event loop: under `inline()` it raises NeedsThread."""

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        if _INLINE.get():
            raise NeedsThread("argon2 verify")
        return super().verify(hash, password)

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        if _INLINE.get():
            raise NeedsThread("argon2 hash")
        return super().hash(password, salt=salt)


class _WriteLock:
    """SQLite's one writer, queued in-process and, through an flock on `<database>.writer` when the
    database is a file, across the processes of this gateway (cheaper than sqlite3's sleeping busy
    handler, whose waits grow to tens of milliseconds); under `inline()` a held lock raises NeedsThread
    instead of blocking the event loop."""

    def __init__(self, database: str | None = None) -> None:
        self._lock = threading.Lock()
        self._path = f"{database}.writer" if database and database != ":memory:" else None
        self._fd: int | None = None

    def __enter__(self) -> None:
        blocking = not _INLINE.get()
        if not self._lock.acquire(blocking=blocking):
            raise NeedsThread("SQLite writer busy")
        if self._path is None:
            return
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.release()
            raise NeedsThread("SQLite writer busy in another process") from None
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, *_exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def close(self) -> None:
        """Close the lock file (the gateway's shutdown)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class _Snapshots:
    """Recent reads of account rows by the username typed, for logins that write_jobs() re-checks."""

    def __init__(self, ttl_s: float, capacity: int) -> None:
        self._ttl_s = ttl_s
        self._capacity = capacity
        self._rows: dict[str, tuple[Any, float]] = {}
        self._lock = threading.Lock()

    def get(self, username: str, now: float) -> Any:
        found = self._rows.get(username)
        return found[0] if found is not None and now < found[1] else None

    def put(self, username: str, row: Any, now: float) -> None:
        with self._lock:
            self._rows.pop(username, None)
            while len(self._rows) >= self._capacity:
                del self._rows[next(iter(self._rows))]  # the oldest read
            self._rows[username] = (row, now + self._ttl_s)


class MessageInProgress(GatewayError):
    """`cancel` of a message a worker is dialling or sending right now."""

    status_text = "ERROR: MESSAGE IN PROGRESS"


@dataclass(frozen=True)
class Caller:
    """Who is asking, after authentication."""

    user_id: int
    """The authenticated account row (owner or sub-user)."""
    owner_id: int
    """The paying account (== user_id for owners)."""
    username: str
    role: str
    """store.models.Role value: administrator | owner | subuser."""
    credential: str | None = field(default=None, repr=False, compare=False)
    """The stored password hash a legacy login was verified against: write_jobs() reads it again, with
    the account's flags, in the write's transaction (on SQLite under its writer lock; on PostgreSQL a
    change committed during the write itself is not seen, as before). None: an API key or a GUI
    session, checked their own way."""


@dataclass(frozen=True)
class Submitted:
    """One recipient of one submission."""

    message_id: str
    """32 hex; also for refused recipients (a 502 do-not-call is stored as its own message)."""
    phone: str
    """E.164."""
    code: int
    """100 Queued, or an error code such as 502."""
    text: str


@dataclass(frozen=True)
class _Draft:
    """What one recipient's message will be, before pricing."""

    kind: str
    body: str
    settings: dict[str, Any]
    callerid: str | None
    blob: str | None = None
    parts: int = 1


@dataclass
class Job:
    """A validated submission, ready to write: who submits, the recipients (raw list and/or group) and
    how to draft each one's message. Built by the `*_job` methods, written by `submit`, `submit_async`
    or, many at once, `write_jobs`."""

    caller: Caller
    phones: tuple[str, ...]
    group: str | None
    draft: Callable[[str], _Draft]
    callback_url: str
    audio: list[tuple[bytes, str, str]] = field(default_factory=list)
    """(bytes, media type, origin) to store as blobs in the submission's transaction."""


_P = ParamSpec("_P")


def _submitting(
    build: Callable[Concatenate[Gateway, _P], Job],
) -> Callable[Concatenate[Gateway, _P], list[Submitted]]:
    """`submit_x(...)`: `submit(x_job(...))`, the synchronous way (thread pool, CLI, SMTP, GUI)."""

    def submit(self: Gateway, /, *args: _P.args, **kwargs: _P.kwargs) -> list[Submitted]:
        return self.submit(build(self, *args, **kwargs))

    submit.__name__ = build.__name__.replace("_job", "").join(("submit_", ""))
    submit.__doc__ = f"Build the job ({build.__name__}) and write it: {build.__doc__}"
    return submit


def db_failure(exc: BaseException, writing: bool) -> GatewayError:
    """The gateway error of a driver or pool failure: 508 unreachable/locked/timed out, else 507/504."""
    if isinstance(exc, sa_exc.TimeoutError):
        return DatabaseUnavailable(f"connection pool timed out: {exc}")
    if isinstance(exc, sa_exc.DBAPIError):
        text = str(exc.orig).lower()
        if exc.connection_invalidated or (
            isinstance(exc, sa_exc.OperationalError) and any(word in text for word in _UNREACHABLE)
        ):
            return DatabaseUnavailable(f"database unavailable: {type(exc.orig).__name__}")
    kind = type(getattr(exc, "orig", None) or exc).__name__
    return DatabaseWriteError(f"write failed: {kind}") if writing else DatabaseError(f"read failed: {kind}")


@contextmanager
def _db_errors(writing: bool) -> Iterator[None]:
    try:
        yield
    except StoreError as exc:
        if type(exc) is StoreError and isinstance(exc.__cause__, sa_exc.SQLAlchemyError):
            raise db_failure(exc.__cause__, writing) from exc
        raise
    except sa_exc.SQLAlchemyError as exc:
        log.error("database error: %s", exc)
        raise db_failure(exc, writing) from exc


class Gateway:
    """The one submission and query path every front calls (legacy, v1, SMTP, GUI, CLI)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        fetcher: Fetcher | None = None,
        carrier: CarrierProvider | None = None,
        now: Callable[[], dt.datetime] = utc_now,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.credentials = CredentialCache.with_random_key(settings.credentials, hasher=_LoopGuardHasher())
        self._fetcher = fetcher
        self._carrier = carrier or PhonenumbersCarrierProvider()
        self.now = now
        self._wake = wake
        self._write_lock: AbstractContextManager[object] = (
            _WriteLock(db.url.database) if db.dialect == "sqlite" else nullcontext()
        )
        self._snapshots = _Snapshots(LOGIN_SNAPSHOT_TTL_S, settings.credentials.max_entries)
        # SQLite has one writer; PostgreSQL overlaps one batch's reads with another's locked part
        writers = 1 if db.dialect == "sqlite" else POSTGRESQL_WRITERS
        self._group_commit = GroupCommit(
            self.write_jobs, max_items=GROUP_COMMIT_JOBS, writers=writers, name="ivrgate-writer",
            weigh=lambda job: max(1, len(job.phones)), max_weight=GROUP_COMMIT_RECIPIENTS,
        )

    @property
    def runs_inline(self) -> bool:
        """Whether cheap queries may run on the event loop (under `inline()`): on SQLite a read is CPU
        work on a local file, cheaper than the thread-pool hop; PostgreSQL reads wait on the network, so
        they stay in the thread pool. (Submissions are written by the group commit's thread on both.)"""
        return self.db.dialect == "sqlite"

    # --- authentication --------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with _db_errors(writing=False), self.db.read() as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        # SQLite has one writer at a time: queueing here is cheaper than sqlite3's sleeping busy handler
        with self._write_lock, _db_errors(writing=True), self.db.transaction() as session:
            yield session

    def login(self, username: str, password: str, *, rechecked: bool = False) -> Caller:
        """The caller these legacy credentials belong to: argon2 once, then the credential cache.
        WrongCredentials (505) for an unknown user or a wrong password, AccountNotActive (506),
        AccountNotFound (404) when the account a sub-user acts for is gone.

        `rechecked`: the caller will only submit a job, and write_jobs() reads the account row again in
        its transaction before writing anything, so a recent read of the row (LOGIN_SNAPSHOT_TTL_S) may
        stand in for a fresh one; a refusal is always confirmed on a fresh read."""
        if rechecked:
            snapshot = self._snapshots.get(username, self.now().timestamp())
            if snapshot is not None:
                with contextlib.suppress(GatewayError):
                    return self._check_login(snapshot, username, password)
        if _INLINE.get() and not self.runs_inline:
            raise NeedsThread("login read")
        with self._read() as session:
            row = _login_row(session, username)
        if rechecked and row is not None:
            self._snapshots.put(username, row, self.now().timestamp())
        return self._check_login(row, username, password)

    def _check_login(self, row: Any, username: str, password: str) -> Caller:
        """login() on a read of the account row (None: no such user)."""
        stored, name = (None, username) if row is None else (row.password_hash, row.username)
        checked = None if row is None else _row_caller(row)
        ok = self.credentials.verify(name, password, lambda _name: stored, self.now().timestamp())
        if checked is None or not ok:
            raise WrongCredentials(f"login refused for {username[:60]!r}")
        if isinstance(checked, GatewayError):
            raise checked
        return checked

    def login_api_key(self, key: str) -> Caller:
        """The caller of a v1 API key (`Authorization: Bearer <key>`); 505 for an unknown or revoked key."""
        with self._write() as session:
            account = accounts.verify_api_key(session, key, self.now())
            checked = _checked_caller(account)
        if isinstance(checked, GatewayError):
            raise checked
        return checked

    # --- submissions -----------------------------------------------------------------------------------

    def sms_job(
        self,
        caller: Caller,
        *,
        phones: str | ParsedPhones | None,
        group: str | None,
        text: str,
        callerid: str | None = None,
        tts_fallback: bool = False,
        callback_url: str | None = None,
    ) -> Job:
        """An SMS per recipient, queued for the SMS sender. With `tts_fallback`, a recipient whose line
        type is fixed-line gets the text as a TTS call at once (ambiguous types are the sender's business)."""
        limits = self.settings.forms
        body = check_txt(text, limits.max_sms_chars)
        sender = parse_caller_id(callerid or "", self.settings.phones, sms=True)
        voice_callerid = sender if sender is not None and sender.startswith("+") else None
        # every part holds a character at least, so len(body) as the cap never refuses: the SMS sender
        # enforces its own max_parts; here the count prices the reservation
        parts = gsm.count_parts(body, len(body))
        sms = _Draft("sms", body, {"tts_fallback": tts_fallback}, sender, parts=parts)
        tts = _Draft("tts", body, self._tts_settings(body, "us", "female", 0, False), voice_callerid)

        def draft(phone: str) -> _Draft:
            if tts_fallback and can_take_sms(self._carrier.lookup(phone)) is False:
                return tts
            return sms

        return Job(caller, self._phones(phones, group), _group(group), draft, self._callback(callback_url))

    def tts_job(
        self,
        caller: Caller,
        *,
        phones: str | ParsedPhones | None,
        group: str | None = None,
        text: str,
        language: str = "us",
        gender: str = "female",
        repeat: int = 0,
        response: bool = False,
        callerid: str | None = None,
        callback_url: str | None = None,
    ) -> Job:
        """A text-to-speech call per recipient; the prompt is rendered by the worker at dial time."""
        body = check_txt(text, self.settings.forms.max_tts_chars)
        spec = self._tts_settings(body, language, gender, repeat, response)
        draft = _Draft("tts", body, spec, self._voice_callerid(callerid))
        return self._job(caller, phones, group, draft, callback_url)

    def voice_job(
        self,
        caller: Caller,
        *,
        phones: str | ParsedPhones | None,
        group: str | None = None,
        audio: bytes,
        filename: str = "",
        response: bool = False,
        repeat: int = 0,
        callerid: str | None = None,
        callback_url: str | None = None,
    ) -> Job:
        """A call per recipient playing uploaded audio (decoded now to refuse bad files; kept as a blob)."""

        def load(job: Job) -> tuple[str, str]:
            if not audio:
                raise NoVoiceFile("the voice file is empty")
            return filename[:200], self._upload_audio(job, audio, filename)

        return self._recording_job(caller, phones, group, repeat, response, callerid, callback_url, load)

    def voice_url_job(
        self,
        caller: Caller,
        *,
        phones: str | ParsedPhones | None,
        group: str | None = None,
        url: str,
        response: bool = False,
        repeat: int = 0,
        callerid: str | None = None,
        callback_url: str | None = None,
    ) -> Job:
        """A call per recipient playing the audio at `url`, fetched NOW (a bad URL is an immediate error)."""

        def load(job: Job) -> tuple[str, str]:
            return self._url_audio(job, url.strip())

        return self._recording_job(caller, phones, group, repeat, response, callerid, callback_url, load)

    def vtts_job(
        self,
        caller: Caller,
        *,
        phones: str | ParsedPhones | None,
        group: str | None = None,
        spec: PromptSpec,
        response: bool = False,
        repeat: int = 0,
        callerid: str | None = None,
        callback_url: str | None = None,
    ) -> Job:
        """A call per recipient playing texts and voice files in order; URL segments are fetched now."""
        options = self._voice_options(repeat, response)
        cid = self._voice_callerid(callerid)
        job = self._job(caller, phones, group, _Draft("vtts", "", {}, cid), callback_url)
        segments: list[dict[str, str]] = []
        fetched: dict[str, str] = {}
        for segment in spec.segments:
            segments.append(self._vtts_segment(segment, job, fetched))
        texts = [item["text"] for item in segments if "text" in item]
        voice = {"language": spec.voice.language, "gender": spec.voice.gender}
        settings = {"segments": segments, **voice, **options}
        job.draft = _fixed(_Draft("vtts", "\n".join(texts), settings, cid))
        return job

    submit_sms = _submitting(sms_job)
    submit_tts = _submitting(tts_job)
    submit_voice = _submitting(voice_job)
    submit_voice_url = _submitting(voice_url_job)
    submit_vtts = _submitting(vtts_job)

    # --- queries ---------------------------------------------------------------------------------------

    def status(self, caller: Caller, message_id: str) -> Message:
        """A message the caller may see; MessageNotFound (500) for unknown and foreign IDs alike."""
        with self._read() as session:
            message = queue.get_message(session, message_id.strip().lower(), self._viewer(session, caller))
            session.expunge(message)  # keep its loaded values after the read transaction ends
            return message

    def cancel(self, caller: Caller, message_id: str) -> Message:
        """Cancel a queued message: 604 Cancelled, its reservation released. MessageNotFound when it is
        unknown, foreign or finished; MessageInProgress while a worker holds it."""
        try:
            with self._write() as session:
                viewer = self._viewer(session, caller)
                return queue.cancel(session, message_id.strip().lower(), viewer, self.now())
        except LeaseLost as exc:
            raise MessageInProgress(exc.detail) from None

    def balance(self, caller: Caller) -> tuple[int, str]:
        """The paying account's balance in micro-units (open reservations deducted) and its currency."""
        with self._read() as session:
            owner = session.get(Account, caller.owner_id)
            if owner is None:
                raise AccountNotFound(f"account {caller.owner_id} is gone")
            return ledger.balance(session, owner.id), owner.currency

    def rate(self, phone: str, kind: str = "sms") -> tuple[str, int, str]:
        """(E.164, unit price in micro-units, currency) for one number: per SMS part or per call minute.
        No account needed. InvalidPin (513) for a bad number or one no rate covers."""
        e164 = self._single_phone(phone)
        if kind not in RATE_KINDS:
            raise InvalidParameter("type", f"type must be one of {', '.join(RATE_KINDS)}")
        with self._read() as session:
            price, currency = rating.price_for(session, e164, kind)
        return e164, price, currency

    def carrier(self, caller: Caller, phone: str) -> CarrierInfo:
        """Country, carrier and line type of one number (the caller is authenticated, not charged)."""
        return self._carrier.lookup(self._single_phone(phone))

    # --- helpers ---------------------------------------------------------------------------------------

    @property
    def fetcher(self) -> Fetcher:
        """The voice URL fetcher (built on first use from the fetch settings)."""
        if self._fetcher is None:
            self._fetcher = UrlFetcher(self.settings.fetch)
        return self._fetcher

    def _single_phone(self, phone: str) -> str:
        entries = split_entries(phone or "")
        if len(entries) != 1:
            raise InvalidPin("exactly one phone number is expected" if entries else "no phone number given")
        return parse_phone(entries[0], self.settings.phones)

    def _phones(self, phones: str | ParsedPhones | None, group: str | None) -> tuple[str, ...]:
        allow_empty = _group(group) is not None
        if isinstance(phones, ParsedPhones):
            if phones.settings == self.settings.phones and (phones.numbers or allow_empty):
                return phones.numbers
            phones = str(phones)
        return parse_recipients(phones or "", self.settings.phones, allow_empty=allow_empty)

    def _job(
        self,
        caller: Caller,
        phones: str | ParsedPhones | None,
        group: str | None,
        draft: _Draft,
        callback: str | None,
    ) -> Job:
        recipients = self._phones(phones, group)
        return Job(caller, recipients, _group(group), _fixed(draft), self._callback(callback))

    def _callback(self, url: str | None) -> str:
        if not url or not url.strip():
            return ""
        try:
            return check_url(url.strip(), self.settings.forms.max_url_chars)
        except IvrError as exc:  # check_url's UrlRefused speaks of voice URLs; this is the callback
            raise InvalidParameter("callback", exc.detail) from None

    def _voice_callerid(self, callerid: str | None) -> str | None:
        return parse_caller_id(callerid or "", self.settings.phones, sms=False)

    def _voice_options(self, repeat: int, response: bool) -> dict[str, Any]:
        if isinstance(repeat, bool) or not 0 <= repeat <= self.settings.forms.max_repeat:
            raise InvalidParameter("repeat", f"repeat must be 0..{self.settings.forms.max_repeat}")
        return {"repeat": repeat, "response": bool(response)}

    def _tts_settings(
        self, text: str, language: str, gender: str, repeat: int, response: bool
    ) -> dict[str, Any]:
        if language not in LANGUAGES:
            raise InvalidParameter("language", f"language must be one of {', '.join(LANGUAGES)}")
        if gender not in GENDERS:
            raise InvalidParameter("gender", f"gender must be one of {', '.join(GENDERS)}")
        options = self._voice_options(repeat, response)
        return {"text": text, "language": language, "gender": gender, **options}

    def _check_audio(self, data: bytes, name: str) -> tuple[str, str]:
        """Decode `data` to prove it is usable audio; (sha256, media type)."""
        if len(data) > self.settings.forms.max_voice_bytes:
            raise VoiceFileTooLarge(f"{name[:60]}: {len(data)} bytes")
        decoded = decode(data, self.settings.decode)
        return blobs.sha256_hex(data), f"audio/{decoded.format}"

    def _upload_audio(self, job: Job, data: bytes, name: str) -> str:
        """Check uploaded audio and add it to the job's blobs; its sha256."""
        digest, media = self._check_audio(data, name or "upload")
        job.audio.append((data, media, f"upload:{name[:200]}"))
        return digest

    def _url_audio(self, job: Job, url: str) -> tuple[str, str]:
        """Check `url`, fetch it now, check the audio and add it to the job's blobs; (the url, its sha256)."""
        url = check_url(url, self.settings.forms.max_url_chars)
        data = self.fetcher.fetch(url).data
        digest, media = self._check_audio(data, url)
        job.audio.append((data, media, url))
        return url, digest

    def _recording_job(
        self,
        caller: Caller,
        phones: str | ParsedPhones | None,
        group: str | None,
        repeat: int,
        response: bool,
        callerid: str | None,
        callback_url: str | None,
        load: Callable[[Job], tuple[str, str]],
    ) -> Job:
        """A "voice" job playing one recording. `load` runs once options and recipients are checked:
        it adds the audio to the job and returns (the message body, the blob's sha256)."""
        options = self._voice_options(repeat, response)
        cid = self._voice_callerid(callerid)
        job = self._job(caller, phones, group, _Draft("voice", "", {}, cid), callback_url)
        body, digest = load(job)
        job.draft = _fixed(_Draft("voice", body, {"blob": digest, **options}, cid, blob=digest))
        return job

    def _vtts_segment(self, segment: object, job: Job, fetched: dict[str, str]) -> dict[str, str]:
        if isinstance(segment, TextSegment):
            item = {"text": check_txt(segment.text, self.settings.forms.max_tts_chars)}
            if segment.voice is not None:
                item.update(language=segment.voice.language, gender=segment.voice.gender)
            return item
        if isinstance(segment, UrlSegment):
            if segment.url not in fetched:
                fetched[segment.url] = self._url_audio(job, segment.url)[1]
            return {"blob": fetched[segment.url]}
        if isinstance(segment, AudioSegment) and segment.data is not None:
            return {"blob": self._upload_audio(job, segment.data, segment.name)}
        raise NoVoiceFile("a vtts segment must be a text, a URL or uploaded audio")

    def _viewer(self, session: Session, caller: Caller) -> Account:
        viewer = session.get(Account, caller.user_id)
        if viewer is None:
            raise AccountNotFound(f"account {caller.user_id} is gone")
        return viewer

    def _recipients(self, session: Session, job: Job) -> list[str]:
        phones = list(job.phones)
        if job.group is not None:
            members = lists.group_phones(session, job.caller.owner_id, job.group)
            if not members:
                raise GroupNotFound(f"no group {job.group[:40]!r} with members")
            phones = list(dict.fromkeys([*phones, *members]))
        limit = self.settings.phones.max_recipients
        if len(phones) > limit:
            raise TooManyRecipients(f"{len(phones)} recipients, more than {limit}")
        return phones

    def write_jobs(self, jobs: Sequence[Job]) -> list[list[Submitted] | GatewayError | StoreError]:
        """Write `jobs` in ONE transaction (the group commit of `submit_async`), each all or nothing: an
        outcome per job, in order, its Submitted list or the refusal it raises (GroupNotFound, 503, 513,
        ...) without touching the others. The logins are re-read, recipients, do-not-call entries and
        prices read for the whole batch; then the owner rows are locked, in id order, each owner's balance
        read once and its jobs reserve from it in turn; all messages, events and ledger entries go in a
        few statements. A database failure fails them all (raised); a PostgreSQL deadlock or serialization
        failure runs the transaction again first (store.db.retrying). Wakes the worker after the commit."""
        accepted, outcomes = retrying(lambda: self._write_jobs_once(jobs))
        self._after_commit(accepted)
        return outcomes

    def _write_jobs_once(
        self, jobs: Sequence[Job]
    ) -> tuple[list[tuple[Job, queue.MessageRows]], list[list[Submitted] | GatewayError | StoreError]]:
        now = self.now()
        outcomes: list[list[Submitted] | GatewayError | StoreError | None] = [None] * len(jobs)
        recipients: list[list[str]] = [[] for _ in jobs]
        drafts: list[dict[str, _Draft]] = [{} for _ in jobs]
        accepted: list[tuple[Job, queue.MessageRows]] = []
        with self._write() as session:
            conn = session.connection()  # one Core connection for the whole path (docs/store.md)
            callers = _current_callers(conn, jobs)
            for index, job in enumerate(jobs):
                try:
                    _still_valid(job.caller, callers)
                    recipients[index] = self._recipients(session, job)
                    drafts[index] = {phone: job.draft(phone) for phone in recipients[index]}
                except (GatewayError, StoreError) as exc:
                    outcomes[index] = _refusal(exc)
                    recipients[index] = []
            blocked = self._blocked(conn, jobs, recipients)
            priced = self._prices(conn, drafts)
            # the owner locks as late as possible (with POSTGRESQL_WRITERS > 1 the reads above overlap
            # another writer's locked part); on SQLite BEGIN IMMEDIATE already serialises the writers
            owners = self._lock_owners(conn, jobs)
            batch = _Batch(conn, owners, blocked, priced, now)
            for index, job in enumerate(jobs):
                if outcomes[index] is not None:
                    continue
                try:
                    rows = self._rows(batch, job, recipients[index], drafts[index])
                except (GatewayError, StoreError) as exc:
                    outcomes[index] = _refusal(exc)
                    continue
                accepted.append((job, rows))
                outcomes[index] = _submitted(rows)
            for job, _ in accepted:
                for data, media, origin in job.audio:
                    blobs.put_blob(session, data, now, media, origin)
            session.flush()  # the blobs before the Core inserts that refer to them
            queue.insert_rows(conn, [rows for _, rows in accepted])
            purses = [owner[0] for owner in owners.values() if not isinstance(owner, StoreError)]
            ledger.write_purses(conn, purses, now)
        done = [outcome for outcome in outcomes if outcome is not None]
        assert len(done) == len(jobs), "every job has an outcome"
        return accepted, done

    def _after_commit(self, accepted: Sequence[tuple[Job, queue.MessageRows]]) -> None:
        """Log the committed jobs and wake the worker: what fails here is logged, never raised (the jobs
        are in the store and their callers must hear so)."""
        queued = 0
        for job, rows in accepted:
            done = sum(1 for m in rows.created if m.queued)
            queued += done
            log.info("job %s of %s: %d queued, %d refused", rows.job_id, job.caller.username, done,
                     len(rows.created) - done)
        if queued and self._wake is not None:
            try:
                self._wake()
            except Exception:
                log.exception("waking the worker failed; it finds the jobs at its next poll")

    def submit(self, job: Job) -> list[Submitted]:
        """Write one job in its own transaction (write_jobs); raises its refusal."""
        (outcome,) = self.write_jobs([job])
        if isinstance(outcome, list):
            return outcome
        raise outcome

    async def submit_async(self, job: Job) -> list[Submitted]:
        """`submit` from the event loop: the job joins the next group commit, written in the writer thread
        together with whatever else is waiting (one transaction and one commit for many requests)."""
        return await self._group_commit(job)

    @property
    def group_commit(self) -> GroupCommit[Job, list[Submitted]]:
        """The group commit behind submit_async (its counters feed /metrics)."""
        return self._group_commit

    def close(self) -> None:
        """Finish the group commits under way and close the writer lock's file (the app's shutdown)."""
        self._group_commit.close()
        if isinstance(self._write_lock, _WriteLock):
            self._write_lock.close()

    def _lock_owners(self, conn: Connection, jobs: Sequence[Job]) -> dict[int, _Owner | StoreError]:
        """Lock every paying account of the batch (one statement, in id order) and open its purse on a
        tally read for all of them at once: (purse, the owner's spending limit), or AccountNotFound."""
        wanted = sorted({job.caller.owner_id for job in jobs})
        limits = ledger.lock_owner_ids(conn, wanted)
        read = ledger.tallies(conn, list(limits))
        return {
            owner_id: (ledger.Purse(conn, owner_id, read[owner_id]), limits[owner_id])
            if owner_id in limits
            else StoreAccountNotFound(f"account {owner_id}")
            for owner_id in wanted
        }

    def _blocked(
        self, conn: Connection, jobs: Sequence[Job], recipients: Sequence[list[str]]
    ) -> dict[int, set[str]]:
        """Do-not-call numbers among the recipients, per paying account (one statement for the batch)."""
        owners = {job.caller.owner_id for job in jobs}
        phones = {phone for numbers in recipients for phone in numbers}
        return lists.blocked_for(conn, owners, phones)

    @staticmethod
    def _prices(
        conn: Connection, drafts: Sequence[dict[str, _Draft]]
    ) -> dict[str, dict[str, tuple[int, str] | None]]:
        """The price of every recipient, per message kind: one statement per kind for the whole batch."""
        kinds: dict[str, set[str]] = {}
        for job_drafts in drafts:
            for phone, draft in job_drafts.items():
                kinds.setdefault(draft.kind, set()).add(phone)
        return {kind: rating.lookup_prices(conn, sorted(phones), kind) for kind, phones in kinds.items()}

    def _rows(
        self, batch: _Batch, job: Job, phones: list[str], drafts: dict[str, _Draft]
    ) -> queue.MessageRows:
        """One job's message rows, its reservation held in its owner's purse (nothing held if refused)."""
        caller = job.caller
        purse, limit = _purse_of(batch.owners, job)
        if caller.user_id != caller.owner_id:
            limit = self._user_limit(batch.conn, caller)
        specs = self._specs(job, phones, drafts, batch.blocked.get(caller.owner_id, set()), batch.priced)
        rows = queue.message_rows(caller.owner_id, caller.user_id, specs, batch.now)
        purse.take(caller.user_id, limit, [(m.id, m.reserved) for m in rows.created if m.queued])
        return rows

    def _user_limit(self, conn: Connection, caller: Caller) -> int | None:
        """A sub-user's spending limit (AccountNotFound when the login is gone)."""
        query = select(_ACCOUNTS.c.spending_limit).where(_ACCOUNTS.c.id == caller.user_id)
        row = conn.execute(query).first()
        if row is None:
            raise AccountNotFound(f"account {caller.user_id} is gone")
        return None if row.spending_limit is None else int(row.spending_limit)

    def _specs(
        self,
        job: Job,
        phones: list[str],
        drafts: dict[str, _Draft],
        blocked: set[str],
        priced: dict[str, dict[str, tuple[int, str] | None]],
    ) -> list[queue.NewMessage]:
        """One message per recipient: do-not-call ones refused (502), the others priced (NoRate, 513,
        for the first recipient no rate covers)."""
        job_id = queue.new_message_id()
        specs = []
        for phone in phones:
            draft = drafts[phone]
            spec = queue.NewMessage(
                kind=draft.kind,
                phone=phone,
                job_id=job_id,
                callerid=draft.callerid or "",
                body=draft.body,
                settings=draft.settings,
                prompt_blob=draft.blob,
                parts=draft.parts,
                callback_url=job.callback_url,
            )
            if phone in blocked:
                specs.append(replace(spec, status=DO_NOT_CALL))
                continue
            price = rating.covered(priced[draft.kind], phone, draft.kind)
            reserved = self._reservation(draft, price[0])
            specs.append(replace(spec, rate=price[0], currency=price[1], reserved=reserved))
        return specs

    def _reservation(self, draft: _Draft, price: int) -> int:
        if draft.kind == MessageKind.SMS:
            return rating.sms_cost(draft.parts, price)
        max_call = self.settings.dialer.max_call_s
        return rating.call_cost(max_call, price, self.settings.store.billing_increment_s)


_Owner = tuple[ledger.Purse, int | None]
"""A locked paying account in a write: its purse and its spending limit."""


@dataclass(frozen=True)
class _Batch:
    """What write_jobs() read once for all its jobs."""

    conn: Connection
    owners: dict[int, _Owner | StoreError]
    blocked: dict[int, set[str]]
    """Do-not-call recipients per paying account."""
    priced: dict[str, dict[str, tuple[int, str] | None]]
    """Per message kind: each recipient's (unit price, currency), None when no rate covers it."""
    now: dt.datetime


def _current_callers(conn: Connection, jobs: Sequence[Job]) -> dict[int, Caller | GatewayError]:
    """What the logins of `jobs` are now, read in the write (one statement): the Caller or the refusal
    (_row_caller) of every account a legacy login verified."""
    ids = sorted({job.caller.user_id for job in jobs if job.caller.credential is not None})
    if not ids:
        return {}
    rows = conn.execute(_LOGIN_ROWS_BY_ID, {"ids": ids})
    return {row.id: _row_caller(row) for row in rows}


def _still_valid(caller: Caller, current: dict[int, Caller | GatewayError]) -> None:
    """Refuse a job whose login changed since it was verified: the password (505), the account disabled
    (506) or gone (505), its owner gone (404) or moved."""
    if caller.credential is None:
        return
    now = current.get(caller.user_id)
    if isinstance(now, GatewayError):  # a new one per job: one instance raised in many requests
        raise type(now)(now.detail)  # would gather all their tracebacks
    if now is None or now.credential != caller.credential:
        raise WrongCredentials(f"the login of {caller.username[:60]!r} changed")
    if (now.owner_id, now.role) != (caller.owner_id, caller.role):
        raise AccountNotFound(f"account {caller.user_id} changed hands")


def _submitted(rows: queue.MessageRows) -> list[Submitted]:
    return [Submitted(m.id, m.phone, m.status_code, m.status_text) for m in rows.created]


def _purse_of(owners: dict[int, _Owner | StoreError], job: Job) -> _Owner:
    """The job's locked owner, or its refusal raised (AccountNotFound: a new one per job)."""
    owner = owners[job.caller.owner_id]
    if isinstance(owner, StoreError):
        raise type(owner)(owner.detail)
    return owner


def _refusal(exc: GatewayError | StoreError) -> GatewayError | StoreError:
    """One job's refusal to report; a driver failure the store wrapped fails the whole write (raised)."""
    if type(exc) is StoreError:
        raise exc
    return exc


def _fixed(draft: _Draft) -> Callable[[str], _Draft]:
    return lambda _phone: draft


def _group(group: str | None) -> str | None:
    return group.strip() if group is not None and group.strip() else None


_ACCOUNTS = Account.metadata.tables[Account.__tablename__]
_PARENTS = _ACCOUNTS.alias("parent")
_LOGIN_SELECT = (
    select(
        _ACCOUNTS.c.id,
        _ACCOUNTS.c.username,
        _ACCOUNTS.c.password_hash,
        _ACCOUNTS.c.active,
        _ACCOUNTS.c.role,
        _ACCOUNTS.c.parent_id,
        _PARENTS.c.id.label("parent_found"),
        _PARENTS.c.active.label("parent_active"),
    )
    .select_from(_ACCOUNTS.outerjoin(_PARENTS, _PARENTS.c.id == _ACCOUNTS.c.parent_id))
)
_LOGIN_ROW = _LOGIN_SELECT.where(_ACCOUNTS.c.username == bindparam("name"))
_LOGIN_ROWS_BY_ID = _LOGIN_SELECT.where(_ACCOUNTS.c.id.in_(bindparam("ids", expanding=True)))
"""Built once: a login runs on every legacy request, and building the statement cost more than running it."""


def _login_row(session: Session, username: str) -> Any:
    """What a login needs of an account and its parent, in one statement (None: no such user)."""
    try:
        name = accounts.normalise_username(username)
    except StoreInvalidUsername:
        return None
    return session.connection().execute(_LOGIN_ROW, {"name": name}).first()


def _row_caller(row: Any) -> Caller | GatewayError:
    """_checked_caller() of a _login_row()."""
    has_parent = row.parent_id is not None and row.parent_found is not None
    if row.role == Role.SUBUSER and not has_parent:
        return AccountNotFound(f"sub-user {row.username} has no account")
    if not row.active or (has_parent and not row.parent_active):
        return AccountNotActive(row.username)
    owner = row.parent_id if row.parent_id is not None else row.id
    return Caller(row.id, owner, row.username, row.role, credential=row.password_hash)


def _checked_caller(account: Account) -> Caller | GatewayError:
    """The Caller of an account row (read inside its session), or the refusal to raise once the password
    is known to be right: AccountNotFound for an orphaned sub-user, AccountNotActive when disabled."""
    parent = account.parent if account.parent_id is not None else None
    if account.role == Role.SUBUSER and parent is None:
        return AccountNotFound(f"sub-user {account.username} has no account")
    if not account.active or (parent is not None and not parent.active):
        return AccountNotActive(account.username)
    return Caller(account.id, account.owner_id, account.username, account.role)
