"""Per-platform normalisation and hashes against the platforms' documented examples."""

import hashlib

from suppression.domain.audience_hashes import (
    google_ads_email_sha256,
    google_data_manager_email_sha256,
    google_data_manager_form,
    linkedin_email_sha256,
    meta_email_sha256,
    microsoft_email_sha256,
    trimmed_lower,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_meta_hashes_the_trimmed_lower_cased_address_as_lowercase_hex():
    assert meta_email_sha256("  Jane.Doe@Example.COM\n") == sha("jane.doe@example.com")
    assert meta_email_sha256("a@b.example") == meta_email_sha256("a@b.example").lower()


def test_meta_keeps_gmail_dots_and_plus_tags():
    assert meta_email_sha256("jane.doe+news@gmail.com") == sha("jane.doe+news@gmail.com")


def test_google_data_manager_drops_gmail_dots_and_plus_suffix_as_documented():
    assert (
        google_data_manager_form("cloudy.sanfrancisco+shopping@gmail.com")
        == "cloudysanfrancisco@gmail.com"
    )
    assert google_data_manager_form("Jane.Doe+x@GoogleMail.com") == "janedoe@googlemail.com"


def test_google_data_manager_keeps_dots_and_plus_on_other_domains_as_documented():
    assert google_data_manager_form("user.name+NYC@Example.com") == "user.name+nyc@example.com"


def test_google_data_manager_removes_whitespace_inside_the_address():
    assert google_data_manager_form(" jane doe@example.com ") == "janedoe@example.com"
    assert google_data_manager_email_sha256("jane.doe@gmail.com") == sha("janedoe@gmail.com")


def test_google_ads_api_only_trims_and_lower_cases():
    assert google_ads_email_sha256(" Jane.Doe@Gmail.com") == sha("jane.doe@gmail.com")


def test_microsoft_hash_matches_the_bulk_documentation_example():
    # Microsoft's Bulk "Customer List Item" page: test@contoso.com -> f25ad364...
    digest = microsoft_email_sha256("Test@Contoso.com ")
    assert digest.startswith("f25ad364d33972379a7a4f4df33db142")
    assert digest == digest.lower()
    assert len(digest) == 64


def test_linkedin_hash_is_sha256_hex_of_the_trimmed_lower_cased_address():
    assert linkedin_email_sha256("Bob@Example.com") == sha("bob@example.com")
    assert trimmed_lower("\tBob@Example.com ") == "bob@example.com"
