#!/usr/bin/env bash
# The GPU run of issue 15 part 4 (docs/performance.md, "GPU run"): the model sections
# (train_step, cnn, transformer) on one GPU with bf16 AMP, f16 AMP and float32, jobflow vs
# hand-written JAX vs PyTorch eager vs torch.compile, in ONE call of the device tool:
#
#   run(command="bash benchmarks/gpu_run.sh", carry=[".whl"], timeout_s=500)
#
# What it does, in order, everything logged to $OUT/log:
#   1. installs the wheels carried in .whl/ (crc32c, tensorboardX: the GPU machine lacks them
#      and has no internet) into /tmp/site, without dependencies or an index;
#   2. puts the repository (and /tmp/site) on PYTHONPATH; prints the versions and devices;
#      stops with the import error in the log when jobflow does not import;
#   3. runs `python -m benchmarks --only <sections> --amp <mode> --device gpu` for each mode
#      (bf16, f16, off: the most wanted first), each given the time left of the budget
#      (GPU_RUN_BUDGET_S, default 420 s; stopped with SIGINT when it runs out). The JSON and
#      markdown are rewritten after every section, so a mode cut short keeps what it measured.
#
# Results: $OUT/<mode>.json and $OUT/<mode>.md ($OUT defaults to benchmarks/results/gpu).
# Settings (environment): GPU_RUN_MODES ("bf16 f16 off"), GPU_RUN_SECTIONS ("train_step cnn
# transformer"), GPU_RUN_BUDGET_S (420), GPU_RUN_ARGS (extra arguments, e.g. "--quick"),
# GPU_RUN_DEVICE (gpu). `--dry-run` (or GPU_RUN_DRY_RUN=1) prints the commands only.
set -u -o pipefail

cd "$(dirname "$0")/.." || exit 1
REPO=$PWD
OUT_DIR=${OUT:-$REPO/benchmarks/results/gpu}
DRY_RUN=${GPU_RUN_DRY_RUN:-0}
if [[ "${1:-}" == "--dry-run" ]]; then DRY_RUN=1; fi
MODES=${GPU_RUN_MODES:-bf16 f16 off}
SECTIONS=${GPU_RUN_SECTIONS:-train_step cnn transformer}
BUDGET=${GPU_RUN_BUDGET_S:-420}
DEVICE=${GPU_RUN_DEVICE:-gpu}
EXTRA=${GPU_RUN_ARGS:-}
START=$SECONDS

mkdir -p "$OUT_DIR"
LOG=$OUT_DIR/log
export PYTHONUNBUFFERED=1
# JAX takes 40% of the GPU's memory up front; PyTorch allocates from the rest.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.4}

say() { echo "$*" | tee -a "$LOG"; }

# step: prints the command; runs it unless dry, its output also into the log.
step() {
    say "+ $*"
    if [[ "$DRY_RUN" == 1 ]]; then return 0; fi
    "$@" 2>&1 | tee -a "$LOG"
}

say "gpu_run.sh: $(date -u +%FT%TZ), out $OUT_DIR, modes '$MODES', sections '$SECTIONS', budget ${BUDGET}s, dry run $DRY_RUN"

shopt -s nullglob
wheels=(.whl/*.whl)
if ((${#wheels[@]})); then
    step python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${wheels[@]}" \
        || say "warning: installing the wheels failed (see above)"
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
else
    say "no wheels in .whl/ (crc32c and tensorboardX must already be installed)"
fi
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
say "PYTHONPATH=$PYTHONPATH"

step python3 -c "
import importlib, sys
print('python', sys.version.split()[0])
for name in ('jax', 'jaxlib', 'flax', 'optax', 'numpy', 'torch', 'ml_dtypes', 'crc32c', 'tensorboardX'):
    try:
        m = importlib.import_module(name)
        print(name, getattr(m, '__version__', '?'), getattr(m, '__file__', ''))
    except Exception as e:
        print(name, 'NOT IMPORTABLE:', type(e).__name__, e)
import jax
print('jax backend', jax.default_backend(), jax.devices())
import torch
print('torch cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')
"
if ! step python3 -c "import jobflow, benchmarks.sections; print('jobflow from', jobflow.__file__)"; then
    say "jobflow does not import (traceback above): stopping"
    exit 1
fi

status=0
for mode in $MODES; do
    left=$((BUDGET - (SECONDS - START)))
    if ((left < 30)); then
        say "skipping --amp $mode: ${left}s of the budget left"
        status=1
        continue
    fi
    # shellcheck disable=SC2086  # SECTIONS and EXTRA are word lists
    step timeout --signal=INT --kill-after=15 "$left" python3 -m benchmarks --only $SECTIONS --amp "$mode" \
        --device "$DEVICE" --out "$OUT_DIR/$mode.json" --markdown "$OUT_DIR/$mode.md" $EXTRA
    rc=$?
    if ((rc != 0)); then
        say "--amp $mode ended with status $rc (124/130: the budget ran out; its finished sections are kept)"
        status=1
    fi
done
say "gpu_run.sh done after $((SECONDS - START))s, status $status"
exit "$status"
