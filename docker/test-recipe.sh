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
# The image's own install step. PyTorch's CPU index is out of reach here, so by default this is the cuda
# variant's install (torch from the registry); VARIANT=cpu where the index can be reached.
PATH="$work/venv/bin:$PATH" \
    "$work/context/docker/install-requirements.sh" "${VARIANT:-cuda}" "$work/context/requirements" --quiet
"$work/venv/bin/pip" install --quiet --no-cache-dir --no-deps "$work"/context/dist/*.whl
"$work/venv/bin/pip" check
cd "$work"
HF_HUB_OFFLINE=1 "$work/venv/bin/image_classifier_trainer" --num_epochs 1 --run_name recipe
test -s "$work/experiments/default/recipe/model.pth"
echo "image recipe: wheel installed into a clean environment and trained one epoch"
