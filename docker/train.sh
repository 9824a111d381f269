#!/usr/bin/env bash
# Train in the image, with the runs written to ./experiments and the datasets read from ./data.
#   docker/train.sh TAG [trainer arguments...]
set -euo pipefail
tag="${1:?usage: train.sh TAG [image_classifier_trainer arguments]}"
shift
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" "$tag" image_classifier_trainer "$@"
