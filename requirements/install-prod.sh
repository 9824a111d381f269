#!/usr/bin/env bash
# Install the pinned prod set into the active Python environment.
set -euo pipefail
python -m pip install "$@" -r "$(dirname "${BASH_SOURCE[0]}")/prod.txt"
