#!/usr/bin/env bash
# `make run`: the whole product on this machine. wa-sim plays Meta and the WhatsApp users
# on 127.0.0.1:8090; Switchboard serves the webhook, the API and the dialer on
# 127.0.0.1:8080 with config/switchboard.toml (which points the Graph API at wa-sim).
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

config=${CONFIG:-config/switchboard.toml}
router=target/debug/switchboard
sim=target/debug/wa-sim

sim_pid=
stop() {
    if [[ -n $sim_pid ]]; then
        kill "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
    fi
}
trap stop EXIT

"$sim" serve \
    --listen 127.0.0.1:8090 \
    --webhook-url http://127.0.0.1:8080/webhook \
    --app-secret test-app-secret \
    --access-token EAAG-test \
    --phone-number-id 106540352242922 &
sim_pid=$!

cat <<TXT >&2

  Switchboard  http://127.0.0.1:8080/   (sign in with dev-agent-token; admin: dev-admin-token)
  wa-sim       http://127.0.0.1:8090/   (a user calls you:
               curl -X POST localhost:8090/sim/calls -H 'content-type: application/json' \\
                    -d '{"from": "12125550100", "name": "Asha Verma"}')

TXT
"$router" serve --config "$config"
