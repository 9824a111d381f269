#!/usr/bin/env bash
# Where no Docker engine runs, check the image's recipe: the same install steps (the runtime
# requirements by the image's own script, then the wheel without dependencies) in a fresh virtual environment, then one epoch of
# training on the embedded dataset, as the image's entrypoint would run it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$here/make-context.sh" "$work/context" >/dev/null
python3 -m venv "$work/venv"
# PyTorch's CPU index is out of reach here (TORCH_CPU_INDEX= : PyPI only); the rest is the image's command.
PATH="$work/venv/bin:$PATH" TORCH_CPU_INDEX="${TORCH_CPU_INDEX-}" \
    "$work/context/docker/install-requirements.sh" "${VARIANT:-cpu}" "$work/context/requirements" --quiet
"$work/venv/bin/pip" install --quiet --no-cache-dir --no-deps "$work"/context/dist/*.whl
"$work/venv/bin/pip" check
cd "$work"
HF_HUB_OFFLINE=1 "$work/venv/bin/image_classifier_trainer" --num_epochs 1 --run_name recipe
test -s "$work/experiments/default/recipe/model.pth"
echo "image recipe: wheel installed into a clean environment and trained one epoch"
