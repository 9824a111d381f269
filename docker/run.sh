#!/usr/bin/env bash
# Run one of the package's commands in the image, on this checkout: it is mounted as the working folder,
# so runs land in ./experiments, datasets are read from ./data, and the trainer records the checkout's
# git commit (and a parent run's) as it would outside the image. HOME is /tmp: the user is this host's, so
# the image's /home/trainer is not theirs to write caches in.
#   docker/run.sh TAG COMMAND [arguments...]     e.g. docker/run.sh TAG image_classifier_experiments list
#   VARIANT=cuda: the image is the cuda variant, and the container gets every GPU (--gpus all)
set -euo pipefail
tag="${1:?usage: run.sh TAG COMMAND [arguments]}"
command="${2:?usage: run.sh TAG COMMAND [arguments]}"
shift 2
mkdir -p experiments data
gpus=()
if [ "${VARIANT:-cpu}" = cuda ]; then  # the cuda image, given the machine's GPUs
    gpus=(--gpus all)
fi
docker run --rm ${gpus[@]+"${gpus[@]}"} \
    --user "$(id -u):$(id -g)" \
    --env HOME=/tmp \
    --volume "$PWD:/home/trainer/work" \
    --workdir /home/trainer/work \
    --entrypoint "$command" \
    "$tag" "$@"
