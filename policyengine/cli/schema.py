"""`policyengine schema export DIR NAME`: a schema as JSON Schema, for client teams to reuse."""

from __future__ import annotations

import json
import sys
from typing import NoReturn

import click

from policyengine.cli.core import EXIT_USAGE
from policyengine.engine import Engine
from policyengine.errors import PolicyError, one_of
from policyengine.paths import BadPath, normalize_path, split_target
from policyengine.schema import QueryValidator
from policyengine.schema.convert import JsonSchema


@click.group()
def schema() -> None:
    """Work with the input schemas of a policy set."""


@schema.command()
@click.argument("directory", type=click.Path(exists=True))
@click.argument("name", required=False)
@click.option(
    "--query",
    "route",
    metavar='"METHOD PATH"',
    help="Export the query parameters' schema of the route matching this request.",
)
def export(directory: str, name: str | None, route: str | None) -> None:
    """Print schema NAME (or a route's query schema) as JSON Schema, draft 2020-12.

    Schemas it references are included under `$defs`, so the output stands alone.
    """
    try:
        engine = Engine.load(directory)
    except PolicyError as err:
        click.echo(err.render(), err=True)
        sys.exit(EXIT_USAGE)
    if (name is None) == (route is None):
        _fail('give a schema NAME or --query "METHOD PATH", not both')
    document = _query_schema(engine, route) if route is not None else None
    if name is not None:
        compiled = engine.policy.schemas.get(name)
        if compiled is None:
            _fail(f"unknown schema `{name}` (schemas: {one_of(engine.policy.schemas)})")
        document = compiled.json_schema
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _query_schema(engine: Engine, target: str) -> JsonSchema:
    method, _, path = target.strip().partition(" ")
    try:
        segments = normalize_path(split_target(path.strip())[0])
    except BadPath as err:
        _fail(f"bad path `{path}`: {err}")
    match = engine.policy.tree.match(segments, method.upper())
    if match is None:
        _fail(f"no route matches `{target}`")
    route = match[0]
    if route.query is None or not isinstance(route.query.validate, QueryValidator):
        _fail(f"route `{route.label}` has no query schema")
    return route.query.validate.json_schema


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)
