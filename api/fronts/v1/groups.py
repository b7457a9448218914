"""/v1/groups: the account's named lists of numbers (the `group` of a submission), their members and
CSV import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile, status

from api.core import manage
from api.core.errors import InvalidParameter
from api.fronts.v1.deps import CallerDep, StoreDep
from api.fronts.v1.problems import V1Route
from api.fronts.v1.schemas import (
    GroupCreate,
    GroupPublic,
    GroupUpdate,
    ImportResult,
    MemberIn,
    MemberPublic,
    RowId,
)
from store.models import Group

router = APIRouter(prefix="/groups", tags=["groups"], route_class=V1Route)

MAX_CSV_BYTES = 5 * 1024 * 1024


def read_csv_upload(file: UploadFile) -> str:
    """The text of an uploaded CSV (UTF-8, at most 5 MiB)."""
    data = file.file.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise InvalidParameter("csv", f"a CSV file is limited to {MAX_CSV_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidParameter("csv", "the CSV file is not UTF-8") from None


def _public(group: Group, members: int) -> GroupPublic:
    return GroupPublic(id=group.id, name=group.name, members=members, created_at=group.created_at)


@router.get("", response_model=list[GroupPublic])
def list_groups(store: StoreDep, caller: CallerDep) -> list[GroupPublic]:
    with store.read() as session:
        return [_public(group, count) for group, count in manage.list_groups(session, caller)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=GroupPublic)
def create_group(body: GroupCreate, store: StoreDep, caller: CallerDep) -> GroupPublic:
    """A new group, optionally with members; one bad number refuses the whole request (513)."""
    members = [(m.phone, m.name) for m in body.members]
    with store.write() as session:
        group = manage.create_group(
            session, caller, body.name, store.now(), members, store.gateway.settings.phones
        )
        return _public(group, len(manage.group_members(session, caller, group.id)))


@router.get("/{group_id}", response_model=GroupPublic)
def get_group(group_id: RowId, store: StoreDep, caller: CallerDep) -> GroupPublic:
    with store.read() as session:
        group = manage.get_group(session, caller, group_id)
        return _public(group, len(manage.group_members(session, caller, group_id)))


@router.patch("/{group_id}", response_model=GroupPublic)
def rename_group(group_id: RowId, body: GroupUpdate, store: StoreDep, caller: CallerDep) -> GroupPublic:
    with store.write() as session:
        group = manage.rename_group(session, caller, group_id, body.name)
        return _public(group, len(manage.group_members(session, caller, group_id)))


@router.delete("/{group_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_group(group_id: RowId, store: StoreDep, caller: CallerDep) -> None:
    with store.write() as session:
        manage.delete_group(session, caller, group_id)


@router.get("/{group_id}/members", response_model=list[MemberPublic])
def list_members(group_id: RowId, store: StoreDep, caller: CallerDep) -> list[MemberPublic]:
    with store.read() as session:
        return [
            MemberPublic(phone=m.phone, name=m.name) for m in manage.group_members(session, caller, group_id)
        ]


@router.post("/{group_id}/members", response_model=ImportResult)
def add_members(group_id: RowId, body: list[MemberIn], store: StoreDep, caller: CallerDep) -> ImportResult:
    """Add members (a number already there gets the new name); answers how many were new."""
    members = [(m.phone, m.name) for m in body]
    with store.write() as session:
        added = manage.add_members(session, caller, group_id, members, store.gateway.settings.phones)
    return ImportResult(rows=len(members), added=added)


@router.delete("/{group_id}/members/{phone}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(group_id: RowId, phone: str, store: StoreDep, caller: CallerDep) -> None:
    with store.write() as session:
        manage.remove_member(session, caller, group_id, phone, store.gateway.settings.phones)


@router.post("/{group_id}/members/import", response_model=ImportResult)
def import_members(
    group_id: RowId,
    store: StoreDep,
    caller: CallerDep,
    file: Annotated[UploadFile, File(description="CSV: phone,name (header optional)")],
) -> ImportResult:
    """Add the rows of a CSV file (`phone,name`, with or without a header); all or nothing."""
    members = manage.read_csv_pairs(read_csv_upload(file), "name")
    with store.write() as session:
        added = manage.add_members(session, caller, group_id, members, store.gateway.settings.phones)
    return ImportResult(rows=len(members), added=added)
