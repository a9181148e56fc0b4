#!/usr/bin/env bash
# The default-model recipe on a CPU host (no GPU), under one time budget:
#   phantom (train + held-out, skipped when DATA/HELDOUT already hold one) -> TAN fine-tuned from the
#   shipped model (--init: its template kept) with TCM, rank-normalised input (input_norm equalize)
#   and domain randomisation -> fp16 weights -> closed-loop eval on the held-out phantom.
# Mirrors scripts/gpu_default_model.sh; runs the checkout's venv (bash scripts/setup.sh first).
#   BUDGET=total seconds  N / HELD = train / held-out sequences  SEED=phantom seed  BS=batch
#   WORKERS=data-loader processes  SPE=samples per epoch (one val + checkpoint per epoch)  LR
#   STARTUP=seconds kept for data loading, TCM labels and the final validation beside the training budget
#   INIT=weights to fine-tune ("" = from scratch)  NORM=equalize|none  DR=--dr|--no-dr  TCM=--tcm|--no-tcm
#   OUT=results folder: tan_default.safetensors, train.log, run/ (resumable: rerun to continue), eval.json
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-cpu-out}; N=${N:-240}; HELD=${HELD:-20}; SEED=${SEED:-7}; BS=${BS:-16}
WORKERS=${WORKERS:-1}; SPE=${SPE:-2000}; BUDGET=${BUDGET:-7200}; LR=${LR:-5e-4}
INIT=${INIT-edge_tan/assets/tan_default.safetensors}; NORM=${NORM:-equalize}; DR=${DR:---dr}; TCM=${TCM:---tcm}
DATA=${DATA:-$OUT/phantom}; HELDOUT=${HELDOUT:-$OUT/heldout}
ET=${ET:-.venv/bin/edge-tan}; PY=${PY:-.venv/bin/python}; EVB=${EVB:-onnxruntime}   # eval backend
T0=$(date +%s)
mkdir -p "$OUT"
LOG=$OUT/train.log
export PYTHONUNBUFFERED=1
. scripts/budget.sh   # left, stage
{ date -u; echo "cpus $(nproc)"; uptime; $PY -c "import torch, cv2, numpy; print('torch', torch.__version__, 'threads', \
  torch.get_num_threads(), 'cv2', cv2.__version__, 'numpy', numpy.__version__)"; } >> "$LOG" 2>&1

[ -f "$DATA/manifest.json" ] || stage synth $(( BUDGET / 3 )) $ET synth "$DATA" --n "$N" --seed "$SEED" \
  || { tail -20 "$LOG"; exit 1; }
[ -f "$HELDOUT/manifest.json" ] || stage synth-heldout 600 $ET synth "$HELDOUT" --n "$HELD" --seed 1000

RESERVE=${RESERVE:-420}   # ship (~10 s) + ONNX export + held-out eval on the CPU (minutes when the host is busy)
# --max-minutes counts training steps only: loading the data, the TCM flow labels and the last epoch's
# validation come on top (minutes on 2 cores with 240 sequences), hence STARTUP
STARTUP=${STARTUP:-300}
MIN=$($PY -c "print(max(0.5, ($(left) - $RESERVE - $STARTUP) / 60))")
echo "TAN training budget: $MIN min (batch $BS, input_norm $NORM, $DR, $TCM, init '${INIT}')" | tee -a "$LOG"
INIT_ARGS=(); [ -n "$INIT" ] && INIT_ARGS=(--init "$INIT")
stage train-tan $(( $(left) - RESERVE )) $ET train "$DATA" --model tan --out "$OUT/run" --max-minutes "$MIN" \
  --epochs 1000 --batch-size "$BS" --workers "$WORKERS" --device cpu --samples-per-epoch "$SPE" --seed 0 --lr "$LR" \
  --input-norm "$NORM" $DR $TCM "${INIT_ARGS[@]}" ${TRAIN_ARGS:-} || tail -30 "$LOG"
stage ship 60 $PY -c "import sys; from edge_tan.export.weights import ship_weights; print('sha256', ship_weights(sys.argv[1], sys.argv[2]))" \
  "$OUT/run/best.safetensors" "$OUT/tan_default.safetensors"
[ -f "$OUT/tan_default.safetensors" ] && stage eval-tan $(( RESERVE - 20 )) $ET eval "$HELDOUT" --split all --backend "$EVB" \
  --model "$OUT/tan_default.safetensors" --json "$OUT/eval.json"
echo "total $(( $(date +%s) - T0 )) s" | tee -a "$LOG"
$PY - "$OUT" <<'EOF' 2>/dev/null | tee -a "$LOG"
import json, sys
s = json.load(open(sys.argv[1] + "/run/summary.json"))
r = [json.loads(l) for l in open(sys.argv[1] + "/run/log.jsonl")]
print(f"steps {s['steps']} in {s['train_s']} s = {s['steps'] / max(s['train_s'], 1e-9):.3f} steps/s, "
      f"{sum(x['samples_per_s'] for x in r) / len(r):.2f} samples/s (epoch mean); best val Dice {s['best_val_dice']:.4f}")
EOF
