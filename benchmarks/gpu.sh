#!/usr/bin/env bash
# The GPU benchmarks, in one go. Run from the repository root on a machine that has
# jax[cuda], flax, optax and chex (nothing is installed here):
#
#     OUT=/some/folder bash benchmarks/gpu.sh
#
# Every script writes its JSON (and its log) under $OUT (default benchmarks/out/gpu).
# A failing script is reported and the others still run; the exit status is 1 if any
# failed. Append more benchmarks as further `run NAME command...` lines at the end.
# SMOKE=1 runs every script with tiny settings, to check the whole file on a CPU first.
set -uo pipefail

OUT="${OUT:-benchmarks/out/gpu}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
failed=()

run() {
    local name="$1"
    shift
    echo "=== $name: $*"
    local start=$SECONDS
    if "$@" 2>&1 | tee "$OUT/$name.log"; then
        echo "=== $name: ok in $((SECONDS - start)) s"
    else
        echo "=== $name: FAILED after $((SECONDS - start)) s (see $OUT/$name.log)"
        failed+=("$name")
    fi
}

"$PYTHON" -c 'import jax; print("jax", jax.__version__, jax.devices())' | tee "$OUT/devices.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$OUT/devices.log" 2>&1 || true

if [[ -n "${SMOKE:-}" ]]; then
    resnet50_args=(--batch-size 2 --image-size 64 --steps 2 --warmup 1)
else
    resnet50_args=()
fi
run resnet50_bf16 "$PYTHON" benchmarks/gpu_resnet50.py "$OUT/resnet50_bf16.json" "${resnet50_args[@]}"

if ((${#failed[@]})); then
    echo "failed: ${failed[*]}"
    exit 1
fi
