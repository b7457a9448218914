"""Legacy route inputs: the seed's example requests, every error code with its input, and precedence."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.core.checks import FormLimits, check_txt
from api.core.errors import (
    GroupNotFound,
    InvalidCallerId,
    InvalidParameter,
    InvalidPin,
    InvalidTxt,
    NoVoiceFile,
    ParseError,
    TooManyRecipients,
    VoiceFileTooLarge,
    status_of,
)
from api.core.phones import PhoneSettings
from api.fronts.forms import (
    BalanceForm,
    CarrierForm,
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
from ivr.errors import UrlRefused
from ivr.prompt import TextSegment, UrlSegment
from store.errors import InvalidPassword, InvalidUsername, MessageNotFound
from tts.base import Voice

CREDS = {"username": "user@hotmail.com", "password": "pass72727"}
WAV = Upload("november_sale.wav", b"RIFF....WAVEfmt ", "audio/wav")


# --- the seed's examples -------------------------------------------------------------------------------


def test_seed_perl_sms() -> None:
    form = parse_form(
        MatrixForm,
        {
            "username": "user888@yahoo.ca",
            "password": "pass7782",
            "callerid": "12501231233",
            "phone": "12506063167",
            "tts": "1",
            "txt": "This is a test, pls ignore",
        },
    )
    assert form.model_dump() == {
        "username": "user888@yahoo.ca",
        "password": "pass7782",
        "phones": ("+12506063167",),
        "group": None,
        "txt": "This is a test, pls ignore",
        "callerid": "+12501231233",
        "tts": True,
    }


def test_seed_perl_sms_to_a_group() -> None:
    form = parse_form(
        MatrixForm,
        {**CREDS, "callerid": "12501231233", "group": "Test_Group", "txt": "This is a test, pls ignore"},
    )
    assert (form.phones, form.group, form.tts) == ((), "Test_Group", False)


@pytest.mark.parametrize("phone", ["12506063167", "12506063167,12508763211"])
def test_seed_php_java_csharp_sms(phone: str) -> None:
    # PHP sends a GET query string, Java and C# a form body: the same fields either way
    form = parse_form(MatrixForm, {**CREDS, "phone": phone, "txt": "This is a test, pls ignore"})
    assert form.phones == tuple(f"+{p}" for p in phone.split(","))
    assert form.callerid is None


def test_seed_perl_status() -> None:
    form = parse_form(
        MatrixStatusForm,
        {"username": "user@hotmail.com", "password": "pass72727", "id": "a876f1267536589be789effa879"},
    )
    assert form.id == "a876f1267536589be789effa879"


def test_seed_perl_tts() -> None:
    form = parse_form(
        MatrixTtsForm,
        {
            "username": "user@hotmail.com",
            "password": "password",
            "phone": "12506063167",
            "repeat": "1",
            "gender": "male",
            "language": "us",
            "response": "0",
            "txt": "Adam, web server is down",
        },
    )
    assert form.model_dump() == {
        "username": "user@hotmail.com",
        "password": "password",
        "phones": ("+12506063167",),
        "callerid": None,
        "response": False,
        "repeat": 1,
        "txt": "Adam, web server is down",
        "language": "us",
        "gender": "male",
    }


def test_seed_tts_defaults() -> None:
    form = parse_form(MatrixTtsForm, {**CREDS, "phone": "12506063167", "txt": "Hi"})
    assert (form.repeat, form.response, form.language, form.gender) == (0, False, "us", "female")


def test_seed_perl_sms_rate_needs_no_account() -> None:
    assert parse_form(SmsRateForm, {"phone": "12506058145"}).model_dump() == {
        "phone": "+12506058145",
        "type": "sms",
    }


def test_seed_perl_carrier() -> None:
    form = parse_form(
        CarrierForm, {"username": "user@yahoo.ca", "password": "password9999", "phone": "2506063167"}
    )
    assert form.phone == "+12506063167"


def test_seed_perl_balance() -> None:
    form = parse_form(BalanceForm, {"username": "user@yahoo.ca", "password": "password"})
    assert (form.username, form.password) == ("user@yahoo.ca", "password")


def test_seed_perl_voice_upload() -> None:
    form = parse_form(
        MatrixVoiceForm,
        {
            "username": "user@hotmail.com",
            "password": "pass8988",
            "phone": "12502771720",
            "voicefile": WAV,
            "response": "1",
            "callerid": "16307791722",
        },
    )
    assert (form.phones, form.voicefile, form.response, form.callerid) == (
        ("+12502771720",),
        WAV,
        True,
        "+16307791722",
    )


def test_seed_perl_voice_url() -> None:
    form = parse_form(
        MatrixVoicewForm,
        {
            "username": "user@hotmail.com",
            "password": "pass8988",
            "phone": "12502771720",
            "voiceurl": "http://www.myweb.de/s/welcome.mp3",
            "response": "0",
            "callerid": "16307791722",
        },
    )
    assert (form.voiceurl, form.response) == ("http://www.myweb.de/s/welcome.mp3", False)


VTTS = {
    "username": "user55@hotmail.com",
    "password": "mypass",
    "phone": "12502012503",
    "language": "us",
    "gender": "male",
    "callerid": "12501112233",
    "response": 0,
    "msg": [
        "http://www.myserver.com/voices/welcome_prompt.wav",
        "This text will be converted to voice by TTS engine.",
        "http://www.myserver.com/voices/segment2.mp3",
    ],
}


def test_seed_perl_vtts() -> None:
    form = MatrixVttsForm.from_body(json.dumps(VTTS).encode())
    assert (form.phones, form.callerid, form.response, form.language, form.gender) == (
        ("+12502012503",),
        "+12501112233",
        False,
        "us",
        "male",
    )
    spec = form.prompt_spec()
    assert spec.voice == Voice("us", "male")
    assert spec.segments == (
        UrlSegment("http://www.myserver.com/voices/welcome_prompt.wav"),
        TextSegment("This text will be converted to voice by TTS engine."),
        UrlSegment("http://www.myserver.com/voices/segment2.mp3"),
    )


def test_json_numbers_and_lists_are_read_as_a_client_means_them() -> None:
    form = MatrixVttsForm.from_body(
        json.dumps({**VTTS, "phone": [12502012503, "12506063167"], "response": True, "repeat": 2})
    )
    assert (form.phones, form.response, form.repeat) == (("+12502012503", "+12506063167"), True, 2)


def test_unknown_fields_are_ignored() -> None:
    form = parse_form(BalanceForm, {**CREDS, "submit": "Send", "api_version": 3, "x": ["a"]})
    assert form.model_dump() == CREDS


# --- every code with the input that causes it ----------------------------------------------------------

TTS = {**CREDS, "phone": "12506063167", "txt": "Hello"}


@pytest.mark.parametrize(
    ("form", "data", "error", "status"),
    [
        (MatrixTtsForm, {**TTS, "username": ""}, InvalidUsername, (510, "INVALID USERNAME")),
        (
            MatrixTtsForm,
            {k: v for k, v in TTS.items() if k != "username"},
            InvalidUsername,
            (510, "INVALID USERNAME"),
        ),
        (MatrixTtsForm, {**TTS, "username": "a b@x.com"}, InvalidUsername, (510, "INVALID USERNAME")),
        (MatrixTtsForm, {**TTS, "username": "u\x00@x"}, InvalidUsername, (510, "INVALID USERNAME")),
        (MatrixTtsForm, {**TTS, "username": "u" * 255}, InvalidUsername, (510, "INVALID USERNAME")),
        (MatrixTtsForm, {**TTS, "username": ["a", "b"]}, InvalidUsername, (510, "INVALID USERNAME")),
        (MatrixTtsForm, {**TTS, "password": ""}, InvalidPassword, (512, "INVALID PASSWORD")),
        (MatrixTtsForm, {**TTS, "password": "p" * 1025}, InvalidPassword, (512, "INVALID PASSWORD")),
        (MatrixTtsForm, {**TTS, "password": {"$ne": 1}}, InvalidPassword, (512, "INVALID PASSWORD")),
        (MatrixTtsForm, {**TTS, "phone": ""}, InvalidPin, (513, "INVALID PIN")),
        (MatrixTtsForm, {**TTS, "phone": "12506063167,555"}, InvalidPin, (513, "INVALID PIN")),
        (MatrixTtsForm, {**TTS, "phone": "1' OR '1'='1"}, InvalidPin, (513, "INVALID PIN")),
        (MatrixTtsForm, {**TTS, "txt": ""}, InvalidTxt, (511, "INVALID TXT")),
        (MatrixTtsForm, {**TTS, "txt": " \n\t "}, InvalidTxt, (511, "INVALID TXT")),
        (MatrixTtsForm, {**TTS, "txt": "a\x07b"}, InvalidTxt, (511, "INVALID TXT")),
        (MatrixTtsForm, {**TTS, "txt": "a\x1bb"}, InvalidTxt, (511, "INVALID TXT")),
        (MatrixTtsForm, {**TTS, "txt": "x" * 2001}, InvalidTxt, (511, "INVALID TXT")),
        (MatrixTtsForm, {**TTS, "txt": "\ud800"}, InvalidTxt, (511, "INVALID TXT")),
        (MatrixTtsForm, {k: v for k, v in TTS.items() if k != "txt"}, InvalidTxt, (511, "INVALID TXT")),
        (MatrixForm, {**TTS, "txt": "x" * 1601}, InvalidTxt, (511, "INVALID TXT")),
        (MatrixVoiceForm, {**TTS}, NoVoiceFile, (514, "NO VOICE FILE PROVIDED")),
        (MatrixVoiceForm, {**TTS, "voicefile": "/tmp/a.wav"}, NoVoiceFile, (514, "NO VOICE FILE PROVIDED")),
        (
            MatrixVoiceForm,
            {**TTS, "voicefile": Upload("a.wav", b"")},
            NoVoiceFile,
            (514, "NO VOICE FILE PROVIDED"),
        ),
        (MatrixVoicewForm, {**TTS}, NoVoiceFile, (514, "NO VOICE FILE PROVIDED")),
        (MatrixVoicewForm, {**TTS, "voiceurl": "  "}, NoVoiceFile, (514, "NO VOICE FILE PROVIDED")),
        (
            MatrixVoicewForm,
            {**TTS, "voiceurl": "ftp://x/a.wav"},
            UrlRefused,
            (500, "ERROR: VOICE URL REFUSED"),
        ),
        (
            MatrixVoicewForm,
            {**TTS, "voiceurl": "http:///a.wav"},
            UrlRefused,
            (500, "ERROR: VOICE URL REFUSED"),
        ),
        (MatrixVoicewForm, {**TTS, "voiceurl": "http://a b/"}, UrlRefused, (500, "ERROR: VOICE URL REFUSED")),
        (
            MatrixVoicewForm,
            {**TTS, "voiceurl": "http://[::1/"},
            UrlRefused,
            (500, "ERROR: VOICE URL REFUSED"),
        ),
        (MatrixStatusForm, {**CREDS}, MessageNotFound, (500, "ERROR: MESSAGE NOT FOUND")),
        (MatrixStatusForm, {**CREDS, "id": "x'; --"}, MessageNotFound, (500, "ERROR: MESSAGE NOT FOUND")),
        (MatrixStatusForm, {**CREDS, "id": "a" * 65}, MessageNotFound, (500, "ERROR: MESSAGE NOT FOUND")),
        (MatrixTtsForm, {**TTS, "repeat": "10"}, InvalidParameter, (500, "ERROR: INVALID REPEAT")),
        (MatrixTtsForm, {**TTS, "repeat": "-1"}, InvalidParameter, (500, "ERROR: INVALID REPEAT")),
        (MatrixTtsForm, {**TTS, "repeat": "1.5"}, InvalidParameter, (500, "ERROR: INVALID REPEAT")),
        (MatrixTtsForm, {**TTS, "repeat": "٣"}, InvalidParameter, (500, "ERROR: INVALID REPEAT")),
        (MatrixTtsForm, {**TTS, "repeat": True}, InvalidParameter, (500, "ERROR: INVALID REPEAT")),
        (MatrixTtsForm, {**TTS, "repeat": "9" * 5000}, InvalidParameter, (500, "ERROR: INVALID REPEAT")),
        (MatrixTtsForm, {**TTS, "repeat": "0" * 99 + "10"}, InvalidParameter, (500, "ERROR: INVALID REPEAT")),
        (MatrixTtsForm, {**TTS, "response": "2"}, InvalidParameter, (500, "ERROR: INVALID RESPONSE")),
        (MatrixTtsForm, {**TTS, "language": "fr"}, InvalidParameter, (500, "ERROR: INVALID LANGUAGE")),
        (MatrixTtsForm, {**TTS, "gender": "robot"}, InvalidParameter, (500, "ERROR: INVALID GENDER")),
        (MatrixTtsForm, {**TTS, "callerid": "Shop"}, InvalidCallerId, (500, "ERROR: INVALID CALLERID")),
        (MatrixTtsForm, {**TTS, "callerid": "123"}, InvalidCallerId, (500, "ERROR: INVALID CALLERID")),
        (MatrixForm, {**TTS, "tts": "maybe"}, InvalidParameter, (500, "ERROR: INVALID TTS")),
        (MatrixForm, {**CREDS, "txt": "x", "group": "g\x00"}, GroupNotFound, (500, "ERROR: GROUP NOT FOUND")),
        (
            MatrixForm,
            {**CREDS, "txt": "x", "group": "g" * 65},
            GroupNotFound,
            (500, "ERROR: GROUP NOT FOUND"),
        ),
        (
            SmsRateForm,
            {"phone": "12506063167", "type": "mms"},
            InvalidParameter,
            (500, "ERROR: INVALID TYPE"),
        ),
        (SmsRateForm, {"phone": "12506063167,12508763211"}, InvalidPin, (513, "INVALID PIN")),
        (SmsRateForm, {}, InvalidPin, (513, "INVALID PIN")),
        (CarrierForm, {**CREDS, "phone": "abc"}, InvalidPin, (513, "INVALID PIN")),
    ],
)
def test_each_bad_input_raises_its_code(
    form: type[Any], data: dict[str, Any], error: type[Exception], status: tuple[int, str]
) -> None:
    with pytest.raises(error) as caught:
        parse_form(form, data)
    assert status_of(caught.value) == status


def test_too_large_upload() -> None:
    limits = FormLimits(max_voice_bytes=10)
    with pytest.raises(VoiceFileTooLarge) as caught:
        parse_form(MatrixVoiceForm, {**TTS, "voicefile": Upload("a.wav", b"x" * 11)}, limits)
    assert status_of(caught.value) == (500, "ERROR: VOICE FILE TOO LARGE")
    assert parse_form(MatrixVoiceForm, {**TTS, "voicefile": b"x" * 10}, limits).voicefile.data == b"x" * 10


def test_too_many_recipients() -> None:
    limits = FormLimits(phones=PhoneSettings(max_recipients=2))
    with pytest.raises(TooManyRecipients):
        parse_form(MatrixTtsForm, {**TTS, "phone": "12506063167,12508763211,6301238534"}, limits)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"{",
        b"[1, 2]",
        b'"string"',
        b"null",
        b"\xff\xfe{}",
        b"[" * 100_000,
        b'{"msg": ["x"], }',
    ],
)
def test_broken_vtts_bodies_are_520(body: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        MatrixVttsForm.from_body(body)
    assert status_of(caught.value) == (520, "ERROR PARSING XML")


@pytest.mark.parametrize(
    "msg", [None, [], "text", {"a": 1}, ["ok", 5], ["ok", ""], ["ok", None], [["nested"]]]
)
def test_vtts_without_a_usable_msg_list_is_520(msg: object) -> None:
    body = {k: v for k, v in VTTS.items() if k != "msg"}
    if msg is not None:
        body["msg"] = msg
    with pytest.raises(ParseError):
        MatrixVttsForm.from_body(json.dumps(body))


def test_vtts_text_items_follow_txt_rules_and_url_items_url_rules() -> None:
    with pytest.raises(InvalidTxt):
        MatrixVttsForm.from_body(json.dumps({**VTTS, "msg": ["ok", "bell\x07"]}))
    with pytest.raises(InvalidTxt):
        MatrixVttsForm.from_body(json.dumps({**VTTS, "msg": ["x" * 2001]}))
    with pytest.raises(UrlRefused):
        MatrixVttsForm.from_body(json.dumps({**VTTS, "msg": ["file:///etc/passwd"]}))
    with pytest.raises(UrlRefused):
        MatrixVttsForm.from_body(json.dumps({**VTTS, "msg": ["http://"]}))


# --- normalisation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("0", False),
        ("", False),
        (" 1 ", True),
        ("true", True),
        ("FALSE", False),
        (1, True),
        (0, False),
    ],
)
def test_response_flag(raw: object, expected: bool) -> None:
    assert parse_form(MatrixTtsForm, {**TTS, "response": raw}).response is expected


@pytest.mark.parametrize(("raw", "expected"), [("", 0), ("0", 0), (" 3 ", 3), (9, 9), (2.0, 2), (None, 0)])
def test_repeat(raw: object, expected: int) -> None:
    assert parse_form(MatrixTtsForm, {**TTS, "repeat": raw}).repeat == expected


def test_repeat_bound_is_a_limit() -> None:
    with pytest.raises(InvalidParameter):
        parse_form(MatrixTtsForm, {**TTS, "repeat": "3"}, FormLimits(max_repeat=2))


@pytest.mark.parametrize(("raw", "expected"), [("ES", "es"), (" us ", "us"), ("", "us")])
def test_language_is_case_insensitive_with_a_default(raw: str, expected: str) -> None:
    assert parse_form(MatrixTtsForm, {**TTS, "language": raw}).language == expected


@pytest.mark.parametrize(("raw", "expected"), [("MALE", "male"), ("Female", "female"), ("", "female")])
def test_gender(raw: str, expected: str) -> None:
    assert parse_form(MatrixTtsForm, {**TTS, "gender": raw}).gender == expected


def test_sms_callerid_may_be_alphanumeric() -> None:
    assert parse_form(MatrixForm, {**TTS, "callerid": "MyShop"}).callerid == "MyShop"


def test_username_is_stripped_password_is_not() -> None:
    form = parse_form(BalanceForm, {"username": "  user@x.com\n", "password": " secret "})
    assert (form.username, form.password) == ("user@x.com", " secret ")


def test_status_id_is_lowercased() -> None:
    assert parse_form(MatrixStatusForm, {**CREDS, "id": " ABCDEF0123 "}).id == "abcdef0123"


def test_txt_line_breaks_are_normalised() -> None:
    assert check_txt("  line one\r\nline two\rthree\tend  ", 100) == "line one\nline two\nthree\tend"


def test_sms_and_tts_text_limits_differ() -> None:
    assert len(parse_form(MatrixForm, {**TTS, "txt": "x" * 1600}).txt) == 1600
    assert len(parse_form(MatrixTtsForm, {**TTS, "txt": "x" * 2000}).txt) == 2000


def test_group_and_phone_together() -> None:
    form = parse_form(MatrixForm, {**TTS, "group": " Team "})
    assert (form.phones, form.group) == (("+12506063167",), "Team")


def test_matrix_needs_phone_or_group() -> None:
    with pytest.raises(InvalidPin):
        parse_form(MatrixForm, {**CREDS, "txt": "hi"})


def test_forms_are_frozen() -> None:
    form = parse_form(BalanceForm, CREDS)
    with pytest.raises(Exception, match="frozen"):
        form.username = "other"  # type: ignore[misc]


def test_non_mapping_input_is_520() -> None:
    with pytest.raises(ParseError):
        parse_form(BalanceForm, ["username", "password"])  # type: ignore[arg-type]


# --- precedence ----------------------------------------------------------------------------------------

ALL_BAD = {
    "username": "",
    "password": "",
    "phone": "x",
    "txt": "",
    "repeat": "99",
    "language": "fr",
    "gender": "x",
    "response": "x",
    "callerid": "Shop",
}


def _first_error(data: dict[str, Any]) -> int:
    with pytest.raises(Exception) as caught:
        parse_form(MatrixTtsForm, data)
    status = status_of(caught.value)
    assert status is not None
    return status[0]


def test_precedence_credentials_then_phone_then_content_then_options() -> None:
    data = dict(ALL_BAD)
    assert _first_error(data) == 510
    data["username"] = "u@x"
    assert _first_error(data) == 512
    data["password"] = "p"
    assert _first_error(data) == 513
    data["phone"] = "12506063167"
    assert _first_error(data) == 511
    data["txt"] = "hello"
    with pytest.raises(InvalidCallerId):
        parse_form(MatrixTtsForm, data)
    data["callerid"] = ""
    with pytest.raises(InvalidParameter, match="response"):
        parse_form(MatrixTtsForm, data)
    data["response"] = "1"
    with pytest.raises(InvalidParameter, match="repeat"):
        parse_form(MatrixTtsForm, data)
    data["repeat"] = "1"
    with pytest.raises(InvalidParameter, match="language"):
        parse_form(MatrixTtsForm, data)
    data["language"] = "es"
    with pytest.raises(InvalidParameter, match="gender"):
        parse_form(MatrixTtsForm, data)


def test_a_non_object_vtts_body_beats_everything() -> None:
    with pytest.raises(ParseError):
        MatrixVttsForm.from_body(b"[]")
    with pytest.raises(InvalidUsername):
        MatrixVttsForm.from_body(json.dumps({"msg": "not a list"}))


# --- unicode and SQL metacharacters in every field -----------------------------------------------------

NASTY = ["Ünïcödé 名前 🎉", "'; DROP TABLE accounts;--", '" OR 1=1 --', "%00%27", "<script>", "\\x00"]


@pytest.mark.parametrize("value", NASTY)
def test_nasty_text_is_kept_verbatim_where_text_is_free(value: str) -> None:
    form = parse_form(MatrixTtsForm, {**TTS, "password": value, "txt": value})
    assert (form.password, form.txt) == (value, value)
    sms = parse_form(MatrixForm, {**TTS, "txt": value, "group": value})
    assert (sms.txt, sms.group) == (value, value)


@pytest.mark.parametrize("value", NASTY)
@pytest.mark.parametrize(
    ("field", "status"),
    [
        ("phone", 513),
        ("callerid", 500),
        ("repeat", 500),
        ("language", 500),
        ("gender", 500),
        ("response", 500),
        ("voiceurl", 500),
    ],
)
def test_nasty_values_in_structured_fields_get_their_code(value: str, field: str, status: int) -> None:
    form = MatrixVoicewForm if field == "voiceurl" else MatrixTtsForm
    data = {**TTS, "voiceurl": "http://example.com/a.wav", field: value}
    with pytest.raises(Exception) as caught:
        parse_form(form, data)
    assert status_of(caught.value) is not None
    assert status_of(caught.value)[0] == status  # type: ignore[index]


@pytest.mark.parametrize("value", ["Ünïcödé@名前.example", "o'brien@example.com", 'a";--@x'])
def test_usernames_keep_unicode_and_quotes(value: str) -> None:
    assert parse_form(BalanceForm, {"username": value, "password": "p"}).username == value


@pytest.mark.parametrize("value", NASTY)
def test_nasty_ids_are_message_not_found(value: str) -> None:
    with pytest.raises(MessageNotFound):
        parse_form(MatrixStatusForm, {**CREDS, "id": value})


# --- properties ----------------------------------------------------------------------------------------

_any_value = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.integers(-5, 20),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=3),
)
_fields = ["username", "password", "phone", "txt", "repeat", "response", "language", "gender", "callerid"]


@given(st.dictionaries(st.sampled_from(_fields), _any_value))
def test_any_input_gives_a_form_or_a_status_code(data: dict[str, Any]) -> None:
    try:
        form = parse_form(MatrixTtsForm, data)
    except Exception as exc:  # the property: every failure carries a status
        assert status_of(exc) is not None, repr(exc)
        return
    assert form.phones and all(p.startswith("+") for p in form.phones)
    assert 0 <= form.repeat <= 9
    assert form.language in ("us", "es") and form.gender in ("male", "female")


def test_repeat_with_leading_zeros_is_its_number() -> None:
    form = parse_form(MatrixTtsForm, {**TTS, "repeat": "0" * 5000 + "2"})
    assert form.repeat == 2
