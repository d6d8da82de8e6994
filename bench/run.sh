#!/usr/bin/env bash
# Benchmarks the router's webhook ingest end to end on this machine.
#
# Starts two delivery sinks and the router (two routes, one per sink) on 127.0.0.1, then
# measures: idle memory; a fixed-rate run (open loop); a saturation run (closed loop) with
# memory sampled throughout; and fan-out throughput, from when the sinks received the
# deliveries those runs owed. The sizes of the store's database and WAL files are sampled
# every 0.5 s from start to end. Prints a markdown report and saves it in bench/results/.
#
# Tunable through the environment: RATE (2000), DURATION (20), WARMUP (2), CONNECTIONS (64),
# DRAIN_TIMEOUT (seconds to wait for deliveries; 6 x DURATION + 60) and BENCH_TMPDIR (where
# the router's data goes; TMPDIR or /tmp). BUILD=0 measures the binaries already built.
set -euo pipefail

SCRIPT=run.sh
WORK_PREFIX=switchboard-bench
# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"


RATE=${RATE:-2000}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
for name in DURATION WARMUP CONNECTIONS; do
    [[ ${!name} =~ ^[0-9]+$ ]] || die "$name must be a whole number, got '${!name}'"
done
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-$((DURATION * 6 + 60))}
[[ $DRAIN_TIMEOUT =~ ^[0-9]+$ ]] || die "DRAIN_TIMEOUT must be a whole number"
SECRET=test-app-secret



build_release

# Prints the value at a dotted key path of a JSON file.
json_get() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2].split("."):
    value = value[key]
print(value)
EOF
}


# Waits up to 10 s for a sink's "listening on ADDR" line and prints ADDR.
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

# Saves a sink's /stats to FILE.
sink_stats() { curl -fsS "http://$1/stats" >"$2"; }

# Prints the deliveries an ingest report's 200s owe the two routes: "crm calls". crm gets one
# POST per message or message status; calls gets one POST per delivery holding a call status.
owed_deliveries() {
    python3 - "$1" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
ok = {name: report["ok_by_template"][name] + report["warmup"]["ok_by_template"][name]
      for name in report["ok_by_template"]}
crm = ok["text-message"] + ok["message-status"] + 2 * ok["mixed-batch"]
calls = ok["call-status"] + ok["mixed-batch"]
print(crm, calls)
EOF
}

# Prints a sink's request count. Parsed in bash: this runs while the router is still
# delivering, and a Python start-up per poll would take CPU from it.
sink_requests() {
    local stats
    stats=$(curl -fsS "http://$1/stats")
    [[ $stats =~ \"requests\":([0-9]+) ]] || die "unexpected sink stats: $stats"
    echo "${BASH_REMATCH[1]}"
}

# Waits (at most DRAIN_TIMEOUT s) until both sinks have at least the given request counts.
# Prints "complete" or "incomplete". Rates come from the sinks' own timestamps, so the
# polling interval does not affect them.
wait_for_deliveries() {
    local want_crm=$1 want_calls=$2 crm calls
    for _ in $(seq 1 $((DRAIN_TIMEOUT * 2))); do
        crm=$(sink_requests "$crm_addr")
        calls=$(sink_requests "$calls_addr")
        if ((crm >= want_crm && calls >= want_calls)); then
            echo complete
            return
        fi
        sleep 0.5
    done
    log "sinks have crm=$crm/$want_crm calls=$calls/$want_calls after ${DRAIN_TIMEOUT} s"
    echo incomplete
}

# Samples a process's RSS every 0.5 s into FILE (JSON lines) until STOP_FILE exists.
sample_rss() {
    local pid=$1 out=$2 stop=$3 max_samples=$4
    for _ in $(seq 1 "$max_samples"); do
        [[ -e $stop ]] && break
        "$bench" rss --pid "$pid" --json >>"$out" 2>/dev/null || break
        sleep 0.5
    done
}

now_ms() { date +%s%3N; }

# Samples the sizes of the store's database and WAL files every 0.5 s into FILE (lines of
# "ms db_bytes wal_bytes"; 0 for a file that does not exist) until STOP_FILE exists.
sample_files() {
    local out=$1 stop=$2 max_samples=$3 db=$work/data/switchboard.db size_db size_wal
    for _ in $(seq 1 "$max_samples"); do
        [[ -e $stop ]] && break
        size_db=$(stat -c %s "$db" 2>/dev/null || echo 0)
        size_wal=$(stat -c %s "$db-wal" 2>/dev/null || echo 0)
        echo "$(now_ms) $size_db $size_wal" >>"$out"
        sleep 0.5
    done
}

# Runs a command with stdout to FILE, in the background so that a signal to this script is
# acted on at once (bash defers traps until a foreground command ends), and waits for it.
run_to() {
    local out=$1
    shift
    "$@" >"$out" &
    pids+=($!)
    wait $!
}

# --- Sinks and router --------------------------------------------------------------------

"$bench" sink --listen 127.0.0.1:0 >"$work/crm-sink.out" 2>&1 &
pids+=($!)
"$bench" sink --listen 127.0.0.1:0 >"$work/calls-sink.out" 2>&1 &
pids+=($!)
crm_addr=$(sink_address "$work/crm-sink.out")
calls_addr=$(sink_address "$work/calls-sink.out")

port=$(free_port)
config=$work/switchboard.toml
cat >"$config" <<EOF
[server]
listen = "127.0.0.1:$port"
public_url = "http://127.0.0.1:$port"
data_dir = "$work/data"
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
name = "crm"
events = ["message", "message_status"]
url = "http://$crm_addr/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[routes]]
name = "calls"
events = ["call", "call_status"]
url = "http://$calls_addr/hook"
mode = "original"
EOF

start_router "$config" "$port"
# Bounded at an hour of samples; stopped before the report.
sample_files "$work/files.txt" "$work/stop-file-sampling" 7200 &
files_pid=$!
pids+=("$files_pid")

sleep 1
"$bench" rss --pid "$router_pid" --json >"$work/rss-idle.json"
log "router ready on 127.0.0.1:$port, idle RSS $(json_get "$work/rss-idle.json" vm_rss_kib) KiB"

url="http://127.0.0.1:$port/webhook"
common=(--url "$url" --secret "$SECRET" --duration "$DURATION" --warmup "$WARMUP"
    --connections "$CONNECTIONS" --json)

# --- Fixed rate ----------------------------------------------------------------------------

rate_cmd=("$bench" ingest --rate "$RATE" "${common[@]}")
log "${rate_cmd[*]}"
rate_start_ms=$(now_ms)
run_to "$work/rate.out" "${rate_cmd[@]}"
tail -n 1 "$work/rate.out" >"$work/rate.json"
rate_end_ms=$(now_ms)
read -r owed_crm owed_calls < <(owed_deliveries "$work/rate.json")
log "fixed rate done; waiting for $owed_crm + $owed_calls deliveries"
rate_drain=$(wait_for_deliveries "$owed_crm" "$owed_calls")
sink_stats "$crm_addr" "$work/crm-after-rate.json"
sink_stats "$calls_addr" "$work/calls-after-rate.json"
"$bench" rss --pid "$router_pid" --json >"$work/rss-after-rate.json"

# --- Saturation ----------------------------------------------------------------------------

sat_cmd=("$bench" ingest --saturate "${common[@]}")
log "${sat_cmd[*]}"
sample_rss "$router_pid" "$work/rss-saturate.jsonl" "$work/stop-sampling" \
    $(((WARMUP + DURATION + 10) * 2)) &
sampler_pid=$!
pids+=("$sampler_pid")
sat_start_ms=$(now_ms)
run_to "$work/saturate.out" "${sat_cmd[@]}"
sat_end_ms=$(now_ms)
sink_stats "$crm_addr" "$work/crm-at-sat-end.json"
sink_stats "$calls_addr" "$work/calls-at-sat-end.json"
touch "$work/stop-sampling"
wait "$sampler_pid" || true
tail -n 1 "$work/saturate.out" >"$work/saturate.json"

read -r sat_crm sat_calls < <(owed_deliveries "$work/saturate.json")
before_crm=$(json_get "$work/crm-after-rate.json" requests)
before_calls=$(json_get "$work/calls-after-rate.json" requests)
log "saturation done; waiting for $sat_crm + $sat_calls more deliveries"
sat_drain=$(wait_for_deliveries $((before_crm + sat_crm)) $((before_calls + sat_calls)))
sink_stats "$crm_addr" "$work/crm-final.json"
sink_stats "$calls_addr" "$work/calls-final.json"
"$bench" rss --pid "$router_pid" --json >"$work/rss-final.json"
# A few seconds idle after the last delivery: what the store's files come back to.
sleep 5
touch "$work/stop-file-sampling"
wait "$files_pid" || true
end_ms=$(now_ms)

# --- Report --------------------------------------------------------------------------------

stamp=$(date -u +%Y-%m-%d-%H%M%S)
mkdir -p bench/results
results=bench/results/ingest-$stamp.md
when=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [[ -n $(git status --porcelain -- router protocol 2>/dev/null) ]]; then
    commit="$commit + uncommitted changes"
fi

WHEN=$when COMMIT=$commit RATE=$RATE CONNECTIONS=$CONNECTIONS \
    UNAME=$(uname -a) NPROC=$(nproc) \
    CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1) \
    FS=$(df -T "$work" | awk 'NR == 2 { print $2 }') \
    RATE_START_MS=$rate_start_ms RATE_END_MS=$rate_end_ms RATE_DRAIN=$rate_drain \
    SAT_START_MS=$sat_start_ms SAT_END_MS=$sat_end_ms SAT_DRAIN=$sat_drain END_MS=$end_ms \
    COMMANDS=$(printf '%s\n' "${build_cmd[*]}" "$bench sink --listen 127.0.0.1:0  # twice" \
        "${router_cmd[*]}" "${rate_cmd[*]}" "${sat_cmd[*]}") \
    python3 - "$work" >"$results" <<'EOF'
import json, os, sys

work, env = sys.argv[1], os.environ
fence = "`" * 3


def load(name):
    with open(f"{work}/{name}") as f:
        return json.load(f)


def text(name):
    """An ingest run's human report: its output minus the final JSON line."""
    with open(f"{work}/{name}") as f:
        return "".join(f.readlines()[:-1]).rstrip()


def ms(p):
    return f"{p['p50']:.2f} / {p['p90']:.2f} / {p['p99']:.2f} / {p['max']:.2f}" if p else "none"


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def fanout(start_ms, end_ms, before, after):
    """Deliveries the sinks got since start_ms, per second up to the last one's arrival, and
    how long after ingest stopped (end_ms) that last one came."""
    got = sum(a["requests"] - b for a, b in zip(after, before))
    last = max(a["last_at_ms"] or 0 for a in after)
    window = (last - start_ms) / 1000
    return got, got / window if window > 0 else 0.0, max(0, last - end_ms) / 1000


def by_event(stats):
    return ", ".join(f"`{event}` {count}" for event, count in stats["by_event"].items())


rate, sat = load("rate.json"), load("saturate.json")
crm_rate, calls_rate = load("crm-after-rate.json"), load("calls-after-rate.json")
crm_end, calls_end = load("crm-final.json"), load("calls-final.json")
r_got, r_per_s, r_lag = fanout(
    int(env["RATE_START_MS"]), int(env["RATE_END_MS"]), [0, 0], [crm_rate, calls_rate])
s_got, s_per_s, s_lag = fanout(
    int(env["SAT_START_MS"]), int(env["SAT_END_MS"]),
    [crm_rate["requests"], calls_rate["requests"]], [crm_end, calls_end])
duplicates = crm_end["duplicates"] + calls_end["duplicates"]
# Delivery alone: what arrived after saturation stopped, while the router only delivered.
crm_stop, calls_stop = load("crm-at-sat-end.json"), load("calls-at-sat-end.json")
d_got, d_per_s, _ = fanout(
    int(env["SAT_END_MS"]), int(env["SAT_END_MS"]),
    [crm_stop["requests"], calls_stop["requests"]], [crm_end, calls_end])
drain_only = f"{d_got} / {d_per_s:.1f}" if s_lag >= 1 else "n/a (no backlog)"

samples = []
if os.path.exists(f"{work}/rss-saturate.jsonl"):
    with open(f"{work}/rss-saturate.jsonl") as f:
        samples = [json.loads(line) for line in f if line.strip()]
peak = max((s["vm_rss_kib"] for s in samples), default=0)
idle, after_rate, final = load("rss-idle.json"), load("rss-after-rate.json"), load("rss-final.json")

with open(f"{work}/switchboard.toml") as f:
    config = f.read().rstrip()

# The store's files over time: (ms, db bytes, wal bytes) every 0.5 s.
files = []
if os.path.exists(f"{work}/files.txt"):
    with open(f"{work}/files.txt") as f:
        files = [tuple(int(v) for v in line.split()) for line in f if len(line.split()) == 3]
phases = [
    ("before the runs", 0, int(env["RATE_START_MS"])),
    ("fixed rate and its fan-out", int(env["RATE_START_MS"]), int(env["SAT_START_MS"])),
    ("saturation", int(env["SAT_START_MS"]), int(env["SAT_END_MS"])),
    ("fan-out after saturation, then 5 s idle", int(env["SAT_END_MS"]), int(env["END_MS"]) + 1),
]


def phase_of(t):
    return next((name for name, start, end in phases if start <= t < end), "after")


def files_row(name, start, end):
    inside = [s for s in files if start <= s[0] < end]
    if not inside:
        return f"| {name} | no samples | | |"
    return (f"| {name} | {mib(max(s[2] for s in inside) / 1024)} | {mib(max(s[1] for s in inside) / 1024)}"
            f" | {mib(inside[-1][1] / 1024)} + {mib(inside[-1][2] / 1024)} |")


files_table = "\n".join(files_row(*p) for p in phases)
first = files[0][0] if files else 0
series = "\n".join(
    f"{(t - first) / 1000:6.1f} s  {phase_of(t):40}  db {db / 2**20:8.1f} MiB  wal {wal / 2**20:8.1f} MiB"
    for i, (t, db, wal) in enumerate(files) if i % 10 == 0 or i == len(files) - 1)

print(f"""## Switchboard ingest benchmark, {env['WHEN']}

Router `{env['COMMIT']}` on {env['NPROC']} cores ({env['CPU']}); router data dir on {env['FS']}.
Two routes, each to its own local sink: `crm` (message + message_status, event mode, signed)
and `calls` (call + call_status, original mode). Webhooks are unique signed copies of fixtures
01, 02, 08 and 12, round-robin, owing 1.5 deliveries each on average. Fan-out per second counts
from the start of a run (warm-up included) to the arrival of its last delivery.

| | fixed rate ({env['RATE']}/s, open loop) | saturation ({env['CONNECTIONS']} connections) |
|---|---|---|
| webhooks answered 200 / non-200 / errors | {rate['ok']} / {rate['non_ok']} / {rate['errors']} | {sat['ok']} / {sat['non_ok']} / {sat['errors']} |
| achieved webhooks/s | {rate['rps']:.1f} | {sat['rps']:.1f} |
| latency ms p50 / p90 / p99 / max | {ms(rate['latency_ms'])} (from due time) | {ms(sat['latency_ms'])} |
| due but never sent | {rate['missed']} | n/a |
| deliveries received / per s | {r_got} / {r_per_s:.1f} | {s_got} / {s_per_s:.1f} |
| last delivery after ingest stopped | {r_lag:.1f} s ({env['RATE_DRAIN']}) | {s_lag:.1f} s ({env['SAT_DRAIN']}) |
| deliveries received / per s after ingest stopped | n/a | {drain_only} |

| router RSS | idle | after fixed rate | saturation, peak of {len(samples)} samples (0.5 s apart) | at the end | lifetime peak (VmHWM) |
|---|---|---|---|---|---|
| | {mib(idle['vm_rss_kib'])} | {mib(after_rate['vm_rss_kib'])} | {mib(peak)} | {mib(final['vm_rss_kib'])} | {mib(final['vm_hwm_kib'])} |

The store's files (`switchboard.db` and `switchboard.db-wal`), sampled every 0.5 s ({len(files)} samples):

| phase | WAL peak | database peak | at the phase's end (db + WAL) |
|---|---|---|---|
{files_table}

{fence}
{series}
{fence}

Deliveries the sinks received more than once: {duplicates}. By `x-switchboard-event` header:
crm {by_event(crm_end)}; calls {by_event(calls_end)}.

Fixed-rate run:
{fence}
{text('rate.out')}
{fence}
Saturation run:
{fence}
{text('saturate.out')}
{fence}

Machine:
{fence}
{env['UNAME']}
nproc: {env['NPROC']}
cpu: {env['CPU']}
{fence}

Commands:
{fence}
{env['COMMANDS']}
{fence}

Router config:
{fence}toml
{config}
{fence}""")
EOF

cat "$results"
log "saved $results"
