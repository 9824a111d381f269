#!/usr/bin/env bash
# Re-lock every set from its .in file, in dependency order (dev pins to prod; cq to dev; build to both).
# Each lock is universal: uv resolves it for every platform at once and keeps the environment markers
# (`nvidia-cublas==… ; sys_platform == 'linux'`), so one file installs on Linux, macOS and Windows.
# pip-compile resolves for the machine it runs on only. The existing pins are kept as preferences, so
# re-locking changes nothing until a .in file does; `uv pip compile --upgrade-package NAME` moves one pin.
# pip itself is left unpinned, as pip-compile leaves it: installing a set should not replace the installer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
for set in prod dev cq build; do
    uv pip compile --quiet --universal --python-version 3.11 --no-emit-package pip \
        --custom-compile-command "make lock" "$set.in" --output-file "$set.txt"
done
