#!/usr/bin/env bash
# Runs a command in a network namespace that has only the loopback interface, so tests that
# move real media (WebRTC in wa-sim and in Chromium) can reach nothing but 127.0.0.1.
#
#   scripts/loopback.sh cargo test --workspace --offline
#
# As root it uses a plain network namespace; otherwise a user namespace maps the caller to
# root inside it (needs unprivileged user namespaces). SWITCHBOARD_NO_NETNS=1 runs the command
# as it is, for machines that allow neither.
set -euo pipefail

if [[ ${SWITCHBOARD_NO_NETNS:-0} == 1 ]]; then
    echo "loopback.sh: SWITCHBOARD_NO_NETNS=1, running without a network namespace" >&2
    exec "$@"
fi

command -v ip >/dev/null || {
    echo "loopback.sh: needs ip (Debian package iproute2) to bring up lo" >&2
    exit 1
}
inner='ip link set lo up && exec "$@"'
if [[ $(id -u) == 0 ]]; then
    exec unshare --net -- bash -c "$inner" bash "$@"
fi
if unshare --user --map-root-user --net -- true 2>/dev/null; then
    exec unshare --user --map-root-user --net -- bash -c "$inner" bash "$@"
fi
echo "loopback.sh: cannot create a network namespace here (not root, no user namespaces)." >&2
echo "loopback.sh: run as root, or set SWITCHBOARD_NO_NETNS=1 to run on the host network." >&2
exit 1
