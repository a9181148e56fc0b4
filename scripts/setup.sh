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
# The native runtime (native/, issue 22): OpenCV's C++ package and nlohmann-json from the OS (as root, or
# via passwordless sudo; skipped when present), then CMake against the openvino wheel in .venv. A failed
# native build does not stop the Python setup: tests/test_native.py rebuilds it and fails with the log.
NATIVE_PKGS="libopencv-dev nlohmann-json3-dev"
if ! dpkg -s $NATIVE_PKGS >/dev/null 2>&1 && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  { $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
      cmake g++ $NATIVE_PKGS; } >/tmp/edge-tan-apt.log 2>&1 || echo "setup: could not install $NATIVE_PKGS (see /tmp/edge-tan-apt.log)"
fi
bash native/build.sh >/dev/null || echo "setup: native build failed (tests/test_native.py will show why)"
