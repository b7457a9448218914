"""api.fronts.smtp_parse: MIME, charsets, format=flowed, signatures, the keyword rules, the precedence of
errors,
and (hypothesis) that no input makes it raise anything but a gateway error."""

from __future__ import annotations

import base64
import contextlib
import quopri
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.core.errors import InvalidParameter, InvalidPin, InvalidTxt, NoVoiceFile
from api.fronts.forms import MatrixForm, MatrixTtsForm, MatrixVoicewForm
from api.fronts.smtp_parse import (
    HtmlOnlyMail,
    MailCharsetError,
    MailNotText,
    MailNotUnderstood,
    drop_signature,
    parse_body,
    parse_mail,
    unflow,
)
from coded.errors import CodedError
from store.errors import InvalidPassword, InvalidUsername

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "mail"
CREDS = "username:user78@hotmail.com password:mypass883"
SMS = f"{CREDS} phone:12501238585 callerid:13451238585 sms:Hello Adam, this is a test, please ignore."


def raw(body: bytes, headers: str = "Content-Type: text/plain; charset=utf-8") -> bytes:
    head = f"From: a@example.com\r\nTo: gateway@localhost\r\nSubject: t\r\n{headers}\r\n\r\n"
    return head.encode() + body


# --- the seed's examples -------------------------------------------------------------------------------


def test_seed_sms_example() -> None:
    request = parse_mail((SAMPLES / "sms.eml").read_bytes())
    assert request.kind == "sms"
    form = request.form()
    assert isinstance(form, MatrixForm)
    assert (form.username, form.password) == ("user78@hotmail.com", "mypass883")
    assert form.phones == ("+12501238585",) and form.callerid == "+13451238585"
    assert form.txt == "Hello Adam, this is a test, please ignore." and form.tts is False


def test_seed_tts_examples() -> None:
    plain = parse_mail((SAMPLES / "tts.eml").read_bytes()).form()
    assert isinstance(plain, MatrixTtsForm)
    assert plain.phones == ("+16301238534",) and plain.response is False
    assert plain.txt == "Hello John, This is Adam, please call me back."
    assert (plain.language, plain.gender, plain.repeat) == ("us", "female", 0)
    asked = parse_mail((SAMPLES / "tts_response.eml").read_bytes()).form()
    assert isinstance(asked, MatrixTtsForm) and asked.response is True
    assert asked.txt.startswith("Hello, this is your dentist") and asked.txt.endswith("replay this message.")


def test_seed_voiceurl_example() -> None:
    form = parse_mail((SAMPLES / "voiceurl.eml").read_bytes()).form()
    assert isinstance(form, MatrixVoicewForm)
    assert form.voiceurl == "http://www.myweb.ca/sounds/welcome.wav" and form.callerid is None


# --- layout of the fields ------------------------------------------------------------------------------


def test_fields_on_separate_lines_and_with_a_space_after_the_colon() -> None:
    body = ("username: user78@hotmail.com\npassword:mypass883\n\nphone: 6301238534\nresponse:1\n"
            "language:es gender:male repeat:2\ntts: Hola, buenos dias.  \n")
    form = parse_body(body).form()
    assert isinstance(form, MatrixTtsForm)
    assert form.phones == ("+16301238534",) and form.txt == "Hola, buenos dias."
    assert (form.language, form.gender, form.repeat, form.response) == ("es", "male", 2, True)


def test_fields_may_follow_the_message_line() -> None:
    request = parse_body("sms:Hello there\nusername:u@example.com password:p phone:12506063167")
    assert request.fields["txt"] == "Hello there" and request.fields["phone"] == "12506063167"


def test_the_message_takes_the_rest_of_its_line() -> None:
    request = parse_body(f"{CREDS} phone:1250 sms:call phone:555 or username:x now")
    assert request.fields["txt"] == "call phone:555 or username:x now"
    assert request.fields["phone"] == "1250"


def test_keyword_value_missing_is_left_to_the_form() -> None:
    request = parse_body(f"{CREDS} phone: sms:Hello")
    assert request.fields["phone"] == ""
    with pytest.raises(InvalidPin):
        request.form()


def test_missing_phone_is_513() -> None:
    with pytest.raises(InvalidPin):
        parse_body(f"{CREDS} sms:Hello").form()


def test_form_precedence_username_before_phone() -> None:
    with pytest.raises(InvalidUsername):
        parse_body("password:p sms:Hello").form()
    with pytest.raises(InvalidPassword):
        parse_body("username:u@example.com sms:Hello").account()


def test_empty_message_and_empty_url() -> None:
    with pytest.raises(InvalidTxt):
        parse_body(f"{CREDS} phone:12506063167 sms:   ").form()
    with pytest.raises(NoVoiceFile):
        parse_body(f"{CREDS} phone:12506063167 voiceurl:").form()


# --- structural refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "error"),
    [("USERNAME", InvalidUsername), ("Password", InvalidPassword), ("PHONE", InvalidPin),
     ("SMS", InvalidTxt), ("Tts", InvalidTxt), ("VOICEURL", NoVoiceFile), ("CallerID", InvalidParameter),
     ("RESPONSE", InvalidParameter)],
)
def test_uppercase_keyword_is_refused_with_the_fields_error(keyword: str, error: type[CodedError]) -> None:
    with pytest.raises(error) as caught:
        body = f"{CREDS} {keyword}:Hi" if keyword == "SMS" else f"{keyword}:x {CREDS} phone:1 sms:Hi"
        parse_body(body)
    assert "lowercase" in caught.value.detail


def test_uppercase_parameter_names_its_field() -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_body(f"{CREDS} phone:1 RESPONSE:1 tts:Hi")
    assert caught.value.status_text == "ERROR: INVALID RESPONSE"


def test_newline_inside_the_message_is_511() -> None:
    with pytest.raises(InvalidTxt) as caught:
        parse_body(f"{CREDS} phone:1 sms:Hello Adam, this is\na test, please ignore.")
    assert "one line" in caught.value.detail
    with pytest.raises(InvalidTxt):
        parse_body(f"{CREDS} phone:1 sms:\nHello")
    with pytest.raises(InvalidTxt):
        parse_body(f"{CREDS} phone:1 sms:Hello\n\nSent from my phone")


def test_two_messages_are_refused() -> None:
    for body in (f"{CREDS} phone:1 sms:Hello\ntts:Hello", f"{CREDS} phone:1 sms:Hello tts:Hello",
                 f"{CREDS} phone:1 voiceurl:http://x/a.wav\nvoiceurl:http://x/b.wav"):
        with pytest.raises(InvalidTxt) as caught:
            parse_body(body)
        assert "two messages" in caught.value.detail


def test_no_message_is_511() -> None:
    with pytest.raises(InvalidTxt):
        parse_body(f"{CREDS} phone:12506063167")


def test_field_given_twice() -> None:
    with pytest.raises(InvalidPin) as caught:
        parse_body(f"{CREDS} phone:1 phone:2 sms:Hi")
    assert "twice" in caught.value.detail


def test_stray_text_is_not_understood() -> None:
    for body in ("Hi team,\n" + SMS, f"{CREDS} phone:1 please sms:Hi", f"{CREDS} fone:1 sms:Hi"):
        with pytest.raises(MailNotUnderstood):
            parse_body(body)


# --- MIME, transfer encodings, charsets -----------------------------------------------------------------


def test_quoted_printable_soft_line_breaks_are_joined() -> None:
    body = quopri.encodestring(f"{SMS} Caf\u00e9 \u00fcber".encode(), quotetabs=False)
    assert b"=\n" in body  # the encoder wrapped the long line with soft breaks
    mail = raw(body.replace(b"\n", b"\r\n"),
               "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable")
    assert parse_mail(mail).fields["txt"].endswith("please ignore. Caf\u00e9 \u00fcber")


def test_base64_body() -> None:
    encoded = base64.encodebytes(SMS.encode("utf-8"))
    mail = raw(encoded, "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64")
    assert parse_mail(mail).fields["txt"] == "Hello Adam, this is a test, please ignore."


@pytest.mark.parametrize("charset", ["iso-8859-1", "windows-1252", "utf-8", "utf-16", "koi8-r"])
def test_declared_charsets_are_decoded(charset: str) -> None:
    text = "\u00e9t\u00e9" if charset != "koi8-r" else "\u043f\u0440\u0438\u0432\u0435\u0442"
    body = f"{CREDS} phone:1 sms:{text} ok\r\n".encode(charset)
    mail = raw(body, f"Content-Type: text/plain; charset={charset}")
    assert parse_mail(mail).fields["txt"] == f"{text} ok"


def test_windows_1252_specials() -> None:
    mail = raw(f"{CREDS} phone:1 sms:\u201cquoted\u201d \u20ac5".encode("cp1252"),
               "Content-Type: text/plain; charset=windows-1252")
    assert parse_mail(mail).fields["txt"] == "\u201cquoted\u201d \u20ac5"


def test_undeclared_8bit_is_refused() -> None:
    mail = raw(f"{CREDS} phone:1 sms:\u00e9t\u00e9".encode("latin-1"), "Content-Type: text/plain")
    with pytest.raises(MailCharsetError) as caught:
        parse_mail(mail)
    assert "without a declared charset" in caught.value.detail
    ascii_only = raw(f"{CREDS} phone:1 sms:ete".encode(), "Content-Type: text/plain")
    assert parse_mail(ascii_only).fields["txt"] == "ete"


def test_wrong_or_unknown_charset_is_refused() -> None:
    latin_as_utf8 = raw(f"{CREDS} phone:1 sms:\u00e9t\u00e9".encode("latin-1"))
    with pytest.raises(MailCharsetError) as caught:
        parse_mail(latin_as_utf8)
    assert "not valid utf-8" in caught.value.detail
    for charset in ("x-no-such-charset", "base64", "rot13"):
        with pytest.raises(MailCharsetError):
            parse_mail(raw(b"sms:hi", f"Content-Type: text/plain; charset={charset}"))


def test_multipart_alternative_uses_the_text_part() -> None:
    mail = MIMEMultipart("alternative")
    mail.attach(MIMEText(SMS, "plain", "utf-8"))
    mail.attach(MIMEText(f"<html><body><p>{SMS}</p><p>extra</p></body></html>", "html", "utf-8"))
    assert parse_mail(mail.as_bytes()).fields["txt"] == "Hello Adam, this is a test, please ignore."


def test_text_after_html_in_mixed_mail_is_found() -> None:
    mail = EmailMessage()
    mail.set_content(SMS)
    mail.add_alternative("<p>hello</p>", subtype="html")
    mail.add_attachment(b"\x00\x01", maintype="application", subtype="octet-stream", filename="a.bin")
    assert parse_mail(mail.as_bytes()).kind == "sms"


def test_html_only_is_refused() -> None:
    mail = MIMEText(f"<html><body>{SMS}</body></html>", "html", "utf-8")
    with pytest.raises(HtmlOnlyMail) as caught:
        parse_mail(mail.as_bytes())
    assert caught.value.status_text == "ERROR: HTML MAIL NOT ACCEPTED, SEND TEXT"


def test_attached_text_is_not_the_body() -> None:
    mail = EmailMessage()
    mail.add_attachment(SMS.encode(), maintype="text", subtype="plain", filename="job.txt")
    with pytest.raises(MailNotText):
        parse_mail(mail.as_bytes())


def test_no_headers_at_all_is_plain_ascii_text() -> None:
    assert parse_mail(b"\r\n" + SMS.encode() + b"\r\n").kind == "sms"


# --- format=flowed and signatures ----------------------------------------------------------------------


def test_format_flowed_is_unwrapped() -> None:
    wrapped = (f"{CREDS} phone:1 \r\nsms:Hello Adam, this is a \r\ntest, please \r\n ignore.\r\n"
               "-- \r\nAdam Smith\r\nDentist \r\n")
    mail = raw(wrapped.encode(), "Content-Type: text/plain; charset=utf-8; format=flowed")
    request = parse_mail(mail)
    assert request.fields["txt"] == "Hello Adam, this is a test, please ignore."  # space-stuffed " ignore."


def test_format_flowed_delsp() -> None:
    wrapped = f"{CREDS} phone:1 sms:Hel \r\nlo\r\n"
    mail = raw(wrapped.encode(), "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes")
    assert parse_mail(mail).fields["txt"] == "Hello"


def test_wrapped_without_flowed_is_the_one_line_error() -> None:
    wrapped = f"{CREDS} phone:1 sms:Hello Adam, this is a \r\ntest, please ignore.\r\n"
    with pytest.raises(InvalidTxt):
        parse_mail(raw(wrapped.encode()))


def test_signature_is_dropped() -> None:
    body = f"{SMS}\r\n-- \r\nAdam Smith\r\nphone: 555 1234, sms: anytime\r\n"
    assert parse_mail(raw(body.encode())).fields["txt"] == "Hello Adam, this is a test, please ignore."
    assert drop_signature(["a", "--", "b"]) == ["a"]
    assert drop_signature(["a", "--- ", "b"]) == ["a", "--- ", "b"]


def test_unflow_rules() -> None:
    assert unflow(["a ", "b ", "c"]) == ["a b c"]
    assert unflow(["-- ", "sig"]) == ["-- ", "sig"]
    assert unflow(["x ", "-- "]) == ["x -- "]  # a soft break joins whatever follows
    assert unflow(["ends "]) == ["ends "]
    assert unflow(["a ", "b"], delsp=True) == ["ab"]


def test_crlf_and_bare_cr_line_ends() -> None:
    with pytest.raises(InvalidTxt):
        parse_mail(raw(f"{CREDS} phone:1 sms:Hello\rworld".encode()))


def test_control_characters_in_the_message_are_511() -> None:
    with pytest.raises(InvalidTxt):
        parse_body(f"{CREDS} phone:12506063167 sms:Hello \x07 bell").form()


# --- property: only gateway errors -----------------------------------------------------------------------

_PIECES = st.sampled_from([
    b"username:", b"password:", b"phone:", b"sms:", b"tts:", b"voiceurl:", b"SMS:", b"response:",
    b"\r\n", b"\n", b" ", b"-- \r\n", b"=\r\n", b"=C3=A9", b"\xff\xfe", b"\xc3\xa9", b"Content-Type: ",
    b"text/html", b"multipart/alternative; boundary=\"b\"", b"--b\r\n", b"--b--", b"charset=",
    b"utf-7", b"format=flowed", b"Content-Transfer-Encoding: base64\r\n", b"quoted-printable", b"\x00",
    b"12506063167", b"user@example.com", b"hello", b":", b";", b"\"", b"=?utf-8?q?x?=",
])


def _check(data: bytes) -> None:
    try:
        request = parse_mail(data)
        request.form()
    except CodedError:  # any layer's coded error (e.g. ivr's UrlRefused from check_url); else a failure
        return


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_gateway_errors(data: bytes) -> None:
    _check(data)


@settings(max_examples=500, deadline=None)
@given(st.lists(_PIECES, max_size=60).map(b"".join))
def test_mail_like_bytes_raise_only_gateway_errors(data: bytes) -> None:
    _check(data)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_bodies_raise_only_gateway_errors(text: str) -> None:
    with contextlib.suppress(CodedError):
        parse_body(text).form()
