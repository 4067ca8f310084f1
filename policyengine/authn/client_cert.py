"""What a gateway says about the client certificate it verified: Envoy's
X-Forwarded-Client-Cert (XFCC), or the certificate itself in a header (nginx
`$ssl_client_escaped_cert`, Traefik passTLSClientCert, Caddy's placeholders).

Parsing only: which fields a certificate names. Whether to believe the header is the
trusted-proxy check's business (`DecisionInputs.forwarded`), who it is, mtls.py's.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

MAX_HEADER = 64 * 1024  # a chain of a few certificates, URL-encoded


class CertFormat(enum.Enum):
    XFCC = "xfcc"  # Envoy: By=...;Hash=...;Subject="...";URI=...;DNS=..., elements by ","
    PEM = "pem"  # URL-encoded PEM: nginx $ssl_client_escaped_cert
    DER_BASE64 = "der_base64"  # base64 DER, URL-escaped, a chain by ",": Traefik, Caddy


class CertHeaderError(ValueError):
    """The header is not what its format says (named in the 401's message)."""


@dataclass(frozen=True, slots=True)
class CertFields:
    """The names a verified client certificate carries."""

    uris: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    cn: str | None = None
    not_after: float | None = None  # unix time; known when the certificate itself came
    sha256: str | None = None  # hex, of the DER (XFCC's Hash)


def read(value: str, form: CertFormat) -> CertFields:
    """The client certificate's names from a header value; raises CertHeaderError."""
    if len(value) > MAX_HEADER:
        raise CertHeaderError("the client certificate header is too large")
    if form is CertFormat.XFCC:
        return _from_xfcc(value)
    if form is CertFormat.PEM:
        text = unquote(value.strip())
        if text.count("-----BEGIN CERTIFICATE-----") != 1:
            raise CertHeaderError("expected one URL-encoded PEM certificate")
        try:
            return _from_cert(x509.load_pem_x509_certificate(text.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            raise CertHeaderError("the PEM certificate does not parse") from None
    leaf = unquote(value.split(",", 1)[0].strip())  # the chain starts with the client's
    try:
        der = base64.b64decode(leaf, validate=True)
        return _from_cert(x509.load_der_x509_certificate(der))
    except (ValueError, binascii.Error):
        raise CertHeaderError("the base64 DER certificate does not parse") from None


def _from_cert(cert: x509.Certificate) -> CertFields:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
        dns = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        uris = dns = ()
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(names[0].value) if names else None
    digest = cert.fingerprint(hashes.SHA256()).hex()
    return CertFields(uris, dns, cn, cert.not_valid_after_utc.timestamp(), digest)


# -- XFCC ---------------------------------------------------------------------------------


def _from_xfcc(value: str) -> CertFields:
    """The last element: the one the nearest proxy (the trusted hop) added for the client
    that connected to it. Earlier ones describe hops further out."""
    elements = split_xfcc(value)
    if not elements:
        raise CertHeaderError("X-Forwarded-Client-Cert is empty")
    element = elements[-1]
    cert = element.get("cert")
    if cert:
        return read(cert[0], CertFormat.PEM)
    subject = element.get("subject")
    cn = _cn_of(subject[0]) if subject else None
    digest = element.get("hash")
    return CertFields(
        tuple(element.get("uri", ())), tuple(element.get("dns", ())), cn, None,
        digest[0].lower() if digest else None,
    )  # fmt: skip


def split_xfcc(value: str) -> list[dict[str, list[str]]]:
    """Elements by `,`, pairs by `;`, key=value, values optionally "quoted" with `\\"`
    inside; keys case-insensitive (lowercased here). Raises CertHeaderError."""
    elements: list[dict[str, list[str]]] = []
    pairs: dict[str, list[str]] = {}
    token: list[str] = []
    key: str | None = None
    quoted = escaped = was_quoted = False

    def end_pair() -> None:
        nonlocal key, was_quoted
        text = "".join(token)
        token.clear()
        if key is None:
            if text.strip():
                raise CertHeaderError(f"X-Forwarded-Client-Cert: `{text.strip()[:40]}` has no `=`")
        else:
            pairs.setdefault(key, []).append(text if was_quoted else text.strip())
        key, was_quoted = None, False

    for char in value:
        if escaped:  # only `\"` is XFCC's: a DN's own escapes (`\,`) are kept for _cn_of
            token.append(char if char == '"' else "\\" + char)
            escaped = False
        elif quoted:
            if char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
            else:
                token.append(char)
        elif char == '"':
            if key is None or "".join(token).strip():
                raise CertHeaderError("X-Forwarded-Client-Cert: a quote inside a value")
            token.clear()
            quoted = was_quoted = True
        elif char == "=" and key is None:
            key = "".join(token).strip().lower()
            token.clear()
            if not key:
                raise CertHeaderError("X-Forwarded-Client-Cert: a value without a key")
        elif char in ";,":
            end_pair()
            if char == ",":
                if pairs:
                    elements.append(pairs)
                pairs = {}
        else:
            token.append(char)
    if quoted or escaped:
        raise CertHeaderError("X-Forwarded-Client-Cert: an unterminated quoted value")
    end_pair()
    if pairs:
        elements.append(pairs)
    return elements


def _cn_of(subject: str) -> str | None:
    """CN of a distinguished name: RFC 4514 (`CN=svc,OU=x`, `\\,` escapes) as Envoy
    writes it, or OpenSSL's one-line form (`/O=x/CN=svc`) as older versions did."""
    if subject.startswith("/"):
        for attribute in subject.split("/"):
            name, sep, text = attribute.partition("=")
            if sep and name.strip().upper() == "CN":
                return text.strip()
        return None
    part: list[str] = []
    parts: list[str] = []
    escaped = False
    for char in subject:
        if escaped:
            part.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",+":
            parts.append("".join(part))
            part = []
        else:
            part.append(char)
    parts.append("".join(part))
    for attribute in parts:
        name, sep, text = attribute.partition("=")
        if sep and name.strip().upper() == "CN":
            return text.strip()
    return None
