#!/usr/bin/env bash
# Benchmarks the amplification delivery against the release router: one signed delivery of
# about 2 MB whose 1,000 status items share one change value. For each shape of delivery
# (where its bulk sits: `extra`, `contacts`, `errors`) it starts a fresh router with one
# route to a local sink, posts REPEAT such deliveries one after another, waits until the sink
# has every delivery they owe, and reads the router's peak resident memory (VmHWM in
# /proc/PID/status). Prints a markdown report and saves it in bench/results/.
#
# Tunable through the environment: SHAPES ("extra contacts errors"), REPEAT (3), ITEMS
# (1000), BYTES (2000000), DRAIN_TIMEOUT (60 s), BENCH_TMPDIR, BUILD=0.
set -euo pipefail

SCRIPT=amplify.sh
WORK_PREFIX=switchboard-amplify
# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SHAPES=${SHAPES:-extra contacts errors}
REPEAT=${REPEAT:-3}
ITEMS=${ITEMS:-1000}
BYTES=${BYTES:-2000000}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-60}
for name in REPEAT ITEMS BYTES DRAIN_TIMEOUT; do
    [[ ${!name} =~ ^[0-9]+$ ]] || die "$name must be a whole number, got '${!name}'"
done
SECRET=test-app-secret

build_release

# Waits up to 10 s for the sink's "listening on ADDR" line and prints ADDR.
sink_address() {
    local addr=""
    for _ in $(seq 1 100); do
        addr=$(sed -n 's/^listening on //p' "$1")
        [[ -n $addr ]] && break
        sleep 0.1
    done
    [[ -n $addr ]] || die "sink did not start: $(cat "$1")"
    echo "$addr"
}

sink_requests() {
    local stats
    stats=$(curl -fsS "http://$1/stats")
    [[ $stats =~ \"requests\":([0-9]+) ]] || die "unexpected sink stats: $stats"
    echo "${BASH_REMATCH[1]}"
}

# Waits (at most DRAIN_TIMEOUT s) until the sink has at least $2 requests; prints
# "complete" or "incomplete".
wait_for_sink() {
    local addr=$1 want=$2 got=0
    for _ in $(seq 1 $((DRAIN_TIMEOUT * 10))); do
        got=$(sink_requests "$addr")
        if ((got >= want)); then
            echo complete
            return
        fi
        sleep 0.1
    done
    log "the sink has $got of $want deliveries after ${DRAIN_TIMEOUT} s"
    echo incomplete
}

# Events an amplify report's 200s owe the route (it takes every event the deliveries hold).
owed() {
    python3 - "$1" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
print(sum(sum(p["events"].values()) for p in report["posts"] if p["status"] == 200))
EOF
}

stop_router() {
    kill -TERM "$router_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$router_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$router_pid" 2>/dev/null || true
    wait "$router_pid" 2>/dev/null || true
}

commands=("${build_cmd[*]}")
for shape in $SHAPES; do
    "$bench" sink --listen 127.0.0.1:0 >"$work/sink-$shape.out" 2>&1 &
    pids+=($!)
    sink_addr=$(sink_address "$work/sink-$shape.out")
    port=$(free_port)
    config=$work/switchboard-$shape.toml
    cat >"$config" <<EOF
[server]
listen = "127.0.0.1:$port"
public_url = "http://127.0.0.1:$port"
data_dir = "$work/data-$shape"
# The bodies are Meta's sample deliveries, dated 2025: taken, not ignored as replays.
ignore_replays = false

[meta]
app_secret = "$SECRET"
verify_token = "verify-me"
access_token = "EAAG-test"
phone_number_id = "106540352242922"
graph_api_base = "http://127.0.0.1:9"
graph_api_version = "v23.0"

[[routes]]
name = "statuses"
events = ["message_status", "other"]
url = "http://$sink_addr/hook"
EOF
    start_router "$config" "$port"
    sleep 1
    cmd=("$bench" amplify --url "http://127.0.0.1:$port/webhook" --secret "$SECRET"
        --pid "$router_pid" --shape "$shape" --items "$ITEMS" --bytes "$BYTES"
        --repeat "$REPEAT" --json)
    log "${cmd[*]}"
    "${cmd[@]}" >"$work/amplify-$shape.out" &
    pids+=($!)
    wait $!
    tail -n 1 "$work/amplify-$shape.out" >"$work/amplify-$shape.json"
    want=$(owed "$work/amplify-$shape.json")
    log "shape $shape posted; waiting for $want deliveries at the sink"
    wait_for_sink "$sink_addr" "$want" >"$work/drain-$shape.txt"
    "$bench" rss --pid "$router_pid" --json >"$work/rss-$shape.json"
    stop_router
    commands+=("${router_cmd[*]}" "${cmd[*]}")
done

# --- Report --------------------------------------------------------------------------------

stamp=$(date -u +%Y-%m-%d-%H%M%S)
mkdir -p bench/results
results=bench/results/amplify-$stamp.md
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [[ -n $(git status --porcelain -- router protocol 2>/dev/null) ]]; then
    commit="$commit + uncommitted changes"
fi

WHEN=$(date -u '+%Y-%m-%d %H:%M:%S UTC') COMMIT=$commit SHAPES=$SHAPES \
    UNAME=$(uname -a) NPROC=$(nproc) MEM=$(free -g | awk '/^Mem:/ { print $2 " GiB" }') \
    CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1) \
    COMMANDS=$(printf '%s\n' "${commands[@]}") \
    python3 - "$work" >"$results" <<'EOF'
import json, os, sys

work, env = sys.argv[1], os.environ
fence = "`" * 3
mib = lambda kib: f"{kib / 1024:.1f} MiB"

rows = []
for shape in env["SHAPES"].split():
    report = json.load(open(f"{work}/amplify-{shape}.json"))
    final = json.load(open(f"{work}/rss-{shape}.json"))
    drain = open(f"{work}/drain-{shape}.txt").read().strip()
    for n, post in enumerate(report["posts"]):
        kinds = ", ".join(f"`{k}` x{c}" for k, c in post["events"].items())
        rows.append(f"| {shape} | {n} | {post['bytes']:,} | {post['status']} | "
                    f"{post['answer_ms']:.1f} | {kinds} | |")
    # The kernel updates VmHWM lazily, so a later reading can show a little less: the
    # peak is the largest of the readings.
    peak = max(report["before"]["vm_hwm_kib"], report["after"]["vm_hwm_kib"],
               final["vm_hwm_kib"])
    rows.append(f"| {shape} | | | | | fan-out {drain} | "
                f"idle {mib(report['before']['vm_hwm_kib'])}; peak **{mib(peak)}**; "
                f"VmRSS after fan-out {mib(final['vm_rss_kib'])} |")

print(f"""## Switchboard amplification benchmark, {env['WHEN']}

Router `{env['COMMIT']}` (release build) on {env['NPROC']} cores ({env['CPU']}), {env['MEM']}.
Each shape runs against a fresh router with one route (`message_status` and `other`, event
mode) to a local sink. Every delivery is one change of `field=messages` holding 1,000
delivered statuses and about 2 MB in all; the shape says where the bulk sits: `extra` in a key
of `value` that is not Meta's, `contacts` in one long contact per status, `errors` in
`value.errors`. Answer time is from sending the request to reading the whole answer; the
router's peak resident memory is VmHWM from /proc/PID/status, over its whole life.

| shape | post | bytes | status | answer ms | events in the receipt | router peak RSS (VmHWM) |
|---|---|---|---|---|---|---|
""" + "\n".join(rows) + f"""

Machine:
{fence}
{env['UNAME']}
nproc: {env['NPROC']}
cpu: {env['CPU']}
{fence}

Commands:
{fence}
{env['COMMANDS']}
{fence}""")
EOF

cat "$results"
log "saved $results"
