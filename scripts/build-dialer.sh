#!/usr/bin/env bash
# Builds the agents' dialer into www/pkg/, where the router serves it:
#
#   1. cargo builds web-client/ for wasm32-unknown-unknown with the size-optimised
#      `wasm` profile (see the root Cargo.toml);
#   2. wasm-bindgen (the CLI, exactly the version in Cargo.lock) writes the ES module
#      and the wasm the page loads (`--target web`);
#   3. wasm-opt -Oz from npm's `binaryen` (package.json) shrinks the wasm. Not Debian's
#      binaryen: its wasm-opt corrupts wasm-bindgen output (toolchain notes, trap 1).
#
#   scripts/build-dialer.sh            # build
#   scripts/build-dialer.sh --locked   # extra arguments go to `cargo build`
#
# Environment: WASM_BINDGEN (the CLI to run; default: `wasm-bindgen` on PATH, then
# ~/.cargo/bin), SKIP_WASM_OPT=1 (keep wasm-bindgen's output as it is, e.g. without npm).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

crate=switchboard_web
target=wasm32-unknown-unknown
profile=wasm
out=www/pkg
wasm="target/$target/$profile/$crate.wasm"

say() { printf 'build-dialer: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

# The wasm-bindgen version the crate is built with, from the lock file.
locked_version() {
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

find_wasm_bindgen() {
    if [[ -n ${WASM_BINDGEN:-} ]]; then
        printf '%s\n' "$WASM_BINDGEN"
    elif command -v wasm-bindgen >/dev/null 2>&1; then
        command -v wasm-bindgen
    elif [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/wasm-bindgen ]]; then
        printf '%s\n' "${CARGO_HOME:-$HOME/.cargo}/bin/wasm-bindgen"
    fi
}

# 0. Tools, checked before anything is built.
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
    fail "the Rust target $target is missing; install it with: rustup target add $target"
fi

want="$(locked_version)"
[[ -n $want ]] || fail "Cargo.lock has no wasm-bindgen entry; run: cargo generate-lockfile"
bindgen="$(find_wasm_bindgen)"
install_hint="cargo install wasm-bindgen-cli --version $want   (without --locked; 5-8 minutes on 2 cores)"
[[ -n $bindgen ]] || fail "wasm-bindgen $want is not installed; install it with: $install_hint"
have="$("$bindgen" --version | awk '{ print $2 }')"
if [[ $have != "$want" ]]; then
    fail "$bindgen is version $have, but Cargo.lock pins wasm-bindgen $want; the two must match exactly. Install the right one with: $install_hint"
fi

wasm_opt="$root/node_modules/.bin/wasm-opt"
if [[ ${SKIP_WASM_OPT:-0} != 1 && ! -x $wasm_opt ]]; then
    if command -v npm >/dev/null 2>&1; then
        say "installing binaryen from package-lock.json (npm ci)"
        npm ci --no-audit --no-fund >&2
    else
        say "npm is missing, so there is no wasm-opt: the dialer is built without it (378 KB"
        say "instead of 200 KB; install Node.js and npm, then run npm ci, for the smaller one)"
        SKIP_WASM_OPT=1
    fi
fi
if [[ ${SKIP_WASM_OPT:-0} != 1 ]]; then
    "$wasm_opt" --version | grep -q 'version 132' \
        || fail "node_modules has $("$wasm_opt" --version); package.json pins binaryen 132.0.0: run npm ci"
fi

# 1. The wasm.
say "cargo build ($target, profile $profile)"
cargo build -p switchboard-web --target "$target" --profile "$profile" "$@"

# Nothing to do when the bundle in $out was made from this very wasm with these tools:
# a second `make run` then starts in seconds instead of re-running wasm-opt.
stamp="$out/.built-from"
source_id="$(sha256sum "$wasm" | cut -d' ' -f1) wasm-bindgen=$have skip-wasm-opt=${SKIP_WASM_OPT:-0}"
if [[ -f $stamp && $(cat "$stamp") == "$source_id" ]]; then
    say "up to date: $out"
    exit 0
fi

# 2. The bindings and the module the page imports.
say "wasm-bindgen $have --target web --out-dir $out"
rm -rf "$out"
"$bindgen" --target web --no-typescript --out-dir "$out" "$wasm"

# 3. Smaller. The features are the ones rustc enables by default for $target.
bundle="$out/${crate}_bg.wasm"
if [[ ${SKIP_WASM_OPT:-0} != 1 ]]; then
    say "wasm-opt -Oz"
    "$wasm_opt" -Oz \
        --enable-bulk-memory --enable-mutable-globals --enable-nontrapping-float-to-int \
        --enable-sign-ext --enable-reference-types --enable-multivalue \
        --strip-debug --strip-producers \
        -o "$bundle.opt" "$bundle"
    mv "$bundle.opt" "$bundle"
else
    say "SKIP_WASM_OPT=1: wasm-opt skipped"
fi

printf '%s\n' "$source_id" >"$stamp"

size() { wc -c <"$1" | tr -d ' '; }
gz() { gzip -9 -c "$1" | wc -c | tr -d ' '; }
say "done: $bundle $(size "$bundle") bytes ($(gz "$bundle") gzipped), $out/$crate.js $(size "$out/$crate.js") bytes ($(gz "$out/$crate.js") gzipped)"
