"""Which request bodies may be how large (api.fronts.app.body_limit_for): uploads and CSV imports get room."""

from __future__ import annotations

import pytest

from api.core.errors import VoiceFileTooLarge
from api.fronts.app import CSV_IMPORT_BYTES, DEFAULT_BODY_BYTES, RequestTooLarge, body_limit_for

VOICE = 10 * 1024 * 1024


@pytest.mark.parametrize("path", ["/matrix_voice", "/matrix_voice.json", "/v1/messages/voice",
                                  "/ui/send/voice", "/ui/send/listen"])
def test_voice_uploads_get_the_voice_limit(path: str) -> None:
    limit, error = body_limit_for(path, VOICE)
    assert limit > VOICE and error is VoiceFileTooLarge


@pytest.mark.parametrize("path", ["/v1/dnc/import", "/v1/groups/7/members/import", "/ui/dnc/import",
                                  "/ui/groups", "/ui/groups/7/import"])
def test_csv_imports_get_the_import_limit(path: str) -> None:
    assert body_limit_for(path, VOICE) == (CSV_IMPORT_BYTES, RequestTooLarge)


@pytest.mark.parametrize("path", ["/matrix", "/matrix_tts", "/ui/send/tts", "/ui/groups/7/rename",
                                  "/v1/groups", "/ui/login"])
def test_everything_else_gets_the_default(path: str) -> None:
    assert body_limit_for(path, VOICE) == (DEFAULT_BODY_BYTES, RequestTooLarge)
