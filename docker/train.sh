#!/usr/bin/env bash
# Train in the image, with the runs written to ./experiments and the datasets read from ./data.
#   docker/train.sh TAG [trainer arguments...]
set -euo pipefail
tag="${1:?usage: train.sh TAG [image_classifier_trainer arguments]}"
shift
mkdir -p experiments data
docker run --rm \
    --user "$(id -u):$(id -g)" \
    --env HOME=/home/trainer \
    --volume "$PWD/experiments:/home/trainer/experiments" \
    --volume "$PWD/data:/home/trainer/data" \
    "$tag" "$@"
