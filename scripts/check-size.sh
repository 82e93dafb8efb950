#!/usr/bin/env bash
# The download a visitor waits for, checked where the shipped build is made (scripts/start.sh):
# gzip -9 of each wasm module against its limit. CI's browser tests run a build without the
# size profile's fat LTO (scripts/test.sh), whose modules are larger by design, so the limits
# are checked here, on the build people get.
#   bash scripts/check-size.sh [DIST]   (default dist)
set -euo pipefail
cd "$(dirname "$0")/.."
dist="${1:-dist}"

# Bytes after gzip -9. The page must be interactive before the worker matters: 0.5 MB. Each
# worker: 4 MB (the plain one measured 3.45 MB, the tuned one 3.96 MB on 2026-12-02).
limits=(
    "hearth-web_bg.wasm 500000"
    "hearth-worker_bg.wasm 4000000"
    "hearth-worker-tuned_bg.wasm 4000000"
)
failed=0
for entry in "${limits[@]}"; do
    read -r name limit <<< "$entry"
    file="$dist/$name"
    if [[ ! -f "$file" ]]; then
        echo "error: $file is missing (build with: trunk build --release)"
        failed=1
        continue
    fi
    raw=$(wc -c < "$file")
    gz=$(gzip -9 -c "$file" | wc -c)
    if ((gz > limit)); then
        echo "error: $name is $gz bytes gzip -9 ($raw raw), over its limit of $limit"
        failed=1
    else
        echo "$name: $gz bytes gzip -9 ($raw raw), limit $limit"
    fi
done
exit "$failed"
