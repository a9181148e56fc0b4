#!/usr/bin/env bash
# Build libedgetan + edge-tan-native into native/build (or $1). Needs cmake, a C++17 compiler,
# libopencv-dev and nlohmann-json3-dev (scripts/setup.sh installs them) and the openvino wheel in .venv.
# Extra arguments go to cmake, e.g. `native/build.sh native/build-asan -DEDGETAN_SANITIZE=ON`;
# TARGET=name builds one target only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/build}"
shift || true
py="${PYTHON:-$here/../.venv/bin/python}"
ov_dir="$("$py" -c 'import openvino.utils as u; print(u.get_cmake_path())')"
cmake -S "$here" -B "$build" -DOpenVINO_DIR="$ov_dir" -DCMAKE_BUILD_TYPE=Release "$@" > "$build.configure.log" 2>&1 \
  || { cat "$build.configure.log" >&2; exit 1; }
cmake --build "$build" -j "${JOBS:-2}" ${TARGET:+--target "$TARGET"}
