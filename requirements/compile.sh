#!/usr/bin/env bash
# Re-lock every set from its .in file, in dependency order (dev pins to prod; cq to dev; build to both).
# --no-emit-index-url/--no-emit-find-links keep local package sources out of the lock files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
for set in prod dev cq build; do
    pip-compile --quiet --no-emit-index-url --no-emit-find-links --strip-extras "$set.in" --output-file "$set.txt"
done
