"""Real nginx and Envoy terminating a service's mTLS and passing the verified certificate
to the sidecar (`authn mtls`): nginx as a URL-encoded PEM (docs/gateways/nginx/
client-cert.conf), Envoy as X-Forwarded-Client-Cert (docs/gateways/envoy/client-cert.yaml,
merged into both documented profiles)."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import trustme
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from server_support import (
    GATEWAY_DOCS,
    UNTRUSTED_CLIENT,
    EchoUpstream,
    caddy_running,
    envoy_config,
    envoy_running,
    forward_auth,
    free_port,
    gateway_config,
    nginx_running,
    request,
    serve_process,
    traefik_running,
    wait_for_port,
)

CHECKOUT = "spiffe://cluster.local/ns/shop/sa/checkout"
POLICY = f"""\
policy "mesh"

authn mtls {{
    @SETTINGS@
    subject uri
    roles map {{ "{CHECKOUT}": service }}
}}

role service

route GET /api/orders/{{id:int}} {{
    allow role service
}}

route GET /api/whoami {{
    allow authenticated
}}

route GET /api/echo {{
    allow anyone
}}
"""
DOCUMENTED_LISTEN = "    listen 127.0.0.1:8080;\n"
AUTH_LOCATION = "    location = /_policyengine {\n        internal;\n"


def mesh_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mesh CA")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (directory / "mesh-ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def workload(
    directory: Path, ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], spiffe_id: str
) -> tuple[Path, Path]:
    """A service's certificate (SPIFFE ID as its only URI SAN) and key, as PEM files."""
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    name = spiffe_id.rsplit("/", 1)[-1]
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class NamedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address, with a server name (SNI) and Host of our choosing."""

    def __init__(self, address: str, port: int, name: str, **kwargs: object) -> None:
        super().__init__(address, port, **kwargs)  # type: ignore[arg-type]
        self.name = name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            self.sock, server_hostname=self.name
        )


class Stack:
    def __init__(
        self, port: int, sidecar: int, certs: Path, gateway_ca: trustme.CA, name: str | None = None
    ) -> None:
        self.port, self.sidecar, self.certs, self.gateway_ca = port, sidecar, certs, gateway_ca
        self.name = name  # the server name to ask for (else the address, and no SNI)

    def get(self, path: str, cert: tuple[Path, Path] | None, **headers: str) -> tuple[int, bytes]:
        context = ssl.create_default_context()
        self.gateway_ca.configure_trust(context)
        if cert is not None:
            context.load_cert_chain(*cert)
        conn = NamedHTTPS(
            "127.0.0.1", self.port, self.name or "127.0.0.1", context=context, timeout=10,
            source_address=(UNTRUSTED_CLIENT, 0),
        )  # fmt: skip
        named = {k.replace("_", "-"): v for k, v in headers.items()}
        if self.name is not None:
            named["Host"] = f"{self.name}:{self.port}"
        try:
            conn.request("GET", path, headers=named)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def set_up(root: Path, settings: str) -> tuple[Path, trustme.CA]:
    """The sidecar's policy, the mesh CA, two services' certificates, the gateway's."""
    (root / "policy").mkdir()
    (root / "policy" / "mesh.policy").write_text(POLICY.replace("@SETTINGS@", settings))
    certs = root / "certs"
    certs.mkdir()
    ca = mesh_ca(certs)
    gateway_ca = trustme.CA()
    gateway = gateway_ca.issue_cert("127.0.0.1", "localhost")
    gateway.cert_chain_pems[0].write_to_path(str(certs / "gateway.pem"))
    gateway.private_key_pem.write_to_path(str(certs / "gateway.key"))
    workload(certs, ca, CHECKOUT)
    workload(certs, ca, "spiffe://cluster.local/ns/shop/sa/reporting")
    return certs, gateway_ca


@pytest.fixture(scope="module", params=["nginx", "envoy-http", "envoy-grpc", "traefik", "caddy"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    gateway: str = request.param
    root = tmp_path_factory.mktemp(gateway)
    if gateway == "nginx":
        yield from nginx_stack(root)
    elif gateway == "traefik":
        yield from traefik_stack(root)
    elif gateway == "caddy":
        yield from caddy_stack(root)
    else:
        yield from envoy_stack(root, gateway.removeprefix("envoy-"))


def envoy_stack(root: Path, profile: str) -> Iterator[Stack]:
    certs, gateway_ca = set_up(root, "format xfcc")
    fragment = yaml.safe_load(
        (GATEWAY_DOCS / "envoy" / "client-cert.yaml")
        .read_text()
        .replace("/etc/envoy/tls", str(certs))
    )
    http_port, grpc_port, listen = free_port(), free_port(), free_port()
    args = ["--trusted-proxy", "127.0.0.1/32"]
    if profile == "grpc":
        args += ["--grpc-port", str(grpc_port)]
    with EchoUpstream() as app, serve_process(root / "policy", *args, port=http_port):
        sidecar = grpc_port if profile == "grpc" else http_port
        wait_for_port(sidecar)
        name = "envoy.yaml" if profile == "http" else "envoy-grpc.yaml"
        documented = envoy_config(GATEWAY_DOCS / "envoy" / name, sidecar=sidecar, app=app.port,
                                  listen=listen)  # fmt: skip
        config = yaml.safe_load(documented)
        chain = config["static_resources"]["listeners"][0]["filter_chains"][0]
        chain["transport_socket"] = fragment["transport_socket"]
        chain["filters"][0]["typed_config"].update(fragment["http_connection_manager"])
        with envoy_running(root / "envoy", yaml.safe_dump(config), listen):
            yield Stack(listen, http_port, certs, gateway_ca)


def traefik_stack(root: Path) -> Iterator[Stack]:
    certs, gateway_ca = set_up(root, 'header "X-Forwarded-Tls-Client-Cert"\n    format der_base64')
    text = (GATEWAY_DOCS / "traefik" / "client-cert.yml").read_text()
    fragment = yaml.safe_load(text.replace("/etc/traefik/tls", str(certs)))
    sidecar, listen = free_port(), free_port()
    with (
        EchoUpstream() as app,
        serve_process(root / "policy", "--trusted-proxy", "127.0.0.1/32", port=sidecar),
    ):
        documented = gateway_config(
            GATEWAY_DOCS / "traefik" / "dynamic.yml", sidecar=sidecar, app=app.port, listen=None
        )
        dynamic = yaml.safe_load(documented)
        middlewares = fragment["http"]["middlewares"]
        dynamic["http"]["middlewares"]["policyengine"]["forwardAuth"].update(
            middlewares.pop("policyengine")["forwardAuth"]
        )
        dynamic["http"]["middlewares"].update(middlewares)
        dynamic["http"]["routers"]["app"].update(fragment["http"]["routers"]["app"])
        dynamic["tls"] = fragment["tls"]
        stack = Stack(listen, sidecar, certs, gateway_ca)
        checkout = (certs / "checkout.pem", certs / "checkout.key")
        with traefik_running(
            root / "traefik", yaml.safe_dump(dynamic), listen,
            probe=lambda: tls_probe(stack, checkout),
        ):  # fmt: skip
            yield stack


def caddy_stack(root: Path) -> Iterator[Stack]:
    certs, gateway_ca = set_up(root, 'header "X-Client-Cert"\n    format der_base64')
    sidecar, listen = free_port(), free_port()
    with (
        EchoUpstream() as app,
        serve_process(root / "policy", "--trusted-proxy", "127.0.0.1/32", port=sidecar),
    ):
        caddyfile = gateway_config(
            GATEWAY_DOCS / "caddy" / "Caddyfile.mtls", sidecar=sidecar, app=app.port, listen=None
        )
        assert caddyfile.count("localhost:8080") == 1
        caddyfile = caddyfile.replace("localhost:8080", f"localhost:{listen}")
        with caddy_running(root / "caddy", caddyfile.replace("/etc/caddy/tls", str(certs)), listen):
            yield Stack(listen, sidecar, certs, gateway_ca, name="localhost")


def tls_probe(stack: Stack, cert: tuple[Path, Path]) -> int:
    """Traefik's router is TLS only; until the file provider has loaded it, Traefik
    answers handshakes with its default configuration, or 404."""
    try:
        return stack.get("/api/whoami", cert)[0]
    except (ssl.SSLError, ConnectionError):
        return 404


def nginx_stack(root: Path) -> Iterator[Stack]:
    certs, gateway_ca = set_up(root, 'header "X-Client-Cert"\n    format pem')
    server_part, _, location_part = (
        (GATEWAY_DOCS / "nginx" / "client-cert.conf").read_text().partition("# -- in location")
    )
    server_lines = "".join(
        line for line in server_part.splitlines(True) if not line.startswith("#")
    )
    location_line = location_part.splitlines(True)[1]
    sidecar, listen = free_port(), free_port()
    with (
        EchoUpstream() as app,
        serve_process(root / "policy", "--nginx-mode", "--trusted-proxy", "127.0.0.1/32",
                      port=sidecar),
    ):  # fmt: skip
        site = gateway_config(
            GATEWAY_DOCS / "nginx" / "policyengine.conf", sidecar=sidecar, app=app.port,
            listen=listen,
        )  # fmt: skip
        listen_line = DOCUMENTED_LISTEN.replace("8080", str(listen))
        assert site.count(listen_line) == 1 and site.count(AUTH_LOCATION) == 1
        server_lines = server_lines.replace("8080", str(listen)).replace(
            "/etc/nginx/tls", str(certs)
        )
        site = site.replace(listen_line, server_lines)
        site = site.replace(AUTH_LOCATION, AUTH_LOCATION + location_line)
        with nginx_running(root / "nginx", site, listen):
            yield Stack(listen, sidecar, certs, gateway_ca)


def test_a_verified_client_certificate_is_the_identity(stack: Stack) -> None:
    checkout = (stack.certs / "checkout.pem", stack.certs / "checkout.key")
    status, body = stack.get("/api/orders/7", checkout)
    assert status == 200, body
    received = {k.lower(): v for k, v in json.loads(body)["headers"]}
    assert received["x-auth-subject"] == CHECKOUT and received["x-auth-roles"] == "service"
    reporting = (stack.certs / "reporting.pem", stack.certs / "reporting.key")
    assert stack.get("/api/orders/7", reporting)[0] == 403  # authenticated, not a service
    assert stack.get("/api/whoami", reporting)[0] == 200


def test_a_client_cannot_name_itself(stack: Stack) -> None:
    reporting = (stack.certs / "reporting.pem", stack.certs / "reporting.key")
    checkout_pem = (stack.certs / "checkout.pem").read_text()
    forged = {  # the checkout service's names, in each gateway's header
        "X_Client_Cert": quote(checkout_pem),
        "X_Forwarded_Client_Cert": f"By=spiffe://x;URI={CHECKOUT}",
        "X_Forwarded_Tls_Client_Cert": quote("".join(checkout_pem.splitlines()[1:-1]), safe=""),
    }
    # through the gateway: its own certificate replaces the header it sent
    assert stack.get("/api/orders/7", reporting, **forged)[0] == 403
    # nor the request it is about (Traefik's ForwardAuth trusts X-Forwarded-* here)
    elsewhere = {"X_Forwarded_Uri": "/api/echo", "X_Original_URI": "/api/echo"}
    assert stack.get("/api/orders/7", reporting, **elsewhere)[0] in (400, 403)
    # straight to the sidecar, from outside --trusted-proxy: the header is dropped
    headers = {name.replace("_", "-"): value for name, value in forged.items()}
    direct = request(
        stack.sidecar, "GET", "/v1/forward-auth",
        {**forward_auth("GET", "/api/orders/7"), **headers}, source=UNTRUSTED_CLIENT,
    )  # fmt: skip
    assert direct.status == 401


def test_no_client_certificate_no_request(stack: Stack) -> None:
    try:
        status = stack.get("/api/whoami", None)[0]
    except (ssl.SSLError, ConnectionError):
        return  # Envoy ends the handshake
    assert status == 400  # nginx answers the handshake, then refuses the request
