#!/usr/bin/env bash
# The dialer's latencies in headless Chromium against the real router and wa-sim: click to
# offer sent, and call.answered to remote description applied, over CALLS calls (default
# 20). Also records the bundle size. Writes bench/results/dialer-<date>.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

calls=${CALLS:-20}
stamp=$(date -u +%Y-%m-%d-%H%M%S)
out=bench/results/dialer-$stamp.md

cargo build --workspace --bins
scripts/build-dialer.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
scripts/loopback.sh target/debug/dialer-timings --calls "$calls" | tee "$log"

wasm=www/pkg/switchboard_web_bg.wasm
{
    echo "## Dialer latencies and size, $stamp UTC"
    echo
    echo "Commit \`$(git rev-parse --short HEAD)\`; $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); $(chromium --version 2>/dev/null || echo chromium)."
    echo
    echo "Bundle: \`$wasm\` $(wc -c <"$wasm") bytes, $(gzip -9 -c "$wasm" | wc -c) gzipped (after wasm-opt -Oz)."
    echo
    echo '```'
    cat "$log"
    echo '```'
    echo
    echo "Commands:"
    echo '```'
    echo "cargo build --workspace --bins && scripts/build-dialer.sh"
    echo "scripts/loopback.sh target/debug/dialer-timings --calls $calls"
    echo '```'
} >"$out"
echo "wrote $out"
