"""Is this answer right? Normalised comparison first, a judge model only where that cannot tell.

Used twice: to verify the teacher's answers before they become training data, and to grade every
contestant in the benchmark — the same rules for both, so a verified training example and a correct
benchmark answer mean the same thing.

Two answers agree when, after the wrapping a model adds (`Answer:`, `\\boxed{}`, `$…$`, markdown,
quotes) is removed:
- both name the same option of a multiple-choice question (`B`, `(b)`, `Option B`, the option's text);
- or both are numbers of equal value (`1,000` = `1 000` = `1e3`, `3/4` = `0.75` = `\\frac{3}{4}`,
  `twelve` = `12`) whose units do not contradict each other. A unit may be left out on one side
  (`$12` = `12`, `75%` = `75`), but two named units must be the same unit under another spelling
  (`km` = `kilometres`, `$` = `USD`); nothing is converted, so `1 km` ≠ `1000 m`;
- or both read the same once case, accents, punctuation and leading articles are ignored.
Otherwise they are a "mismatch", which a judge model may still overturn for text answers (or one number
in two different units), never for two different numbers or two different options: those are not up
for interpretation.

Every table and pattern here is built once at import: this runs once per answer, on up to a million.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from fractions import Fraction
from functools import lru_cache
from typing import Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict

from synthtune.contracts.usage import Usage
from synthtune.prompts import Verdict

GradeMethod = Literal["match", "numeric", "choice", "judge", "mismatch", "no_answer"]

# ---- What a model wraps an answer in ------------------------------------------------------------

_WRAPPING = " \t\r\n*_`\"'“”‘’«»"
_ANSWER_PREFIX = re.compile(
    r"(?:the\s+)?(?:final\s+)?answer(?:\s+is\b\s*[:=]?|\s*[:=])\s*(?=\S)", re.IGNORECASE
)
_DOLLAR_ESCAPE = "\ue000"  # stands for `\$` while `$…$` math delimiters are removed
_LATEX_MATH = re.compile(r"\$\$?([^$]*)\$\$?")
_LATEX_REPLACEMENTS = {
    "\\,": " ",
    "\\;": " ",
    "\\:": " ",
    "\\ ": " ",
    "\\!": "",
    "~": " ",
    "{,}": ",",
    "\\%": "%",
    "\\(": " ",
    "\\)": " ",
    "\\[": " ",
    "\\]": " ",
    "\\left": "",
    "\\right": "",
    "\\times": "×",
    "\\cdot": "×",
    "\\degree": "°",
    "\\circ": "°",
    "^\\circ": "°",
    "^{\\circ}": "°",
    "\\euro": "€",
    "\\pounds": "£",
}
_LATEX_TOKEN = re.compile("|".join(re.escape(token) for token in sorted(_LATEX_REPLACEMENTS, key=len)[::-1]))
_LATEX_WRAPPER = re.compile(r"\\(?:boxed|fbox|text[a-z]*|math[a-z]*|mbox|operatorname)\s*\{([^{}]*)\}")
_LATEX_FRACTION = re.compile(r"\\[dt]?frac\s*(?:\{([^{}]*)\}|(\w))\s*(?:\{([^{}]*)\}|(\w))")


def _strip_latex(text: str) -> str:
    """`\\boxed{\\frac{3}{4}}` → `3/4`: the LaTeX a model may put around a plain answer."""
    text = text.replace("\\$", _DOLLAR_ESCAPE)
    if text.count("$") >= 2:  # one `$` is a currency sign, a pair delimits math
        text = _LATEX_MATH.sub(r"\1", text)
    text = _LATEX_TOKEN.sub(lambda token: _LATEX_REPLACEMENTS[token[0]], text)
    while True:
        unwrapped = _LATEX_WRAPPER.sub(r"\1", text)
        if unwrapped == text:
            break
        text = unwrapped
    # A leading space keeps `1\frac{1}{2}` a mixed number rather than 11/2.
    text = _LATEX_FRACTION.sub(lambda f: f" {f[1] or f[2]}/{f[3] or f[4]}", text)
    return text.replace("{", "").replace("}", "").replace(_DOLLAR_ESCAPE, "$").strip()


def _clean(answer: str) -> str:
    """The answer without LaTeX, markdown, quotes or an `Answer:` prefix; case kept."""
    text = unicodedata.normalize("NFKC", answer).replace("−", "-")  # NFKC keeps U+2212 MINUS SIGN
    if "\\" in text or "$" in text or "{" in text or "~" in text:
        text = _strip_latex(text)
    text = text.strip(_WRAPPING)
    while prefix := _ANSWER_PREFIX.match(text):
        text = text[prefix.end() :].strip(_WRAPPING)
    return text


# ---- Text -----------------------------------------------------------------------------------------

_ARTICLES = {"a", "an", "the"}
_ACCENTS = re.compile(r"[\u0300-\u036f]+")
_PUNCTUATION = re.compile(r"[^\w\s/.%-]+|_+|(?<!\d)[./-]|[./-](?!\d)")  # \w has `_`


def normalise_text(answer: str) -> str:
    """Case, accents, punctuation, surrounding markup, an answer prefix and leading articles removed."""
    text = unicodedata.normalize("NFKD", _clean(answer).casefold())
    text = _PUNCTUATION.sub(" ", _ACCENTS.sub("", text))
    words = text.split()
    while len(words) > 1:  # an article alone is the answer ("A"), not a word before it
        if words[0] in _ARTICLES:
            words = words[1:]
        elif words[:2] == ["answer", "is"] and len(words) > 2:
            words = words[2:]
        elif words[:3] == ["final", "answer", "is"] and len(words) > 3:
            words = words[3:]
        else:
            break
    return " ".join(words)


_normalised = lru_cache(maxsize=4096)(normalise_text)  # references and majority votes repeat


# ---- Units ----------------------------------------------------------------------------------------

# canonical unit: its other spellings, singular (a plural is found by _stem). Currencies are units too.
_UNIT_SPELLINGS: dict[str, tuple[str, ...]] = {
    # length
    "mm": ("millimetre", "millimeter"),
    "cm": ("centimetre", "centimeter"),
    "m": ("metre", "meter"),
    "km": ("kilometre", "kilometer"),
    "in": ("inch",),
    "ft": ("foot", "feet"),
    "yd": ("yard",),
    "mi": ("mile",),
    # mass
    "mg": ("milligram", "milligramme"),
    "g": ("gram", "gramme"),
    "kg": ("kilogram", "kilogramme", "kilo"),
    "t": ("tonne",),
    "ton": (),
    "lb": ("lbs",),
    "oz": ("ounce",),
    # volume
    "ml": ("millilitre", "milliliter"),
    "l": ("litre", "liter"),
    "cm³": ("cc",),
    # time
    "ms": ("millisecond",),
    "s": ("second", "sec"),
    "min": ("minute",),
    "h": ("hour", "hr"),
    "day": (),
    "week": ("wk",),
    "month": (),
    "year": ("yr",),
    "km per h": ("kph", "kmh"),  # `km/h` is read as `km per h`
    "mi per h": ("mph",),
    # temperature and angle
    "°c": ("celsius", "centigrade"),
    "°f": ("fahrenheit",),
    "kelvin": (),
    "°": ("degree", "deg"),
    "%": ("percent", "pct", "percentage"),
    # currency
    "$": ("dollar", "buck"),
    "usd": ("us$",),
    "cad": ("c$", "ca$"),
    "aud": ("a$", "au$"),
    "nzd": ("nz$",),
    "eur": ("€", "euro"),
    "gbp": ("£", "sterling", "quid"),
    "pound": (),
    "¥": (),
    "jpy": ("yen",),
    "cny": ("yuan", "rmb", "renminbi"),
    "inr": ("₹", "rupee", "rs"),
    "chf": (),
    "cent": ("¢",),
    "penny": ("pence",),
}
# A unit that may mean any of several others: `$12` = `USD 12` and `$12` = `CAD 12`, yet USD ≠ CAD.
_UNIT_MAY_MEAN: dict[str, frozenset[str]] = {
    "$": frozenset({"usd", "cad", "aud", "nzd"}),
    "pound": frozenset({"lb", "gbp"}),
    "¥": frozenset({"jpy", "cny"}),
    "°": frozenset({"°c", "°f"}),
}
_CURRENCIES = frozenset(
    {"$", "usd", "cad", "aud", "nzd", "eur", "gbp", "pound", "¥", "jpy", "cny", "inr", "chf"}
)
_LENGTHS = ("mm", "cm", "m", "km", "in", "ft", "yd", "mi")
# (previous unit, next word or unit) read as one unit: `degrees Celsius`, `per cent`, `US dollars`.
_UNIT_PHRASES: dict[tuple[str, str], str] = {
    ("°", "°c"): "°c",
    ("°", "c"): "°c",
    ("°", "°f"): "°f",
    ("°", "f"): "°f",
    ("°", "kelvin"): "kelvin",
    ("per", "cent"): "%",
    ("us", "$"): "usd",
    ("pound", "gbp"): "gbp",
    ("metric", "ton"): "t",
    **{(area, length): f"{length}²" for area in ("square", "sq") for length in _LENGTHS},
    **{(volume, length): f"{length}³" for volume in ("cubic", "cu") for length in _LENGTHS},
}
_SCALES = {"hundred": 2, "thousand": 3, "million": 6, "billion": 9, "trillion": 12}
_DENOMINATORS = {
    "half": 2,
    "halves": 2,
    "third": 3,
    "quarter": 4,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
}
_SMALL_NUMBERS = [
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"),
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
# Words after a number that make it something other than a quantity of a unit ("12 or 13", "3 pi").
_NOT_UNITS = frozenset(
    {"or", "and", "to", "plus", "minus", "times", "than", "not", "pi", "sqrt", "root"}
    | set(_SMALL_NUMBERS)
    | set(_TENS)
    | set(_SCALES)
)


def _stem(word: str) -> str:
    """One key for a word's singular and plural: apples/apple, boxes/box, berries/berry, horses/horse.

    Not English morphology, only a key both forms reduce to; irregular plurals (feet) are in the table.
    """
    if len(word) > 3 and word.endswith("ies"):
        word = word[:-3] + "i"
    elif len(word) > 2 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 2 and word.endswith("e"):
        word = word[:-1]
    if len(word) > 2 and word.endswith("y"):
        word = word[:-1] + "i"
    return word


def _unit_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for canonical, spellings in _UNIT_SPELLINGS.items():
        for spelling in (canonical, *spellings):
            lookup[spelling] = canonical
    for length in _LENGTHS:
        lookup[f"{length}²"] = lookup[f"{length}2"] = lookup[f"sq{length}"] = f"{length}²"
        lookup[f"{length}³"] = lookup[f"{length}3"] = f"{length}³"
    for spelling, canonical in list(lookup.items()):
        lookup.setdefault(_stem(spelling), canonical)  # the exact spelling wins: `ms` stays milliseconds
    return lookup


_UNIT_LOOKUP = _unit_lookup()
_DENOMINATORS_BY_STEM = {_stem(word): denominator for word, denominator in _DENOMINATORS.items()}
# Words that only name a unit together with the next one: `square metres`, `US dollars`, `km per h`.
_UNIT_PREFIX_WORDS = frozenset({"square", "sq", "cubic", "cu", "us", "metric", "per"})
_UNIT_SPACING = re.compile(r"°\s+(?=[a-z])|\s*/\s*|\^\s*([23])")
_UNIT_EDGE = ".,;:!?()[]"


def _respace_unit(match: re.Match[str]) -> str:
    if match[1]:
        return "²" if match[1] == "2" else "³"
    return " per " if "/" in match[0] else "°"


def _canonical_unit_word(word: str) -> str | None:
    canonical = _UNIT_LOOKUP.get(word) or _UNIT_LOOKUP.get(_stem(word))
    if canonical is not None:
        return canonical
    if word in _NOT_UNITS or len(word) < 2 or not word.isalpha():
        return None  # a single letter is a variable (3x), not a unit; symbols are in the table
    return _stem(word)


def _units_agree(left: str | None, right: str | None) -> bool:
    """Either unit left out, or the same unit word for word (`$` may mean `USD`)."""
    if left is None or right is None or left == right:
        return True
    left_words, right_words = left.split(), right.split()
    return len(left_words) == len(right_words) and all(
        a == b or b in _UNIT_MAY_MEAN.get(a, ()) or a in _UNIT_MAY_MEAN.get(b, ())
        for a, b in zip(left_words, right_words, strict=True)
    )


# ---- Numbers --------------------------------------------------------------------------------------

_ASSIGNMENT = re.compile(r"[^\W\d]\w*\s*=\s*(?=\S)")
_NUMBER_WORD = re.compile(
    rf"(?P<tens>{'|'.join(_TENS)})(?:[\s-]+(?P<ones>{'|'.join(_SMALL_NUMBERS[1:10])}))?\b"
    rf"|(?P<small>{'|'.join(sorted(_SMALL_NUMBERS, key=len, reverse=True))})\b",
    re.IGNORECASE,
)
_CURRENCY_PREFIX = r"[$€£¥₹]|(?:us|ca|c|au|a|nz)\$|(?:usd|eur|gbp|jpy|cny|inr|cad|aud|nzd|chf)(?![a-z])|rs\.?"
_MAX_EXPONENT = 400  # `1e999999999` would take minutes to compute exactly; no answer is that large
_NUMBER = re.compile(
    rf"""(?P<sign>[-+]?)\s*(?P<currency>{_CURRENCY_PREFIX})?\s*(?P<sign_after_currency>[-+]?)\s*
        (?:
            (?P<number>
                \d{{1,3}}(?:,\d{{3}})+(?:\.\d*)?
              | \d{{1,3}}(?:\ \d{{3}})+(?:\.\d*)?(?!\s*/)  # `1 000`, but `4 107/108` is a mixed number
              | \d+(?:\.\d*)?
              | \.\d+
            )
            (?:e(?P<exponent>[-+]?\d+)|\s*[x×*]\s*10\s*\^\s*(?P<power>[-+]?\d+))?
            (?:\s*/\s*(?P<denominator>\d+(?:\.\d+)?))?
          | (?P<whole>\d+)\s+(?P<numerator>[1-9]\d*)\s*/\s*(?P<proper_denominator>[1-9]\d*)
        )
        (?P<unit>(?:\D|(?<=[a-z^])[23](?!\d))*)""",  # NFKC turns m² into m2
    re.VERBOSE | re.IGNORECASE | re.ASCII,
)


class NumericAnswer(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: Fraction
    unit: str | None
    """The unit's canonical name (`km`, `%`, `°c`, `usd`, `$`, or a stem such as `appl`), None if none."""
    decimals: int | None = None
    """Decimal places as written (`0.333` has 3); None for integers and fractions."""


class _Number(NamedTuple):
    value: Fraction
    unit: str | None
    decimals: int | None


def _spell_number(word: re.Match[str]) -> str:
    if word["small"]:
        return str(_SMALL_NUMBERS.index(word["small"].casefold()))
    ones = _SMALL_NUMBERS.index(word["ones"].casefold()) if word["ones"] else 0
    return str(20 + 10 * _TENS.index(word["tens"].casefold()) + ones)


@lru_cache(maxsize=4096)
def _parse_number(answer: str) -> _Number | None:
    text = _clean(answer)
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    if assignment := _ASSIGNMENT.match(text):  # `x = 5`
        text = text[assignment.end() :]
    if text[:1].isalpha() and (word := _NUMBER_WORD.match(text)):  # `twelve`, `twenty-one`
        text = _spell_number(word) + text[word.end() :]
    match = _NUMBER.fullmatch(text)
    if match is None or (match["sign"] and match["sign_after_currency"]):
        return None
    if match["whole"] is not None:  # a mixed number, `1 1/2`
        numerator, denominator = int(match["numerator"]), int(match["proper_denominator"])
        if numerator >= denominator:
            return None
        value = int(match["whole"]) + Fraction(numerator, denominator)
        decimals: int | None = None
    else:
        number = match["number"].replace(",", "").replace(" ", "")
        value = Fraction(number)
        decimals = len(number.partition(".")[2]) if "." in number else None
        exponent = int(match["exponent"] or match["power"] or 0)
        if abs(exponent) > _MAX_EXPONENT:
            return None
        if exponent:
            value *= Fraction(10) ** exponent
            decimals = (decimals or 0) - exponent
        if match["denominator"] is not None:
            denominator_value = Fraction(match["denominator"])
            if denominator_value == 0:
                return None
            value /= denominator_value
            decimals = None
    words = _unit_words(match["unit"])
    if words is None:
        return None
    if words and words[0] in _SCALES:  # `1.2 million`
        scale = _SCALES[words.pop(0)]
        value *= 10**scale
        decimals = None if decimals is None else decimals - scale
    elif words and _stem(words[0]) in _DENOMINATORS_BY_STEM and decimals is None and value.denominator == 1:
        value /= _DENOMINATORS_BY_STEM[_stem(words.pop(0))]  # `two thirds`
    unit = _canonical_unit(words, match["currency"])
    if unit == "":
        return None
    if match["sign"] == "-" or match["sign_after_currency"] == "-":
        value = -value
    return _Number(value, unit, decimals if decimals is not None and decimals > 0 else None)


def _unit_words(unit: str) -> list[str] | None:
    """The words after a number, lower case; None if too many to be a scale word and a unit."""
    unit = _UNIT_SPACING.sub(_respace_unit, unit.casefold())
    words = [word.strip(_UNIT_EDGE) for word in unit.split()]
    words = [word for word in words if word]
    return words if len(words) <= 5 else None


def _canonical_unit(words: list[str], currency: str | None) -> str | None:
    """The unit of `$12`, `12 km/h`, `12 square metres` by its canonical name; "" if not a unit."""
    canonical: list[str] = []
    for word in words:
        if canonical and (phrase := _UNIT_PHRASES.get((canonical[-1], word))):
            canonical[-1] = phrase
            continue
        if word in _UNIT_PREFIX_WORDS:
            canonical.append(word)
            continue
        unit = _canonical_unit_word(word)
        if unit is None:
            return ""
        if canonical and (phrase := _UNIT_PHRASES.get((canonical[-1], unit))):
            canonical[-1] = phrase
        else:
            canonical.append(unit)
    if len(canonical) > 4:
        return ""
    if currency is not None:
        prefix = _canonical_unit_word(currency.casefold().rstrip("."))
        if canonical and canonical[0] in _CURRENCIES:  # `$12 USD`: the more specific name stays
            if not _units_agree(prefix, canonical[0]):
                return ""
            if canonical[0] in _UNIT_MAY_MEAN and prefix is not None:
                canonical[0] = prefix
        elif prefix is not None:
            canonical.insert(0, prefix)
    return " ".join(canonical) or None


def parse_numeric(answer: str) -> NumericAnswer | None:
    """`1,000`, `1 000`, `1e3`, `3/4`, `1 1/2`, `\\frac{3}{4}`, `-2`, `x = 5`, `twelve`, `$12`, `75%`,
    `12 km` as an exact number and an optional canonical unit; None when the answer is not one."""
    number = _parse_number(answer)
    if number is None:
        return None
    return NumericAnswer(value=number.value, unit=number.unit, decimals=number.decimals)


def _numbers_equal(left: _Number, right: _Number) -> bool:
    """Exactly equal, or a decimal that is the other side rounded (0.333 or 0.33 for 1/3).

    Rounding is allowed only against a number written without decimals (a fraction or an integer):
    0.48 does not equal 0.475 just because one rounds to the other, but 0.33 does stand for 1/3.
    """
    if left.value == right.value:
        return True
    for rounded, exact in ((left, right), (right, left)):
        if rounded.decimals is None or rounded.decimals < 2:
            continue
        if exact.decimals is not None:
            continue
        step = Fraction(1, 10**rounded.decimals)
        if abs(exact.value - rounded.value) <= step / 2:
            return True
    return False


# ---- Multiple choice ------------------------------------------------------------------------------

_OPTION_LABEL = re.compile(
    r"(?:(?<=\s)|^)(?:\((?P<bracketed>[A-Za-z])\)|(?P<letter>[A-Za-z])(?:(?P<mark>[).:])(?=\s|$)|\)))",
    re.MULTILINE,
)
_OPTION_TAIL = re.compile(r"(?:[\s,;?.]|\b(?:or|and)\b)+$", re.IGNORECASE)
_CHOSEN_OPTION = re.compile(
    r"(?P<named>(?:option|choice)\s+)?(?:\((?P<bracketed>[a-z])\)|(?P<letter>[a-z])(?P<mark>[).:])?)"
    r"(?:\s+(?P<text>.*))?",
    re.IGNORECASE | re.DOTALL,
)


class _Label(NamedTuple):
    start: int
    end: int
    letter: str
    style: tuple[str, bool]
    """How it is written (`(`, `)`, `.` or `:`) and whether in capitals: one list keeps one style."""


def parse_choices(question: str) -> dict[str, str]:
    """The options of a multiple-choice question, capital letter → option text; {} if it has none.

    Options are labelled `A) 12`, `(B) 15`, `C. 20` or `D: 25` (or in small letters), on their own
    lines or in a run on one; there must be at least A and B in the same style, so a stray `Vitamin C.`
    is not an option. An option's text runs to the next option or the end of its line.
    """
    labels: list[_Label] = []
    for found in _OPTION_LABEL.finditer(question):
        letter = found["bracketed"] or found["letter"]
        style = "(" if found["bracketed"] else found["mark"] or ")"
        labels.append(_Label(found.start(), found.end(), letter.upper(), (style, letter.isupper())))
    best: list[_Label] = []
    for index, first in enumerate(labels):
        if first.letter != "A":
            continue
        run = [first]
        for label in labels[index + 1 :]:
            if label.style == first.style and label.letter == chr(ord(run[-1].letter) + 1):
                run.append(label)
        if len(run) > len(best):
            best = run
    if len(best) < 2:
        return {}
    choices: dict[str, str] = {}
    for label, following in zip(best, [*best[1:], None], strict=True):
        end = following.start if following is not None else len(question)
        text = question[label.end : end].strip().split("\n", 1)[0]
        choices[label.letter] = _OPTION_TAIL.sub("", text).strip()
    return choices


def _option(choices: Mapping[str, str], letter: str) -> str | None:
    return choices.get(letter.upper(), choices.get(letter.lower()))


def _chosen_letter(answer: str, choices: Mapping[str, str]) -> str | None:
    """The option an answer names: by letter (`B`, `(b)`, `Option B`, `B) 15`) or by its text alone."""
    text = _clean(answer)
    if label := _CHOSEN_OPTION.fullmatch(text.rstrip(". ")):
        letter = label["bracketed"] or label["letter"]
        option = _option(choices, letter)
        if option is not None:
            if not label["text"]:
                return letter.upper()
            labelled = label["named"] or label["bracketed"] or label["mark"]
            if labelled and _compare_plain(option, label["text"])[0] != "mismatch":
                return letter.upper()
    named = {
        key.upper() for key, option in choices.items() if _compare_plain(option, answer)[0] != "mismatch"
    }
    return named.pop() if len(named) == 1 else None  # two options alike name neither


# ---- Grading --------------------------------------------------------------------------------------


def _compare_plain(reference: str, candidate: str) -> tuple[GradeMethod, bool]:
    """As numbers if both are, else as text; and whether a mismatch is settled (two different numbers)."""
    ref_number, cand_number = _parse_number(reference), _parse_number(candidate)
    if ref_number is not None and cand_number is not None:
        if not _numbers_equal(ref_number, cand_number):
            return "mismatch", True
        if _units_agree(ref_number.unit, cand_number.unit):
            return "numeric", True
        return "mismatch", False  # the same number in another unit: `$5` for `$5 per hour` is for a judge
    ref_text = _normalised(reference)
    return ("match" if ref_text and ref_text == _normalised(candidate) else "mismatch"), False


def _compare(reference: str, candidate: str, choices: Mapping[str, str] | None) -> tuple[GradeMethod, bool]:
    if choices:
        ref_letter = _chosen_letter(reference, choices)
        cand_letter = _chosen_letter(candidate, choices) if ref_letter is not None else None
        if ref_letter is not None and cand_letter is not None:
            return ("choice" if ref_letter == cand_letter else "mismatch"), True
    return _compare_plain(reference, candidate)


def answers_match(reference: str, candidate: str, *, choices: Mapping[str, str] | None = None) -> GradeMethod:
    """ "choice", "numeric" or "match" when they agree, "mismatch" otherwise (a judge may still accept
    a text answer). With `choices` (letter → option text), a letter and its option's text are one
    answer; without, a bare letter is compared as text (`(b)` = `B`). Symmetric in its two answers."""
    return _compare(reference, candidate, choices)[0]


class Judge(Protocol):
    def judge(self, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]: ...


class Grade(BaseModel):
    model_config = ConfigDict(frozen=True)

    correct: bool
    method: GradeMethod
    explanation: str | None = None


def grade_answer(
    question: str, reference: str, candidate: str | None, judge: Judge | None
) -> tuple[Grade, Usage]:
    """Grade one answer; the usage is the judge's, zero when no judge was asked."""
    if candidate is None or not candidate.strip():
        return Grade(correct=False, method="no_answer"), Usage()
    method, settled = _compare(reference, candidate, parse_choices(question))
    # Two different numbers or options are not made equal by a judge; text may be phrased differently.
    if method != "mismatch" or judge is None or settled:
        return Grade(correct=method != "mismatch", method=method), Usage()
    verdict, usage = judge.judge(question, reference, candidate)
    method = "judge" if verdict.correct else "mismatch"
    return Grade(correct=verdict.correct, method=method, explanation=verdict.explanation), usage
