"""Operations endpoints: GET /healthz (is this node fit to serve?) and GET /metrics (Prometheus text).

    curl -s http://127.0.0.1:8080/healthz     # {"status": "ok", "database": "ok", "engines": {...},
                                              #  "sms": {"configured": true, "binds": [...], ...}}
    curl -s http://127.0.0.1:8080/metrics     # ivrgate_queue_depth 3.0 ...

The endpoints read what they report from an `OpsContext` kept in `app.state.ops` (set by `attach`):
the database, on a node that places calls the engine pool and the voice worker, and on a node that
runs the SMS node its ESME (each bind's state, the window in use, throttling). Every metric
lives in the context's own `CollectorRegistry`, never in prometheus-client's global one, so several
apps (tests, a second node in one process) never collide. Gauges that describe the present (queue
depth, calls in progress, engines up) are read when scraped; counters and histograms are fed by the
worker as calls end.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from sms.smpp import BIND_STATES, EsmeHealth
from store.clock import utc_now
from store.db import Database
from store.errors import StoreError
from store.queue import awaiting_receipts, queue_depth

log = logging.getLogger(__name__)

DURATION_BUCKETS = (5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
"""Seconds an answered call lasted, from answer to hang-up."""
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
"""Seconds from a voice message's submission to the start of its first call attempt."""


class EngineStatus(Protocol):
    """What /healthz and /metrics read of ivr.pool.EnginePool."""

    @property
    def pids(self) -> list[int | None]: ...


class BatchStatus(Protocol):
    """api.core.group_commit.GroupCommit, as /metrics sees it."""

    @property
    def batches(self) -> int: ...
    @property
    def items(self) -> int: ...


class WorkerStatus(Protocol):
    """What /metrics reads of api.runtime.worker.VoiceWorker."""

    @property
    def in_flight(self) -> int: ...


class SmsStatus(Protocol):
    """What /healthz and /metrics read of sms.smpp.Esme."""

    def health(self) -> EsmeHealth: ...


class Metrics:
    """The counters and histograms the voice worker feeds, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.outcomes = Counter(
            "ivrgate_call_outcomes", "Finished voice messages by status code.", ["code"],
            registry=self.registry)
        self.attempts = Counter(
            "ivrgate_call_attempts", "Call attempts placed (retries included).", registry=self.registry)
        self.retries = Counter(
            "ivrgate_call_retries", "Busy or unanswered attempts given back to the queue for a retry.",
            registry=self.registry)
        self.call_duration = Histogram(
            "ivrgate_call_duration_seconds", "Answered calls: seconds from answer to hang-up.",
            buckets=DURATION_BUCKETS, registry=self.registry)
        self.submission_latency = Histogram(
            "ivrgate_submission_latency_seconds",
            "Seconds from a voice message's submission to its first dial.",
            buckets=LATENCY_BUCKETS, registry=self.registry)

    def outcome(self, code: int) -> None:
        self.outcomes.labels(code=str(code)).inc()

    def render(self) -> bytes:
        """The registry in Prometheus text exposition format."""
        return bytes(generate_latest(self.registry))


@dataclass
class OpsContext:
    """What the operations endpoints report on; `pool` and `worker` are None on an API-only node."""

    db: Database
    metrics: Metrics = field(default_factory=Metrics)
    pool: EngineStatus | None = None
    worker: WorkerStatus | None = None
    now: Callable[[], dt.datetime] = utc_now
    submissions: BatchStatus | None = None
    """The gateway's group commit of submissions (api.core.service.Gateway.group_commit)."""
    sms_configured: bool = False
    """The deployment has an SMSC (api.core.settings.sms_configured), whether or not this process binds."""
    sms: SmsStatus | None = None
    """This process's ESME, while its SMS node runs."""

    def __post_init__(self) -> None:
        self.metrics.registry.register(_LiveCollector(self))


class _LiveCollector(Collector):
    """Gauges read at scrape time: queue depth, calls in progress, engine processes."""

    def __init__(self, context: OpsContext) -> None:
        self._context = context

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        depth = _queue_depth(self._context)
        if depth is not None:
            yield GaugeMetricFamily("ivrgate_queue_depth", "Unfinished messages due now and not leased.",
                                    value=depth)
        batches = self._context.submissions
        if batches is not None:
            yield CounterMetricFamily("ivrgate_submission_writes", "Transactions of the submissions' group "
                                      "commit (jobs / writes: the mean batch size).", value=batches.batches)
            yield CounterMetricFamily("ivrgate_submission_jobs", "Submissions written by the group commit.",
                                      value=batches.items)
        worker = self._context.worker
        if worker is not None:
            yield GaugeMetricFamily("ivrgate_calls_in_progress", "Voice messages this node is working on.",
                                    value=worker.in_flight)
        pool = self._context.pool
        if pool is not None:
            pids = pool.pids
            yield GaugeMetricFamily("ivrgate_engine_processes_up", "SIP engine processes running.",
                                    value=sum(pid is not None for pid in pids))
            yield GaugeMetricFamily("ivrgate_engine_processes", "SIP engine processes configured.",
                                    value=len(pids))
        yield from _sms_metrics(self._context)


def _sms_metrics(context: OpsContext) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    if not context.sms_configured:
        return
    pending = _receipts_pending(context)
    if pending is not None:
        yield GaugeMetricFamily("ivrgate_sms_receipts_pending", "SMS accepted by the SMSC and waiting for "
                                "their final receipt (the whole store).", value=pending)
    if context.sms is None:
        return
    health = context.sms.health()
    state = GaugeMetricFamily("ivrgate_smpp_bind_state", "1 for the state each SMPP bind is in.",
                              labels=["bind", "state"])
    for bind in health.binds:
        for name in BIND_STATES:
            state.add_metric([bind.mode, name], 1.0 if bind.state == name else 0.0)
    yield state
    yield GaugeMetricFamily("ivrgate_smpp_window", "Parts the ESME may hold at once.", value=health.window)
    yield GaugeMetricFamily("ivrgate_smpp_window_in_use", "Parts the ESME holds now (queued, in flight, "
                            "or waiting for their outcome to be recorded).", value=health.window_in_use)
    yield GaugeMetricFamily("ivrgate_smpp_in_flight", "submit_sm sent and not yet answered.",
                            value=health.in_flight)
    stats = health.stats
    yield CounterMetricFamily("ivrgate_smpp_throttled", "submit_sm answered ESME_RTHROTTLED or "
                              "ESME_RMSGQFUL (resubmitted after a pause).", value=stats.throttled)
    parts = CounterMetricFamily("ivrgate_smpp_parts", "SMS parts by what the SMSC answered.",
                                labels=["outcome"])
    for outcome, value in (("submitted", stats.submitted), ("accepted", stats.accepted),
                           ("refused", stats.refused), ("resubmitted", stats.resubmitted)):
        parts.add_metric([outcome], value)
    yield parts
    yield CounterMetricFamily("ivrgate_smpp_receipts", "Delivery receipts received.", value=stats.receipts)
    yield CounterMetricFamily("ivrgate_smpp_incoming", "MO messages received.", value=stats.incoming)
    yield CounterMetricFamily("ivrgate_smpp_connects", "Successful (re)binds.", value=stats.connects)


def _receipts_pending(context: OpsContext) -> int | None:
    try:
        with context.db.read() as session:
            return awaiting_receipts(session)
    except (SQLAlchemyError, StoreError) as exc:
        log.warning("metrics: SMS receipts pending unavailable: %s", exc)
        return None


def sms_health(context: OpsContext) -> dict[str, Any]:
    """The `sms` object of /healthz. Its state never makes the node unhealthy: an SMSC that is down or
    refuses the bind leaves SMS queued (the API keeps accepting), which is what the bind states show."""
    body: dict[str, Any] = {"configured": context.sms_configured}
    if not context.sms_configured:
        return body
    body["receipts_pending"] = _receipts_pending(context)
    if context.sms is None:
        body["node"] = False  # an API-only process: another process binds
        return body
    health = context.sms.health()
    body.update(
        node=True,
        binds=[{"mode": b.mode, "state": b.state, **({"reason": b.reason} if b.reason else {})}
               for b in health.binds],
        window=health.window, window_in_use=health.window_in_use, in_flight=health.in_flight,
        throttled=health.stats.throttled)
    return body


def _queue_depth(context: OpsContext) -> int | None:
    try:
        with context.db.read() as session:
            return queue_depth(session, context.now())
    except (SQLAlchemyError, StoreError) as exc:
        log.warning("metrics: queue depth unavailable: %s", exc)
        return None


def check_health(context: OpsContext) -> tuple[bool, dict[str, Any]]:
    """(healthy, the JSON body): the database answers, and on a calling node at least one engine runs."""
    body: dict[str, Any] = {}
    healthy = True
    try:
        with context.db.read() as session:
            session.execute(text("SELECT 1"))
        body["database"] = "ok"
    except (SQLAlchemyError, StoreError) as exc:
        log.warning("health: database unreachable: %s", exc)
        body["database"] = "unreachable"
        healthy = False
    if context.pool is not None:
        pids = context.pool.pids
        up = sum(pid is not None for pid in pids)
        body["engines"] = {"up": up, "total": len(pids)}
        healthy = healthy and up > 0
    if context.worker is not None:
        body["calls_in_progress"] = context.worker.in_flight
    body["sms"] = sms_health(context)
    return healthy, {"status": "ok" if healthy else "unavailable", **body}


router = APIRouter(tags=["operations"])


def _context(request: Request) -> OpsContext | None:
    context = getattr(request.app.state, "ops", None)
    return context if isinstance(context, OpsContext) else None


@router.get("/healthz", summary="Health of this node (200 ok, 503 when not fit to serve)")
def healthz(request: Request) -> JSONResponse:
    context = _context(request)
    if context is None:
        return JSONResponse({"status": "unavailable", "reason": "not configured"}, status_code=503)
    healthy, body = check_health(context)
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    context = _context(request)
    if context is None:
        return Response("# no metrics: not configured\n", status_code=503, media_type="text/plain")
    return Response(context.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def attach(app: FastAPI, context: OpsContext) -> OpsContext:
    """Make `app` report on `context` (and mount the router unless it already is)."""
    app.state.ops = context
    paths = {getattr(route, "path", None) for route in app.routes}
    if "/healthz" not in paths:
        app.include_router(router)
    return context
