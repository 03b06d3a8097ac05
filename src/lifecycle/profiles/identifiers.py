"""One normalisation per identifier kind, used by every way in (pure: no database).

``normalize(kind, raw)`` returns an :class:`Identifier` or raises :class:`NotAnIdentifier`
with the reason. A value that is not an identifier never links anything; callers
still store the write and surface the reason as a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import email_validator
import phonenumbers
from email_validator import EmailNotValidError, validate_email

KINDS = ("id", "email", "phone", "anonymous_id")
# Values senders use for "no value": they must never join unrelated people.
JUNK_VALUES = frozenset(
    {
        "",
        "null",
        "nil",
        "none",
        "undefined",
        "nan",
        "n/a",
        "na",
        "0",
        "-1",
        "anonymous",
        "unknown",
        "guest",
        "test",
        "[object object]",
        "{}",
        "[]",
        "00000000-0000-0000-0000-000000000000",
    }
)
_ALL_ZERO = re.compile(r"^[0\-_.\s]+$")
_CHANNEL_PREFIX = re.compile(r"^(whatsapp|sms|tel|mms):", re.IGNORECASE)
_MOBILE_PREFIX = re.compile(r"^(whatsapp|sms|mms):", re.IGNORECASE)


class NotAnIdentifier(ValueError):
    """The value cannot identify anyone; ``str(err)`` says why."""


@dataclass(frozen=True, slots=True)
class Identifier:
    kind: str
    value: str  # normalised, what matching uses
    display: str  # as the sender wrote it

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.value)


def is_junk(raw: str, extra_junk: frozenset[str] = frozenset()) -> bool:
    folded = raw.strip().casefold()
    return folded in JUNK_VALUES or folded in extra_junk or bool(_ALL_ZERO.match(folded))


@lru_cache(maxsize=65536)
def _normalize_text(
    kind: str, text: str, default_region: str, extra_junk: frozenset[str], rules: frozenset[str]
) -> Identifier:
    if is_junk(text, extra_junk):
        raise NotAnIdentifier(f"{kind}: {text!r} is a placeholder, not an identifier")
    if kind == "email":
        return Identifier("email", normalize_email(text), text.strip())
    if kind == "phone":
        return Identifier("phone", normalize_phone(text, default_region, rules), text.strip())
    if kind in ("id", "anonymous_id") or kind.endswith("_id"):
        if len(text) > 512:
            raise NotAnIdentifier(f"{kind}: longer than 512 characters")
        return Identifier(kind, text, text)
    raise NotAnIdentifier(f"unknown identifier kind {kind!r}")


def normalize(
    kind: str,
    raw: object,
    *,
    default_region: str = "US",
    extra_junk: frozenset[str] = frozenset(),
    rules: frozenset[str] = frozenset(),
) -> Identifier:
    if raw is None or isinstance(raw, bool | dict | list | float):
        raise NotAnIdentifier(f"{kind}: {raw!r} is not a usable value")
    # Cached: the same people write again and again; validation is the costly part.
    return _normalize_text(kind, str(raw), default_region, extra_junk, rules)


# Plain ASCII addresses (nearly all of them) in a shape email_validator always accepts are
# recognised by one regular expression; every other address goes to email_validator. A
# bulk import spent most of its validation time in email_validator on such addresses.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


_SPECIAL_USE = frozenset(email_validator.SPECIAL_USE_DOMAIN_NAMES)
_SPECIAL_USE_SUFFIXES = tuple("." + name for name in email_validator.SPECIAL_USE_DOMAIN_NAMES)


def _plain_email(candidate: str) -> bool:
    """True only for addresses email_validator accepts (``check_deliverability=False``)."""
    if len(candidate) > 254 or not _PLAIN_EMAIL.fullmatch(candidate):
        return False
    local, _, domain = candidate.rpartition("@")
    if len(local) > 64 or len(domain) > 253:
        return False
    domain = domain.lower()
    # IDNA's xn-- and the like
    if "--" in domain and any(label[2:4] == "--" for label in domain.split(".")):
        return False
    return domain not in _SPECIAL_USE and not domain.endswith(_SPECIAL_USE_SUFFIXES)


def normalize_email(raw: str) -> str:
    """Trimmed and case-folded; syntax checked, no DNS look-up."""
    candidate = raw.strip()
    if _plain_email(candidate):
        return candidate.casefold()
    try:
        validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as err:
        raise NotAnIdentifier(f"email: {candidate!r} is not a valid address ({err})") from None
    return candidate.casefold()


BR_NINTH_DIGIT = "BR mobile ninth digit"
PHONE_RULES = (BR_NINTH_DIGIT,)


def _br_ninth_digit(parsed: phonenumbers.PhoneNumber, *, mobile: bool) -> None:
    """Brazil added a 9 in front of 8-digit mobile numbers (2012-2016): the old form of a
    mobile (area code + 8 digits; known to be a mobile from its channel, such as
    WhatsApp, or starting 6-9 as mobiles did) is the same line as the new one."""
    national = str(parsed.national_number)
    if parsed.country_code == 55 and len(national) == 10 and (mobile or national[2] in "6789"):
        parsed.national_number = int(national[:2] + "9" + national[2:])


# A North American number in one of its usual spellings: "+1 201 555 0123",
# "(201) 555-0123", "1-201-555-0123", "201.555.0123". phonenumbers takes about 40 us to
# parse one (most of a bulk import's time per row); this answers the same E.164 for
# these shapes in about 1 us, and tests/test_identifiers.py checks that it does, form by
# form, against phonenumbers itself. An area code starting 0 or 1, an extension or any
# other shape still goes to phonenumbers.
_NANP_SHAPE = re.compile(
    r"(?P<plus>\+)?(?P<one>1[ .\-]?)?"
    r"(?:\((?P<bracketed>[2-9][0-9]{2})\) ?|(?P<area>[2-9][0-9]{2})[ .\-]?)"
    r"(?P<exchange>[0-9]{3})[ .\-]?(?P<line>[0-9]{4})"
)
_NANP_REGIONS = frozenset(phonenumbers.region_codes_for_country_code(1))


def _nanp(candidate: str, default_region: str) -> str | None:
    """E.164 for a North American number of a usual shape, or None to ask phonenumbers."""
    match = _NANP_SHAPE.fullmatch(candidate)
    if match is None:
        return None
    plus, one = match["plus"], match["one"]
    if plus and not one:  # "+201 ..." is country code 20 (Egypt), not an area code
        return None
    if not plus and default_region not in _NANP_REGIONS:
        return None  # "201 555 0123" written in another country is its number there
    area = match["bracketed"] or match["area"]
    return f"+1{area}{match['exchange']}{match['line']}"


_PARSE_ERRORS = {  # phonenumbers' reasons, in a reader's words
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: (
        "has no country code that exists: write it as +<country code> <number>"
    ),
    phonenumbers.NumberParseException.NOT_A_NUMBER: "is not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "is too short to be a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "is too short to be a phone number",
    phonenumbers.NumberParseException.TOO_LONG: "is too long to be a phone number",
}


def normalize_phone(
    raw: str, default_region: str = "US", rules: frozenset[str] = frozenset()
) -> str:
    """E.164 through phonenumbers; channel prefixes such as ``whatsapp:`` are dropped;
    ``rules`` turn known old forms into the current one (see PHONE_RULES)."""
    candidate = _CHANNEL_PREFIX.sub("", raw.strip())
    fast = _nanp(candidate, default_region)
    if fast is not None:
        return fast
    try:
        parsed = phonenumbers.parse(candidate, default_region)
    except phonenumbers.NumberParseException as err:
        why = _PARSE_ERRORS.get(err.error_type, "is not a phone number")
        raise NotAnIdentifier(f"phone: {raw!r} {why}") from None
    if BR_NINTH_DIGIT in rules:
        _br_ninth_digit(parsed, mobile=bool(_MOBILE_PREFIX.match(raw.strip())))
    if not phonenumbers.is_possible_number(parsed):
        raise NotAnIdentifier(f"phone: {raw!r} is not a possible number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# Names pycountry does not know that exports use.
_REGION_ALIASES = {
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "u.k.": "GB",
    "u.s.": "US",
    "u.s.a.": "US",
    "united states of america": "US",
    "america": "US",
    "deutschland": "DE",
    "españa": "ES",
    "espana": "ES",
    "italia": "IT",
    "brasil": "BR",
    "schweiz": "CH",
    "suisse": "CH",
    "österreich": "AT",
    "nederland": "NL",
    "holland": "NL",
    "sverige": "SE",
    "norge": "NO",
    "danmark": "DK",
    "polska": "PL",
    "méxico": "MX",
    "türkiye": "TR",
    "south korea": "KR",
    "north korea": "KP",
    "russia": "RU",
    "vietnam": "VN",
    "czech republic": "CZ",
    "ivory coast": "CI",
}


@lru_cache(maxsize=4096)
def phone_region(country: str) -> str:
    """The phone region (ISO 3166 alpha-2, as phonenumbers wants it) that a country cell
    names: a code (``GB``, ``gbr``) or a name (``United Kingdom``, ``UK``, ``Deutschland``).
    Raises ValueError with the reason when it names no country with a numbering plan."""
    import pycountry

    text = " ".join(country.split())
    folded = text.casefold()
    code = _REGION_ALIASES.get(folded)
    if code is None:
        try:
            code = pycountry.countries.lookup(text).alpha_2
        except LookupError:
            raise ValueError(f"{country!r} is not a country code or name") from None
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{country!r} ({code}) has no phone numbering plan")
    return code


def is_national_phone(raw: str) -> bool:
    """Written without its country (``0555 0100 123``), so read in a region's plan."""
    candidate = _CHANNEL_PREFIX.sub("", raw.strip()).lstrip("(").lstrip()
    return not candidate.startswith(("+", "00"))
