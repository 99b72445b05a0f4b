"""Jurisdictions: EEA membership, marketing regimes, and where a country came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum

# EU-27 + Iceland, Liechtenstein, Norway. Not CH (bilateral deals) and not GB.
EEA_COUNTRIES = frozenset(
    (
        "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO"
    ).split()
)
# "EU" stands for an EEA address whose country is not known (a `.eu` domain).
EEA_UNSPECIFIED = "EU"

# ISO 3166-1 alpha-2, officially assigned codes, plus EU for the EEA as a whole.
ISO_COUNTRIES = frozenset(
    (
        "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL "
        "BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV "
        "CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD "
        "GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM "
        "IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK "
        "LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW "
        "MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR "
        "PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS "
        "ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY "
        "UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"
    ).split()
) | {EEA_UNSPECIFIED}

# EU outermost regions and overseas departments with their own ccTLD count as EU.
_TERRITORY_OF = {"GP": "FR", "GF": "FR", "MQ": "FR", "RE": "FR", "YT": "FR", "MF": "FR"}

# ccTLDs that are sold as generic names: the domain says nothing about where the
# person lives, so no jurisdiction is inferred from them.
GENERIC_CCTLDS = frozenset(
    (
        "ac ad ag ai am as bz cc cd cx co dj fm gg gl gy io je la ly me ms mu nu pw sc "
        "sh so st tk to tv vc vg ws"
    ).split()
)
# ccTLDs whose label differs from the ISO code.
_TLD_COUNTRY = {"uk": "GB", "eu": EEA_UNSPECIFIED}
_NOT_COUNTRIES = {"su", "ac", "gb"}  # .gb is reserved and unused


class UnknownCountry(ValueError):
    """Not an ISO 3166-1 alpha-2 code."""


def normalise_country(code: str) -> str:
    """Case-insensitive ISO alpha-2 in, upper-case out; UK is accepted for GB."""
    value = code.strip().upper()
    if value == "UK":
        value = "GB"
    if value not in ISO_COUNTRIES:
        raise UnknownCountry(f"unknown country code {code!r}")
    return value


def is_eea(country: str | None) -> bool:
    if country is None:
        return False
    return country == EEA_UNSPECIFIED or _TERRITORY_OF.get(country, country) in EEA_COUNTRIES


def infer_country(domain: str) -> str | None:
    """Country from the domain's ccTLD, or None (generic TLDs, generic-use ccTLDs)."""
    tld = domain.rpartition(".")[2].lower()
    if tld in _TLD_COUNTRY:
        return _TLD_COUNTRY[tld]
    if len(tld) != 2 or tld in GENERIC_CCTLDS or tld in _NOT_COUNTRIES:
        return None
    code = tld.upper()
    return code if code in ISO_COUNTRIES else None


class CountrySource(IntEnum):
    """Where a subject's country came from; a higher value wins."""

    INFERRED = 1
    HINT = 2
    DECLARED = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> CountrySource:
        return cls[label.upper()]


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    country: str | None
    source: CountrySource | None

    @property
    def source_label(self) -> str | None:
        return self.source.label if self.source else None


UNKNOWN = Jurisdiction(None, None)


def resolve_jurisdiction(stored: Jurisdiction, hint: str | None, domain: str) -> Jurisdiction:
    """Declared (person or staff) > hint in this request > stored hint > inferred."""
    if stored.source == CountrySource.DECLARED:
        return stored
    if hint is not None:
        return Jurisdiction(hint, CountrySource.HINT)
    if stored.country is not None and stored.source == CountrySource.HINT:
        return stored
    inferred = infer_country(domain)
    if inferred is not None:
        return Jurisdiction(inferred, CountrySource.INFERRED)
    return UNKNOWN


def should_replace(stored: Jurisdiction, incoming: Jurisdiction) -> bool:
    """Whether a country written with a consent change replaces the stored one."""
    if incoming.country is None or incoming.source is None:
        return False
    if stored.source is None:
        return True
    return incoming.source >= stored.source


class Regime(StrEnum):
    OPT_IN = "opt_in"  # prior consent required
    OPT_OUT = "opt_out"  # may market until the person opts out
    DENY = "deny"  # never market (used for an unknown jurisdiction by choice)


DEFAULT_REGIMES: Mapping[str, Regime] = {
    "GB": Regime.OPT_IN,
    "CH": Regime.OPT_IN,
    "CA": Regime.OPT_IN,
    "AU": Regime.OPT_IN,
    "US": Regime.OPT_OUT,
}


@dataclass(frozen=True, slots=True)
class RegimeTable:
    """Per-country regime; EEA countries are opt-in whenever they are admitted.

    DENY is only for the unknown case: a known country is opt-in or opt-out.
    """

    by_country: Mapping[str, Regime]
    unlisted: Regime = Regime.OPT_OUT  # a known country not in the table
    unknown: Regime = Regime.OPT_OUT  # no jurisdiction known at all

    def __post_init__(self) -> None:
        if self.unlisted == Regime.DENY or Regime.DENY in self.by_country.values():
            raise ValueError("deny is only a regime for an unknown jurisdiction")

    def regime_for(self, country: str | None) -> Regime:
        if country is None:
            return self.unknown
        if is_eea(country):
            return Regime.OPT_IN  # ePrivacy: prior consent, whatever the table says
        return self.by_country.get(country, self.unlisted)


def parse_regimes(text: str) -> dict[str, Regime]:
    """`GB=opt_in,JP=opt_in,US=opt_out` → mapping; raises ValueError on bad parts."""
    table: dict[str, Regime] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        country, sep, regime = part.partition("=")
        if not sep:
            raise ValueError(f"regime entry {part!r} is not COUNTRY=REGIME")
        table[normalise_country(country)] = Regime(regime.strip().lower())
    return table
