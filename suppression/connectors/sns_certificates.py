"""Amazon SNS signing certificates: fetched over HTTPS from the SigningCertURL a
message carries (domain/sns.py has checked that it is an SNS host), verified, and
their public keys cached.

AWS asks that the certificate be fetched over HTTPS, come from SNS, and chain to a
trusted root: https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
The `.pem` SNS serves holds the signing certificate alone, so the intermediates
are the ones the file adds, else the ones its Authority Information Access names
(`CA Issuers`, as TLS clients fetch them); the chain is verified against the
trusted roots (SNS_CA_FILE, or the bundle `requests` trusts) at the current time,
and the certificate must name an SNS host. A key is kept for a day, a bounded
number of them, so a burst of notifications costs one fetch.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import datetime, timedelta

import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from requests.utils import DEFAULT_CA_BUNDLE_PATH

logger = logging.getLogger(__name__)

USER_AGENT = "suppression-service/1 (+SNS signature check)"
MAX_CERTIFICATE_BYTES = 64 * 1024  # a PEM chain is a few KiB
MAX_INTERMEDIATES = 3
KEEP_FOR = timedelta(days=1)
MAX_CACHED = 32  # SNS rotates its certificates rarely; one per region in use
SNS_NAME_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn")


class CertificateUnavailable(Exception):
    """The certificate could not be fetched now (network, SNS's own error): worth a retry."""


class UntrustedCertificate(Exception):
    """The certificate was fetched and is not one to trust: the message is forged."""


class SnsCertificates:
    def __init__(
        self, ca_file: str | None = None, timeout: float = 5.0, max_cached: int = MAX_CACHED
    ) -> None:
        self.ca_file = ca_file
        self.timeout = timeout
        self.max_cached = max_cached
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, tuple[rsa.RSAPublicKey, datetime]] = OrderedDict()
        self._store: Store | None = None

    def public_key(self, url: str, now: datetime) -> rsa.RSAPublicKey:
        """The verified public key of the certificate at `url` (an SNS host's HTTPS
        URL). CertificateUnavailable or UntrustedCertificate otherwise."""
        with self._lock:
            cached = self._keys.get(url)
            if cached is not None and now < cached[1]:
                self._keys.move_to_end(url)
                return cached[0]
        certificates = _pem_certificates(self._fetch(url))
        leaf, intermediates = certificates[0], certificates[1:]
        if not intermediates:
            intermediates = self._issuers(leaf)
        key = self._verified_key(leaf, intermediates, now)
        # Kept a day, never past the certificate's own end.
        until = min(now + KEEP_FOR, leaf.not_valid_after_utc)
        with self._lock:
            self._keys[url] = (key, until)
            self._keys.move_to_end(url)
            while len(self._keys) > self.max_cached:
                self._keys.popitem(last=False)
        logger.info(
            "SNS signing certificate verified and cached: %s", leaf.subject.rfc4514_string()
        )
        return key

    def _verified_key(
        self, leaf: x509.Certificate, intermediates: list[x509.Certificate], now: datetime
    ) -> rsa.RSAPublicKey:
        verifier = (
            PolicyBuilder()
            .store(self._roots())
            .time(now)
            .max_chain_depth(MAX_INTERMEDIATES + 1)
            # The leaf signs messages, not TLS: the web PKI's rules hold for the CAs,
            # while the leaf is held to naming an SNS host (below) rather than to a
            # TLS server's extensions.
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, intermediates)
        except VerificationError as error:
            raise UntrustedCertificate(
                f"the signing certificate does not verify: {error}"
            ) from None
        if not _names_sns(leaf):
            raise UntrustedCertificate("the signing certificate does not name an SNS host")
        key = leaf.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise UntrustedCertificate("the signing certificate's key is not RSA")
        return key

    def _roots(self) -> Store:
        if self._store is None:
            path = self.ca_file or DEFAULT_CA_BUNDLE_PATH
            with open(path, "rb") as bundle:
                self._store = Store(x509.load_pem_x509_certificates(bundle.read()))
        return self._store

    def _issuers(self, certificate: x509.Certificate) -> list[x509.Certificate]:
        """The intermediates named by CA Issuers, up from `certificate`."""
        found: list[x509.Certificate] = []
        current = certificate
        while len(found) < MAX_INTERMEDIATES:
            url = _ca_issuers_url(current)
            if url is None or current.issuer == current.subject:
                break
            issued = _any_certificates(self._fetch(url))[0]
            found.append(issued)
            current = issued
        return found

    def _fetch(self, url: str) -> bytes:
        try:
            with self._session.get(
                url,
                timeout=self.timeout,
                verify=self.ca_file or True,
                allow_redirects=False,
                stream=True,
            ) as response:
                if response.status_code != 200:
                    raise CertificateUnavailable(
                        f"fetching a certificate answered {response.status_code}"
                    )
                body = response.raw.read(MAX_CERTIFICATE_BYTES + 1, decode_content=True)
        except requests.RequestException as error:
            raise CertificateUnavailable(
                f"could not fetch a certificate ({type(error).__name__})"
            ) from None
        if len(body) > MAX_CERTIFICATE_BYTES:
            raise UntrustedCertificate("the certificate file is too large")
        return body


def _pem_certificates(data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise UntrustedCertificate("the SigningCertURL does not hold a PEM certificate") from None


def _any_certificates(data: bytes) -> list[x509.Certificate]:
    """A CA Issuers file: DER, as RFC 5280 says, or PEM, as some CAs serve."""
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        pass
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise UntrustedCertificate("a CA Issuers URL does not hold a certificate") from None


def _ca_issuers_url(certificate: x509.Certificate) -> str | None:
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except x509.ExtensionNotFound:
        return None
    for description in access.value:
        location = description.access_location
        if (
            description.access_method == AuthorityInformationAccessOID.CA_ISSUERS
            and isinstance(location, x509.UniformResourceIdentifier)
            and location.value.startswith(("http://", "https://"))
        ):
            return location.value
    return None


def _names_sns(certificate: x509.Certificate) -> bool:
    """The certificate names an SNS host (`sns.amazonaws.com`, `sns.<region>...`)."""
    names: list[str] = []
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names.extend(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        pass
    names.extend(
        str(attribute.value)
        for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    )
    return any(
        name.lower().startswith("sns.") and name.lower().endswith(SNS_NAME_SUFFIXES)
        for name in names
    )
