"""Personal data out of free text: the survey comments a report may quote.

``mask_pii(text, names)`` replaces each piece of personal data it finds with a tag
that says what kind of data was there, in ASCII so it reads the same in a Chinese and
an English report, and tells nothing of the original (not even its length):

    [phone]  mainland mobile numbers (138 1234 5678, +86 138-1234-5678, 0086…),
             landlines (010-6552 9988, (0755) 8888 9999, 021-64221234转123), North
             American numbers ((212) 555-0147, 212-555-0147, +1 212 555 0147), other
             international numbers written with their + country code, and a 7- or
             8-digit local number that follows a word for phone or calling
             (电话 / 回电 / call me at 8888 9999)
    [email]  e-mail addresses
    [id]     PRC resident identity numbers: 18 digits (the last may be X) and the
             15-digit numbers of before 1999, recognised by a province code and a
             plausible birth date (month 01-12, day 01-31) in their place
    [name]   the names given (the CRM's customer names): a Chinese name wherever it
             stands; a Latin-script name, and each of its words, as whole words in any
             case (a surname alone identifies as well as the full name; a word that is
             also a name, "Will" of "Will Brown", is masked too: privacy first)

What it leaves alone on purpose: amounts (500元, ¥1,280.50), dates and times
(2026-11-23 10:30, 2026年11月23日), ticket and order ids (T-000123), scores, counts and
other numbers that do not have a phone number's or an identity number's shape. A
number is only a phone number when its digits stand on their own (no digit right
before or after): 13812345678 is a mobile number, 9138123456789 is not.

Full-width characters (１３８…, ＠, （０１０）) are recognised as their ASCII forms;
the text keeps its own characters everywhere it is not masked. Pure: no I/O, no
configuration.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

MASKS = {"phone": "[phone]", "email": "[email]", "id": "[id]", "name": "[name]"}

# Full-width ASCII (U+FF01-U+FF5E) and the ideographic space, one character for one, so
# a match in the folded text has the same offsets in the original.
_FOLD_FULL_WIDTH = str.maketrans({**{chr(code): chr(code - 0xFEE0)
                                     for code in range(0xFF01, 0xFF5F)},
                                  "\u3000": " "})

# 张三@qq.com is an address whole, not a name and "@qq.com".
# A local part in Latin or wholly in Chinese characters (a Chinese word before a Latin
# address, 邮箱li@…, is not part of it).
_EMAIL = re.compile(r"(?:[A-Za-z0-9._%+-]+|[\u3400-\u9fff]+)@[A-Za-z0-9-]+"
                    r"(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")

# PRC identity numbers: province code, 4 more area digits, birth date, sequence (and
# for 18 digits a check character 0-9 or X). The check digit is not verified: a
# mistyped number is still someone's.
_PROVINCE = r"(?:1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[1-3]|91)"
_MONTH_DAY = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
_IDENTITY = re.compile(
    rf"(?<!\d)(?:{_PROVINCE}\d{{4}}\s?(?:18|19|20)\d{{2}}{_MONTH_DAY}\s?\d{{3}}[\dX]"
    rf"|{_PROVINCE}\d{{4}}\d{{2}}{_MONTH_DAY}\d{{3}})(?![\dX])", re.IGNORECASE)

# Mainland mobile: 1[3-9]x and eight more digits, grouped any way by single spaces,
# dashes or dots (138 1234 5678, 138-123-45678, 138.1234.5678) or not at all, with an
# optional +86 / 0086 / 86 / (+86).
_MOBILE_CN = re.compile(
    r"(?<!\d)(?:(?:\+|00)?86[\s-]?|\(\+?86\)\s?)?1[3-9]\d(?:[\s.-]?\d){8}(?!\d)")

# Mainland landline: area code 0 + 2 digits (010, 020-029) or 0 + 3 digits (0311,
# 0755, ...), bracketed or not, then 7 or 8 digits, then an optional extension.
_AREA_CODE = r"0(?:[12]\d|[3-9]\d{2})"
_EXTENSION = r"(?:\s?(?:转|分机|ext\.?|x|#|-)\s?\d{1,6}(?!\d))?"
_LANDLINE_CN = re.compile(
    rf"(?<!\d)(?:\(\s?{_AREA_CODE}\s?\)\s?|{_AREA_CODE}[\s-]?)\d{{3,4}}[\s-]?\d{{4}}(?!\d)"
    rf"{_EXTENSION}", re.IGNORECASE)

# North American: (212) 555-0147, 212-555-0147, 212.555.0147, +1 212 555 0147. The
# area code needs its brackets or a separator: ten bare digits are as often an
# order number.
_NORTH_AMERICAN = re.compile(
    rf"(?<!\d)(?:\+?1[\s.-]?)?(?:\(\s?\d{{3}}\s?\)\s?|\d{{3}}[\s.-])\d{{3}}[\s.-]\d{{4}}(?!\d)"
    rf"{_EXTENSION}", re.IGNORECASE)

# Any other number written with its + country code (+44 20 7946 0958): 8 to 15 digits
# (E.164) in groups.
_INTERNATIONAL = re.compile(r"(?<![\dA-Za-z+])\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}(?!\d)")

# A local number without area code is only a phone number a few characters after a
# word that says so (电话, 回电, call me at, tel.); English words whole, in any form
# (called, telephone), not inside another word (hotel, excellent).
_PHONE_WORDS = (r"电话|手机|座机|联系|致电|回电|来电|拨打|"
                r"(?<![A-Za-z])(?:tel|phone|call|mobile|cell|ring|reach)[A-Za-z]*")
_LABELLED_LOCAL = re.compile(
    rf"(?:{_PHONE_WORDS})[^\d\n]{{0,12}}?(?P<pii>(?<!\d)\d{{3,4}}[\s-]?\d{{4}}(?!\d))",
    re.IGNORECASE)


def _digits_of_e164(match: re.Match[str]) -> bool:
    return 8 <= sum(character.isdigit() for character in match.group()) <= 15


_Detector = tuple[str, re.Pattern[str], Callable[[re.Match[str]], bool] | None]
_DETECTORS: tuple[_Detector, ...] = (
    ("email", _EMAIL, None),
    ("id", _IDENTITY, None),
    ("phone", _MOBILE_CN, None),
    ("phone", _LANDLINE_CN, None),
    ("phone", _NORTH_AMERICAN, None),
    ("phone", _INTERNATIONAL, _digits_of_e164),
    ("phone", _LABELLED_LOCAL, None),
)

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_FORMS_OF_ADDRESS = "先生|女士|小姐|太太|老师|师傅|经理|总"
# A Latin-script name is a whole word: no Latin letter or digit right before or after
# (a Chinese character next to it is a boundary, unlike \b).
_LATIN_WORD_CHARACTER = r"A-Za-z0-9\u00C0-\u024F\u1E00-\u1EFF"


def _name_patterns(names: Iterable[str | None]) -> list[re.Pattern[str]]:
    """One pattern per name and, for a Latin-script name, per word of it; longest
    first, so a full name is masked as one."""
    texts: set[str] = set()
    chinese: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            continue   # a customer without a name in the CRM
        name = name.translate(_FOLD_FULL_WIDTH).strip()
        if _CJK.search(name):
            # Written with or without spaces between its characters (王 伟, 王伟).
            chinese.add("".join(name.split()))
            continue
        words = re.split(r"[\s,]+", name)
        texts.update(word for word in [" ".join(words), *words] if len(word) >= 2)
    patterns = [re.compile(r"\s*".join(re.escape(character) for character in name))
                for name in sorted(chinese, key=len, reverse=True) if len(name) >= 2]
    # The surname with a form of address (王先生, 李女士, 张经理) names the customer too.
    patterns += [re.compile(re.escape(surname) + rf"\s*(?:{_FORMS_OF_ADDRESS})")
                 for surname in sorted({name[0] for name in chinese if len(name) >= 2})]
    boundary_before = rf"(?<![{_LATIN_WORD_CHARACTER}])"
    boundary_after = rf"(?![{_LATIN_WORD_CHARACTER}])"
    for text in sorted(texts, key=len, reverse=True):
        body = r"\s+".join(re.escape(word) for word in text.split(" "))
        patterns.append(re.compile(boundary_before + body + boundary_after, re.IGNORECASE))
    return patterns


def mask_pii(text: str, names: Iterable[str] = ()) -> str:
    """``text`` with every phone number, e-mail address, PRC identity number and each
    of ``names`` replaced by its tag (MASKS). Where two findings overlap, the one that
    starts first wins, the longer at the same start (an e-mail address made of a
    phone number is one e-mail address)."""
    if not text:
        return text
    folded = text.translate(_FOLD_FULL_WIDTH)
    found: list[tuple[int, int, str]] = []
    for kind, pattern, accept in _DETECTORS:
        for match in pattern.finditer(folded):
            if accept is None or accept(match):
                group = "pii" if "pii" in pattern.groupindex else 0
                found.append((match.start(group), match.end(group), kind))
    for pattern in _name_patterns(names):
        found.extend((match.start(), match.end(), "name") for match in pattern.finditer(folded))

    masked, position = [], 0
    for start, end, kind in sorted(found, key=lambda span: (span[0], -span[1])):
        if start < position:
            continue   # inside what an earlier finding masked
        masked += [text[position:start], MASKS[kind]]
        position = end
    masked.append(text[position:])
    return "".join(masked)
