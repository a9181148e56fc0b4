#!/usr/bin/env bash
# The default-model recipe in one run: phantom -> TAN training -> GPU check.
# Works on a CUDA box or (slowly) on CPU. Needs only numpy, OpenCV, torch, typer, rich, safetensors
# (edge-tan is put on PYTHONPATH from this checkout, so nothing is installed).
#   N=sequences  MIN=training minutes  SEED=phantom seed  DEVICE=auto|cuda|cpu  OUT=results folder
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/edge-tan-gpu-out}; N=${N:-300}; MIN=${MIN:-6}; SEED=${SEED:-7}; DEVICE=${DEVICE:-auto}
BS=${BS:-64}; WORKERS=${WORKERS:-$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))}; SPE=${SPE:-16000}
WORK=${WORK:-/tmp/edge-tan-gpu-work}
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1
PKG=$WORK/pkg; rm -rf "$PKG"; mkdir -p "$PKG"
cp -r edge_tan "$PKG/"; cp -r export "$PKG/edge_tan/export"; cp -r targets "$PKG/edge_tan/targets"; cp -r bench "$PKG/edge_tan/bench"
export PYTHONPATH=$PKG
PY=${PY:-python3}
ET="$PY -m edge_tan.cli"
LOG=$OUT/train.log
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU";
  nproc; $PY -c "import torch, cv2, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cv2', cv2.__version__, 'numpy', numpy.__version__)"; } > "$LOG" 2>&1
t0=$(date +%s)
$ET synth "$WORK/phantom" --n "$N" --seed "$SEED" --workers "$(nproc)" >> "$LOG" 2>&1 || { echo "synth failed"; tail -20 "$LOG"; exit 1; }
t1=$(date +%s); echo "synth: $N sequences in $((t1 - t0)) s" | tee -a "$LOG"
cp "$WORK/phantom/montage.png" "$OUT/" 2>/dev/null
$ET train "$WORK/phantom" --model tan --out "$WORK/run" --max-minutes "$MIN" --epochs 1000 --batch-size "$BS" \
   --workers "$WORKERS" --device "$DEVICE" --samples-per-epoch "$SPE" --seed 0 --no-resume ${TRAIN_ARGS:-} >> "$LOG" 2>&1 \
   || { echo "train failed"; tail -30 "$LOG"; exit 1; }
t2=$(date +%s); echo "train: $((t2 - t1)) s" | tee -a "$LOG"
$PY - "$WORK/run/best.safetensors" "$OUT/tan_default.safetensors" <<'PY' >> "$LOG" 2>&1
import sys
from edge_tan.export.weights import load_weights, save_weights
model, md = load_weights(sys.argv[1])
save_weights(model, md, sys.argv[2], half=True)
print("shipped fp16 weights:", sys.argv[2])
PY
cp "$WORK/run/summary.json" "$WORK/run/log.jsonl" "$OUT/" 2>/dev/null
timeout 240 $PY -m edge_tan.bench.gpu_check --weights "$OUT/tan_default.safetensors" --out "$OUT" >> "$LOG" 2>&1 \
   || echo "gpu_check failed (see train.log)" | tee -a "$LOG"
grep -v "━" "$LOG" | tail -45
