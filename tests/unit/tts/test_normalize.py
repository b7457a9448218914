"""normalize() and validate_text(): the reading rules in both languages, and their properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tts.errors import InvalidText
from tts.normalize import cardinal, normalize, ordinal, validate_text

US = [
    # times
    ("Press 1 to confirm, tomorrow at 9am.", "Press one to confirm, tomorrow at nine AM."),
    ("at 9 a.m. on Tuesday", "at nine AM on Tuesday"),
    ("on Tuesday at 9am. Press 9 to replay.", "on Tuesday at nine AM. Press nine to replay."),
    ("at 9 A.M. Then", "at nine AM. Then"),
    ("at 9:30 pm", "at nine thirty PM"),
    ("at 9:30PM", "at nine thirty PM"),
    ("from 21:00", "from nine PM"),
    ("at 00:15", "at twelve fifteen AM"),
    ("at 12:00 pm", "at twelve PM"),
    ("at 9:05", "at nine oh five"),
    ("at 9:00", "at nine o'clock"),
    ("at 25:00", "at twenty-five:zero zero"),
    # dates
    ("on 2026-11-24", "on November twenty-fourth, twenty twenty-six"),
    ("on 11/24/2026", "on November twenty-fourth, twenty twenty-six"),
    ("on 1/2/2000", "on January second, two thousand"),
    ("on 3/1/1999", "on March first, nineteen ninety-nine"),
    ("on 3/1/1905", "on March first, nineteen oh five"),
    ("on 3/1/1900", "on March first, nineteen hundred"),
    ("on 2/30/2026", "on two/thirty/two thousand twenty-six"),
    ("on Tuesday", "on Tuesday"),
    # numbers
    ("1,234 people", "one thousand two hundred thirty-four people"),
    ("1,234,567", "one million two hundred thirty-four thousand five hundred sixty-seven"),
    ("pi is 3.14", "pi is three point one four"),
    ("-7 degrees", "minus seven degrees"),
    ("room 101", "room one hundred one"),
    ("agent 007", "agent zero zero seven"),
    ("0", "zero"),
    ("1,000,000,000,000", "one trillion"),
    # ordinals
    ("1st 2nd 3rd 4th", "first second third fourth"),
    ("11th 12th 21st 22nd", "eleventh twelfth twenty-first twenty-second"),
    ("40th 101st", "fortieth one hundred first"),
    # money
    ("$12.50", "twelve dollars and fifty cents"),
    ("$1", "one dollar"),
    ("$1.01", "one dollar and one cent"),
    ("$0.99", "ninety-nine cents"),
    ("$0", "zero dollars"),
    ("$12.5", "twelve dollars and fifty cents"),
    ("-$5", "minus five dollars"),
    ("$-5", "minus five dollars"),
    ("$1,000,000", "one million dollars"),
    ("$5 million", "five million dollars"),
    ("$2.5 billion", "two point five billion dollars"),
    ("€12.50", "twelve euros and fifty cents"),
    ("12.50€", "twelve euros and fifty cents"),
    ("£3", "three pounds"),
    # percentages
    ("50%", "fifty percent"),
    ("12.5 %", "twelve point five percent"),
    ("-3%", "minus three percent"),
    # phone numbers
    ("Call 250-606-3167", "Call two five zero, six zero six, three one six seven"),
    ("Call (250) 606-3167", "Call two five zero, six zero six, three one six seven"),
    ("Call 250.606.3167", "Call two five zero, six zero six, three one six seven"),
    ("Call +1 250 606 3167", "Call plus one, two five zero, six zero six, three one six seven"),
    ("Call 1-800-555-0199", "Call one, eight zero zero, five five five, zero one nine nine"),
    ("Call 12506063167", "Call one two five zero six zero six three one six seven"),
    ("Call 555-1234", "Call five five five, one two three four"),
    # abbreviations
    ("Dr. Smith", "Doctor Smith"),
    ("Mr. and Mrs. Jones", "Mister and Missus Jones"),
    ("He lives on Main St.", "He lives on Main Street."),
    ("on Main St. near the park", "on Main Street near the park"),
    ("St. Louis", "Saint Louis"),
    ("No. 5", "number five"),
    ("dried fruit, etc. and more", "dried fruit, et cetera and more"),
    # untouched
    ("Hello, this is Adam.", "Hello, this is Adam."),
    ("Dr.No", "Dr.No"),
    ("", ""),
]

ES = [
    ("Su cita es a las 9am.", "Su cita es a las nueve de la mañana."),
    ("a las 9 p. m. del viernes", "a las nueve de la noche del viernes"),
    ("a las 9 p. m.", "a las nueve de la noche."),
    ("a las 4pm", "a las cuatro de la tarde"),
    ("a las 9:30 pm", "a las nueve y media de la noche"),
    ("a la 1:15 pm", "a la una y cuarto de la tarde"),
    ("a las 21:00", "a las nueve de la noche"),
    ("a las 3:00 am", "a las tres de la madrugada"),
    ("a las 12:00 pm", "a las doce del mediodía"),
    ("a las 9:20", "a las nueve y veinte"),
    ("a las 9:00", "a las nueve en punto"),
    ("el 2026-11-24", "el veinticuatro de noviembre de dos mil veintiséis"),
    ("el 24/11/2026", "el veinticuatro de noviembre de dos mil veintiséis"),
    ("el 1/5/2026", "el primero de mayo de dos mil veintiséis"),
    ("el martes", "el martes"),
    ("1.234 personas", "mil doscientos treinta y cuatro personas"),
    ("1.000.000", "un millón"),
    ("2.000.000", "dos millones"),
    ("21.000", "veintiún mil"),
    ("101", "ciento uno"),
    ("100", "cien"),
    ("3,5", "tres coma cinco"),
    ("1.234,56", "mil doscientos treinta y cuatro coma cincuenta y seis"),
    ("3.5", "tres punto cinco"),
    ("0,05", "cero coma cero cinco"),
    ("-7 grados", "menos siete grados"),
    ("16 y 22", "dieciséis y veintidós"),
    ("1º 2ª 3er 1er 21º 10ª", "primero segunda tercer primer vigésimo primero décima"),
    ("$12.50", "doce dólares con cincuenta centavos"),
    ("$1", "un dólar"),
    ("$21", "veintiún dólares"),
    ("$31.01", "treinta y un dólares con un centavo"),
    ("$1.000.000", "un millón de dólares"),
    ("$5 millones", "cinco millones de dólares"),
    ("€12,50", "doce euros con cincuenta céntimos"),
    ("12,50 €", "doce euros con cincuenta céntimos"),
    ("-$5", "menos cinco dólares"),
    ("50%", "cincuenta por ciento"),
    ("Llame al 250-606-3167", "Llame al dos cinco cero, seis cero seis, tres uno seis siete"),
    ("Sr. Pérez y la Sra. López", "Señor Pérez y la señora López"),
    ("la Dra. Ruiz", "la doctora Ruiz"),
    ("Nº 5", "número cinco"),
    ("¿Confirma su cita?", "¿Confirma su cita?"),
    ("Hace 25°C", "Hace veinticinco°C"),
]


@pytest.mark.parametrize(("text", "expected"), US)
def test_english(text: str, expected: str) -> None:
    assert normalize(text, "us") == expected


@pytest.mark.parametrize(("text", "expected"), ES)
def test_spanish(text: str, expected: str) -> None:
    assert normalize(text, "es") == expected


@pytest.mark.parametrize(
    ("n", "us", "es"),
    [
        (15, "fifteen", "quince"),
        (30, "thirty", "treinta"),
        (99, "ninety-nine", "noventa y nueve"),
        (115, "one hundred fifteen", "ciento quince"),
        (500, "five hundred", "quinientos"),
        (1001, "one thousand one", "mil uno"),
        (2021, "two thousand twenty-one", "dos mil veintiuno"),
        (21_000_000, "twenty-one million", "veintiún millones"),
        (10**9, "one billion", "mil millones"),
        (10**12, "one trillion", "un billón"),
    ],
)
def test_cardinals(n: int, us: str, es: str) -> None:
    assert cardinal(n, "us") == us
    assert cardinal(n, "es") == es


def test_huge_numbers_are_read_digit_by_digit() -> None:
    assert cardinal(10**20, "us").split() == ["one"] + ["zero"] * 20


def test_ordinals() -> None:
    assert ordinal(93, "us") == "ninety-third"
    assert ordinal(1000, "us") == "one thousandth"
    assert ordinal(33, "es", feminine=True) == "trigésima tercera"
    assert ordinal(150, "es") == "ciento cincuenta"


_ASCII_DIGIT = re.compile(r"[0-9]")


@settings(max_examples=300, deadline=None)
@given(st.text(), st.sampled_from(["us", "es"]))
def test_never_raises_and_is_idempotent(text: str, language: str) -> None:
    once = normalize(text, language)  # type: ignore[arg-type]
    assert normalize(once, language) == once  # type: ignore[arg-type]
    assert not _ASCII_DIGIT.search(once)


_NUMERIC_TEXT = st.text(alphabet="0123456789 .,:-/$€%apm+()ºª", max_size=40)


@settings(max_examples=500, deadline=None)
@given(_NUMERIC_TEXT, st.sampled_from(["us", "es"]))
def test_numeric_soup_leaves_no_digits(text: str, language: str) -> None:
    once = normalize(text, language)  # type: ignore[arg-type]
    assert not _ASCII_DIGIT.search(once)
    assert normalize(once, language) == once  # type: ignore[arg-type]


@given(st.text(alphabet=st.characters(blacklist_categories=["Nd"]), max_size=60))
def test_text_without_digits_or_abbreviations_is_unchanged(text: str) -> None:
    if re.search(r"\b(?:[A-Z][a-z]{0,3}|vs|etc|núm)\.", text):
        return
    assert normalize(text, "us") == text


# --- validate_text -----------------------------------------------------------------------------


def test_validate_accepts_normal_text() -> None:
    assert validate_text("Hola, ¿cómo está?\nBien.\t", 100) == "Hola, ¿cómo está?\nBien.\t"


def test_validate_decodes_utf8_bytes() -> None:
    assert validate_text("señor".encode(), 100) == "señor"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("  \n\t ", "empty"),
        ("x" * 11, "limit of 10"),
        ("bad\x00byte", "U+0000"),
        ("bell\x07", "U+0007"),
        ("esc\x1b[0m", "U+001B"),
        ("c1\x85", "U+0085"),
        (b"\xff\xfe", "UTF-8"),
        (b"caf\xc3", "UTF-8"),
    ],
)
def test_validate_rejects(text: str | bytes, reason: str) -> None:
    with pytest.raises(InvalidText) as caught:
        validate_text(text, 10)
    assert reason in caught.value.detail
    assert caught.value.code == 511


def test_validate_counts_characters_not_bytes() -> None:
    assert validate_text("ñ" * 10, 10) == "ñ" * 10
