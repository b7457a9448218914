"""The do-not-call list and the groups of numbers, each with a CSV import (api.core.manage.read_csv_pairs:
a header naming `phone`, or phone first)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.core import manage
from api.core.errors import InvalidParameter
from api.fronts.v1.schemas import RowId, RowIdAfter
from api.fronts.web.core import PREFIX, Posted, User, WebRoute

router = APIRouter(route_class=WebRoute)
Text = Annotated[str, Form()]
Upload = Annotated[UploadFile | None, File()]
DNC_PAGE = 100
MAX_CSV_BYTES = 8 * 1024 * 1024


async def read_csv(upload: UploadFile | None) -> str:
    """The text of an uploaded CSV file (UTF-8, a BOM allowed)."""
    if upload is None or not upload.filename:
        raise InvalidParameter("csv", "choose a CSV file")
    data = await upload.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise InvalidParameter("csv", f"a CSV file is at most {MAX_CSV_BYTES // 1024 // 1024} MB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidParameter("csv", "the CSV file is not UTF-8 text") from None


# --- do-not-call ---------------------------------------------------------------------------------------


@router.get("/dnc")
def dnc(ctx: User, after: RowIdAfter = 0) -> Response:
    with ctx.read() as session:
        entries = manage.list_do_not_call(session, ctx.user, limit=DNC_PAGE, after=after)
        session.expunge_all()
    more = entries[-1].id if len(entries) == DNC_PAGE else None
    return ctx.render("dnc.html", entries=entries, more=more)


@router.post("/dnc")
def dnc_add(ctx: Posted, phone: Text, note: Text = "") -> Response:
    with ctx.write() as session:
        added = manage.add_do_not_call(session, ctx.user, [(phone, note)], ctx.now(),
                                       phones=ctx.gateway.settings.phones)
        number = added[0].phone
    return ctx.redirect(f"{PREFIX}/dnc", "ok", f"{number} will not be called or texted.")


@router.post("/dnc/import")
async def dnc_import(ctx: Posted, csvfile: Upload = None) -> Response:
    pairs = manage.read_csv_pairs(await read_csv(csvfile), "note")

    def write() -> int:
        with ctx.write() as session:
            return manage.import_do_not_call(session, ctx.user, pairs, ctx.now(),
                                             phones=ctx.gateway.settings.phones)

    added = await run_in_threadpool(write)
    return ctx.redirect(f"{PREFIX}/dnc", "ok", f"Imported {len(pairs)} rows: {added} new numbers.")


@router.post("/dnc/remove")
def dnc_remove(ctx: Posted, phone: Text) -> Response:
    with ctx.write() as session:
        manage.remove_do_not_call(session, ctx.user, phone, phones=ctx.gateway.settings.phones)
    return ctx.redirect(f"{PREFIX}/dnc", "ok", f"{phone} removed from the list.")


# --- groups --------------------------------------------------------------------------------------------


@router.get("/groups")
def groups(ctx: User) -> Response:
    with ctx.read() as session:
        rows = manage.list_groups(session, ctx.user)
        session.expunge_all()
    return ctx.render("groups.html", groups=rows)


@router.post("/groups")
async def group_create(ctx: Posted, name: Text, csvfile: Upload = None) -> Response:
    pairs = manage.read_csv_pairs(await read_csv(csvfile), "name") if csvfile and csvfile.filename else []

    def write() -> tuple[int, str]:
        with ctx.write() as session:
            phones = ctx.gateway.settings.phones
            group = manage.create_group(session, ctx.user, name, ctx.now(), pairs, phones)
            return group.id, group.name

    group_id, shown = await run_in_threadpool(write)
    return ctx.redirect(f"{PREFIX}/groups/{group_id}", "ok", f"Group {shown} created with {len(pairs)} rows.")


@router.get("/groups/{group_id}")
def group(ctx: User, group_id: RowId) -> Response:
    with ctx.read() as session:
        found = manage.get_group(session, ctx.user, group_id)
        members = manage.group_members(session, ctx.user, group_id)
        session.expunge_all()
    return ctx.render("group.html", group=found, members=members)


@router.post("/groups/{group_id}/members")
def member_add(ctx: Posted, group_id: RowId, phone: Text, name: Text = "") -> Response:
    with ctx.write() as session:
        manage.add_members(session, ctx.user, group_id, [(phone, name)], ctx.gateway.settings.phones)
    return ctx.redirect(f"{PREFIX}/groups/{group_id}", "ok", "Member added.")


@router.post("/groups/{group_id}/import")
async def member_import(ctx: Posted, group_id: RowId, csvfile: Upload = None) -> Response:
    pairs = manage.read_csv_pairs(await read_csv(csvfile), "name")

    def write() -> int:
        with ctx.write() as session:
            return manage.add_members(session, ctx.user, group_id, pairs, ctx.gateway.settings.phones)

    added = await run_in_threadpool(write)
    text = f"Imported {len(pairs)} rows: {added} new members."
    return ctx.redirect(f"{PREFIX}/groups/{group_id}", "ok", text)


@router.post("/groups/{group_id}/remove")
def member_remove(ctx: Posted, group_id: RowId, phone: Text) -> Response:
    with ctx.write() as session:
        manage.remove_member(session, ctx.user, group_id, phone, ctx.gateway.settings.phones)
    return ctx.redirect(f"{PREFIX}/groups/{group_id}", "ok", f"{phone} removed.")


@router.post("/groups/{group_id}/rename")
def group_rename(ctx: Posted, group_id: RowId, name: Text) -> Response:
    with ctx.write() as session:
        manage.rename_group(session, ctx.user, group_id, name)
    return ctx.redirect(f"{PREFIX}/groups/{group_id}", "ok", "Group renamed.")


@router.post("/groups/{group_id}/delete")
def group_delete(ctx: Posted, group_id: RowId) -> Response:
    with ctx.write() as session:
        manage.delete_group(session, ctx.user, group_id)
    return ctx.redirect(f"{PREFIX}/groups", "ok", "Group deleted.")
