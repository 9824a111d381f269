#!/usr/bin/env bash
# Build the trainer image from this checkout: a wheel and the pinned runtime requirements go into a
# temporary build context, which is removed afterwards; nothing is written into the repository.
#   docker/build.sh [TAG]          VARIANT=cpu|cuda (default cpu)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
variant="${VARIANT:-cpu}"
tag="${1:-image_classifier:${variant}}"
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT

"$here/make-context.sh" "$context"
docker build --build-arg VARIANT="$variant" --tag "$tag" "$context"
echo "built $tag"
