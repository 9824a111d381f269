#!/usr/bin/env bash
# Install the pinned cq set into the active Python environment.
set -euo pipefail
python -m pip install "$@" -r "$(dirname "${BASH_SOURCE[0]}")/cq.txt"
