#!/usr/bin/env bash
# The download a visitor waits for: gzip -9 of each wasm module against its limit, checked where
# the shipped build is made (scripts/start.sh). CI's browser tests run a build without the size
# profile's fat LTO, whose modules are ~12 % larger by design; scripts/test.sh checks those against
# limits of their own (--ci), so growth shows in every CI log, not only when someone runs start.sh.
#   bash scripts/check-size.sh [--ci] [DIST]   (default dist)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=shipped
if [[ "${1:-}" == "--ci" ]]; then
    profile=ci
    shift
fi
dist="${1:-dist}"

# Bytes after gzip -9. The page must be interactive before the worker matters: 0.5 MB. The
# workers' budgets were 4 MB each on 2026-12-02 (plain 3.45 MB, tuned 3.96 MB). Since then the
# Llama and ModernBERT families, chat templates (minijinja), the reliability work and the
# hand-off took them to 3.79 and 4.30 MB (2026-12-07), so the budgets are ~5 % above that:
# what the tuned worker holds is in DEVELOPERS.md ("The worker's size"). A change that crosses
# a limit is a decision to make with those numbers, not a number to bump.
if [[ "$profile" == shipped ]]; then
    limits=(
        "hearth-web_bg.wasm 500000"
        "hearth-worker_bg.wasm 4000000"
        "hearth-worker-tuned_bg.wasm 4500000"
    )
else
    # The CI profile (no fat LTO, 16 codegen units) on 2026-12-07: page 0.41 MB, plain worker
    # 4.24 MB, tuned 4.77 MB.
    limits=(
        "hearth-web_bg.wasm 450000"
        "hearth-worker_bg.wasm 4500000"
        "hearth-worker-tuned_bg.wasm 5050000"
    )
fi
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
        echo "error: $name is $gz bytes gzip -9 ($raw raw), over its limit of $limit ($profile profile)"
        failed=1
    else
        echo "$name: $gz bytes gzip -9 ($raw raw), limit $limit"
    fi
done
exit "$failed"
