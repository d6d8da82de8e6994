#!/usr/bin/env bash
# Installs what a make target needs and this machine lacks; quick when everything is there.
#
#   scripts/setup.sh run    # make run: the wasm target, wasm-bindgen-cli, npm's binaryen
#   scripts/setup.sh test   # make test: the above, rustfmt and clippy, cargo-deny,
#                           # Chromium and its driver, iproute2 and util-linux
#                           # (loopback-only namespace), npm
#   scripts/setup.sh fuzz   # make fuzz: cargo-fuzz, and nothing else
#
# Rust pieces are installed with rustup and cargo as the current user. System packages come
# from apt: as root they are installed; otherwise the script stops and prints the exact
# `apt-get install` line to run. Without npm, `run` still works: the dialer is served
# without the wasm-opt pass (bigger, see README) and the script says so.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

goal=${1:-}
case $goal in
    run | test | fuzz) ;;
    *)
        echo "usage: scripts/setup.sh run|test|fuzz" >&2
        exit 2
        ;;
esac

say() { printf 'setup: %s\n' "$*" >&2; }
fail() {
    say "$*"
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
have cargo || fail "cargo is missing: install Rust with rustup (https://rustup.rs), then run this again"

# --- cargo-fuzz, for make fuzz alone --------------------------------------------------------

# It builds the targets on the stable toolchain (`--sanitizer none`, or AddressSanitizer with
# RUSTC_BOOTSTRAP=1; see the Makefile), so no other toolchain is needed.
if [[ $goal == fuzz ]]; then
    cargo_fuzz=0.13.2
    if [[ $(cargo fuzz --version 2>/dev/null) != "cargo-fuzz $cargo_fuzz" ]]; then
        say "cargo install cargo-fuzz $cargo_fuzz (about 2 minutes on 2 cores, once)"
        cargo install cargo-fuzz --version "$cargo_fuzz" --locked
    fi
    say "ready for make fuzz"
    exit 0
fi

# --- System packages (apt) -----------------------------------------------------------------

# Debian package names for the commands this goal needs and the machine lacks.
missing_packages() {
    local packages=()
    if [[ $goal == test ]]; then
        have chromium || packages+=(chromium)
        have chromedriver || packages+=(chromium-driver)
        have ip || packages+=(iproute2)
        have unshare || packages+=(util-linux)
        have npm || packages+=(nodejs npm)
    fi
    if ((${#packages[@]})); then
        printf '%s\n' "${packages[@]}"
    fi
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    # apt can fail halfway when another install runs at the same moment: try twice.
    for attempt in 1 2; do
        if apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"; then
            return 0
        fi
        say "apt-get failed (attempt $attempt of 2)"
        sleep 10
    done
    return 1
}

mapfile -t packages < <(missing_packages)
if ((${#packages[@]})); then
    line="apt-get update && apt-get install -y --no-install-recommends ${packages[*]}"
    if [[ $(id -u) != 0 ]]; then
        fail "make $goal needs system packages this machine lacks; as root, run: $line"
    fi
    have apt-get || fail "make $goal needs ${packages[*]}, and this machine has no apt-get: install them with its package manager"
    say "installing ${packages[*]} with apt (about 1-2 minutes, once)"
    apt_install "${packages[@]}" || fail "apt-get could not install ${packages[*]}; try by hand: $line"
fi

# --- Rust: components and the WebAssembly target ------------------------------------------

if have rustup; then
    installed_components=$(rustup component list --installed 2>/dev/null || true)
    if [[ $goal == test ]]; then
        for component in rustfmt clippy; do
            if ! grep -q "^$component" <<<"$installed_components"; then
                say "rustup component add $component (seconds, once)"
                rustup component add "$component"
            fi
        done
    fi
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        say "rustup target add wasm32-unknown-unknown (about 30 seconds, once)"
        rustup target add wasm32-unknown-unknown
    fi
else
    # A Rust without rustup (a distribution's package): it must bring the target itself.
    rustc --print target-list | grep -qx wasm32-unknown-unknown \
        || fail "this Rust has no wasm32-unknown-unknown target and no rustup to add it; install Rust with rustup"
fi

# --- wasm-bindgen-cli at exactly the version in Cargo.lock --------------------------------

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[[ -n $want ]] || fail "Cargo.lock has no wasm-bindgen entry"
current=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [[ $current != "$want" ]]; then
    if [[ -n $current ]]; then
        say "wasm-bindgen on PATH is $current; Cargo.lock pins $want, which must match exactly"
    fi
    say "cargo install wasm-bindgen-cli $want: about 7 minutes on 2 cores, once"
    # Without --locked: the CLI's own lock file pins a crate version the registry has withdrawn.
    cargo install wasm-bindgen-cli --version "$want" --force
fi

# --- cargo-deny, for make test's licence, ban and source checks (deny.toml) ---------------

cargo_deny=0.20.2
if [[ $goal == test && $(cargo deny --version 2>/dev/null) != "cargo-deny $cargo_deny" ]]; then
    say "cargo install cargo-deny $cargo_deny: about 9 minutes on 2 cores, once"
    cargo install cargo-deny --version "$cargo_deny" --locked
fi

# --- wasm-opt from npm's binaryen (package-lock.json) -------------------------------------

wasm_opt=node_modules/.bin/wasm-opt
if [[ -x $wasm_opt ]] && "$wasm_opt" --version 2>/dev/null | grep -q 'version 132'; then
    :
elif have npm; then
    say "npm ci: binaryen 132 for wasm-opt (about 10 seconds, once)"
    npm ci --no-audit --no-fund --loglevel=error
else
    # Only `run` gets here: `test` installed npm above.
    say "npm is missing: the dialer will be built without wasm-opt (378 KB instead of 200 KB,"
    say "117 KB instead of 79 KB gzipped; install Node.js and npm for the smaller bundle)"
fi

say "ready for make $goal"
