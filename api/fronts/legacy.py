"""The seed's routes (docs/api-legacy.md): `matrix`, `matrix_tts`, `matrix_voice`, `matrix_voicew`,
`matrix_vtts`, `matrix_status`, `carrier`, `balance`, `sms_rate`, each also as `<route>.json`.

Every route takes GET query strings and POST forms (urlencoded or multipart); `matrix_vtts` takes a JSON
body (or, from a form, repeated `msg` fields). The fields are checked in the documented order: the body,
then username and password, then the credentials themselves, then the rest of the form, so a legacy
client sees the same single code the hosted gateway gave. Refusals are raised as the gateway's errors and
rendered by the app's one exception handler (api.fronts.app); success bodies come from
api.fronts.legacy_format.

A submission route builds a Job (form, login, recipients, audio) and the gateway's group commit writes
it with the other submissions of the moment (docs/api-legacy.md, "Throughput"). For the routes in
INLINE_ROUTES (no audio decoding, no fetching) the job is built on the event loop under
`api.core.service.inline()`, and on SQLite their queries run there too; the rest runs in the thread pool. A
step that would block the loop (an argon2 verify on a credential cache miss, a PostgreSQL login read)
raises NeedsThread before anything is written, and the step runs again in the thread pool.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from api.core.checks import FormLimits
from api.core.errors import ParseError, VoiceFileTooLarge
from api.core.idempotency import Replayed, check_key, request_hash
from api.core.jobs import Caller, Claim, Job, Submitted
from api.core.phones import ParsedPhones
from api.core.service import Gateway, NeedsThread, from_address, inline
from api.fronts import legacy_format as fmt
from api.fronts.forms import (
    AccountForm,
    CarrierForm,
    LegacyForm,
    MatrixForm,
    MatrixStatusForm,
    MatrixTtsForm,
    MatrixVoiceForm,
    MatrixVoicewForm,
    MatrixVttsForm,
    SmsRateForm,
    Upload,
    parse_form,
)
from coded.statuses import QUEUED
from store.errors import WrongCredentials
from store.models import MICROS

log = logging.getLogger(__name__)

ROUTES = (
    "matrix",
    "matrix_tts",
    "matrix_voice",
    "matrix_voicew",
    "matrix_vtts",
    "matrix_status",
    "carrier",
    "balance",
    "sms_rate",
)
"""The seed's routes, each served at /<name> and /<name>.json."""
PATHS = frozenset(path for name in ROUTES for path in (f"/{name}", f"/{name}.json"))
UPLOAD_ROUTES = frozenset({"matrix_voice"})
INLINE_ROUTES = frozenset({"matrix", "matrix_tts", "matrix_status", "balance", "sms_rate", "carrier"})
"""Routes without audio decoding or fetching: their jobs are built on the event loop (a PostgreSQL login
read moves to the thread pool), and on SQLite their queries run there too."""
MAX_FIELDS = 200
"""Form fields read from one request (a legacy form has a dozen)."""
JSON_SUFFIX = ".json"
IDEMPOTENCY_FIELD = "idempotency_key"
"""Our own optional field of the submission routes: a retry with the same key (per login) gets the first
answer and writes nothing (api.core.idempotency; docs/api-legacy.md, "Retries")."""

Inputs = dict[str, Any]
Handler = Callable[[Gateway, Inputs, bool], str]
JobBuilder = Callable[[Gateway, Inputs], Job]

router = APIRouter()


# --- reading requests ----------------------------------------------------------------------------------


def _merge(target: Inputs, key: str, value: Any) -> None:
    """Add one field; a repeated `phone` or `msg` becomes a list, any other repeat keeps the last value."""
    if key in target and key in ("phone", "msg"):
        previous = target[key]
        target[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
    elif key == "msg":
        target[key] = [value]
    else:
        target[key] = value


def parse_urlencoded(body: bytes) -> list[tuple[str, str]]:
    """The fields of an application/x-www-form-urlencoded body, read exactly as Starlette's form parser
    reads them (split on `&`, empty chunks skipped, a chunk without `=` is a name with an empty value,
    `+` and %-escapes decoded as UTF-8), without its per-byte callbacks. HTTP 400 past MAX_FIELDS, as
    Starlette answers."""
    fields: list[tuple[str, str]] = []
    for chunk in body.split(b"&"):
        if not chunk:
            continue
        if len(fields) >= MAX_FIELDS:
            raise HTTPException(400, f"Too many fields. Maximum number of fields is {MAX_FIELDS}.")
        name, _, value = chunk.partition(b"=")
        fields.append((unquote_plus(name.decode("latin-1")), unquote_plus(value.decode("latin-1"))))
    return fields


async def read_inputs(request: Request, limits: FormLimits) -> Inputs:
    """The query string and the form of `request` as one mapping (the form wins); file parts as Upload."""
    inputs: Inputs = {}
    for key, query_value in request.query_params.multi_items():
        _merge(inputs, key, query_value)
    content_type = request.headers.get("content-type", "").lower()
    if request.method != "POST":
        return inputs
    form_values: Inputs = {}
    if content_type.startswith("application/x-www-form-urlencoded"):
        for key, text in parse_urlencoded(await request.body()):
            _merge(form_values, key, text)
        inputs.update(form_values)
        return inputs
    if not content_type.startswith("multipart/form-data"):
        return inputs
    async with request.form(max_files=4, max_fields=MAX_FIELDS) as form:
        for key, value in form.multi_items():
            item: str | Upload = value if isinstance(value, str) else await _read_upload(value, limits)
            _merge(form_values, key, item)
    inputs.update(form_values)
    return inputs


async def _read_upload(upload: UploadFile, limits: FormLimits) -> Upload:
    max_bytes = limits.max_voice_bytes
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise VoiceFileTooLarge(f"{upload.filename!r}: more than {max_bytes} bytes")
    return Upload(upload.filename or "", data, upload.content_type or "")


async def read_json_object(request: Request) -> Inputs:
    """The body as a JSON object; ParseError (520) for anything else."""
    body = await request.body()
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ParseError("body must be a JSON object")
    return document


def _is_json_body(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").lower()
    return request.method == "POST" and not content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    )


# --- answers -------------------------------------------------------------------------------------------


def _stamp(gateway: Gateway) -> int:
    return int(gateway.now().timestamp())


def _submission(gateway: Gateway, submitted: list[Submitted], as_json: bool) -> str:
    """Queued recipients answer 200 OK (the seed's success); refused ones their own code and text."""
    results = [
        fmt.ok_result(s.message_id, s.phone)
        if s.code == QUEUED[0]
        else fmt.RecipientResult(s.message_id, s.phone, s.code, s.text)
        for s in submitted
    ]
    return fmt.render_submission(results, _stamp(gateway), as_json=as_json)


def _login(gateway: Gateway, data: Inputs) -> Caller:
    account = parse_form(AccountForm, data, gateway.settings.forms)
    return gateway.login(account.username, account.password)


def _replayed(gateway: Gateway, name: str, data: Inputs, key: object) -> tuple[Claim, Replayed | None]:
    """The claim of a keyed submission and the answer kept for it, if any: the credentials first (510,
    512, 505/506/404 keep answering before the key's own 422 or 500 IDEMPOTENCY KEY REUSED), then the key."""
    caller = _login(gateway, data)
    claim = Claim(check_key(key if isinstance(key, str) else str(key)), request_hash(name, data))
    return claim, gateway.replay(caller, claim)


def _parse(gateway: Gateway, form: type[LegacyForm], data: Mapping[str, Any]) -> Any:
    return parse_form(form, data, gateway.settings.forms)


_Form = TypeVar("_Form", bound=AccountForm)
_Out = TypeVar("_Out")


def _login_and_parse(
    gateway: Gateway, form: type[_Form], data: Inputs, *, rechecked: bool = False
) -> tuple[Caller, _Form]:
    """The caller and the whole form, parsed once. When the form is refused, the credentials are
    checked first all the same, so the answer keeps the documented precedence (510, 512, then 505/506/
    404, then the form's own error). `rechecked`: a submission, whose write checks the login again
    (Gateway.login)."""
    try:
        parsed = parse_form(form, data, gateway.settings.forms)
    except Exception:  # whatever the form's failure, a credentials failure answers first
        _login(gateway, data)
        raise
    return gateway.login(parsed.username, parsed.password, rechecked=rechecked), parsed


def _recipients(gateway: Gateway, phones: tuple[str, ...]) -> ParsedPhones:
    return ParsedPhones(phones, gateway.settings.forms.phones)


# --- the routes' work (inline or in the thread pool) --------------------------------------------------


def matrix_job(gateway: Gateway, data: Inputs) -> Job:
    """matrix: an SMS to `phone` and/or `group`; `tts=1` falls back to a TTS call for fixed lines."""
    caller, form = _login_and_parse(gateway, MatrixForm, data, rechecked=True)
    return gateway.sms_job(
        caller,
        phones=_recipients(gateway, form.phones),
        group=form.group,
        text=form.txt,
        callerid=form.callerid,
        tts_fallback=form.tts,
    )


def matrix_tts_job(gateway: Gateway, data: Inputs) -> Job:
    """matrix_tts: a text-to-speech call."""
    caller, form = _login_and_parse(gateway, MatrixTtsForm, data, rechecked=True)
    return gateway.tts_job(
        caller,
        phones=_recipients(gateway, form.phones),
        text=form.txt,
        language=form.language,
        gender=form.gender,
        repeat=form.repeat,
        response=form.response,
        callerid=form.callerid,
    )


def matrix_voice_job(gateway: Gateway, data: Inputs) -> Job:
    """matrix_voice: a call playing the uploaded `voicefile`."""
    caller, form = _login_and_parse(gateway, MatrixVoiceForm, data, rechecked=True)
    return gateway.voice_job(
        caller,
        phones=_recipients(gateway, form.phones),
        audio=form.voicefile.data,
        filename=form.voicefile.filename,
        response=form.response,
        repeat=form.repeat,
        callerid=form.callerid,
    )


def matrix_voicew_job(gateway: Gateway, data: Inputs) -> Job:
    """matrix_voicew: a call playing the file at `voiceurl`, fetched now."""
    caller, form = _login_and_parse(gateway, MatrixVoicewForm, data, rechecked=True)
    return gateway.voice_url_job(
        caller,
        phones=_recipients(gateway, form.phones),
        url=form.voiceurl,
        response=form.response,
        repeat=form.repeat,
        callerid=form.callerid,
    )


def matrix_vtts_job(gateway: Gateway, data: Inputs) -> Job:
    """matrix_vtts: voice files and TTS texts of `msg` in one call."""
    caller, form = _login_and_parse(gateway, MatrixVttsForm, data, rechecked=True)
    return gateway.vtts_job(
        caller,
        phones=_recipients(gateway, form.phones),
        spec=form.prompt_spec(),
        response=form.response,
        repeat=form.repeat,
        callerid=form.callerid,
    )


def do_matrix_status(gateway: Gateway, data: Inputs, as_json: bool) -> str:
    """matrix_status: the status of message `id` (500 ERROR: MESSAGE NOT FOUND for unknown or foreign)."""
    caller, form = _login_and_parse(gateway, MatrixStatusForm, data)
    message = gateway.status(caller, form.id)
    stamp = int(message.updated_at.timestamp())
    code, text = message.status_code, message.status_text
    return fmt.render_status(message.id, code, text, message.response, stamp, as_json=as_json)


def do_balance(gateway: Gateway, data: Inputs, as_json: bool) -> str:
    """balance: the paying account's balance, rounded down to cents."""
    caller = _login(gateway, data)
    micros, currency = gateway.balance(caller)
    return fmt.render_balance(Decimal(micros) / MICROS, currency, as_json=as_json)


def do_sms_rate(gateway: Gateway, data: Inputs, as_json: bool) -> str:
    """sms_rate: the price to one number, per message (sms) or per minute (voice, tts); no account."""
    form: SmsRateForm = _parse(gateway, SmsRateForm, data)
    phone, price, currency = gateway.rate(form.phone, form.type)
    return fmt.render_rate(phone, form.type, Decimal(price) / MICROS, currency, as_json=as_json)


def do_carrier(gateway: Gateway, data: Inputs, as_json: bool) -> str:
    """carrier: country, original carrier and line type of one number."""
    caller, form = _login_and_parse(gateway, CarrierForm, data)
    return fmt.render_carrier(gateway.carrier(caller, form.phone), as_json=as_json)


JOBS: dict[str, JobBuilder] = {
    "matrix": matrix_job,
    "matrix_tts": matrix_tts_job,
    "matrix_voice": matrix_voice_job,
    "matrix_voicew": matrix_voicew_job,
    "matrix_vtts": matrix_vtts_job,
}
"""The submission routes: each builds a Job (login, form, recipients, audio) that the group commit writes."""
HANDLERS: dict[str, Handler] = {
    "matrix_status": do_matrix_status,
    "carrier": do_carrier,
    "balance": do_balance,
    "sms_rate": do_sms_rate,
}


def wants_json(path: str) -> bool:
    """Whether a legacy path asks for the JSON variant (`/matrix_tts.json`)."""
    return path.rstrip("/").endswith(JSON_SUFFIX)


async def _call(work: Callable[..., _Out], gateway: Gateway, inline_ok: bool, *args: Any) -> _Out:
    """`work(gateway, *args)` on the event loop when `inline_ok`, else (or when it would block there:
    NeedsThread) in the thread pool."""
    if inline_ok:
        try:
            with inline():
                return work(gateway, *args)
        except NeedsThread as exc:
            log.debug("%s moves to the thread pool: %s", getattr(work, "__name__", work), exc)
    return await run_in_threadpool(work, gateway, *args)


async def _run(name: str, gateway: Gateway, data: Inputs, as_json: bool) -> str:
    """The route's answer. A submission's job is built (on the event loop for the INLINE_ROUTES: a
    login seen lately and a form, no database; else in the thread pool) and then written by the
    gateway's group commit, together with the other submissions of the moment. A query runs on the
    event loop on SQLite for the INLINE_ROUTES, in the thread pool otherwise."""
    build = JOBS.get(name)
    query_inline = name in INLINE_ROUTES and gateway.runs_inline
    if build is None:
        return await _call(HANDLERS[name], gateway, query_inline, data, as_json)
    key = data.pop(IDEMPOTENCY_FIELD, None)
    claim = None
    if key is not None:  # a retry answers from the kept answer before its job is built: no fetch, no decode
        claim, replayed = await _call(_replayed, gateway, query_inline, name, data, key)
        if replayed is not None:
            return _submission(gateway, replayed, as_json)
    try:
        job = await _call(build, gateway, name in INLINE_ROUTES, data)
        job.idempotency = claim
    except WrongCredentials:
        raise  # already the answer of a fresh read (and counted once by the login throttle)
    except Exception:
        # the job was built on a recent read of the login (Gateway.login, rechecked): before its own
        # refusal, the credentials on a fresh read, so 505/506/404 still answer first
        await _call(_login, gateway, query_inline, data)
        raise
    return _submission(gateway, await gateway.submit_async(job), as_json)


async def answer(request: Request, gateway: Gateway) -> Response:
    """The answer of a legacy route (`request.url.path` names it): the inputs read, the work done, the
    body rendered as text or JSON. Refusals are raised (api.fronts.app renders them)."""
    path = request.url.path
    name = path.strip("/").removesuffix(JSON_SUFFIX)
    as_json = wants_json(path)
    if name == "matrix_vtts" and _is_json_body(request):
        data = await read_json_object(request)
    else:
        data = await read_inputs(request, gateway.settings.forms)
    with from_address(request.client.host if request.client is not None else None):
        body = await _run(name, gateway, data, as_json)
    return Response(body, media_type=fmt.JSON_MEDIA_TYPE if as_json else fmt.TEXT_MEDIA_TYPE)


def _endpoint(name: str) -> Callable[[Request], Any]:
    work = JOBS.get(name) or HANDLERS[name]

    async def endpoint(request: Request) -> Response:
        return await answer(request, request.app.state.gateway)

    endpoint.__name__ = f"legacy_{name}"
    endpoint.__doc__ = work.__doc__
    return endpoint


for _name in ROUTES:
    for _path in (f"/{_name}", f"/{_name}{JSON_SUFFIX}"):
        # a plain Starlette route: the endpoint reads the request itself, so FastAPI's dependency
        # resolution and its per-request wrapping would be pure overhead on the submission path
        router.add_route(
            _path, _endpoint(_name), methods=["GET", "POST"], include_in_schema=False, name=_path[1:]
        )
