"""Analysis of compiled policies, for review rather than for requests.

exprtext.py  conditions printed canonically from the AST
access.py    rules without spans, principals, the grant a route makes to each
schemas.py   whether one JSON Schema accepts nothing another refused
summary.py   a typed per-route summary of a compiled policy set
sources.py   a set from a directory or from git (`REV:DIR`), summarized
diff.py      what changed between two summaries, and whether it widens access
matrix.py    routes by kinds of caller
coverage.py  the rules and routes policy tests never exercise
render.py    text, Markdown and CSV
"""
