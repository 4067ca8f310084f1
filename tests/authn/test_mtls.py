"""`authn mtls`: client certificates a gateway verified, in XFCC, PEM and DER headers."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
from pathlib import Path
from urllib.parse import quote

import pytest
from authn_support import NOW, write
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from policyengine import Engine, PolicyError, Request, without_forwarded
from policyengine.authn.client_cert import CertFormat, CertHeaderError, read, split_xfcc
from policyengine.cli import main
from policyengine.decision import Decision, Reason

CHECKOUT = "spiffe://cluster.local/ns/shop/sa/checkout"
ROUTES = """
role service
role payments
route GET /orders { allow role service }
route POST /charges { allow role payments }
route GET /whoami { allow authenticated }
"""


class CA:
    """A real CA issuing client certificates with URI, DNS and CN names."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test mesh CA")])
        self.name = name
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        *,
        uris: tuple[str, ...] = (),
        dns: tuple[str, ...] = (),
        cn: str | None = None,
        not_after: dt.datetime = dt.datetime(2090, 1, 1, tzinfo=dt.UTC),
    ) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
        names += [x509.DNSName(d) for d in dns]
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(not_after)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(self.key, hashes.SHA256())


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def der_base64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.fixture(scope="module")
def ca() -> CA:
    return CA()


def engine(tmp_path: Path, settings: str = "", routes: str = ROUTES) -> Engine:
    text = f"authn mtls {{\n{settings}\n}}\n{routes}"
    return Engine.from_text(text, directory=str(tmp_path), clock=lambda: NOW)


def decide(engine: Engine, path: str, method: str = "GET", **headers: str) -> Decision:
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    return engine.decide(Request(method, path, named))


MAPPED = f'roles map {{ "{CHECKOUT}": service, "{CHECKOUT}": payments }}'


# -- XFCC ---------------------------------------------------------------------------------
def test_xfcc_elements_pairs_and_quoted_values() -> None:
    value = (
        'By=spiffe://cluster.local/ns/edge/sa/envoy;Hash=AB12;Subject="CN=a\\"b,OU=x;y";'
        "URI=spiffe://one;DNS=one.svc;DNS=one.internal,"
        'By=spiffe://b;URI=spiffe://two;Subject="/O=mesh/CN=two"'
    )
    first, second = split_xfcc(value)
    assert first["subject"] == ['CN=a"b,OU=x;y'] and first["dns"] == ["one.svc", "one.internal"]
    assert second["uri"] == ["spiffe://two"]
    fields = read(value, CertFormat.XFCC)  # the element the nearest proxy added
    assert fields.uris == ("spiffe://two",) and fields.cn == "two"
    assert read('Subject="CN=svc\\,a,O=mesh"', CertFormat.XFCC).cn == "svc,a"


@pytest.mark.parametrize(
    "value", ['URI="spiffe://x', "URI", 'URI=a"b"', "=x", 'URI=spiffe://x;Subject="a\\'], ids=str
)
def test_malformed_xfcc_is_refused(value: str) -> None:
    with pytest.raises(CertHeaderError):
        read(value, CertFormat.XFCC)


def test_xfcc_uri_san_maps_to_roles(tmp_path: Path) -> None:
    policy = engine(tmp_path, f"subject uri\n{MAPPED}")
    header = f"By=spiffe://cluster.local/ns/edge/sa/envoy;Hash=ab;URI={CHECKOUT}"
    orders = decide(policy, "/orders", X_Forwarded_Client_Cert=header)
    assert orders.allow and orders.subject == CHECKOUT
    assert orders.roles == ("payments", "service")
    assert decide(policy, "/charges", "POST", X_Forwarded_Client_Cert=header).allow
    other = decide(policy, "/orders", X_Forwarded_Client_Cert="URI=spiffe://cluster.local/x")
    assert not other.allow and other.reason is Reason.NO_ALLOW  # authenticated, no role
    assert decide(policy, "/whoami", X_Forwarded_Client_Cert="URI=spiffe://cluster.local/x").allow
    missing = decide(policy, "/orders")
    assert missing.status == 401 and missing.reason is Reason.AUTHN_MISSING


def test_a_subject_the_certificate_lacks_is_invalid(tmp_path: Path) -> None:
    policy = engine(tmp_path, MAPPED)
    none = decide(policy, "/whoami", X_Forwarded_Client_Cert="Hash=ab;DNS=a.svc")
    assert none.status == 401 and none.reason is Reason.AUTHN_INVALID
    two = decide(policy, "/whoami", X_Forwarded_Client_Cert="URI=spiffe://a;URI=spiffe://b")
    assert two.reason is Reason.AUTHN_INVALID and "more than one URI SAN" in two.message
    broken = decide(policy, "/whoami", X_Forwarded_Client_Cert='URI="spiffe://a')
    assert broken.reason is Reason.AUTHN_INVALID


def test_xfcc_with_the_certificate_reads_the_certificate(tmp_path: Path, ca: CA) -> None:
    policy = engine(tmp_path, MAPPED)
    cert = ca.issue(uris=(CHECKOUT,), cn="checkout")
    header = f'Hash=00;Cert="{quote(pem(cert))}";URI=spiffe://spoofed'
    decision = decide(policy, "/orders", X_Forwarded_Client_Cert=header)
    assert decision.allow and decision.subject == CHECKOUT
    expired = ca.issue(uris=(CHECKOUT,), not_after=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    late = decide(policy, "/orders", X_Forwarded_Client_Cert=f'Cert="{quote(pem(expired))}"')
    assert late.status == 401 and late.reason is Reason.AUTHN_EXPIRED


# -- the certificate itself: nginx, Traefik, Caddy -------------------------------------------
def test_nginx_escaped_pem_with_dns_and_cn_subjects(tmp_path: Path, ca: CA) -> None:
    cert = ca.issue(dns=("checkout.shop.svc", "checkout"), cn="checkout-cn")
    escaped = quote(pem(cert))  # what $ssl_client_escaped_cert holds
    by_dns = engine(
        tmp_path,
        'header "X-Client-Cert"\nformat pem\nsubject dns\n'
        'roles map { "checkout.shop.svc": service }',
    )
    decision = decide(by_dns, "/orders", X_Client_Cert=escaped)
    assert decision.allow and decision.subject == "checkout.shop.svc"
    by_cn = engine(tmp_path, 'header "X-Client-Cert"\nformat pem\nsubject cn')
    assert decide(by_cn, "/whoami", X_Client_Cert=escaped).subject == "checkout-cn"
    garbage = decide(by_cn, "/whoami", X_Client_Cert=quote("-----BEGIN CERTIFICATE-----\nx"))
    assert garbage.reason is Reason.AUTHN_INVALID


def test_traefik_and_caddy_base64_der(tmp_path: Path, ca: CA) -> None:
    cert = ca.issue(uris=(CHECKOUT,))
    policy = engine(tmp_path, f'header "X-Forwarded-Tls-Client-Cert"\nformat der_base64\n{MAPPED}')
    # Traefik's passTLSClientCert: the chain URL-escaped, comma-separated, leaf first
    chain = f"{quote(der_base64(cert), safe='')},{quote(der_base64(ca.cert), safe='')}"
    assert decide(policy, "/orders", X_Forwarded_Tls_Client_Cert=chain).subject == CHECKOUT
    caddy = der_base64(cert)  # {http.request.tls.client.certificate_der_base64}
    assert decide(policy, "/orders", X_Forwarded_Tls_Client_Cert=caddy).allow
    bad = decide(policy, "/orders", X_Forwarded_Tls_Client_Cert="not base64!")
    assert bad.reason is Reason.AUTHN_INVALID


# -- roles, settings ----------------------------------------------------------------------
def test_roles_from_a_yaml_file_and_the_map_together(tmp_path: Path) -> None:
    write(tmp_path, "services.yaml", f'subjects:\n  "{CHECKOUT}": [service]\n')
    policy = engine(tmp_path, f'roles file "services.yaml"\nroles map {{ "{CHECKOUT}": payments }}')
    decision = decide(policy, "/orders", X_Forwarded_Client_Cert=f"URI={CHECKOUT}")
    assert decision.roles == ("payments", "service")


@pytest.mark.parametrize(
    ("settings", "files", "code"),
    [
        ("format json", {}, "compile/bad-setting"),
        ("subject email", {}, "compile/bad-setting"),
        ("format pem", {}, "compile/missing-setting"),
        ('roles map { "spiffe://a": admin }', {}, "compile/unknown-role"),
        ('roles file "s.yaml"', {"s.yaml": "subjects:\n  a: [admin]\n"}, "compile/unknown-role"),
        ('roles file "s.yaml"', {"s.yaml": "subjects: [a]\n"}, "compile/roles-file"),
        ('roles file "s.yaml"', {}, "compile/roles-file"),
        ('roles "x"', {}, "compile/bad-setting"),
        ('trust "x"', {}, "compile/unknown-setting"),
    ],
)
def test_bad_settings_are_named(
    tmp_path: Path, settings: str, files: dict[str, str], code: str
) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(PolicyError) as caught:
        engine(tmp_path, settings)
    assert code in {d.code for d in caught.value.diagnostics}


# -- trusted hops -------------------------------------------------------------------------
def test_a_request_from_an_untrusted_peer_loses_the_forwarded_certificate(tmp_path: Path) -> None:
    policy = engine(tmp_path, MAPPED)
    assert policy.policy.inputs.forwarded == ("x-forwarded-client-cert",)
    spoofed = Request("GET", "/orders", {"X-Forwarded-Client-Cert": f"URI={CHECKOUT}", "A": "1"})
    direct = without_forwarded(spoofed, policy.policy.inputs.forwarded)
    assert dict(direct.headers) == {"a": "1"} or dict(direct.headers) == {"A": "1"}
    assert policy.decide(direct).reason is Reason.AUTHN_MISSING
    assert policy.decide(spoofed).allow


def test_eval_untrusted_peer_drops_the_certificate_header(tmp_path: Path) -> None:
    write(tmp_path, "p.policy", f"authn mtls {{\n{MAPPED}\n}}\n{ROUTES}")
    header = ["-H", f"X-Forwarded-Client-Cert: URI={CHECKOUT}"]
    runner = CliRunner()
    trusted = runner.invoke(main, ["eval", str(tmp_path), "GET", "/orders", *header])
    assert trusted.exit_code == 0, trusted.output
    untrusted = runner.invoke(
        main, ["eval", str(tmp_path), "GET", "/orders", *header, "--untrusted-peer"]
    )
    assert untrusted.exit_code == 1 and "authn.missing" in untrusted.output


@given(st.text(alphabet=st.sampled_from(list('URI=spiffe:/a;,"\\ DNSubjectCN%+/')), max_size=60))
def test_any_header_is_read_or_refused_by_name(value: str) -> None:
    for form in CertFormat:  # any other exception would be a 500 instead of a 401
        with contextlib.suppress(CertHeaderError):
            read(value, form)
