#!/usr/bin/env bash
# The sidecar over HTTP against nginx, side by side, with wrk (see bench/sidecar_http.py;
# a Python script named http.py would shadow the standard library's `http` package).
#   bench/http.sh [--duration 5] [--rounds 3] [--connections 50] [--servers]
#   bench/http.sh --uncached | --mix | --scaling   (bench/sidecar_mix.py)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# --uncached, --mix and --scaling are sidecar_mix.py's rows (it imports this one's helpers)
script=sidecar_http.py
for arg in "$@"; do
    case "$arg" in --uncached | --mix | --scaling) script=sidecar_mix.py ;; esac
done
exec "${PYTHON:-$here/../.venv/bin/python}" "$here/$script" "$@"
