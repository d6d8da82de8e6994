#!/usr/bin/env bash
# Soaks the release router on 127.0.0.1: mixed signed webhooks (every shape of
# fixtures/meta-webhooks in turn, new ids and current timestamps each time) at RATE/s for
# DURATION s, one route (every kind of event) to a consumer that is down FLAP_DOWN s of every
# FLAP_PERIOD s (alternately answering 503 and stopped outright), while the router is
# SIGKILLed every KILL_EVERY s and started again at once on the same data directory. A
# webhook not answered 200 is sent again, like Meta does. After the load, the consumer stays
# up and the router drains (at most DRAIN_TIMEOUT s); then the report says whether every
# event a 200 acknowledged reached the consumer, the duplicates, the attempts refused while
# the router was down, and the router's memory and the store's files over time. Prints the
# report and saves it as bench/results/soak-<date>.md.
#
# Tunable through the environment: DURATION (600), RATE (1000), KILL_EVERY (60; 0 for no
# kills), FLAP_PERIOD (90), FLAP_DOWN (30; 0 for a steady consumer), FLAP_OFFSET (45: when
# the first down window starts), SAMPLE_EVERY (5 s), DRAIN_TIMEOUT (600 s), CONNECTIONS (64),
# ATTEMPTS (10 per webhook, RETRY_DELAY 2 s apart), MIN_FREE_MB (2048: the run stops early
# below this much free disk), BENCH_TMPDIR, BUILD=0, ROUTER_SRC (a checkout to build the router
# from instead of this one).
set -euo pipefail

SCRIPT=soak.sh
WORK_PREFIX=switchboard-soak
# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DURATION=${DURATION:-600}
RATE=${RATE:-1000}
KILL_EVERY=${KILL_EVERY:-60}
FLAP_PERIOD=${FLAP_PERIOD:-90}
FLAP_DOWN=${FLAP_DOWN:-30}
FLAP_OFFSET=${FLAP_OFFSET:-45}
SAMPLE_EVERY=${SAMPLE_EVERY:-5}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
CONNECTIONS=${CONNECTIONS:-64}
ATTEMPTS=${ATTEMPTS:-10}
RETRY_DELAY=${RETRY_DELAY:-2}
MIN_FREE_MB=${MIN_FREE_MB:-2048}
for name in DURATION RATE KILL_EVERY FLAP_PERIOD FLAP_DOWN FLAP_OFFSET SAMPLE_EVERY \
    DRAIN_TIMEOUT CONNECTIONS ATTEMPTS RETRY_DELAY MIN_FREE_MB; do
    [[ ${!name} =~ ^[0-9]+$ ]] || die "$name must be a whole number, got '${!name}'"
done
((DURATION > 0 && RATE > 0 && SAMPLE_EVERY > 0 && FLAP_PERIOD > 0)) ||
    die "DURATION, RATE, SAMPLE_EVERY and FLAP_PERIOD must be more than 0"
((FLAP_DOWN < FLAP_PERIOD)) || die "FLAP_DOWN must be shorter than FLAP_PERIOD"
# Loopback only, so the published development secret is allowed.
SECRET=test-app-secret

# The router is built from this checkout, or from ROUTER_SRC: another checkout (a clean clone
# of a commit, say, while this work tree holds changes in progress).
ROUTER_SRC=$(cd "${ROUTER_SRC:-$root}" && pwd)
if [[ $ROUTER_SRC == "$root" ]]; then
    build_release
else
    router=$ROUTER_SRC/target/release/switchboard
    build_cmd=(cargo build --release -p switchboard-bench "&&" cd "$ROUTER_SRC" "&&"
        cargo build --release -p switchboard)
    if [[ ${BUILD:-1} == 0 ]]; then
        build_cmd=("#" "${build_cmd[@]}" "(skipped: BUILD=0)")
    else
        log "${build_cmd[*]}"
        cargo build --release -p switchboard-bench
        (cd "$ROUTER_SRC" && cargo build --release -p switchboard)
    fi
    "$router" serve --help >/dev/null 2>&1 || die "$router has no working 'serve' subcommand"
fi

data=$work/data
timeline=$work/timeline.tsv
samples=$work/samples.tsv
router_port=$(free_port)
consumer_port=$(free_port)
[[ $router_port != "$consumer_port" ]] || consumer_port=$(free_port)

# Retries: at once, 1, 2, 5 s, then every 10 s, 30 in all: a job is retried through any down
# window (at most FLAP_DOWN s) and any restart, and the drain after the load is not left
# waiting on the default schedule's 5-minute and 30-minute steps.
schedule='"1s", "2s", "5s"'
for _ in $(seq 1 27); do schedule+=', "10s"'; done

config=$work/switchboard.toml
cat >"$config" <<EOF
[server]
listen = "127.0.0.1:$router_port"
public_url = "http://127.0.0.1:$router_port"
data_dir = "$data"

[meta]
app_secret = "$SECRET"
verify_token = "verify-me"
access_token = "EAAG-test"
phone_number_id = "106540352242922"
graph_api_base = "http://127.0.0.1:9"
graph_api_version = "v23.0"

[[routes]]
name = "soak"
events = ["message", "message_status", "call", "call_status", "call_permission_reply", "other"]
url = "http://127.0.0.1:$consumer_port/events"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
retry_schedule = [$schedule]
EOF

now_ms() { date +%s%3N; }

# Appends "ms since the start <TAB> what <TAB> detail" to the timeline.
note() { printf '%s\t%s\t%s\n' "$(($(now_ms) - epoch_ms))" "$1" "${2:-}" >>"$timeline"; }

# Removes a PID that has been waited for, so the cleanup never signals a reused one.
forget_pid() {
    local keep=() pid
    for pid in "${pids[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
    pids=("${keep[@]}")
}

free_mb() { df -Pm "$work" | awk 'NR == 2 { print $4 }'; }

# --- The consumer's down windows ----------------------------------------------------------
# Window k starts at FLAP_OFFSET + k * FLAP_PERIOD and lasts FLAP_DOWN s (cut at DURATION):
# even k, the consumer answers 503 to everything; odd k, its process is stopped.
unavailable=()
stopped_from=()
stopped_to=()
if ((FLAP_DOWN > 0)); then
    for k in $(seq 0 $((DURATION / FLAP_PERIOD + 1))); do
        from=$((FLAP_OFFSET + k * FLAP_PERIOD))
        ((from < DURATION)) || break
        to=$((from + FLAP_DOWN < DURATION ? from + FLAP_DOWN : DURATION))
        if ((k % 2 == 0)); then
            unavailable+=(--unavailable "$from:$to")
        else
            stopped_from+=($((from * 1000)))
            stopped_to+=($((to * 1000)))
        fi
    done
fi

consumer_pid=""
start_consumer() {
    consumer_cmd=("$bench" soak-consumer --listen "127.0.0.1:$consumer_port"
        --log "$work/consumer.log" --epoch-ms "$epoch_ms" "${unavailable[@]}")
    "${consumer_cmd[@]}" >>"$work/consumer.out" 2>&1 &
    consumer_pid=$!
    pids+=("$consumer_pid")
    note consumer-started "$consumer_pid"
}

stop_consumer() {
    kill -TERM "$consumer_pid" 2>/dev/null || true
    wait "$consumer_pid" 2>/dev/null || true
    forget_pid "$consumer_pid"
    note consumer-stopped "$consumer_pid"
    consumer_pid=""
}

# Whether ms-since-start $1 falls in a window the consumer's process is stopped.
consumer_stopped_at() {
    local i
    for i in "${!stopped_from[@]}"; do
        if (($1 >= stopped_from[i] && $1 < stopped_to[i])); then return 0; fi
    done
    return 1
}

# --- The router ---------------------------------------------------------------------------

router_cmd=("$router" serve --config "$config")
awaiting_ready=0
launch_router() {
    echo "=== started at $(date -u '+%H:%M:%S.%3N')" >>"$work/router.log"
    "${router_cmd[@]}" >>"$work/router.log" 2>&1 &
    router_pid=$!
    pids+=("$router_pid")
    note router-started "$router_pid"
    awaiting_ready=1
}

check_ready() {
    if curl -fsS -o /dev/null --max-time 0.5 "http://127.0.0.1:$router_port/readyz" 2>/dev/null; then
        note router-ready "$router_pid"
        awaiting_ready=0
    fi
}

kill_router() {
    kill -KILL "$router_pid" 2>/dev/null || true
    wait "$router_pid" 2>/dev/null || true
    forget_pid "$router_pid"
    note router-killed "$router_pid"
}

# One line of samples.tsv: the router's VmRSS and VmHWM, the store's three files, the load.
sample() {
    local rss=- hwm=- db wal shm load
    if [[ -n ${router_pid:-} && -r /proc/$router_pid/status ]]; then
        read -r rss hwm < <(awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 }
            END { print (r == "" ? "-" : r), (h == "" ? "-" : h) }' "/proc/$router_pid/status" 2>/dev/null ||
            echo "- -")
    fi
    db=$(stat -c %s "$data/switchboard.db" 2>/dev/null || echo -)
    wal=$(stat -c %s "$data/switchboard.db-wal" 2>/dev/null || echo -)
    shm=$(stat -c %s "$data/switchboard.db-shm" 2>/dev/null || echo -)
    load=$(cut -d ' ' -f 1 /proc/loadavg)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(($(now_ms) - epoch_ms))" "${router_pid:--}" \
        "$rss" "$hwm" "$db" "$wal" "$shm" "$load" >>"$samples"
}

# --- Start ---------------------------------------------------------------------------------

uptime >"$work/load-start.txt"
# Everything counts from here: the router has 5 s to come up first.
epoch_ms=$(($(now_ms) + 5000))
printf '0\trun-started\t%s\n' "$epoch_ms" >"$timeline"
launch_router
for _ in $(seq 1 100); do
    check_ready
    ((awaiting_ready == 0)) && break
    kill -0 "$router_pid" 2>/dev/null || die "router exited: $(tail -n 20 "$work/router.log")"
    sleep 0.05
done
((awaiting_ready == 0)) || die "router not ready within 5 s: $(tail -n 20 "$work/router.log")"
start_consumer

drive_cmd=("$bench" soak-drive --url "http://127.0.0.1:$router_port/webhook" --secret "$SECRET"
    --rate "$RATE" --duration "$DURATION" --connections "$CONNECTIONS" --attempts "$ATTEMPTS"
    --retry-delay "$RETRY_DELAY" --start-at-ms "$epoch_ms" --owed "$work/owed.tsv")
log "${drive_cmd[*]}"
"${drive_cmd[@]}" >"$work/drive.out" 2>&1 &
drive_pid=$!
pids+=("$drive_pid")
log "load starts at $(date -u -d "@$((epoch_ms / 1000))" '+%H:%M:%S') UTC: ${RATE}/s for ${DURATION} s," \
    "router killed every ${KILL_EVERY} s, consumer down ${FLAP_DOWN} s of every ${FLAP_PERIOD} s"

# --- The run: kills, the consumer's windows, samples; ticks of 50 ms --------------------

next_kill=$((KILL_EVERY > 0 ? KILL_EVERY * 1000 : -1))
next_sample=0
next_load=60000
ran_out_of_disk=0
# The load ends DURATION s after the start, its retries at most 30 s later; a minute spare.
for _ in $(seq 1 $(((DURATION + 5 + 30 + 60) * 20))); do
    now=$(($(now_ms) - epoch_ms))
    if ((awaiting_ready)); then check_ready; fi
    if ((next_kill > 0 && now >= next_kill && next_kill < DURATION * 1000)); then
        kill_router
        launch_router
        next_kill=$((next_kill + KILL_EVERY * 1000))
    fi
    if consumer_stopped_at "$now"; then
        [[ -z $consumer_pid ]] || stop_consumer
    elif [[ -z $consumer_pid ]]; then
        start_consumer
    fi
    if ((now >= next_sample)); then
        sample
        next_sample=$((next_sample + SAMPLE_EVERY * 1000))
        if (($(free_mb) < MIN_FREE_MB)); then
            log "less than $MIN_FREE_MB MB free on $work: stopping the load early"
            note stopped-low-on-disk "$(free_mb) MB free"
            ran_out_of_disk=1
            kill -TERM "$drive_pid" 2>/dev/null || true
        fi
    fi
    if ((now >= next_load)); then
        uptime >>"$work/load-during.txt"
        next_load=$((next_load + 60000))
    fi
    kill -0 "$drive_pid" 2>/dev/null || break
    sleep 0.05
done
if kill -0 "$drive_pid" 2>/dev/null; then
    log "the load generator outran its time: stopping it"
    kill -TERM "$drive_pid" 2>/dev/null || true
fi
drive_status=0
wait "$drive_pid" || drive_status=$?
forget_pid "$drive_pid"
note load-ended "exit $drive_status"
((drive_status == 0 || ran_out_of_disk)) || die "the load generator failed: $(tail -n 5 "$work/drive.out")"
tail -n 1 "$work/drive.out" >"$work/drive.json"
[[ -n $consumer_pid ]] || start_consumer

# --- Drain: the consumer up, the router delivering what it owes ---------------------------

log "load done; waiting up to ${DRAIN_TIMEOUT} s for every owed event to reach the consumer"
drained=incomplete
drain_start=$(now_ms)
for _ in $(seq 1 $((DRAIN_TIMEOUT * 20))); do
    if ((awaiting_ready)); then check_ready; fi
    now=$(($(now_ms) - epoch_ms))
    if ((now >= next_sample)); then
        sample
        next_sample=$((next_sample + SAMPLE_EVERY * 1000))
        check_status=0
        "$bench" soak-report --dir "$work" --check >"$work/check.txt" || check_status=$?
        case $check_status in
        0)
            drained=complete
            break
            ;;
        3) ;;
        *) die "soak-report --check failed: $(cat "$work/check.txt")" ;;
        esac
    fi
    (($(now_ms) - drain_start < DRAIN_TIMEOUT * 1000)) || break
    sleep 0.05
done
note "drain-$drained" "$(cat "$work/check.txt")"
log "drain $drained: $(cat "$work/check.txt")"
sample
uptime >"$work/load-end.txt"

kill -TERM "$router_pid" 2>/dev/null || true
wait "$router_pid" 2>/dev/null || true
forget_pid "$router_pid"
note router-stopped "$router_pid"
stop_consumer

# --- Report ---------------------------------------------------------------------------------

stamp=$(date -u +%Y-%m-%d-%H%M%S)
mkdir -p bench/results
results=bench/results/soak-$stamp.md
commit=$(git -C "$ROUTER_SRC" rev-parse --short HEAD 2>/dev/null || echo "no commit")
dirty=$(git -C "$ROUTER_SRC" status --porcelain -- router protocol 2>/dev/null || true)
[[ -z $dirty ]] || commit="$commit + uncommitted changes in: $(echo "$dirty" | awk '{ print $2 }' | tr '\n' ' ')"
fence='```'
windows=$(printf '%s\n' "${unavailable[@]}" | grep -v -- --unavailable | paste -sd ' ' || true)
stopped=""
for i in "${!stopped_from[@]}"; do stopped+="${stopped:+ }$((stopped_from[i] / 1000)):$((stopped_to[i] / 1000))"; done
failed_for_good=$(grep -c 'forward failed for good' "$work/router.log" || true)
panics=$(grep -c 'panicked' "$work/router.log" || true)
# Each start's line about the calling events it replayed, and the router's warnings and
# errors by message (their key=value fields cut off), most frequent first.
replays=$(grep -E '^=== started|calling events replayed|cannot replay' "$work/router.log" |
    sed -E 's/\x1b\[[0-9;]*m//g' || true)
digest=$(grep -E ' (WARN|ERROR) ' "$work/router.log" | sed -E 's/\x1b\[[0-9;]*m//g; s/^[^ ]+ +//; s/ [a-z_.]+=.*$//' |
    sort | uniq -c | sort -rn | head -n 20 || true)

{
    cat <<EOF
## Switchboard soak, $(date -u '+%Y-%m-%d %H:%M:%S UTC')

Router \`$commit\` (release build) on $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)),
$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo); data dir on $(df -T "$work" | awk 'NR == 2 { print $2 }'); the load generator and the consumer on the
same machine. ${RATE} signed webhooks/s for ${DURATION} s, every shape of
\`fixtures/meta-webhooks\` in turn (13: messages, statuses, permission replies, call events,
call statuses, a batch of three, an unknown field), each with new ids and current timestamps.
One route takes every kind of event to the consumer, a real HTTP server on loopback
(\`switchboard-bench soak-consumer\`) that answers 503 in the windows ${windows:-none} (s from the
start) and is stopped outright in ${stopped:-none}. The router is SIGKILLed every ${KILL_EVERY} s
and started again at once on the same data directory. After the load the consumer stays up
and the router drains: **${drained}** (at most ${DRAIN_TIMEOUT} s). Router log: ${failed_for_good}
jobs failed for good, ${panics} panics.

EOF
    "$bench" soak-report --dir "$work"
    cat <<EOF

Router log: each start, and what it said about replaying recent calling events:
$fence
${replays:-nothing}
$fence
Router warnings and errors, by message:
$fence
${digest:-none}
$fence

Machine load (\`uptime\`) before, every minute during, and after the run:
$fence
$(cat "$work/load-start.txt")
$(cat "$work/load-during.txt" 2>/dev/null || true)
$(cat "$work/load-end.txt")
$fence

Machine:
$fence
$(uname -a)
nproc: $(nproc)
$(lscpu | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|Socket\(s\)):' || true)
$fence

Commands:
$fence
${build_cmd[*]}
${router_cmd[*]}   # again after every kill
${consumer_cmd[*]}
${drive_cmd[*]}
$bench soak-report --dir WORK
$fence

Router config:
${fence}toml
$(cat "$config")
$fence
EOF
} >"$results"

cat "$results"
log "saved $results"
