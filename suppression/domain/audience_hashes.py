"""Per-platform email normalisation and hashing (research/integrations.md §6).

The platforms disagree on what to do before hashing, so one stored SHA-256 is
not right for all of them: each hash is computed from the canonical address
(already trimmed, lower-cased, IDNA domain) with that platform's own rules, in
memory, at push time.
"""

from __future__ import annotations

import hashlib

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def trimmed_lower(email: str) -> str:
    """Meta, the Google Ads API, LinkedIn and Microsoft: trim, lower-case."""
    return email.strip().lower()


def google_data_manager_form(email: str) -> str:
    """Google Data Manager API: lower-case, no whitespace anywhere, and for
    gmail.com / googlemail.com no dots and no `+suffix` in the local part."""
    text = "".join(email.split()).lower()
    local, sep, domain = text.rpartition("@")
    if sep and domain in GMAIL_DOMAINS:
        local = local.partition("+")[0].replace(".", "")
    return f"{local}{sep}{domain}"


def meta_email_sha256(email: str) -> str:
    """Meta custom audiences, schema EMAIL_SHA256: SHA-256 hex of trim + lower-case."""
    return _sha256_hex(trimmed_lower(email))


def google_data_manager_email_sha256(email: str) -> str:
    return _sha256_hex(google_data_manager_form(email))


def google_ads_email_sha256(email: str) -> str:
    """Google Ads API Customer Match (hashedEmail): trim + lower-case."""
    return _sha256_hex(trimmed_lower(email))


def linkedin_email_sha256(email: str) -> str:
    """LinkedIn SHA256_EMAIL: LinkedIn documents only the format (64 hex)."""
    return _sha256_hex(trimmed_lower(email))


def microsoft_email_sha256(email: str) -> str:
    """Microsoft Customer Match list items: SHA-256 as 64 lower-case hex."""
    return _sha256_hex(trimmed_lower(email))
