"""The one submission and query path every front calls (legacy, v1, SMTP, GUI, CLI).

A submission is authenticated (`login`, `login_api_key`), validated (phones parsed to E.164 here, texts,
options, audio decoded, URLs fetched now), then written in ONE transaction: do-not-call recipients become
finished 502 messages while the rest go on, every other recipient is priced (513 when no rate covers it)
and gets one queued message, and the whole reservation is taken at once (503 rolls everything back).
Nothing is half-written. After the commit `wake()` tells the worker that jobs are queued.

Voice messages carry what the worker needs to rebuild the prompt in `settings` (docs/DESIGN.md): audio
arrives as content-addressed blobs in the database, so a submission costs no TTS and any node can dial.

Store failures are translated where they leave the store (store.db, the same rule for every front): 504 for
a failed read, 507 for a failed write (rolled back), 508 when the database cannot be reached, is locked or
timed out.

Size: the Gateway is the one submission path every front calls; its job builders (SMS, TTS, upload, URL,
vtts) share the login, recipient, pricing and audio checks, so they are methods of one class; the writing is
api.core.job_writer's.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Concatenate, Literal, ParamSpec

from argon2 import PasswordHasher
from sqlalchemy import update
from sqlalchemy.orm import Session

from api.core import idempotency, manage
from api.core.carrier import CarrierInfo, CarrierProvider, PhonenumbersCarrierProvider, can_take_sms
from api.core.checks import check_txt, check_url
from api.core.credentials import CredentialCache
from api.core.errors import (
    GatewayError,
    InvalidParameter,
    InvalidPin,
    InvalidTxt,
    NoVoiceFile,
    SmsNotConfigured,
    VoiceFileTooLarge,
)
from api.core.group_commit import GroupCommit
from api.core.job_writer import JobWriter, Outcome
from api.core.jobs import (
    ACCOUNTS,
    LOGIN_ROWS_BY_ID,
    Caller,
    Claim,
    Draft,
    Job,
    Submitted,
    fixed,
    login_row,
    row_caller,
)
from api.core.phones import ParsedPhones, parse_caller_id, parse_phone, parse_recipients, split_entries
from api.core.settings import Settings, sms_configured
from api.core.throttle import LoginThrottle
from audio.decode import decode_mono
from coded.errors import CodedError
from ivr.errors import IvrError
from ivr.fetch import UrlFetcher
from ivr.prompt import (
    AudioSegment,
    Fetcher,
    PromptSpec,
    TextSegment,
    UrlSegment,
    check_prompt_seconds,
    min_prompt_seconds,
)
from sms import gsm
from sms.errors import TooManyParts
from store import accounts, blobs, queue, rating
from store.clock import utc_now
from store.db import Database, WriterBusy
from store.errors import AccountNotFound, LeaseLost, WrongCredentials
from store.models import Account, Message
from tts.base import GENDERS, LANGUAGES

log = logging.getLogger(__name__)

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


class NeedsThread(Exception):
    """Raised under `inline()` before anything is written when the call would block the event loop (an
    argon2 verify, the SQLite writer lock held by a thread): the caller runs it again in the thread pool."""


_INLINE: contextvars.ContextVar[bool] = contextvars.ContextVar("ivrgate_inline", default=False)
_SOURCE: contextvars.ContextVar[str | None] = contextvars.ContextVar("ivrgate_source", default=None)


@contextmanager
def from_address(address: str | None) -> Iterator[None]:
    """Logins in this block come from `address` (the request's client), for the login throttle: the
    legacy routes set it once per request instead of passing it through every form handler."""
    token = _SOURCE.set(address)
    try:
        yield
    finally:
        _SOURCE.reset(token)


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

    @classmethod
    def like(cls, hasher: PasswordHasher) -> _LoopGuardHasher:
        """A guard hashing with `hasher`'s parameters."""
        return cls(time_cost=hasher.time_cost, memory_cost=hasher.memory_cost, parallelism=hasher.parallelism,
                   hash_len=hasher.hash_len, salt_len=hasher.salt_len, type=hasher.type)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        if _INLINE.get():
            raise NeedsThread("argon2 verify")
        return super().verify(hash, password)

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        if _INLINE.get():
            raise NeedsThread("argon2 hash")
        return super().hash(password, salt=salt)


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

    def drop(self, username: str) -> None:
        """Forget the read of `username` (its row changed)."""
        with self._lock:
            self._rows.pop(username, None)

    def put(self, username: str, row: Any, now: float) -> None:
        with self._lock:
            self._rows.pop(username, None)
            while len(self._rows) >= self._capacity:
                del self._rows[next(iter(self._rows))]  # the oldest read
            self._rows[username] = (row, now + self._ttl_s)


class MessageInProgress(GatewayError):
    """`cancel` of a message a worker is dialling or sending right now."""

    status_text = "ERROR: MESSAGE IN PROGRESS"
    http_status = 409


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


def sms_parts(text: str, max_parts: int, reference_bits: int = 8) -> int:
    """The SMS parts `text` takes, or InvalidTxt (511) past `max_parts` (sms.max_parts): refused at
    submission on every front by the same rule (sms.gsm.count_parts) the sender encodes with, so no text
    is accepted, and money held, for an SMS that would fail later."""
    try:
        return gsm.count_parts(text, max_parts, reference_bits)
    except TooManyParts as exc:
        raise InvalidTxt(exc.detail) from None


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
        hasher: PasswordHasher = accounts.DEFAULT_HASHER,
    ) -> None:
        """`hasher`: the argon2 parameters a login upgrades an outdated stored hash to (those new passwords
        are hashed with, store.accounts.DEFAULT_HASHER; tests seeding cheap hashes pass their own)."""
        self.settings = settings
        self.db = db
        self.credentials = CredentialCache.with_random_key(settings.credentials,
                                                           hasher=_LoopGuardHasher.like(hasher))
        self._fetcher = fetcher
        self._carrier = carrier or PhonenumbersCarrierProvider()
        self.now = now
        self._wake = wake
        self._snapshots = _Snapshots(LOGIN_SNAPSHOT_TTL_S, settings.credentials.max_entries)
        self.throttle = LoginThrottle(settings.login_throttle, self._read, self._write, now, self._io_allowed)
        # SQLite has one writer; PostgreSQL overlaps one batch's reads with another's locked part
        writers = 1 if db.dialect == "sqlite" else POSTGRESQL_WRITERS
        self._writer = JobWriter(settings, self._write, now, wake)
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
        """db.read(): its failures are already the store's coded errors (504/508)."""
        with self.db.read() as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """db.transaction() (SQLite's writer lock, failures as 507/508); under `inline()` a writer lock
        held elsewhere raises NeedsThread instead of blocking the event loop."""
        try:
            with self.db.transaction(wait=not _INLINE.get()) as session:
                yield session
        except WriterBusy as exc:
            raise NeedsThread(str(exc)) from None

    def _io_allowed(self) -> None:
        """NeedsThread when the store may not be touched here (on the event loop, PostgreSQL)."""
        if _INLINE.get() and not self.runs_inline:
            raise NeedsThread("store access")

    def login(
        self, username: str, password: str, *, rechecked: bool = False, source: str | None = None
    ) -> Caller:
        """The caller these credentials belong to: the one password login of every front (legacy, v1
        Basic, GUI, SMTP). The login throttle first (api.core.throttle: LoginThrottled, 505 with a delay,
        while the username or the source address is locked, before any argon2), then argon2 once and
        the credential cache, then the one login verdict (_login_verdict: the account's state, and a
        stored hash made with older argon2 parameters upgraded). WrongCredentials (505) for an unknown
        user or a wrong password (counted by the throttle), AccountNotActive (506), AccountNotFound (404)
        when the account a sub-user acts for is gone.

        `source`: the client's address (default: the one `from_address` set). `rechecked`: the caller
        will only submit a job, and write_jobs() reads the account row again in its transaction before
        writing anything, so a recent read of the row (LOGIN_SNAPSHOT_TTL_S) may stand in for a fresh
        one; a refusal is always confirmed on a fresh read."""
        keys = self.throttle.keys(username, source if source is not None else _SOURCE.get())
        self.throttle.check(keys)
        try:
            caller = self._verified(username, password, rechecked)
        except WrongCredentials:
            self.throttle.failed(keys)
            raise
        self.throttle.succeeded(keys)
        return caller

    def _verified(self, username: str, password: str, rechecked: bool) -> Caller:
        """login() without the throttle."""
        if rechecked:
            snapshot = self._snapshots.get(username, self.now().timestamp())
            if snapshot is not None and not self.credentials.needs_rehash(snapshot.password_hash):
                with contextlib.suppress(CodedError):
                    return self._login_verdict(snapshot, username, password, current=True)
        self._io_allowed()
        with self._read() as session:
            row = login_row(session, username)
        if rechecked and row is not None:
            self._snapshots.put(username, row, self.now().timestamp())
        return self._login_verdict(row, username, password, rechecked=rechecked)

    def _login_verdict(
        self, row: Any, username: str, password: str, *, rechecked: bool = False, current: bool = False
    ) -> Caller:
        """The one login verdict (issue 14), on a read of the account row (None: no such user): the
        password by argon2 through the credential cache (WrongCredentials), then the account's state
        (jobs.row_caller: AccountNotActive, AccountNotFound), then a stored hash made with older argon2
        parameters is replaced by one made with the current ones (`check_needs_rehash`), on a fresh read
        only (an outdated snapshot is read again first; `current`: the caller knows the hash is current,
        check_needs_rehash costs ~10-20 us)."""
        stored, name = (None, username) if row is None else (row.password_hash, row.username)
        checked = None if row is None else row_caller(row)
        ok = self.credentials.verify(name, password, lambda _name: stored, self.now().timestamp())
        if checked is None or stored is None or not ok:
            raise WrongCredentials(f"login refused for {username[:60]!r}")
        if isinstance(checked, CodedError):
            raise checked
        if not current and self.credentials.needs_rehash(stored):
            return self._rehashed(checked, stored, password, username if rechecked else None)
        return checked

    def _rehashed(self, caller: Caller, stored: str, password: str, snapshot: str | None) -> Caller:
        """Store `password` hashed with the current argon2 parameters in place of `stored` (unless the
        password changed meanwhile: then the caller keeps `stored`, which write_jobs() will find changed).
        The Caller carries the new hash (write_jobs() compares it with the row). Raises NeedsThread under
        `inline()` before anything is written."""
        self._io_allowed()
        fresh = self.credentials.hash(password)
        with self._write() as session:
            written = session.connection().execute(
                update(ACCOUNTS)
                .where(ACCOUNTS.c.id == caller.user_id, ACCOUNTS.c.password_hash == stored)
                .values(password_hash=fresh)
            ).rowcount
        if not written:
            log.info("login of %s: its password changed while its hash was upgraded", caller.username)
            return caller
        log.info("login of %s: password hash upgraded to the current argon2 parameters", caller.username)
        if snapshot is not None:
            self._snapshots.drop(snapshot)
        return replace(caller, credential=fresh)

    def login_api_key(self, key: str) -> Caller:
        """The caller of a v1 API key (`Authorization: Bearer <key>`); 505 for an unknown or revoked key,
        then the account half of the login verdict (jobs.row_caller): AccountNotActive (506) when the
        account or its owner is disabled, AccountNotFound (404) when a sub-user's owner is gone."""
        with self._write() as session:  # a refusal rolls back the key's last_used_at
            account = accounts.verify_api_key(session, key, self.now())
            row = session.connection().execute(LOGIN_ROWS_BY_ID, {"ids": [account.id]}).one()
            checked = row_caller(row)  # the account half of the one login verdict
            if isinstance(checked, CodedError):
                raise checked
        return replace(checked, credential=None)  # a key is checked its own way, not by a password

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
        parts = sms_parts(body, self.settings.sms.max_parts, self.settings.sms.concat_ref_bits)  # the price
        sms = Draft("sms", body, {"tts_fallback": tts_fallback}, sender, parts=parts)
        tts = Draft("tts", body, self._tts_settings(body, "us", "female", 0, False), voice_callerid)

        def draft(phone: str) -> Draft:
            if tts_fallback and can_take_sms(self._carrier.lookup(phone)) is False:
                return tts
            return sms

        recipients = self._phones(phones, group)
        if not sms_configured(self.settings):  # after the request's own errors: a service refusal
            raise SmsNotConfigured("no SMSC is configured (sms.system_id): the SMS could never be sent")
        return Job(caller, recipients, _group(group), draft, self._callback(callback_url))

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
        self._check_prompt_length(PromptSpec((TextSegment(body),)))
        draft = Draft("tts", body, spec, self._voice_callerid(callerid))
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
        job = self._job(caller, phones, group, Draft("vtts", "", {}, cid), callback_url)
        self._check_prompt_length(spec)  # from the texts alone, before fetching or decoding
        segments: list[dict[str, str]] = []
        fetched: dict[str, str] = {}
        for segment in spec.segments:
            segments.append(self._vtts_segment(segment, job, fetched))
        self._check_prompt_length(spec, job.audio_seconds)
        texts = [item["text"] for item in segments if "text" in item]
        voice = {"language": spec.voice.language, "gender": spec.voice.gender}
        settings = {"segments": segments, **voice, **options}
        job.draft = fixed(Draft("vtts", "\n".join(texts), settings, cid))
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
        """What the caller may still spend, in micro-units, and the currency (api.core.manage.funds: the
        owner's balance, open reservations deducted; for a sub-user with a limit, what is left of it)."""
        found = self.funds(caller)
        return found.balance, found.currency

    def funds(self, caller: Caller) -> manage.Funds:
        """api.core.manage.funds() of the caller (AccountNotFound when its account is gone)."""
        with self._read() as session:
            try:
                return manage.funds(session, caller)
            except manage.NotFound as exc:
                raise AccountNotFound(exc.detail) from None

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
        draft: Draft,
        callback: str | None,
    ) -> Job:
        recipients = self._phones(phones, group)
        return Job(caller, recipients, _group(group), fixed(draft), self._callback(callback))

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

    def _check_audio(self, job: Job, data: bytes, name: str) -> tuple[str, str]:
        """Decode `data` to prove it is usable audio, adding its length to the job's; (sha256, media type)."""
        if len(data) > self.settings.forms.max_voice_bytes:
            raise VoiceFileTooLarge(f"{name[:60]}: {len(data)} bytes")
        decoded = decode_mono(data, self.settings.decode)
        job.audio_seconds += decoded.seconds
        return blobs.sha256_hex(data), f"audio/{decoded.format}"

    def _upload_audio(self, job: Job, data: bytes, name: str) -> str:
        """Check uploaded audio and add it to the job's blobs; its sha256."""
        digest, media = self._check_audio(job, data, name or "upload")
        job.audio.append((data, media, f"upload:{name[:200]}"))
        return digest

    def _url_audio(self, job: Job, url: str) -> tuple[str, str]:
        """Check `url`, fetch it now, check the audio and add it to the job's blobs; (the url, its sha256)."""
        url = check_url(url, self.settings.forms.max_url_chars)
        data = self.fetcher.fetch(url).data
        digest, media = self._check_audio(job, data, url)
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
        job = self._job(caller, phones, group, Draft("voice", "", {}, cid), callback_url)
        body, digest = load(job)
        job.draft = fixed(Draft("voice", body, {"blob": digest, **options}, cid, blob=digest))
        return job

    def _check_prompt_length(self, spec: PromptSpec, audio_seconds: float = 0.0) -> None:
        """PromptTooLong when the texts, gaps and audio decoded so far already pass prompt.max_seconds."""
        seconds = min_prompt_seconds(spec, self.settings.assemble, self.settings.tts, audio_seconds)
        check_prompt_seconds(seconds, self.settings.prompt, estimated=True)

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

    def write_jobs(self, jobs: Sequence[Job]) -> list[Outcome]:
        """Write `jobs` in ONE transaction, each all or nothing: an outcome per job, in order
        (api.core.job_writer.JobWriter.write_jobs)."""
        return self._writer.write_jobs(jobs)

    def replay(self, caller: Caller, claim: Claim) -> idempotency.Replayed | None:
        """The answer kept for this login's idempotency key (None: not seen, or expired), read before a
        job is built so a retry costs no fetch or decode; IdempotencyConflict for another request with
        the key. The write claims the key again in its transaction (api.core.idempotency), so two retries
        racing past this read still write once."""
        self._io_allowed()
        with self._read() as session:
            return idempotency.find(session.connection(), caller.user_id, claim, self.now())

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
        """Finish the group commits under way (the app's shutdown); db.dispose() closes the lock file."""
        self._group_commit.close()

def _group(group: str | None) -> str | None:
    return group.strip() if group is not None and group.strip() else None


