#!/usr/bin/env bash
# The #10 GPU checks, prepared on a CPU machine and run on the GPU host (JAX + PyTorch there; no
# TensorFlow, dvc, GX, MLflow, Prefect or package registry: ../shared/gpu/README.md).
#
#   bash benchmarks/gpu_check.sh prepare   # CPU machine, checkout root: keras wheels into .whl/,
#                                          # `dvc repro preprocess` (sample data) -> the train inputs
#   bash benchmarks/gpu_check.sh run       # GPU host, same checkout + the prepared paths carried:
#                                          # .whl data/preprocessed data/balanced data/interim/labels.json
#
# `run` does, each step under its own time limit (about 9 minutes of device time in all):
#  (a) the real train stage (`python3 -m pipeline.cli stage train ...`, train.epochs 3) under
#      KERAS_BACKEND=jax on the carried arrays; prints precision + devices from train_summary.json
#      (expect mixed_float16 and the GPU);
#  (b) benchmarks/idc_epoch.py: 277,524 synthetic 50x50 IDC patches -> preprocess -> train, timed;
#  (c) benchmarks/train_throughput.py --suite gpu --reference torch -> benchmarks/results/gpu.json.
# Results go to benchmarks/results/ (and $OUT when the device tool sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"

if [[ "$mode" == "prepare" ]]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl keras==3.15.1 namex optree
  uv run dvc repro preprocess
  du -sh .whl data/preprocessed data/balanced data/interim/labels.json
  exit 0
fi

[[ "$mode" == "run" ]] || { echo "usage: $0 prepare|run" >&2; exit 2; }
for need in .whl data/preprocessed/meta.json data/balanced/class_weights.json data/interim/labels.json; do
  [[ -e "$need" ]] || { echo "gpu_check: $need missing; run '$0 prepare' on a CPU machine and carry it" >&2; exit 2; }
done
python3 -m pip install -q --no-index --no-deps --no-compile --target .site .whl/*.whl
export PYTHONPATH="$PWD/.site:$PWD" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
results=benchmarks/results
mkdir -p "$results"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

echo "== (a) train stage under JAX on the carried arrays"
cat > /tmp/gpu_params.yaml <<'EOF'
train:
  epochs: 3
  batch_size: 256
EOF
rm -rf /tmp/gpu_models /tmp/gpu_checkpoints
timeout 150 python3 -m pipeline.cli stage train --params /tmp/gpu_params.yaml \
  -i preprocessed=data/preprocessed -i balanced=data/balanced -i labels=data/interim/labels.json \
  -o model=/tmp/gpu_models -o history=/tmp/gpu_history.csv -o checkpoints=/tmp/gpu_checkpoints \
  || echo "gpu_check: (a) failed or timed out"
python3 - <<'EOF' | tee "$results/gpu_train_stage.json"
import json
s = json.load(open("/tmp/gpu_models/train_summary.json"))
print(json.dumps({k: s.get(k) for k in ("backend", "devices", "precision", "distribution", "replicas",
                                         "train_images_per_second", "epochs_run", "wall_seconds")}, indent=2))
EOF

echo "== (b) IDC-scale epoch: 277,524 patches -> preprocess -> train"
timeout 200 python3 benchmarks/idc_epoch.py --n 277524 --batch-size 256 --out "$results/idc_epoch.json" \
  || echo "gpu_check: (b) failed or timed out"

echo "== (c) throughput vs PyTorch"
timeout 230 python3 benchmarks/train_throughput.py --backend jax --suite gpu --reference torch \
  --n 4096 --epochs 3 --out "$results/gpu.json" || echo "gpu_check: (c) failed or timed out (rows so far kept)"

if [[ -n "${OUT:-}" ]]; then cp -r "$results"/. "$OUT"/; fi
echo "gpu_check: done; commit $results/gpu.json, idc_epoch.json, gpu_train_stage.json from this run"
