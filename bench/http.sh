#!/usr/bin/env bash
# The sidecar over HTTP against nginx, side by side, with wrk (see bench/sidecar_http.py;
# a Python script named http.py would shadow the standard library's `http` package).
#   bench/http.sh [--duration 5] [--rounds 3] [--connections 50] [--servers]
#   bench/http.sh --uncached | --mix | --scaling   (bench/sidecar_mix.py)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-$here/../.venv/bin/python}" "$here/sidecar_http.py" "$@"
