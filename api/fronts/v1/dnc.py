"""/v1/dnc: do-not-call entries of the account (or, for administrators, the global list)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile, status

from api.core import manage
from api.fronts.v1.deps import CallerDep, StoreDep
from api.fronts.v1.groups import read_csv_upload
from api.fronts.v1.problems import V1Route
from api.fronts.v1.schemas import DncCreate, DncPublic, ImportResult, RowIdAfter, dnc_public

router = APIRouter(prefix="/dnc", tags=["do-not-call"], route_class=V1Route)

GlobalQuery = Annotated[bool, Query(alias="global", description="The global list (administrators only)")]


@router.get("", response_model=list[DncPublic])
def list_entries(
    store: StoreDep,
    caller: CallerDep,
    global_list: GlobalQuery = False,
    limit: Annotated[int, Query(ge=1, le=manage.MAX_PAGE)] = manage.DEFAULT_PAGE,
    after: RowIdAfter = 0,
) -> list[DncPublic]:
    with store.read() as session:
        entries = manage.list_do_not_call(session, caller, global_list=global_list, limit=limit, after=after)
        return [dnc_public(e) for e in entries]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DncPublic)
def add_entry(body: DncCreate, store: StoreDep, caller: CallerDep) -> DncPublic:
    """Block a number: submissions to it become 502 PIN IN DO NOT CALL DATABASE. Adding twice is harmless."""
    with store.write() as session:
        (entry,) = manage.add_do_not_call(
            session,
            caller,
            [(body.phone, body.note)],
            store.now(),
            global_list=body.global_list,
            phones=store.gateway.settings.phones,
        )
        return dnc_public(entry)


@router.delete("/{phone}", status_code=status.HTTP_204_NO_CONTENT)
def remove_entry(phone: str, store: StoreDep, caller: CallerDep, global_list: GlobalQuery = False) -> None:
    """Unblock a number (owners and administrators)."""
    with store.write() as session:
        manage.remove_do_not_call(
            session, caller, phone, global_list=global_list, phones=store.gateway.settings.phones
        )


@router.post("/import", response_model=ImportResult)
def import_entries(
    store: StoreDep,
    caller: CallerDep,
    file: Annotated[UploadFile, File(description="CSV: phone,note (header optional)")],
    global_list: GlobalQuery = False,
) -> ImportResult:
    """Block every number of a CSV file (`phone,note`); one bad number refuses the file (513)."""
    rows = manage.read_csv_pairs(read_csv_upload(file), "note")
    with store.write() as session:
        added = manage.import_do_not_call(
            session, caller, rows, store.now(), global_list=global_list, phones=store.gateway.settings.phones
        )
    return ImportResult(rows=len(rows), added=added)
