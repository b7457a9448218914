"""api.fronts.legacy.parse_urlencoded reads a form body exactly as Starlette's python-multipart parser
does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import FormParser

from api.fronts.legacy import MAX_FIELDS, parse_urlencoded

HEADERS = Headers({"content-type": "application/x-www-form-urlencoded"})


def starlette_fields(body: bytes) -> list[tuple[str, str]]:
    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    async def parse() -> list[tuple[str, str]]:
        form = await FormParser(HEADERS, stream(), max_fields=MAX_FIELDS).parse()
        return [(key, value) for key, value in form.multi_items() if isinstance(value, str)]

    return asyncio.run(parse())


BODY_BYTES = st.lists(
    st.sampled_from(
        [b"&", b"=", b"+", b"%", b"%2", b"%41", b"%e2%82%ac", b"%ff", b"a", b"phone", b"\xc3\xa9", b";"]
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=300)
@given(BODY_BYTES)
def test_same_fields_as_starlette(body: bytes) -> None:
    assert parse_urlencoded(body) == starlette_fields(body)


@pytest.mark.parametrize(
    "body",
    [
        b"username=user%40hotmail.com&password=pass72727&phone=12506063167&txt=Adam%2C+web+server+is+down",
        b"",
        b"&&a=1&&b&=c&d=",
        b"txt=%E2%82%AC+%F0%9F%98%80&txt=second",
        b"bad=%zz%&x=%C3%28",
    ],
)
def test_examples_match_starlette(body: bytes) -> None:
    assert parse_urlencoded(body) == starlette_fields(body)


def test_the_seed_example_is_read() -> None:
    fields = dict(parse_urlencoded(b"username=user%40hotmail.com&txt=Adam%2C+web+server+is+down"))
    assert fields == {"username": "user@hotmail.com", "txt": "Adam, web server is down"}


def test_too_many_fields_is_refused_like_starlette() -> None:
    body = b"&".join(b"f%d=1" % n for n in range(MAX_FIELDS + 1))
    with pytest.raises(HTTPException) as ours:
        parse_urlencoded(body)
    assert ours.value.status_code == 400
    assert len(parse_urlencoded(b"&".join(b"f%d=1" % n for n in range(MAX_FIELDS)))) == MAX_FIELDS
