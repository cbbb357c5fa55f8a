#!/usr/bin/env bash
# The network namespace the interop guest VM is attached to.
#
#   netns.sh up       create namespace $RAS_INTEROP_NS (default rasi) with lo up and a
#                     persistent tap "rasi-tap0" 10.77.0.1/24 (the guest is 10.77.0.2)
#   netns.sh down     delete the tap, and the namespace if this harness created it
#                     and nothing runs in it any more
#   netns.sh status   show the namespace's links and addresses (exit 1 if missing)
#
# The namespace has no route out: anything run with `ip netns exec rasi ...` reaches
# the guest and nothing else, and the guest reaches only the namespace.
. "$(dirname "$0")/lib.sh"
ri_need_root

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$NS"; }

up() {
    mkdir -p "$STATE"
    if ! ns_exists; then
        ip netns add "$NS" || ri_die "cannot create network namespace $NS"
        echo "$NS" >"$STATE/netns.created"
    fi
    ip -n "$NS" link set lo up
    ip -n "$NS" link show "$TAP" >/dev/null 2>&1 || ip -n "$NS" tuntap add dev "$TAP" mode tap
    ip -n "$NS" addr show dev "$TAP" | grep -q "inet $HOST_IP/" || ip -n "$NS" addr add "$HOST_IP/24" dev "$TAP"
    ip -n "$NS" link set "$TAP" up
}

down() {
    ns_exists || { rm -f "$STATE/netns.created"; return 0; }
    ip -n "$NS" link del "$TAP" 2>/dev/null || true
    if [ "$(cat "$STATE/netns.created" 2>/dev/null)" != "$NS" ]; then
        ri_log "namespace $NS was not created by the harness: left in place"; return 0
    fi
    local left; left=$(ip netns pids "$NS" 2>/dev/null | tr '\n' ' ')
    if [ -n "$left" ]; then ri_log "namespace $NS still has processes ($left): not deleted"; return 0; fi
    ip netns del "$NS"
    rm -f "$STATE/netns.created"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) ns_exists || { echo "no namespace $NS"; exit 1; }; ip -n "$NS" -br addr ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
