"""Text normalisation: times, dates, numbers, money, phone numbers and abbreviations become words.

`normalize` is pure and engine-independent, so every engine reads "9am", "$12.50" or "24/11/2026" the
same way, and the cache keys on what is actually spoken. Only ASCII digits are rewritten; after one
pass no ASCII digit is left, which makes the function idempotent. docs/tts.md lists the rules.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable

from tts.base import Language
from tts.errors import InvalidText


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_EN_ONES = _words(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
)
_EN_TENS = _words("_ _ twenty thirty forty fifty sixty seventy eighty ninety")
_EN_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_EN_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
               "nine": "ninth", "twelve": "twelfth"}
_ES_UNITS = _words(
    "cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince dieciséis "
    "diecisiete dieciocho diecinueve veinte veintiuno veintidós veintitrés veinticuatro veinticinco "
    "veintiséis veintisiete veintiocho veintinueve"
)
_ES_TENS = _words("_ _ _ treinta cuarenta cincuenta sesenta setenta ochenta noventa")
_ES_HUNDREDS = _words(
    "_ ciento doscientos trescientos cuatrocientos quinientos seiscientos setecientos ochocientos novecientos"
)
_ES_ORD_UNITS = _words("_ primero segundo tercero cuarto quinto sexto séptimo octavo noveno")
_ES_ORD_TENS = _words(
    "_ décimo vigésimo trigésimo cuadragésimo quincuagésimo sexagésimo septuagésimo octogésimo nonagésimo"
)
_MONTHS = {
    "us": _words("_ January February March April May June July August September October November December"),
    "es": _words(
        "_ enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"
    ),
}
MAX_SPOKEN_DIGITS = 15
"""Integers longer than this are read digit by digit."""


# --- numbers to words -------------------------------------------------------------------------


def _en_cardinal(n: int) -> str:
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_EN_ONES[hundreds]} hundred" + (f" {_en_cardinal(rest)}" if rest else "")
    for scale, word in _EN_SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return f"{_en_cardinal(high)} {word}" + (f" {_en_cardinal(rest)}" if rest else "")
    raise AssertionError(n)


def _es_below_thousand(n: int) -> str:
    if n < 30:
        return _ES_UNITS[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _ES_TENS[tens] + (f" y {_ES_UNITS[ones]}" if ones else "")
    if n == 100:
        return "cien"
    hundreds, rest = divmod(n, 100)
    return _ES_HUNDREDS[hundreds] + (f" {_es_below_thousand(rest)}" if rest else "")


def _apocope(words: str) -> str:
    """'uno' before a masculine noun or 'mil': 'veintiún', 'treinta y un', 'un'."""
    if words.endswith("veintiuno"):
        return words[: -len("veintiuno")] + "veintiún"
    if words == "uno" or words.endswith(" uno"):
        return words[:-1]
    return words


def _es_cardinal(n: int) -> str:
    if n < 1000:
        return _es_below_thousand(n)
    for scale, one, many in ((10**12, "un billón", "billones"), (10**6, "un millón", "millones")):
        if n >= scale:
            high, rest = divmod(n, scale)
            head = one if high == 1 else f"{_apocope(_es_cardinal(high))} {many}"
            return head + (f" {_es_cardinal(rest)}" if rest else "")
    high, rest = divmod(n, 1000)
    head = "mil" if high == 1 else f"{_apocope(_es_below_thousand(high))} mil"
    return head + (f" {_es_below_thousand(rest)}" if rest else "")


def cardinal(n: int, language: Language) -> str:
    """A non-negative or negative integer in words ('twenty-one', 'veintiuno')."""
    if n < 0:
        return ("minus " if language == "us" else "menos ") + cardinal(-n, language)
    if len(str(n)) > MAX_SPOKEN_DIGITS:
        return digits(str(n), language)
    return _en_cardinal(n) if language == "us" else _es_cardinal(n)


def ordinal(n: int, language: Language, feminine: bool = False) -> str:
    """An ordinal in words ('twenty-first', 'vigésimo primero' / 'primera')."""
    if language == "us":
        words = _en_cardinal(n) if len(str(n)) <= MAX_SPOKEN_DIGITS else digits(str(n), language)
        head, sep, last = words.rpartition("-") if "-" in words.split(" ")[-1] else words.rpartition(" ")
        if last in _EN_ORDINAL:
            last = _EN_ORDINAL[last]
        else:
            last = last[:-1] + "ieth" if last.endswith("y") else last + "th"
        return head + sep + last
    if not 0 < n < 100:
        return cardinal(n, language)
    tens, ones = divmod(n, 10)
    parts = [w for w in (_ES_ORD_TENS[tens] if tens else "", _ES_ORD_UNITS[ones] if ones else "") if w]
    if feminine:
        parts = [w[:-1] + "a" for w in parts]
    return " ".join(parts)


def digits(run: str, language: Language) -> str:
    """Each ASCII digit of `run` as a word ('zero four', 'cero cuatro')."""
    return " ".join(cardinal(int(d), language) for d in run if d.isascii() and d.isdigit())


# --- parsing numerals ---------------------------------------------------------------------------

_NUMBER = {
    "us": r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?(?![0-9])|[0-9]+(?:\.[0-9]+)?",
    "es": r"[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]+)?(?![0-9])|[0-9]+,[0-9]+|[0-9]+\.[0-9]+|[0-9]+",
}


def _split_number(numeral: str, language: Language) -> tuple[str, str | None]:
    """('1,234.5', us) -> ('1234', '5'): integer digits and the fraction's digits (None: none).

    Spanish groups thousands with '.' and marks decimals with ','; a '.' that does not group
    thousands (3.5, 12.50) is a decimal point.
    """
    if language == "us":
        whole, _, fraction = numeral.replace(",", "").partition(".")
    elif "," in numeral or _ES_GROUPED.fullmatch(numeral):
        whole, _, fraction = numeral.replace(".", "").partition(",")
    else:
        whole, _, fraction = numeral.partition(".")
    return whole, (fraction if fraction else None)


_ES_GROUPED = re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})+")


def _read_number(numeral: str, language: Language) -> str:
    whole, fraction = _split_number(numeral, language)
    if len(whole) > 1 and whole.startswith("0") and fraction is None:
        return digits(whole, language)
    words = cardinal(int(whole), language)
    if fraction is None:
        return words
    if language == "us":
        return f"{words} point {digits(fraction, language)}"
    separator = "punto" if "," not in numeral else "coma"
    short = len(fraction) <= 2 and not fraction.startswith("0")
    return f"{words} {separator} {cardinal(int(fraction), language) if short else digits(fraction, language)}"


# --- rules ----------------------------------------------------------------------------------------

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str], Language], str]]

_ABBREVIATIONS: dict[Language, dict[str, str]] = {
    "us": {"Dr": "Doctor", "Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Jr": "Junior", "Sr": "Senior",
           "Ave": "Avenue", "Blvd": "Boulevard", "Apt": "Apartment", "Rd": "Road", "Mt": "Mount",
           "vs": "versus", "etc": "et cetera", "St": "Street"},
    "es": {"Sr": "señor", "Sra": "señora", "Srta": "señorita", "Dr": "doctor", "Dra": "doctora",
           "Lic": "licenciado", "Lcda": "licenciada", "Ing": "ingeniero", "Av": "avenida", "Avda": "avenida",
           "Ud": "usted", "Uds": "ustedes", "etc": "etcétera", "Sres": "señores", "Profa": "profesora",
           "Prof": "profesor"},
}


def _abbreviation(match: re.Match[str], language: Language) -> str:
    word = match.group(1)
    expansion = _ABBREVIATIONS[language][word]
    if language == "us" and word == "St" and _saint(match):
        expansion = "Saint"
    if _sentence_start(match):
        expansion = expansion[0].upper() + expansion[1:]
    return expansion + ("." if match.end() == len(match.string) else "")


def _saint(match: re.Match[str]) -> bool:
    """'St. Louis' (a capitalised name follows, no capitalised word before) rather than 'Main St.'."""
    after_name = re.match(r"\s+[A-Z]", match.string[match.end():]) is not None
    before_name = re.search(r"[A-Z][a-z]*\s*$", match.string[: match.start()]) is not None
    return after_name and not before_name


def _sentence_start(match: re.Match[str]) -> bool:
    return re.search(r"(^|[.!?¡¿]\s*)$", match.string[: match.start()]) is not None


def _number_sign(_match: re.Match[str], language: Language) -> str:
    """'No. 5' / 'Nº 5' -> 'number 5' / 'número 5' (the digits are read by a later rule)."""
    return "number " if language == "us" else "número "


def _date_words(year: int, month: int, day: int, language: Language) -> str | None:
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(max(year, 1), month)[1]):
        return None
    name = _MONTHS[language][month]
    if language == "us":
        return f"{name} {ordinal(day, language)}, {_en_year(year)}"
    day_words = "primero" if day == 1 else cardinal(day, language)
    return f"{day_words} de {name} de {cardinal(year, language)}"


def _en_year(year: int) -> str:
    high, low = divmod(year, 100)
    if year < 1000 or 2000 <= year <= 2009 or (low == 0 and high % 10 == 0):
        return cardinal(year, "us")
    if low == 0:
        return f"{cardinal(high, 'us')} hundred"
    return f"{cardinal(high, 'us')} {'oh ' + cardinal(low, 'us') if low < 10 else cardinal(low, 'us')}"


def _iso_date(match: re.Match[str], language: Language) -> str:
    year, month, day = (int(g) for g in match.groups())
    return _date_words(year, month, day, language) or match.group(0)


def _slash_date(match: re.Match[str], language: Language) -> str:
    first, second, year = (int(g) for g in match.groups())
    month, day = (first, second) if language == "us" else (second, first)
    return _date_words(year, month, day, language) or match.group(0)


def _time(match: re.Match[str], language: Language) -> str:
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    meridiem = (match.group(3) or "").lower()
    if hour > 23 or minute > 59 or (meridiem and not 1 <= hour <= 12):
        return match.group(0)
    if meridiem:
        hour24 = hour % 12 + (12 if meridiem == "p" else 0)
    elif match.group(2) is not None and (hour == 0 or hour > 12):
        hour24 = hour
    else:  # 9:30 without a.m./p.m.: read as written, no part of the day
        return _clock(hour, minute, language, None)
    return _clock(hour24 % 12 or 12, minute, language, hour24)


def _clock(hour: int, minute: int, language: Language, hour24: int | None) -> str:
    """Hour 1-12 and minutes in words; with hour24, the part of the day (AM/PM, de la mañana...)."""
    if language == "us":
        if minute == 0:
            tail = "" if hour24 is not None else " o'clock"
        else:
            tail = " " + (f"oh {cardinal(minute, language)}" if minute < 10 else cardinal(minute, language))
        period = "" if hour24 is None else (" AM" if hour24 < 12 else " PM")
        return cardinal(hour, language) + tail + period
    hour_words = "una" if hour == 1 else cardinal(hour, language)
    if minute == 0:
        tail = " en punto" if hour24 is None else ""
    else:
        tail = " y " + {15: "cuarto", 30: "media"}.get(minute, cardinal(minute, language))
    return hour_words + tail + ("" if hour24 is None else " " + _es_day_part(hour24))


def _es_day_part(hour24: int) -> str:
    if hour24 == 12:
        return "del mediodía"
    if 1 <= hour24 <= 5:
        return "de la madrugada"
    if 6 <= hour24 <= 11:
        return "de la mañana"
    return "de la tarde" if 13 <= hour24 <= 19 else "de la noche"


def _phone(match: re.Match[str], language: Language) -> str:
    text = match.group(0)
    groups = re.findall(r"[0-9]+", text)
    spoken = ", ".join(digits(g, language) for g in groups)
    return (("plus " if language == "us" else "más ") if text.startswith("+") else "") + spoken


_CURRENCIES = {
    "$": {"us": ("dollar", "dollars", "cent", "cents"), "es": ("dólar", "dólares", "centavo", "centavos")},
    "€": {"us": ("euro", "euros", "cent", "cents"), "es": ("euro", "euros", "céntimo", "céntimos")},
    "£": {"us": ("pound", "pounds", "penny", "pence"), "es": ("libra", "libras", "penique", "peniques")},
}
_SCALE_WORDS = _words("thousand million billion trillion mil millón millones billón billones")


def _money(match: re.Match[str], language: Language) -> str:
    groups = match.groupdict()
    if groups["post"]:
        return _say_money(bool(groups["sign3"]), "€", groups["amount2"], None, language)
    negative = bool(groups["sign1"] or groups["sign2"])
    return _say_money(negative, groups["pre"], groups["amount"], groups["scale"], language)


def _say_money(negative: bool, symbol: str, numeral: str, scale: str | None, language: Language) -> str:
    one, many, cent, cents = _CURRENCIES[symbol][language]
    minus = ("minus " if language == "us" else "menos ") if negative else ""
    whole, fraction = _split_number(numeral, language)
    if scale:
        return f"{minus}{_read_number(numeral, language)} {scale} {'de ' if language == 'es' else ''}{many}"
    if fraction is not None and len(fraction) > 2:
        return f"{minus}{_read_number(numeral, language)} {many}"
    units, hundredths = int(whole), int((fraction or "0").ljust(2, "0"))
    parts = []
    if units or not hundredths:
        parts.append(_count(units, one, many, language))
    if hundredths:
        parts.append(_count(hundredths, cent, cents, language))
    return minus + (" and " if language == "us" else " con ").join(parts)


def _count(n: int, singular: str, plural: str, language: Language) -> str:
    """'one dollar', 'veintiún dólares', 'un millón de dólares'."""
    if language == "us":
        return f"{cardinal(n, language)} {singular if n == 1 else plural}"
    words = _apocope(cardinal(n, language))
    of = " de" if n >= 10**6 and n % 10**6 == 0 else ""
    return f"{words}{of} {singular if n == 1 else plural}"


def _percent(match: re.Match[str], language: Language) -> str:
    sign = ("minus " if language == "us" else "menos ") if match.group(1) else ""
    return sign + _read_number(match.group(2), language) + (" percent" if language == "us" else " por ciento")


def _en_ordinal(match: re.Match[str], language: Language) -> str:
    return ordinal(int(match.group(1)), language)


def _es_ordinal(match: re.Match[str], language: Language) -> str:
    return ordinal(int(match.group(1)), language, feminine=match.group(2) == "ª")


def _es_apocopated_ordinal(match: re.Match[str], language: Language) -> str:
    return "primer" if match.group(1) == "1" else "tercer"


def _number(match: re.Match[str], language: Language) -> str:
    sign = ("minus " if language == "us" else "menos ") if match.group(1) else ""
    return sign + _read_number(match.group(2), language)


def _compile(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


_NEG = r"(?:(?<![\w.,\-])(-))?"
_MERIDIEM = r"(?:\s?([ap])\.?\s?m\b(?:\.(?=[\s,;]+(?-i:[a-záéíóúñ0-9])))?)"
_PHONE = (
    r"\+[0-9]{1,3}(?:[\s.\-]?\(?[0-9]{1,4}\)?){2,}(?![0-9])"
    r"|\([0-9]{3}\)\s?[0-9]{3}[\-.\s][0-9]{4}(?![0-9])"
    r"|(?<![0-9.,\-])[0-9]{1,4}(?:-[0-9]{2,4}){2,}(?![0-9])"
    r"|(?<![0-9.,\-])[0-9]{3}\.[0-9]{3}\.[0-9]{4}(?![0-9])"
    r"|(?<![0-9.,\-])[0-9]{3}-[0-9]{4}(?![0-9])"
    r"|(?<![0-9.,])[0-9]{10,}(?![0-9])"
)


def _money_pattern(language: Language) -> str:
    number = _NUMBER[language]
    scale = r"(?:\s(?P<scale>" + "|".join(sorted(_SCALE_WORDS)) + r")\b)?"
    return (
        r"(?:(?<![\w.,])(?P<sign1>-)?(?P<pre>[$€£])(?P<sign2>-)?(?P<amount>" + number + ")" + scale + ")"
        r"|(?:(?<![\w.,])(?P<sign3>-)?(?P<amount2>" + number + r")\s?(?P<post>€))"
    )


def _rules(language: Language) -> list[_Rule]:
    abbreviations = "|".join(sorted(_ABBREVIATIONS[language], key=len, reverse=True))
    rules: list[_Rule] = [
        (_compile(r"(?<![\w.])(" + abbreviations + r")\.(?=\s|$)"), _abbreviation),
        (_compile(r"(?<![\w.])(?:No|Nº|N°|núm|Núm)\.?\s?(?=[0-9])"), _number_sign),
        (_compile(r"(?<![0-9])([0-9]{4})-([0-9]{2})-([0-9]{2})(?![0-9])"), _iso_date),
        (_compile(r"(?<![0-9/])([0-9]{1,2})[/\-]([0-9]{1,2})[/\-]([0-9]{4})(?![0-9/])"), _slash_date),
        (_compile(r"(?<![0-9:.,])([0-9]{1,2}):([0-9]{2})" + _MERIDIEM + r"?(?![0-9:])", re.I), _time),
        (_compile(r"(?<![0-9:.,])([0-9]{1,2})()" + _MERIDIEM, re.I), _time),
        (_compile(_PHONE), _phone),
        (_compile(_money_pattern(language)), _money),
        (_compile(_NEG + r"(" + _NUMBER[language] + r")\s?%"), _percent),
    ]
    if language == "us":
        rules.append((_compile(r"(?<![0-9.,])([0-9]+)(?:st|nd|rd|th)\b", re.I), _en_ordinal))
    else:
        rules.append((_compile(r"(?<![0-9.,])([0-9]+)\.?([ºª])"), _es_ordinal))
        rules.append((_compile(r"(?<![0-9.,])([13])er\b"), _es_apocopated_ordinal))
    rules.append((_compile(_NEG + r"(" + _NUMBER[language] + r")"), _number))
    return rules


_RULES: dict[Language, list[_Rule]] = {"us": _rules("us"), "es": _rules("es")}


def normalize(text: str, language: Language) -> str:
    """Spell out times, dates, numbers, money, percentages, phone numbers and abbreviations.

    Other text is left as it is. Pure: the same input always gives the same output.
    """
    for pattern, replace in _RULES[language]:
        text = pattern.sub(lambda m, r=replace: r(m, language), text)  # type: ignore[misc]
    return text


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def validate_text(text: str | bytes, max_chars: int) -> str:
    """The text to speak, or InvalidText: empty, too long, control characters, or bytes not UTF-8."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidText(f"text is not valid UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise InvalidText("text is empty")
    if len(text) > max_chars:
        raise InvalidText(f"text is {len(text)} characters, more than the limit of {max_chars}")
    bad = _CONTROL.search(text)
    if bad:
        raise InvalidText(f"text holds a control character U+{ord(bad.group(0)):04X} at {bad.start()}")
    return text
