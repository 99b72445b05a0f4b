"""The benchmark's synthetic store and check list, with the answer each address must get.

Every stored subject has a kind (what the store records about it) and every
checked address an expected answer. The expected answers are worked out here from
API.md's rules and this module's own small country tables, not by calling the
service's decision code, so that the benchmark is also a correctness check.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

PURPOSE = "email_marketing"

# (name, share of the store). `opted_in` takes whatever the others leave.
# Every stored subject carries at least one fact, as subjects created by the
# service do (a consent, a block, a relationship or a declared country).
KIND_SHARES: tuple[tuple[str, float], ...] = (
    ("opted_in_hint_us", 0.195),  # opted in on a form that also sent country US (hint)
    ("customer", 0.10),  # a purchase only: no consent recorded
    ("opted_out", 0.05),  # opted out of email_marketing
    ("opted_out_all", 0.05),  # opted out of all marketing (purpose `all`)
    ("eea_domain", 0.035),  # opted in, .de/.fr/.at domain, no stored country: inferred EEA
    ("eea_declared", 0.015),  # opted in, generic domain, declared country DE
    ("optin_country", 0.02),  # declared CA/GB, no consent: opt-in required
    ("optin_country_consented", 0.01),  # declared CA/GB, opted in
    ("newer_purpose_in", 0.0005),  # CA: `all` opted out, later email_marketing opted in
    ("newer_all_out", 0.0005),  # CA: email_marketing opted in, later `all` opted out
    ("complaint", 0.002),
    ("hard_bounce", 0.003),
    ("restriction", 0.001),
    ("restriction_lifted", 0.001),  # restricted, then lifted: the block row is inactive
    ("multi", 0.0005),  # complaint + hard bounce + opted out of all: complaint wins
    ("erased", 0.0005),  # only the keyed index is left
    ("idn", 0.002),  # opted in, unicode local part and IDN domain
)
REMAINDER_KIND = "opted_in"

GENERIC_DOMAINS = ("example.com", "mail.example.net", "inbox.org", "post.io", "shop.us")
EEA_DOMAINS = ("example.de", "exemple.fr", "firma.at")
UNSEEN_DOMAINS = (
    *(("generic",) * 16),
    "eea",
    "eea",
    "ukshop.co.uk",
    "store.ca",
)
FIRST_NAMES = ("anna", "ben", "chloe", "dmitri", "eva", "farid", "greta", "hugo", "ines", "jon")

# The benchmark's own view of the countries it uses (independent of the service).
DOMAIN_COUNTRY = {
    "example.de": "DE",
    "exemple.fr": "FR",
    "firma.at": "AT",
    "ukshop.co.uk": "GB",
    "store.ca": "CA",
    "shop.us": "US",
}
EEA = {"DE", "FR", "AT"}
OPT_IN = {"GB", "CA"}
HINTS = ("US", "de", "GB", "ca", "Us", "fr")  # as sent; the service upper-cases them

DECLARED = {
    "eea_declared",
    "optin_country",
    "optin_country_consented",
    "newer_purpose_in",
    "newer_all_out",
}
CONSENTED = {
    "opted_in",
    "opted_in_hint_us",
    "eea_domain",
    "eea_declared",
    "optin_country_consented",
    "newer_purpose_in",
    "idn",
}
FIXED_REASON = {
    "erased": "erased",
    "multi": "complained",
    "complaint": "complained",
    "hard_bounce": "bounced",
    "opted_out": "opted_out",
    "opted_out_all": "opted_out",
    "newer_all_out": "opted_out",
    "restriction": "restricted",
}


@dataclass
class Store:
    """Subject i (id i + 1) has address `addresses[i]` (canonical) and kind `kinds[i]`."""

    addresses: list[str]
    kinds: list[str]
    declared: dict[int, str]  # position -> declared country
    built_at: datetime
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class CheckList:
    emails: list[str]  # as sent
    hints: list[str | None]  # as sent (None: no hint)
    expected: list[str | None]  # reason, or None when sendable
    composition: dict[str, int]


def _kind_counts(
    size: int, shares: tuple[tuple[str, float], ...] = KIND_SHARES
) -> list[tuple[str, int]]:
    counts = [(name, round(size * share)) for name, share in shares]
    rest = size - sum(n for _, n in counts)
    if rest < 0:
        raise ValueError("size too small for the kind shares")
    return [*counts, (REMAINDER_KIND, rest)]


# The `one-domain` shape: one domain, 10% opted out (half of `email_marketing`,
# half of `all`), the rest opted in; the list checks every stored address as it
# is stored: the common plain shape, with exactly 10% suppressed.
ONE_DOMAIN = "example.com"
ONE_DOMAIN_SHARES: tuple[tuple[str, float], ...] = (("opted_out", 0.05), ("opted_out_all", 0.05))
SHAPES = ("mixed", "one-domain")


def build_store(size: int, seed: int, shape: str = "mixed") -> Store:
    rng = random.Random(seed)
    kinds: list[str] = []
    counts: dict[str, int] = {}
    shares = ONE_DOMAIN_SHARES if shape == "one-domain" else KIND_SHARES
    for name, count in _kind_counts(size, shares):
        kinds.extend([name] * count)
        counts[name] = count
    rng.shuffle(kinds)
    addresses: list[str] = []
    declared: dict[int, str] = {}
    append = addresses.append
    for i, kind in enumerate(kinds):
        first = FIRST_NAMES[i % len(FIRST_NAMES)]
        if shape == "one-domain":
            append(f"{first}.member{i}@{ONE_DOMAIN}")
            continue
        if kind == "idn":
            append(f"jürgen.{first}{i}@xn--bcher-kva.com")  # bücher.com, canonical form
            continue
        domains = EEA_DOMAINS if kind == "eea_domain" else GENERIC_DOMAINS
        append(f"{first}.member{i}@{domains[i % len(domains)]}")
        if kind == "eea_declared":
            declared[i] = "DE"
        elif kind in DECLARED:
            declared[i] = "CA" if i % 2 else "GB"
    return Store(addresses, kinds, declared, datetime.now(UTC), counts)


def _as_sent(canonical: str, kind: str, variant: bool) -> str:
    """The address as a client would send it: IDN domains in unicode, some case noise."""
    text = canonical.replace("xn--bcher-kva.com", "bücher.com") if kind == "idn" else canonical
    if variant:
        local, _, domain = text.rpartition("@")
        text = f"  {local[:1].upper()}{local[1:]}@{domain.upper()} "
    return text


def _jurisdiction(
    kind: str | None, declared: str | None, hint: str | None, domain: str
) -> str | None:
    if declared is not None:
        return declared
    if hint is not None:
        return hint.upper()
    if kind == "opted_in_hint_us":
        return "US"
    return DOMAIN_COUNTRY.get(domain)


def expected_reason(
    kind: str | None, declared: str | None, hint: str | None, canonical: str
) -> str | None:
    """API.md's order of reasons under the default policy (EEA excluded, GB/CA opt-in)."""
    if kind in FIXED_REASON:
        return FIXED_REASON[kind]
    country = _jurisdiction(kind, declared, hint, canonical.rpartition("@")[2])
    if country in EEA:
        return "eea"
    if country in OPT_IN:
        return None if kind in CONSENTED else "opt_in_required"
    return None


INVALID_PATTERNS = (
    "no-at-sign-{i}.example.com",
    "double{i}@@example.com",
    "space {i}@example.com",
    "dot{i}.@example.com",
    "user{i}@example",
    "user{i}@-bad.com",
    "{long}{i}@example.com",
    "",
)


def build_check_list(store: Store, size: int, seed: int, shape: str = "mixed") -> CheckList:
    """90% stored addresses, 9.5% unseen, 0.5% invalid; 3% carry a country hint.
    `one-domain`: the first `size` stored addresses as stored, shuffled, no hints."""
    rng = random.Random(seed + 1)
    if shape == "one-domain":
        return _one_domain_list(store, size, rng)
    n_invalid = max(len(INVALID_PATTERNS), size // 200)
    n_unseen = size * 95 // 1000
    n_stored = size - n_invalid - n_unseen
    if n_stored > len(store.addresses):
        raise ValueError("the check list is larger than the store allows")
    # (email as sent, hint, expected reason)
    entries: list[tuple[str, str | None, str | None]] = []
    composition = {"stored": n_stored, "unseen": n_unseen, "invalid": n_invalid, "hinted": 0}
    for position in rng.sample(range(len(store.addresses)), n_stored):
        canonical = store.addresses[position]
        kind = store.kinds[position]
        hint = rng.choice(HINTS) if rng.random() < 0.03 else None
        sent = _as_sent(canonical, kind, rng.random() < 0.02)
        reason = expected_reason(kind, store.declared.get(position), hint, canonical)
        entries.append((sent, hint, reason))
    for i in range(n_unseen):
        domain = rng.choice(UNSEEN_DOMAINS)
        if domain == "generic":
            domain = rng.choice(GENERIC_DOMAINS)
        elif domain == "eea":
            domain = rng.choice(EEA_DOMAINS)
        canonical = f"new{i}.{rng.choice(FIRST_NAMES)}@{domain}"
        hint = rng.choice(HINTS) if rng.random() < 0.03 else None
        entries.append((canonical, hint, expected_reason(None, None, hint, canonical)))
    for i in range(n_invalid):
        pattern = INVALID_PATTERNS[i % len(INVALID_PATTERNS)]
        entries.append((pattern.format(i=i, long="x" * 65), None, "invalid"))
    rng.shuffle(entries)
    composition["hinted"] = sum(1 for _, hint, _ in entries if hint is not None)
    return CheckList(
        emails=[e for e, _, _ in entries],
        hints=[h for _, h, _ in entries],
        expected=[r for _, _, r in entries],
        composition=composition,
    )


def _one_domain_list(store: Store, size: int, rng: random.Random) -> CheckList:
    if size > len(store.addresses):
        raise ValueError("the check list is larger than the store allows")
    positions = rng.sample(range(len(store.addresses)), size)
    emails = [store.addresses[p] for p in positions]
    expected = [
        expected_reason(store.kinds[p], None, None, email)
        for p, email in zip(positions, emails, strict=True)
    ]
    return CheckList(
        emails=emails,
        hints=[None] * size,
        expected=expected,
        composition={"stored": size, "unseen": 0, "invalid": 0, "hinted": 0},
    )


def ago(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)
