#!/usr/bin/env bash
# Re-lock every set from its .in file, in dependency order (dev pins to prod; cq to dev; build to both).
# Each lock is universal: uv resolves it for every platform at once and keeps the environment markers
# (`nvidia-cublas==… ; sys_platform == 'linux'`), so one file installs on Linux, macOS and Windows.
# pip-compile resolves for the machine it runs on only. The existing pins are kept as preferences, so
# re-locking changes nothing until a .in file does; `make lock ARGS="--upgrade-package NAME"` moves one
# pin (arguments go to uv). --fork-strategy fewest: one version of each package for every Python from
# 3.11 on where it can, rather than a newer one per Python version. --no-config: a user's uv.toml does
# not change the locks. pip itself is left unpinned, as pip-compile leaves it. A file whose content is
# unchanged is not rewritten, so `make setup` does not reinstall for nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
for set in prod dev cq build; do
    new="$(mktemp)"
    cp "$set.txt" "$new" 2>/dev/null || true  # the current pins are uv's preferences
    uv pip compile --quiet --no-config --universal --python-version 3.11 --fork-strategy fewest \
        --no-emit-package pip --custom-compile-command "make lock" "$@" "$set.in" --output-file "$new"
    if cmp -s "$new" "$set.txt"; then rm "$new"; else mv "$new" "$set.txt"; fi
done
