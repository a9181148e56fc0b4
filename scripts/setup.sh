#!/usr/bin/env bash
# Fresh-machine setup: a venv in .venv with every extra edge-tan uses on CPU hosts.
# torch is installed first and pinned (2.13.0, CPU build): a bare `torch` requirement would make
# pip download a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[all]"
.venv/bin/edge-tan info
