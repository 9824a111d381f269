#!/usr/bin/env bash
# Fill the folder $1 with a Docker build context: Dockerfile, dist/<wheel>, requirements/prod.{in,txt}
# and docker/{install-requirements.sh,check-installed.py}.
# The wheel is built from a copy of the package sources, so the checkout gets no build/ or egg-info.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
context="${1:?usage: make-context.sh FOLDER}"
python="${PYTHON:-python3}"

src="$(mktemp -d)"
trap 'rm -rf "$src"' EXIT
cp -r "$root/image_classifier" "$root/pyproject.toml" "$root/README.md" "$root/LICENSE" "$src/"
"$python" -m build --wheel --outdir "$context/dist" "$src" >/dev/null
mkdir -p "$context/requirements" "$context/docker"
cp "$root/requirements/prod.in" "$root/requirements/prod.txt" "$context/requirements/"
cp "$here/install-requirements.sh" "$here/check-installed.py" "$context/docker/"
cp "$here/Dockerfile" "$context/"
ls "$context"/dist/*.whl
