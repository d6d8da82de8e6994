# shellcheck shell=bash
# Shared by bench/run.sh and bench/push.sh (sourced, not run): logging, the release build,
# a scratch directory, stopping what the script started, and small helpers.
#
# Before sourcing, a script sets SCRIPT (its name, for log lines) and WORK_PREFIX (the
# scratch directory's name). Afterwards it appends every PID it starts to `pids`.

log() { printf '[%s] %s\n' "$SCRIPT" "$*" >&2; }
die() {
    log "$*"
    exit 1
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
# Used by the scripts that source this file.
# shellcheck disable=SC2034
router=target/release/switchboard
# shellcheck disable=SC2034
bench=target/release/switchboard-bench

for tool in curl python3; do
    command -v "$tool" >/dev/null || die "needs $tool on PATH"
done
# Settings from the caller's environment would override the config file the script writes,
# and a caller's RUST_LOG would change how much the router logs.
for name in $(compgen -e); do
    if [[ $name == SWITCHBOARD_* || $name == META_* || $name == RUST_LOG ]]; then unset "$name"; fi
done

# Builds the release binaries unless BUILD=0; `build_cmd` records what was (or was not) run.
build_release() {
    build_cmd=(cargo build --release -p switchboard -p switchboard-bench)
    if [[ ${BUILD:-1} == 0 ]]; then
        build_cmd=("#" "${build_cmd[@]}" "(skipped: BUILD=0)")
    else
        log "${build_cmd[*]}"
        "${build_cmd[@]}"
    fi
    "$router" serve --help >/dev/null 2>&1 || die "$router has no working 'serve' subcommand"
}

work=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/$WORK_PREFIX.XXXXXX")
pids=()

# Stops everything the script started, by PID: TERM, up to 5 s to exit, then KILL.
cleanup() {
    local status=$? pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $status -eq 0 ]]; then rm -rf "$work"; else log "logs kept in $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts the router with config $1, listening on port $2, logging to $work/router.log, and
# waits up to 30 s for /readyz. Sets router_pid and router_cmd.
start_router() {
    local config=$1 port=$2 ready=no
    router_cmd=("$router" serve --config "$config")
    log "${router_cmd[*]}"
    "${router_cmd[@]}" >"$work/router.log" 2>&1 &
    router_pid=$!
    pids+=("$router_pid")
    for _ in $(seq 1 300); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; then
            ready=yes
            break
        fi
        kill -0 "$router_pid" 2>/dev/null || die "router exited: $(tail -n 20 "$work/router.log")"
        sleep 0.1
    done
    [[ $ready == yes ]] || die "router not ready after 30 s: $(tail -n 20 "$work/router.log")"
}
