"""EEA membership, country inference and precedence, and marketing regimes."""

from __future__ import annotations

import pytest

from suppression.domain.jurisdictions import (
    DEFAULT_REGIMES,
    EEA_COUNTRIES,
    EEA_UNSPECIFIED,
    GENERIC_CCTLDS,
    ISO_COUNTRIES,
    UNKNOWN,
    CountrySource,
    Jurisdiction,
    Regime,
    RegimeTable,
    UnknownCountry,
    infer_country,
    is_eea,
    normalise_country,
    parse_regimes,
    resolve_jurisdiction,
    should_replace,
)

EU_27 = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()
)
EFTA_IN_EEA = frozenset({"IS", "LI", "NO"})

# --- EEA membership ----------------------------------------------------------------


def test_eu_has_27_member_states():
    assert len(EU_27) == 27


def test_eea_is_exactly_the_eu_27_plus_iceland_liechtenstein_norway():
    assert len(EEA_COUNTRIES) == 30
    assert EEA_COUNTRIES == EU_27 | EFTA_IN_EEA


@pytest.mark.parametrize("country", sorted(EU_27 | EFTA_IN_EEA))
def test_every_eea_state_is_eea(country):
    assert is_eea(country)


@pytest.mark.parametrize("country", ["GB", "CH", "US", "CA", "AU", "JP", "TR", "UA", "RS"])
def test_countries_outside_the_eea_are_not_eea(country):
    assert not is_eea(country)


def test_unspecified_eea_from_a_eu_domain_counts_as_eea():
    assert EEA_UNSPECIFIED == "EU"
    assert is_eea("EU")


def test_unknown_country_is_not_eea():
    assert not is_eea(None)


@pytest.mark.parametrize("territory", ["GP", "GF", "MQ", "RE", "YT", "MF"])
def test_french_outermost_regions_with_their_own_cctld_count_as_eea(territory):
    assert is_eea(territory)


def test_every_eea_state_is_a_known_iso_country():
    assert EEA_COUNTRIES <= ISO_COUNTRIES


def test_iso_countries_are_the_249_assigned_codes_plus_eu():
    assert len(ISO_COUNTRIES) == 250
    assert "EU" in ISO_COUNTRIES
    assert all(len(code) == 2 and code.isupper() for code in ISO_COUNTRIES)


# --- normalising country codes ---------------------------------------------------


@pytest.mark.parametrize(
    ("code", "normalised"),
    [
        ("DE", "DE"),
        ("de", "DE"),
        ("De", "DE"),
        (" fr ", "FR"),
        ("us", "US"),
        ("uk", "GB"),
        ("UK", "GB"),
        ("gb", "GB"),
        ("ch", "CH"),
        ("eu", "EU"),
    ],
)
def test_normalise_country_is_case_insensitive_and_maps_uk_to_gb(code, normalised):
    assert normalise_country(code) == normalised


@pytest.mark.parametrize("code", ["", " ", "XX", "ZZ", "DEU", "D", "U.K.", "12", "EL"])
def test_normalise_country_raises_unknown_country_for_unknown_codes(code):
    with pytest.raises(UnknownCountry, match="unknown country code"):
        normalise_country(code)


def test_unknown_country_is_a_value_error():
    assert issubclass(UnknownCountry, ValueError)


# --- inferring a country from the domain -------------------------------------------


@pytest.mark.parametrize(
    ("domain", "country"),
    [
        ("example.uk", "GB"),
        ("example.co.uk", "GB"),
        ("example.eu", "EU"),
        ("example.de", "DE"),
        ("mail.example.fr", "FR"),
        ("EXAMPLE.DE", "DE"),
        ("example.ch", "CH"),
        ("example.ca", "CA"),
        ("xn--bcher-kva.at", "AT"),
        ("example.no", "NO"),
    ],
)
def test_infer_country_reads_the_cctld(domain, country):
    assert infer_country(domain) == country


@pytest.mark.parametrize(
    "domain",
    ["example.com", "example.org", "example.net", "example.email", "example.xn--p1ai"],
)
def test_infer_country_gives_none_for_generic_tlds(domain):
    assert infer_country(domain) is None


@pytest.mark.parametrize(
    "domain", ["example.io", "example.co", "example.me", "example.tv", "example.ly", "x.fm"]
)
def test_infer_country_gives_none_for_generic_use_cctlds(domain):
    assert infer_country(domain) is None


@pytest.mark.parametrize("tld", sorted(GENERIC_CCTLDS))
def test_no_generic_use_cctld_infers_a_country(tld):
    assert infer_country(f"example.{tld}") is None


@pytest.mark.parametrize("domain", ["example.gb", "example.su", "example.zz", "example.x"])
def test_infer_country_gives_none_for_unused_or_unassigned_cctlds(domain):
    assert infer_country(domain) is None


# --- where a country came from and which one holds ----------------------------------


def test_country_sources_are_ordered_inferred_hint_declared():
    assert CountrySource.INFERRED < CountrySource.HINT < CountrySource.DECLARED


@pytest.mark.parametrize("source", list(CountrySource))
def test_country_source_label_round_trips(source):
    assert CountrySource.from_label(source.label) is source


def test_jurisdiction_source_label_is_lower_case_or_none():
    assert Jurisdiction("DE", CountrySource.DECLARED).source_label == "declared"
    assert UNKNOWN.source_label is None


DECLARED_FR = Jurisdiction("FR", CountrySource.DECLARED)
HINT_IT = Jurisdiction("IT", CountrySource.HINT)
INFERRED_DE = Jurisdiction("DE", CountrySource.INFERRED)


@pytest.mark.parametrize(
    ("stored", "hint", "domain", "expected"),
    [
        pytest.param(
            DECLARED_FR, "US", "example.de", DECLARED_FR, id="declared-beats-request-hint"
        ),
        pytest.param(DECLARED_FR, None, "example.de", DECLARED_FR, id="declared-beats-inferred"),
        pytest.param(
            HINT_IT,
            "US",
            "example.de",
            Jurisdiction("US", CountrySource.HINT),
            id="request-hint-beats-stored-hint",
        ),
        pytest.param(
            INFERRED_DE,
            "US",
            "example.de",
            Jurisdiction("US", CountrySource.HINT),
            id="request-hint-beats-stored-inferred",
        ),
        pytest.param(
            UNKNOWN,
            "US",
            "example.de",
            Jurisdiction("US", CountrySource.HINT),
            id="request-hint-beats-inferred",
        ),
        pytest.param(HINT_IT, None, "example.de", HINT_IT, id="stored-hint-beats-inferred"),
        pytest.param(HINT_IT, None, "example.com", HINT_IT, id="stored-hint-beats-unknown"),
        pytest.param(
            UNKNOWN,
            None,
            "example.de",
            Jurisdiction("DE", CountrySource.INFERRED),
            id="inferred-when-nothing-else",
        ),
        pytest.param(
            INFERRED_DE, None, "example.de", INFERRED_DE, id="stored-inferred-is-re-inferred"
        ),
        pytest.param(
            UNKNOWN,
            None,
            "example.uk",
            Jurisdiction("GB", CountrySource.INFERRED),
            id="inferred-uk-is-gb",
        ),
        pytest.param(
            UNKNOWN,
            None,
            "example.eu",
            Jurisdiction("EU", CountrySource.INFERRED),
            id="inferred-eu-is-unspecified-eea",
        ),
        pytest.param(UNKNOWN, None, "example.com", UNKNOWN, id="unknown-for-generic-tld"),
        pytest.param(UNKNOWN, None, "example.io", UNKNOWN, id="unknown-for-generic-cctld"),
    ],
)
def test_resolve_jurisdiction_prefers_declared_then_hints_then_inferred(
    stored, hint, domain, expected
):
    assert resolve_jurisdiction(stored, hint, domain) == expected


def test_resolved_unknown_jurisdiction_has_no_country_and_no_source():
    resolved = resolve_jurisdiction(UNKNOWN, None, "example.com")
    assert resolved.country is None
    assert resolved.source is None


@pytest.mark.parametrize(
    ("stored_source", "incoming_source", "replaces"),
    [
        (None, CountrySource.INFERRED, True),
        (None, CountrySource.HINT, True),
        (None, CountrySource.DECLARED, True),
        (CountrySource.INFERRED, CountrySource.INFERRED, True),
        (CountrySource.INFERRED, CountrySource.HINT, True),
        (CountrySource.INFERRED, CountrySource.DECLARED, True),
        (CountrySource.HINT, CountrySource.INFERRED, False),
        (CountrySource.HINT, CountrySource.HINT, True),
        (CountrySource.HINT, CountrySource.DECLARED, True),
        (CountrySource.DECLARED, CountrySource.INFERRED, False),
        (CountrySource.DECLARED, CountrySource.HINT, False),
        (CountrySource.DECLARED, CountrySource.DECLARED, True),
    ],
)
def test_should_replace_when_incoming_source_is_higher_or_equal(
    stored_source, incoming_source, replaces
):
    stored = Jurisdiction("DE" if stored_source else None, stored_source)
    assert should_replace(stored, Jurisdiction("US", incoming_source)) is replaces


@pytest.mark.parametrize(
    "incoming",
    [UNKNOWN, Jurisdiction(None, CountrySource.DECLARED), Jurisdiction("US", None)],
    ids=["unknown", "no-country", "no-source"],
)
def test_should_not_replace_with_an_incomplete_jurisdiction(incoming):
    assert not should_replace(UNKNOWN, incoming)
    assert not should_replace(INFERRED_DE, incoming)


# --- regimes -----------------------------------------------------------------------

DEFAULT_TABLE = RegimeTable(DEFAULT_REGIMES)


@pytest.mark.parametrize("country", ["GB", "CH", "CA", "AU"])
def test_default_regime_is_opt_in_for_gb_ch_ca_au(country):
    assert DEFAULT_TABLE.regime_for(country) is Regime.OPT_IN


def test_default_regime_is_opt_out_for_us():
    assert DEFAULT_TABLE.regime_for("US") is Regime.OPT_OUT


def test_default_regime_is_opt_out_for_an_unknown_jurisdiction():
    assert DEFAULT_TABLE.regime_for(None) is Regime.OPT_OUT


@pytest.mark.parametrize("country", sorted(EEA_COUNTRIES | {"EU"}))
def test_eea_countries_are_opt_in(country):
    assert DEFAULT_TABLE.regime_for(country) is Regime.OPT_IN


def test_default_regime_is_opt_out_for_a_known_unlisted_country():
    assert DEFAULT_TABLE.regime_for("JP") is Regime.OPT_OUT


def test_regime_table_uses_its_settings_for_unlisted_and_unknown():
    table = RegimeTable(DEFAULT_REGIMES, unlisted=Regime.OPT_IN, unknown=Regime.DENY)
    assert table.regime_for("JP") is Regime.OPT_IN
    assert table.regime_for(None) is Regime.DENY
    assert table.regime_for("US") is Regime.OPT_OUT


def test_regime_table_lists_override_the_unlisted_default():
    table = RegimeTable({"JP": Regime.OPT_IN})
    assert table.regime_for("JP") is Regime.OPT_IN
    assert table.regime_for("GB") is Regime.OPT_OUT  # not listed in this table


def test_regime_values_are_the_configuration_words():
    assert [regime.value for regime in Regime] == ["opt_in", "opt_out", "deny"]


@pytest.mark.parametrize(
    ("text", "table"),
    [
        ("JP=opt_in,us=opt_out", {"JP": Regime.OPT_IN, "US": Regime.OPT_OUT}),
        (" JP = opt_in , US = OPT_OUT ", {"JP": Regime.OPT_IN, "US": Regime.OPT_OUT}),
        ("uk=opt_in", {"GB": Regime.OPT_IN}),
        ("JP=deny", {"JP": Regime.DENY}),
        ("JP=opt_in,", {"JP": Regime.OPT_IN}),
        (",,JP=opt_in,,", {"JP": Regime.OPT_IN}),
        ("JP=opt_in,JP=opt_out", {"JP": Regime.OPT_OUT}),
        ("", {}),
        ("  ", {}),
    ],
)
def test_parse_regimes_reads_country_equals_regime_pairs(text, table):
    assert parse_regimes(text) == table


@pytest.mark.parametrize(
    "text",
    [
        "JP",
        "JP:opt_in",
        "JP=",
        "=opt_in",
        "XX=opt_in",
        "JP=maybe",
        "JP=opt-in",
        "JP=opt_in,US",
        "JP=opt_in,ZZ=opt_out",
    ],
)
def test_parse_regimes_rejects_bad_entries_with_value_error(text):
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by entry
        parse_regimes(text)
