"""Unsubscribe tokens as minted before tokens had kinds (format 1), built here from
the format's description so that tests can show such links keep working:
base64url(1 || key id || AES-SIV(issued-at || purpose || campaign || address))."""

from __future__ import annotations

import base64
from datetime import datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PURPOSE_CODES = {"all": 1, "email_marketing": 2, "ad_audiences": 3}


def legacy_unsubscribe_token(
    key: bytes,
    issued: datetime,
    address: str,
    purpose: str = "all",
    campaign: bytes = b"",
    key_id: int = 1,
) -> str:
    material = HKDF(
        algorithm=hashes.SHA256(),
        length=64,
        salt=None,
        info=b"suppression unsubscribe-link token v1",
    ).derive(key)
    header = bytes((1, key_id))
    plain = (
        int(issued.timestamp()).to_bytes(4, "big")
        + bytes((PURPOSE_CODES[purpose],))
        + bytes((len(campaign),))
        + campaign
        + address.encode()
    )
    body = AESSIV(material).encrypt(plain, [header])
    return base64.urlsafe_b64encode(header + body).rstrip(b"=").decode()
