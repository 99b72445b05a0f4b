"""A list of addresses made ready for a check: keyed index and ccTLD country of each.

This is the CPU-bound half of a pre-send check (canonicalise, HMAC, domain
lookup), kept pure so that it can run in a helper process (suppression/indexing.py)
as well as in the caller's: the answer is the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256
from typing import NamedTuple

from suppression.domain.addresses import KeyedIndexer, canonicalise
from suppression.domain.jurisdictions import infer_country


class IndexedBatch(NamedTuple):
    """Per address, in input order: its keyed index (None when not an address), the
    country its domain implies, and — only when asked — its unkeyed SHA-256 (the
    form imported hashed suppression lists hold). The canonical text is not kept."""

    keys: list[bytes | None]
    domain_countries: list[str | None]
    sha256s: list[bytes | None] | None


def index_batch(key: bytes, raws: Sequence[str | None], with_sha256: bool) -> IndexedBatch:
    """Canonicalise and index each address; None in `raws` is an invalid entry."""
    countries_of: dict[str, str | None] = {}  # domains repeat: each is looked up once
    keys: list[bytes | None] = []
    countries: list[str | None] = []
    digests: list[bytes | None] | None = [] if with_sha256 else None
    add_key, add_country = keys.append, countries.append
    keyed_index = KeyedIndexer(key)
    for raw in raws:
        address = None if raw is None else canonicalise(raw)
        if address is None:
            add_key(None)
            add_country(None)
            if digests is not None:
                digests.append(None)
            continue
        add_key(keyed_index(address))
        domain = address[address.rindex("@") + 1 :]
        try:
            add_country(countries_of[domain])
        except KeyError:
            country = countries_of[domain] = infer_country(domain)
            add_country(country)
        if digests is not None:
            digests.append(sha256(address.encode("utf-8")).digest())
    return IndexedBatch(keys, countries, digests)
