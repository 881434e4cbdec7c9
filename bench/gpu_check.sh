#!/usr/bin/env bash
# bench/gpu_check.sh: the one prepared GPU check of issue 17 (about 6-8 minutes).
#
#   OUT=/some/folder bash bench/gpu_check.sh        # from the repository root
#
# What it does, each step under its own time limit so the whole stays under ~8 minutes:
#   1. checks the machine: nvidia-smi, torch's CUDA, the project importable (else
#      `pip install -e .`, then `pip install --no-deps -e .`: the machine has no internet,
#      so the dependencies must already be installed);
#   2. builds a CUDA latency table for mobilenetv3_ofa (`nas lut build --device cuda`)
#      and validates it on random architectures (`nas lut validate`); 2b. makes a portable
#      bundle (`nas lut bundle`), runs its standalone runner with onnxruntime's CUDA provider
#      (the CPU provider when onnxruntime-gpu is absent) and imports it (`nas lut import`);
#   3. writes a synthetic CIFAR-10-format data set (python batches, 6 x 1000 images,
#      random pixels: a throughput check, not an accuracy check; nothing downloads);
#   4. trains the OFA supernet (`python -m nas supernet train`) for a few hundred steps at
#      32 px and 128 px in fp32, bf16 and fp16 with channels_last, from a generated YAML with
#      `compute: {device: cuda, precision: ...}`, and prints images/s of each run (from its
#      metrics.csv) and the device its manifest recorded;
#   5. bench/train_throughput.py --device cuda --channels-last at 32 px and 128 px: images/s
#      of the supernet step (largest subnet, sandwich) against the static network.
#
# Assumptions: bash, GNU coreutils `timeout`, an NVIDIA GPU with a CUDA build of torch
# already installed (the script never installs torch), Python 3.11 as `python`
# (override with PYTHON=...). Every line it prints also goes to $OUT/gpu_check.log, and
# the run folders' metrics and the bench results are copied under $OUT (default: a new
# temporary folder). A failed step is reported and the script goes on; it exits non-zero
# if any step failed.
#
# SMOKE=1 runs the same steps on the CPU in miniature (fp32 and bf16, a few steps): how
# the script is checked on a machine without a GPU.
set -uo pipefail
SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 1 ]; then  # device, precisions, width, steps and batch at 32 / 128 px, calibration images
    DEV=cpu; PRECS="fp32 bf16"; WIDTH=0.25; S32=4; S128=3; B32=16; B128=4; CALIB=16; IMAGES=100
    THREADS=", threads: 1"  # a busy CPU: torch's default threads spin (issue 17)
    LIMIT_SCALE=4           # a shared 2-core machine is slow
else
    DEV=cuda; PRECS="fp32 bf16 fp16"; WIDTH=1.0; S32=300; S128=120; B32=128; B128=64; CALIB=256
    IMAGES=1000; THREADS=""; LIMIT_SCALE=1
fi

PY=${PYTHON:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code, whatever is installed
OUT=${OUT:-$(mktemp -d -t gpu_check.XXXX)}
mkdir -p "$OUT"
WORK=$(mktemp -d -t gpu_check_work.XXXX)
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
FAILED=()
T0=$(date +%s)

step() {  # step NAME SECONDS CMD...: run CMD under a time limit, record a failure
    local name=$1 limit=$(( $2 * LIMIT_SCALE ))
    shift 2
    echo "=== [$(( $(date +%s) - T0 )) s] $name (limit ${limit} s)"
    timeout --kill-after=10 "$limit" "$@"
    local rc=$?
    if [ $rc -ne 0 ]; then
        echo "!!! $name failed (exit $rc$([ $rc -eq 124 ] && echo ': time limit'))"
        FAILED+=("$name")
    fi
    return 0
}

echo "gpu_check: $(date -u +%FT%TZ) on $(hostname), repo $(git rev-parse --short HEAD 2>/dev/null || echo '?'), OUT=$OUT"
nvidia-smi -L || echo "(nvidia-smi not found)"

# 1. environment ---------------------------------------------------------------------------
if ! $PY -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available()); sys.exit(0 if torch.cuda.is_available() or '$SMOKE' == '1' else 1)"; then
    echo "!!! torch cannot see a CUDA device: nothing to check"; exit 1
fi
if ! $PY -c "import nas, supernets, hardware" 2>/dev/null; then
    echo "the project is not importable: pip install -e . (no internet: deps must be installed)"
    $PY -m pip install -q -e . || $PY -m pip install -q --no-deps -e .
    $PY -c "import nas, supernets, hardware" || { echo "!!! cannot import the project"; exit 1; }
fi
[ "$DEV" = cuda ] && $PY -c "import torch; p = torch.cuda.get_device_properties(0); print(p.name, round(p.total_memory / 2**30), 'GiB, bf16', torch.cuda.is_bf16_supported())"

# 2. CUDA latency table ----------------------------------------------------------------------
LUT="$OUT/lut_mobilenetv3_ofa_$DEV.csv"
LUT_OPTS=(-O "resolutions=[128]")
[ "$SMOKE" = 1 ] && LUT_OPTS=(-O "resolutions=[32]" -O width_mult=0.25)
step "lut build ($DEV)" 90 $PY -m nas lut build --space mobilenetv3_ofa "${LUT_OPTS[@]}" \
    --device "$DEV" --batch-size 1 --time-budget 0.02 --max-runs 30 --calibration 8 -o "$LUT"
if [ -f "$LUT" ]; then
    step "lut validate ($DEV)" 45 $PY -m nas lut validate "$LUT" -n 30 --time-budget 0.1 \
        --plot "$OUT/lut_validate_$DEV.png"
fi

# 2b. a portable bundle run by its standalone runner with onnxruntime's CUDA provider ----------
RES=$([ "$SMOKE" = 1 ] && echo 32 || echo 128)
BUNDLE="$WORK/bundle"
step "lut bundle" 120 $PY -m nas lut bundle --space mobilenetv3_ofa "${LUT_OPTS[@]}" \
    --resolution "$RES" --calibration 8 -o "$BUNDLE"
if [ -f "$BUNDLE/measure.py" ]; then
    $PY "$BUNDLE/measure.py" "$BUNDLE" --list-providers | tee "$OUT/ort_providers.txt"
    PROVIDER=CPUExecutionProvider
    grep -q CUDAExecutionProvider "$OUT/ort_providers.txt" && PROVIDER=CUDAExecutionProvider
    [ "$PROVIDER" = CPUExecutionProvider ] && echo "(onnxruntime has no CUDA provider here: onnxruntime-gpu is not installed; timing the bundle on the CPU provider)"
    step "bundle runner ($PROVIDER)" 180 $PY "$BUNDLE/measure.py" "$BUNDLE" -o "$OUT/ort_measurements.csv" \
        --provider "$PROVIDER"
    step "lut import" 60 $PY -m nas lut import "$BUNDLE" "$OUT/ort_measurements.csv" --allow-noisy \
        -o "$OUT/lut_bundle_$PROVIDER.csv"
    [ -f "$OUT/lut_bundle_$PROVIDER.csv" ] && $PY -m nas lut show "$OUT/lut_bundle_$PROVIDER.csv" | head -12
fi

# 3. synthetic CIFAR-10-format data ------------------------------------------------------------
step "synthetic cifar10 batches" 60 $PY - "$WORK/cifar" "$IMAGES" <<'EOF'
import pickle, sys
from pathlib import Path
import numpy as np
folder = Path(sys.argv[1]) / "cifar-10-batches-py"
folder.mkdir(parents=True, exist_ok=True)
rng, n = np.random.default_rng(0), int(sys.argv[2])
for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
    batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"labels": rng.integers(0, 10, n).tolist()}
    with open(folder / name, "wb") as fh:
        pickle.dump(batch, fh, protocol=2)
print("wrote", folder)
EOF

# 4. OFA supernet training through the CLI ------------------------------------------------------
train() {  # train RES PRECISION STEPS BATCH
    local res=$1 prec=$2 steps=$3 batch=$4 run="$WORK/run_${1}px_$2"
    cat > "$WORK/ofa_${res}_${prec}.yaml" <<EOF
name: gpu_check_${res}px_${prec}
seed: 0
data: {name: cifar10, root: $WORK/cifar}
space:
  name: mobilenetv3_ofa
  options: {width_mult: $WIDTH, resolutions: [$res]}
compute: {device: $DEV, precision: $prec, channels_last: true$THREADS}
supernet:
  train:
    batch_size: $batch
    calib_images: $CALIB
    checkpoint_every: 50
    phases:
      - {name: sandwich, elastic: [kernel, depth, width], steps: $steps, lr: 0.05, warmup_steps: 10, n_random: 1}
EOF
    step "supernet train ${res}px $prec on $DEV ($steps steps, batch $batch)" 40 \
        $PY -m nas supernet train "$WORK/ofa_${res}_${prec}.yaml" --run-dir "$run" --restart
    if [ -f "$run/metrics.csv" ]; then
        mkdir -p "$OUT/runs/${res}px_$prec"
        cp "$run/metrics.csv" "$run/manifest.json" "$OUT/runs/${res}px_$prec/" 2>/dev/null
        $PY - "$run" "$batch" "$res" "$prec" <<'EOF'
import csv, json, sys
from pathlib import Path
run, batch = Path(sys.argv[1]), int(sys.argv[2])
rows = [r for r in csv.DictReader(open(run / "metrics.csv")) if r["loss"]]
span = float(rows[-1]["seconds"]) - float(rows[0]["seconds"])
manifest = json.loads((run / "manifest.json").read_text()) if (run / "manifest.json").is_file() else {}
asked = json.dumps(manifest.get("experiment", {}).get("compute"))
recorded = {k: manifest[k] for k in ("compute", "device", "runtime", "world_size") if k in manifest}
rate = (len(rows) - 1) * batch / span if span > 0 else float("nan")
print(f"RESULT supernet train {sys.argv[3]}px {sys.argv[4]}: {rate:.0f} img/s over "
      f"{len(rows)} steps (sandwich: 3 subnets per image), final loss {rows[-1]['loss']}, "
      f"compute asked {asked}, recorded {json.dumps(recorded) if recorded else 'nothing'}")
EOF
    fi
}
for prec in $PRECS; do train 32 "$prec" "$S32" "$B32"; done
for prec in $PRECS; do train 128 "$prec" "$S128" "$B128"; done

# 5. supernet step against the static network ----------------------------------------------------
for res in 32 128; do
    batch=$([ "$res" = 32 ] && echo "$B32" || echo "$B128")
    quick=(); [ "$SMOKE" = 1 ] && quick=(--quick)
    step "train_throughput ${res}px" 45 $PY bench/train_throughput.py --device "$DEV" \
        --channels-last --width "$WIDTH" --resolution "$res" --batch "$batch" --repeats 20 \
        --warmup 3 --precisions "${PRECS// /,}" --results "train_throughput_${DEV}_${res}px" "${quick[@]}"
    cp bench/results/train_throughput_${DEV}_${res}px.json bench/out/results/train_throughput_${DEV}_${res}px.json "$OUT/" 2>/dev/null
done

echo "=== done in $(( $(date +%s) - T0 )) s; log: $OUT/gpu_check.log"
if [ ${#FAILED[@]} -gt 0 ]; then
    printf '!!! failed: %s\n' "${FAILED[@]}"
    exit 1
fi
echo "all steps passed"
