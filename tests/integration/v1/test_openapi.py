"""The OpenAPI document: served at /openapi.json and /docs, valid OpenAPI 3, every v1 route in it with
bearer authentication, and every documented JSON operation answering a body of its declared shape."""

from __future__ import annotations

import pytest

from tests.integration.v1.conftest import Api

pytestmark = pytest.mark.integration


def test_openapi_document_is_valid_and_lists_v1(api: Api) -> None:
    from openapi_spec_validator import validate

    r = api.client.get("/openapi.json")
    assert r.status_code == 200
    document = r.json()
    validate(document)
    paths = document["paths"]
    for path in (
        "/v1/messages",
        "/v1/messages/{message_id}",
        "/v1/messages/{message_id}/cancel",
        "/v1/me",
        "/v1/subusers",
        "/v1/keys",
        "/v1/balance",
        "/v1/ledger",
        "/v1/accounts/{account_id}/top-ups",
        "/v1/rates",
        "/v1/rates/{phone}",
        "/v1/groups",
        "/v1/dnc",
        "/v1/carrier/{phone}",
        "/v1/numbers",
        "/v1/numbers/{number}",
    ):
        assert path in paths, path
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    assert "ErrorBody" in document["components"]["schemas"]
    assert api.client.get("/docs").status_code == 200


def test_get_operations_without_parameters_answer_their_schema(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    checked = 0
    for path, item in document["paths"].items():
        if not path.startswith("/v1/") or "{" in path or "get" not in item:
            continue
        r = api.client.get(path, headers=api.owner.headers)
        assert r.status_code in (200, 403), (path, r.text)
        schema = item["get"]["responses"][str(r.status_code)]["content"]["application/json"]["schema"]
        _check(r.json(), schema, document)
        checked += 1
    assert checked >= 8


def _check(value: object, schema: dict[str, object], document: dict[str, object]) -> None:
    import jsonschema

    resolver_doc = {"components": document["components"], **schema}
    jsonschema.validate(value, resolver_doc)
