#!/usr/bin/env bash
# Install the pinned runtime set into the active Python: the image's dependency layer, and what
# test-recipe.sh runs where no Docker engine is. The top-level requirements (prod.in) are installed with
# the lock (prod.txt) as constraints: every package gets its locked version, and a pin nothing asks for
# is not installed. So one universal lock serves both variants, with nothing filtered out of it:
#   cpu   torch and torchvision from PyTorch's CPU index (+cpu builds, which ask for no CUDA library)
#   cuda  torch from PyPI, with the CUDA libraries its metadata names
# Then check-installed.py fails unless every installed package is pinned in the lock at that version and
# torch is the variant's build.
#   usage: install-requirements.sh cpu|cuda FOLDER [PIP_ARGS...]   (FOLDER holds prod.in and prod.txt)
#   TORCH_CPU_INDEX overrides the CPU index; empty means PyPI only.
set -euo pipefail
variant="${1:?usage: install-requirements.sh cpu|cuda FOLDER}"
folder="${2:?usage: install-requirements.sh cpu|cuda FOLDER}"
shift 2
case "$variant" in
    cpu) index="${TORCH_CPU_INDEX-https://download.pytorch.org/whl/cpu}" ;;
    cuda) index="" ;;
    *) echo "install-requirements.sh: the variant is cpu or cuda, not '$variant'" >&2; exit 2 ;;
esac
python -m pip install --no-cache-dir ${index:+--extra-index-url "$index"} "$@" \
    -r "$folder/prod.in" --constraint "$folder/prod.txt"
python -m pip check
python -I "$(dirname "${BASH_SOURCE[0]}")/check-installed.py" "$variant" "$folder/prod.txt"
