"""Reports: per-day charts (inline SVG, drawn here) of messages by type and outcome, answer rate,
responses and spend, with the same figures as tables."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from fastapi.responses import Response

from api.fronts.v1.schemas import row_id
from api.fronts.web import charts, queries
from api.fronts.web.core import User, WebRoute, money
from api.fronts.web.routes_history import TYPES, _date, _logins

router = APIRouter(route_class=WebRoute)
DEFAULT_DAYS = 14
OUTCOMES = {"success": "Succeeded", "failure": "Failed", "pending": "Pending"}


def _range(today: dt.date, since: str, until: str) -> tuple[dt.date, dt.date]:
    last = _date(until, "until") or today
    first = _date(since, "since") or last - dt.timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        first, last = last, first
    return max(first, last - dt.timedelta(days=queries.MAX_REPORT_DAYS - 1)), last


def build_charts(report: queries.Report, currency: str) -> dict[str, str]:
    """The report's four per-day charts and the response chart, as SVG markup."""
    labels = [day.day.isoformat() for day in report.days]
    kinds = [charts.Series(label, [d.by_kind[key] for d in report.days]) for key, label in TYPES.items()]
    outcomes = [charts.Series(label, [d.by_outcome[k] for d in report.days]) for k, label in OUTCOMES.items()]
    rates = [charts.Series("Answered %", [100 * (d.answer_rate or 0.0) for d in report.days])]
    spend = [charts.Series(f"Spend ({currency})", [d.spend / 1_000_000 for d in report.days])]
    keys = sorted(report.responses)
    return {
        "kinds": charts.bar_chart("Messages per day by type", labels, kinds, chart_id="c-kind"),
        "outcomes": charts.bar_chart("Messages per day by outcome", labels, outcomes, chart_id="c-out"),
        "answer": charts.bar_chart("Answer rate per day", labels, rates, chart_id="c-ans",
                                   fmt=lambda v: f"{v:.0f}%"),
        "spend": charts.bar_chart("Spend per day", labels, spend, chart_id="c-spend",
                                  fmt=lambda v: f"{v:.4g}"),
        "responses": charts.hbar_chart("Keys pressed", [(f"Key {k}", report.responses[k]) for k in keys],
                                       chart_id="c-resp"),
    }


@router.get("/reports")
def reports(ctx: User, since: str = "", until: str = "", user: str = "") -> Response:
    first, last = _range(ctx.now().date(), since, until)
    user_id = row_id(user, "user")
    with ctx.read() as session:
        report = queries.aggregate(queries.report_rows(session, ctx.user, first, last, user_id), first, last)
    currency = ctx.account.currency if ctx.account is not None else "USD"
    drawn = build_charts(report, currency)
    return ctx.render("reports.html", report=report, totals=report.totals, charts=drawn,
                      first=first, last=last, user_filter=user, logins=_logins(ctx), types=TYPES,
                      outcomes=OUTCOMES, currency=currency, spend=lambda v: money(v, currency, 4))
