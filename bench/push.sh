#!/usr/bin/env bash
# Benchmarks the router's agent WebSockets on this machine: memory per connected agent and
# webhook-to-WebSocket push latency.
#
# Starts the router on 127.0.0.1 (no routes, one agent token per agent), then measures:
# idle memory; memory with SOCKETS idle agent sockets open (hence per connection); and a
# push run: AGENTS agents connected while user-initiated call webhooks arrive at RATE/s, each
# ringing every agent with a `call.incoming`, timed per (webhook, agent) pair. Prints a
# markdown report and saves it in bench/results/.
#
# Tunable through the environment: AGENTS (50), RATE (1000), DURATION (20), WARMUP (2),
# SOCKETS (1000), SETTLE (seconds before reading memory, 3), DRAIN_TIMEOUT (seconds to wait
# for pushes after the last webhook, 10) and BENCH_TMPDIR (where the router's data goes;
# TMPDIR or /tmp). BUILD=0 measures the binaries already built.
set -euo pipefail

SCRIPT=push.sh
WORK_PREFIX=switchboard-push
# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"


AGENTS=${AGENTS:-50}
RATE=${RATE:-1000}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-2}
SOCKETS=${SOCKETS:-1000}
SETTLE=${SETTLE:-3}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-10}
for name in AGENTS RATE DURATION WARMUP SOCKETS SETTLE DRAIN_TIMEOUT; do
    [[ ${!name} =~ ^[0-9]+$ ]] || die "$name must be a whole number, got '${!name}'"
done
((AGENTS > 0 && SOCKETS > 0 && RATE > 0 && DURATION > 0)) ||
    die "AGENTS, SOCKETS, RATE and DURATION must be above zero"
SECRET=test-app-secret
TOKEN_PREFIX='bench-agent-token-'



# Each socket is a descriptor in the router and in the load generator (both inherit this).
fds_needed=$((SOCKETS + AGENTS + 1024))
fds_before=$(ulimit -Sn)
if [[ $fds_before != unlimited ]] && ((fds_before < fds_needed)); then
    ulimit -Sn "$fds_needed" 2>/dev/null ||
        die "needs $fds_needed open files; the soft limit is $fds_before and the hard limit $(ulimit -Hn)"
fi
fds_limit=$(ulimit -Sn)

build_release
# The source the binaries were built from (with BUILD=0, only what is checked out now).
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [[ -n $(git status --porcelain -- router protocol 2>/dev/null) ]]; then
    commit="$commit + uncommitted changes"
fi
if [[ ${BUILD:-1} == 0 ]]; then commit="$commit (checked out; BUILD=0, binaries not rebuilt)"; fi


# Saves the router's memory and CPU time as JSON to FILE.
router_reading() { "$bench" rss --pid "$router_pid" --json >"$1"; }

# Busy and total jiffies of the whole machine, from /proc/stat: "busy total".
machine_jiffies() {
    local _cpu user nice system idle iowait irq softirq steal _rest
    read -r _cpu user nice system idle iowait irq softirq steal _rest </proc/stat
    echo "$((user + nice + system + irq + softirq + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}

# Load average and the busiest processes right now, for the record.
machine_load() {
    echo "uptime: $(uptime)"
    ps -eo pid,pcpu,etime,comm --sort=-pcpu | head -n 8
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

# --- Router ----------------------------------------------------------------------------------

port=$(free_port)
config=$work/switchboard.toml
{
    cat <<EOF
[server]
listen = "127.0.0.1:$port"
public_url = "http://127.0.0.1:$port"
data_dir = "$work/data"
# The bodies are Meta's sample deliveries, dated 2025: taken, not ignored as replays.
ignore_replays = false
max_websockets = $((SOCKETS + AGENTS + 100))
# The idle sockets are spread over the agents, more than the default 5 each.
max_websockets_per_agent = $((SOCKETS + AGENTS))

[meta]
app_secret = "$SECRET"
verify_token = "verify-me"
access_token = "EAAG-test"
phone_number_id = "106540352242922"
graph_api_base = "http://127.0.0.1:9"
graph_api_version = "v23.0"
EOF
    # One agent per token: bench-agent-I holds token ${TOKEN_PREFIX}I.
    python3 - "$AGENTS" "$TOKEN_PREFIX" <<'EOF'
import hashlib, sys
count, prefix = int(sys.argv[1]), sys.argv[2]
for i in range(count):
    digest = hashlib.sha256(f"{prefix}{i}".encode()).hexdigest()
    print(f'\n[[agents]]\nname = "bench-agent-{i}"\ntoken_sha256 = "{digest}"\nrole = "agent"')
EOF
} >"$config"

start_router "$config" "$port"
ws_url="ws://127.0.0.1:$port/ws"
webhook_url="http://127.0.0.1:$port/webhook"

sleep "$SETTLE"
router_reading "$work/rss-idle.json"
log "router ready on 127.0.0.1:$port"

# --- Memory per connected agent --------------------------------------------------------------

sockets_cmd=("$bench" sockets --url "$ws_url" --token-prefix "$TOKEN_PREFIX" --tokens "$AGENTS"
    --count "$SOCKETS" --json)
log "${sockets_cmd[*]}"
machine_load >"$work/load-sockets.txt"
"${sockets_cmd[@]}" >"$work/sockets.out" 2>"$work/sockets.err" &
sockets_pid=$!
pids+=("$sockets_pid")
connected=no
for _ in $(seq 1 $(((SOCKETS / 20 + 60) * 10))); do
    if grep -q '^connected ' "$work/sockets.out"; then
        connected=yes
        break
    fi
    kill -0 "$sockets_pid" 2>/dev/null || break
    sleep 0.1
done
[[ $connected == yes ]] ||
    die "the sockets did not all connect: $(cat "$work/sockets.out" "$work/sockets.err")"
log "$(grep '^connected ' "$work/sockets.out")"
sleep "$SETTLE"
router_reading "$work/rss-sockets.json"
kill -TERM "$sockets_pid"
wait "$sockets_pid" || die "sockets failed: $(cat "$work/sockets.out" "$work/sockets.err")"
tail -n 1 "$work/sockets.out" >"$work/sockets.json"
sleep "$SETTLE"
router_reading "$work/rss-after-sockets.json"

# --- Push latency ----------------------------------------------------------------------------

push_cmd=("$bench" push --webhook-url "$webhook_url" --ws-url "$ws_url" --secret "$SECRET"
    --token-prefix "$TOKEN_PREFIX" --agents "$AGENTS" --rate "$RATE" --duration "$DURATION"
    --warmup "$WARMUP" --drain-timeout "$DRAIN_TIMEOUT" --json)
log "${push_cmd[*]}"
machine_load >"$work/load-push.txt"
router_reading "$work/rss-before-push.json"
read -r busy_before total_before < <(machine_jiffies)
push_start_ms=$(date +%s%3N)
run_to "$work/push.out" "${push_cmd[@]}"
push_end_ms=$(date +%s%3N)
read -r busy_after total_after < <(machine_jiffies)
router_reading "$work/rss-after-push.json"
tail -n 1 "$work/push.out" >"$work/push.json"
machine_load >"$work/load-after.txt"

# --- Report ----------------------------------------------------------------------------------

stamp=$(date -u +%Y-%m-%d-%H%M%S)
mkdir -p bench/results
results=bench/results/push-$stamp.md
when=$(date -u '+%Y-%m-%d %H:%M:%S UTC')

WHEN=$when COMMIT=$commit AGENTS=$AGENTS SOCKETS=$SOCKETS RATE=$RATE SETTLE=$SETTLE \
    UNAME=$(uname -a) NPROC=$(nproc) CLK_TCK=$(getconf CLK_TCK) \
    CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1) \
    MEM=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) \
    FS=$(df -T "$work" | awk 'NR == 2 { print $2 }') \
    FDS="soft limit $fds_before$([[ $fds_before == "$fds_limit" ]] && echo ", enough" || echo ", raised to $fds_limit for this run") (hard $(ulimit -Hn)); $fds_needed needed" \
    MACHINE_BUSY=$((busy_after - busy_before)) MACHINE_TOTAL=$((total_after - total_before)) \
    PUSH_WALL_MS=$((push_end_ms - push_start_ms)) \
    COMMANDS=$(printf '%s\n' "${build_cmd[*]}" "ulimit -Sn $fds_limit" "${router_cmd[*]}" \
        "${sockets_cmd[*]}   # then SIGTERM once RSS is read" "${push_cmd[*]}") \
    python3 - "$work" >"$results" <<'EOF'
import json, os, sys

work, env = sys.argv[1], os.environ
fence = "`" * 3


def load(name):
    with open(f"{work}/{name}") as f:
        return json.load(f)


def text(name, drop_last=True):
    with open(f"{work}/{name}") as f:
        lines = f.readlines()
    return "".join(lines[:-1] if drop_last else lines).rstrip()


def ms(p):
    return f"{p['p50']:.2f} / {p['p90']:.2f} / {p['p99']:.2f} / {p['max']:.2f}" if p else "none"


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


idle, with_sockets, after_sockets = load("rss-idle.json"), load("rss-sockets.json"), load(
    "rss-after-sockets.json")
before_push, after_push = load("rss-before-push.json"), load("rss-after-push.json")
sockets, push = load("sockets.json"), load("push.json")
count = int(env["SOCKETS"])
per_socket_kib = (with_sockets["vm_rss_kib"] - idle["vm_rss_kib"]) / count
per_socket_kb = per_socket_kib * 1.024

p, w = push["pushes"], push["warmup_pushes"]
wh = push["webhooks"]
wall_s = int(env["PUSH_WALL_MS"]) / 1000
router_cpu = after_push["cpu_s"] - before_push["cpu_s"]
client_cpu = push.get("client_cpu_s") or 0.0
machine_cpu = int(env["MACHINE_BUSY"]) / int(env["CLK_TCK"])
machine_total = int(env["MACHINE_TOTAL"]) / int(env["CLK_TCK"])
others_cpu = max(0.0, machine_cpu - router_cpu - client_cpu)
lat = push["latency_from_send_ms"]
verdict_latency = "meets" if lat and lat["p99"] < 5 else "misses"
verdict_memory = "meets" if per_socket_kb < 100 else "misses"

with open(f"{work}/switchboard.toml") as f:
    config = f.read().rstrip()
agents_at = config.find("[[agents]]")
second = config.find("[[agents]]", agents_at + 1)
if second > 0:
    config = config[:second] + f"# ... {env['AGENTS']} [[agents]] in all: bench-agent-I, token bench-agent-token-I"

print(f"""## Switchboard agent WebSocket benchmark, {env['WHEN']}

Router `{env['COMMIT']}` on {env['NPROC']} cores ({env['CPU']}), {env['MEM']}; router data dir on
{env['FS']}; load generator on the same machine, one runtime thread. No `[[routes]]`: each
webhook is a new user-initiated call, which the router stores and pushes as `call.incoming`
to every connected agent.

### Memory per connected agent

{count} idle agent sockets (`Authorization: Bearer`, {sockets['agents']} agents), each past its
`hello`, read {env.get('SETTLE', '3')} s after the last connected:

| router RSS | idle | with {count} sockets | after closing them | lifetime peak (VmHWM) |
|---|---|---|---|---|
| | {mib(idle['vm_rss_kib'])} | {mib(with_sockets['vm_rss_kib'])} | {mib(after_sockets['vm_rss_kib'])} | {mib(after_sockets['vm_hwm_kib'])} |

**Per connection: {per_socket_kib:.1f} KiB ({per_socket_kb:.1f} KB)** = (RSS with sockets - idle RSS) / {count};
target under 100 KB: {verdict_memory}. Sockets opened in {sockets['connect_s']:.2f} s; closed by the
router while held: {sockets['closed_by_router']}.

### Webhook-to-WebSocket push latency

{push['agents']} agents connected; {env['RATE']} call webhooks/s (open loop), {push['duration_s']:g} s measured after
{push['warmup_s']:g} s warm-up. Latency of each (webhook, agent) pair = arrival of the `call.incoming`
on that agent's socket minus the moment the webhook request left ("from send"), or minus the
time it was due by the schedule ("from due": also counts any wait in the load generator).

| | p50 / p90 / p99 / max (ms) |
|---|---|
| **push, from webhook send** | **{ms(push['latency_from_send_ms'])}** |
| push, from due time | {ms(push['latency_from_due_ms'])} |
| webhook answer (200), from send | {ms(wh['answer_service_ms'])} |

p99 target under 5 ms: {verdict_latency}. Pairs measured: {push['pairs_measured']}.

| | measured window | warm-up |
|---|---|---|
| webhooks answered 200 | {p['webhooks_ok']} | {w['webhooks_ok']} |
| pushes expected (200s x agents) | {p['expected']} | {w['expected']} |
| pushes received | {p['received']} | {w['received']} |
| **missing** | **{p['missing']}** | **{w['missing']}** |

Webhooks: {wh['sent']} sent in the window, {wh['ok']} answered 200, {wh['non_ok']} other, {wh['errors']} errors,
{wh['missed'] or 0} due but never sent; {wh['rps']:.1f}/s. Duplicate pushes {push['duplicates']}, sockets ended early
{push['sockets_ended_early']}, agents missing pushes {push['agents_missing_pushes']}. Every owed push arrived:
{'yes' if push['drain_complete'] else 'NO'} (waited {push['drain_waited_s']:.2f} s after the last webhook answer).

CPU-seconds used while the push command ran ({wall_s:.1f} s wall, {machine_total:.1f} CPU-seconds on
{env['NPROC']} cores): router {router_cpu:.1f}, load generator {client_cpu:.1f}, **everything else on the
machine {others_cpu:.1f}** (other jobs compete for the same cores and show up as latency). Router RSS
before / after the run: {mib(before_push['vm_rss_kib'])} / {mib(after_push['vm_rss_kib'])}.

Push run:
{fence}
{text('push.out')}
{fence}
Sockets run:
{fence}
{text('sockets.out')}
{fence}

Machine load before the sockets run, before the push run and after it:
{fence}
{text('load-sockets.txt', False)}

{text('load-push.txt', False)}

{text('load-after.txt', False)}
{fence}

Machine:
{fence}
{env['UNAME']}
nproc: {env['NPROC']}
cpu: {env['CPU']}
open files: {env['FDS']}
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
