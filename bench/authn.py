"""JWT verification: cold (signature check) against cached (verified-token cache hit).

For each algorithm it builds one `authn jwt` policy with a freshly generated key and
times, per call with perf_counter_ns, in the same run:

- pyjwt        `jwt.decode` with key, algorithms, issuer and audience: what a
               hand-written gateway check costs (the peer; timed alternately with
               `cold` on the same tokens);
- cold         our authenticator on a token it has not seen: header checks, key
               choice, pyjwt signature check, claim checks, identity mapping;
- cached       our authenticator on a token it verified before (a sha256 and a
               dictionary lookup);
- decide       the whole Engine.decide of a request carrying a cached token.

Cold calls each use a distinct token (distinct `jti`), so the cache never answers.
Medians over repetitions; the ratio is cold over cached.

    .venv/bin/python bench/authn.py [--tokens 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from policyengine import Engine, Request
from policyengine.context import RequestContext
from policyengine.tree import CompiledRoute

NOW = 1_800_000_000
ISSUER, AUDIENCE = "https://idp.bench.test", "bench-api"
SECRET = "b" * 64


@dataclass(frozen=True, slots=True)
class Case:
    alg: str
    signing_key: Any
    verify_key: Any
    policy_key: str  # the key line of the authn block


@dataclass(frozen=True, slots=True)
class Row:
    alg: str
    pyjwt_us: float
    cold_us: float
    cached_us: float
    decide_us: float


def cases(directory: Path) -> list[Case]:
    found = [Case("HS256", SECRET, SECRET, 'secret env "BENCH_SECRET"')]
    asymmetric: dict[str, Any] = {
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    }
    for alg, private in asymmetric.items():
        pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (directory / f"{alg}.pem").write_bytes(pem)
        found.append(Case(alg, private, private.public_key(), f'public_key file "{alg}.pem"'))
    return found


def engine_for(case: Case, directory: Path) -> Engine:
    text = f"""
    authn jwt {{
        issuer "{ISSUER}"
        audience "{AUDIENCE}"
        algorithms {case.alg}
        {case.policy_key}
        roles claim "realm_access.roles"
    }}
    role user
    route GET /orders {{ allow role user }}
    """
    return Engine.from_text(text, directory=str(directory), clock=lambda: NOW)


def tokens(case: Case, count: int, first: int) -> list[str]:
    return [
        jwt.encode(
            {
                "iss": ISSUER,
                "aud": AUDIENCE,
                "sub": f"user-{n}",
                "jti": str(n),
                "iat": NOW - 5,
                "exp": NOW + 3600,
                "realm_access": {"roles": ["user"]},
            },
            case.signing_key,
            algorithm=case.alg,
        )
        for n in range(first, first + count)
    ]


def pyjwt_decode(case: Case, token: str) -> object:
    return jwt.decode(
        token,
        case.verify_key,
        algorithms=[case.alg],
        issuer=ISSUER,
        audience=AUDIENCE,
        options={"verify_exp": False, "verify_iat": False},  # the bench's clock is fixed
    )


def per_call_us(fn: Callable[[Any], object], args: list[Any]) -> float:
    """Median nanoseconds per call over `args`, in microseconds."""
    clock = time.perf_counter_ns
    samples = []
    for arg in args:
        started = clock()
        fn(arg)
        samples.append(clock() - started)
    return statistics.median(samples) / 1000


def paired_us(
    first: list[Callable[[], object]], second: list[Callable[[], object]]
) -> tuple[float, float]:
    """Both medians, the two kinds of call alternating, so that load from other
    processes falls on both alike."""
    clock = time.perf_counter_ns
    a_samples, b_samples = [], []
    for call_a, call_b in zip(first, second, strict=True):
        started = clock()
        call_a()
        middle = clock()
        call_b()
        b_samples.append(clock() - middle)
        a_samples.append(middle - started)
    return statistics.median(a_samples) / 1000, statistics.median(b_samples) / 1000


def orders_route(engine: Engine) -> CompiledRoute:
    match = engine.policy.tree.match(("orders",), "GET")
    assert match is not None
    return match[0]


def context_for(route: CompiledRoute, token: str) -> RequestContext:
    request = Request("GET", "/orders", {"Authorization": f"Bearer {token}"})
    return RequestContext(request, ("orders",), "", NOW, route_label=route.label)


def measure(case: Case, directory: Path, count: int, repeat: int) -> Row:
    pyjwt_runs, cold_runs, cached_runs, decide_runs = [], [], [], []
    for run in range(repeat):
        engine = engine_for(case, directory)  # an empty verified-token cache
        route = orders_route(engine)
        authenticator = route.authenticators[0]
        fresh = tokens(case, count, run * count)
        contexts = [context_for(route, t) for t in fresh]
        peer, cold = paired_us(
            [partial(pyjwt_decode, case, t) for t in fresh],
            [partial(authenticator.authenticate, c) for c in contexts],
        )
        pyjwt_runs.append(peer)
        cold_runs.append(cold)
        cached_runs.append(per_call_us(authenticator.authenticate, contexts))
        requests = [Request("GET", "/orders", {"Authorization": f"Bearer {t}"}) for t in fresh]
        decide_runs.append(per_call_us(engine.decide, requests))
        assert all(engine.decide(r).allow for r in requests[:10])
    return Row(
        case.alg,
        statistics.median(pyjwt_runs),
        statistics.median(cold_runs),
        statistics.median(cached_runs),
        statistics.median(decide_runs),
    )


def render(rows: list[Row]) -> str:
    header = (
        f"{'alg':<7}{'pyjwt.decode':>14}{'cold verify':>14}{'cached':>10}"
        f"{'cold/cached':>13}{'decide (cached)':>17}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.alg:<7}{r.pyjwt_us:>12.1f}µs{r.cold_us:>12.1f}µs{r.cached_us:>8.2f}µs"
            f"{r.cold_us / r.cached_us:>12.0f}x{r.decide_us:>15.2f}µs"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=2000, help="tokens per repetition")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (median taken)")
    args = parser.parse_args()
    os.environ["BENCH_SECRET"] = SECRET
    print(
        f"python {platform.python_version()} on {platform.machine()}, pyjwt {jwt.__version__}, "
        f"{args.tokens} tokens x {args.repeat} repetitions, median per call"
    )
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(case, Path(tmp), args.tokens, args.repeat) for case in cases(Path(tmp))]
    print(render(rows))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
