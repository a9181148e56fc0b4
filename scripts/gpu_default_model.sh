#!/usr/bin/env bash
# The default-model recipe in one run, sized for a borrowed GPU with minutes of time:
#   phantom (train + held-out) -> TAN training (paper config, TCM) -> fp16 weights -> closed-loop eval
#   -> U-Net / PSPNet baselines (short) and their eval -> GPU check, as far as the time budget allows.
# Works on a CUDA box or (slowly) on CPU. Needs only numpy, OpenCV, torch, typer, rich, safetensors
# (edge-tan is put on PYTHONPATH from this checkout, so nothing is installed).
# Every stage runs under a deadline (BUDGET seconds from start) so results always come back:
#   $OUT/train.log  $OUT/tan_default.safetensors  $OUT/results.tar (JSON summaries, logs, montage)
#   N=train sequences  HELD=held-out sequences  SEED=phantom seed  DEVICE=auto|cuda|cpu
#   BUDGET=total seconds  BASE_S=seconds per baseline  TCM=--tcm|--no-tcm
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/edge-tan-gpu-out}; N=${N:-300}; HELD=${HELD:-20}; SEED=${SEED:-7}; DEVICE=${DEVICE:-auto}
BS=${BS:-64}; WORKERS=${WORKERS:-$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))}; SPE=${SPE:-32000}
BUDGET=${BUDGET:-560}; BASE_S=${BASE_S:-50}; TCM=${TCM:---tcm}; LR=${LR:-1e-3}
WORK=${WORK:-/tmp/edge-tan-gpu-work}
T0=$(date +%s)
mkdir -p "$OUT" "$WORK/res"
export PYTHONUNBUFFERED=1
PKG=$WORK/pkg; rm -rf "$PKG"; mkdir -p "$PKG"
cp -r edge_tan "$PKG/"; cp -r export "$PKG/edge_tan/export"; cp -r targets "$PKG/edge_tan/targets"; cp -r bench "$PKG/edge_tan/bench"
export PYTHONPATH=$PKG
REPO=$PWD
cd "$WORK"   # `python -m` puts the cwd first on sys.path: the checkout's edge_tan/ has no export/targets/bench
PY=${PY:-python3}
ET="$PY -m edge_tan.cli"
LOG=$OUT/train.log
RES=$WORK/res
pack() { tar -cf "$OUT/.results.tar" -C "$RES" . 2>/dev/null && mv "$OUT/.results.tar" "$OUT/results.tar"; }
. "$REPO/scripts/budget.sh"   # left, stage
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU";
  echo "cpus $(nproc)"; $PY -c "import torch, cv2, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cv2', cv2.__version__, 'numpy', numpy.__version__)"; } > "$LOG" 2>&1

stage synth 120 $ET synth "$WORK/phantom" --n "$N" --seed "$SEED" --workers "$(nproc)" || { tail -20 "$LOG"; exit 1; }
stage synth-heldout 60 $ET synth "$WORK/heldout" --n "$HELD" --seed 1000 --workers "$(nproc)"
cp "$WORK/phantom/montage.png" "$RES/" 2>/dev/null

# TAN gets everything except what the later stages need (ship + eval ~60 s, baselines 2 x (BASE_S + 25 s))
RESERVE=$(( 60 + 2 * (BASE_S + 25) + 30 ))
MIN=$($PY -c "print(max(0.5, ($(left) - $RESERVE - 25) / 60))")
echo "TAN training budget: $MIN min" | tee -a "$LOG"
stage train-tan $(( $(left) - RESERVE + 20 )) $ET train "$WORK/phantom" --model tan --out "$WORK/tan" --max-minutes "$MIN" \
   --epochs 1000 --batch-size "$BS" --workers "$WORKERS" --device "$DEVICE" --samples-per-epoch "$SPE" --seed 0 --lr "$LR" \
   --no-resume $TCM ${TRAIN_ARGS:-} || { tail -30 "$LOG"; }
cp "$WORK/tan/summary.json" "$RES/tan_summary.json" 2>/dev/null; cp "$WORK/tan/log.jsonl" "$RES/tan_log.jsonl" 2>/dev/null
stage ship 30 $PY -c "import sys; from edge_tan.export.weights import ship_weights; print('sha256', ship_weights(sys.argv[1], sys.argv[2]))" \
   "$WORK/tan/best.safetensors" "$OUT/tan_default.safetensors"
EVB=torch-cuda; [ "$DEVICE" = cpu ] && EVB=torch
$PY -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" || EVB=torch
stage eval-tan 60 $ET eval "$WORK/heldout" --split all --backend "$EVB" --model "$OUT/tan_default.safetensors" \
   --frame-by-frame --json "$RES/eval_tan.json"
pack

for B in unet pspnet; do
  stage "train-$B" $(( BASE_S + 30 )) $ET train "$WORK/phantom" --model "$B" --out "$WORK/$B" --max-minutes \
     "$($PY -c "print($BASE_S / 60)")" --epochs 1000 --batch-size 32 --workers "$WORKERS" --device "$DEVICE" \
     --samples-per-epoch 4096 --seed 0 --no-resume
  cp "$WORK/$B/summary.json" "$RES/${B}_summary.json" 2>/dev/null; cp "$WORK/$B/log.jsonl" "$RES/${B}_log.jsonl" 2>/dev/null
done
for B in unet pspnet; do
  [ -f "$WORK/$B/best.safetensors" ] && stage "eval-$B" 40 $ET eval "$WORK/heldout" --split all --backend "$EVB" \
     --model "$WORK/$B/best.safetensors" --json "$RES/eval_$B.json"
done
pack
stage gpu-check 90 $PY "$REPO/scripts/gpu_check.py" --weights "$OUT/tan_default.safetensors" --out "$RES" \
  || echo "gpu_check incomplete (see train.log)" | tee -a "$LOG"
pack
echo "total $(( $(date +%s) - T0 )) s" | tee -a "$LOG"
grep -v "━" "$LOG" | grep -v "^\s*$" | tail -60
