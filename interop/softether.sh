#!/usr/bin/env bash
# SoftEther VPN Server, the stock Debian 12 package (softether-vpnserver 5.01.9674), as a
# real L2TP/IPsec (IKEv1 PSK, transport-mode ESP) and plain-L2TP server for
# `ras connect l2tp://`.  It runs on the host, in userspace, inside its own network
# namespace; a second namespace holds the client under test:
#
#   netns ras-se-cli  10.76.0.2/24 ──veth── 10.76.0.1/24  netns ras-se (vpnserver)
#
# Neither namespace has a route out, so SoftEther's phone-home features (DDNS,
# keep-alive, NAT-T rendezvous, VPN Azure) cannot leak; they are switched off as well.
#
#   softether.sh start    install (once), configure (first start), start; writes
#                         $STATE/softether/softether.env and prints it
#   softether.sh stop     stop the server (by recorded PID), delete the namespaces
#   softether.sh status   exit 0 if running
#   softether.sh reset    stop and wipe the configuration (next start configures again)
#
# What the server offers (after `start`): hub RAS, user test/test123 (PPP name `test`
# or `test@RAS`), PSK ras-softether-psk; PPP clients get addresses from the hub's
# SecureNAT DHCP 192.168.30.10-200, the SecureNAT virtual host 192.168.30.1 answers
# ping (NAT is off: nothing behind it).  PPP authentication offered: EAP, then
# MS-CHAPv2, then PAP.  Quirks a client must cope with: SoftEther ignores an IKE
# initiator that sends no NAT-T vendor ID, and identifies itself as ID_IPV4_ADDR 0.0.0.0.
#
# The configuration lives in /var/lib/softether/vpn_server.config, a path compiled into
# the Debian binary: only ONE instance per machine.  Callers serialize (the Rust test
# holds a lock file, $STATE/softether.lock).
#
# Environment: RAS_INTEROP_STATE (state dir), RAS_SE_NS (ras-se), RAS_SE_CLIENT_NS
# (ras-se-cli).  Logs: /var/log/softether, $STATE/softether/vpnserver.out.
. "$(dirname "$0")/lib.sh"
ri_need_root

SE_NS=${RAS_SE_NS:-ras-se}
CLI_NS=${RAS_SE_CLIENT_NS:-ras-se-cli}
SE_IP=10.76.0.1
CLI_IP=10.76.0.2
HUB=RAS
SE_USER=test
SE_PASS=test123
PSK=ras-softether-psk
SNAT_IP=192.168.30.1
POOL_START=192.168.30.10
POOL_END=192.168.30.200
SE_BIN=/usr/libexec/softether/vpnserver/vpnserver
CONF=/var/lib/softether/vpn_server.config
D=$STATE/softether
WATCHDOG_PID=$D/watchdog.pid   # `vpnserver execsvc`: the parent that restarts a dying child
SERVER_PID=$D/vpnserver.pid    # the server process itself

vpncmd_() { ip netns exec "$SE_NS" vpncmd 127.0.0.1:5555 /SERVER /CMD "$@" >"$D/vpncmd.last" 2>&1; }
vpncmd_hub() { ip netns exec "$SE_NS" vpncmd 127.0.0.1:5555 /SERVER /HUB:"$HUB" /CMD "$@" >"$D/vpncmd.last" 2>&1; }
running() { ri_pid_alive "$SERVER_PID"; }
ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

# listening NS PROTO PORT: something listens on PORT in NS.
listening() {
    local flag=-lnt; [ "$2" = udp ] && flag=-lnu
    ip netns exec "$1" ss $flag 2>/dev/null | awk '{print $4}' | grep -Eq "[:.]$3\$"
}
wait_port() {   # wait_port NS PROTO PORT SECONDS
    local i
    for i in $(seq 1 $(($4 * 10))); do listening "$1" "$2" "$3" && return 0; sleep 0.1; done
    return 1
}

namespaces_up() {
    local ns
    for ns in "$SE_NS" "$CLI_NS"; do
        ns_exists "$ns" || ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
    if ! ip -n "$SE_NS" link show rasse0 >/dev/null 2>&1; then
        ip -n "$CLI_NS" link del rasse1 2>/dev/null || true
        ip link add rasse0 netns "$SE_NS" type veth peer name rasse1 netns "$CLI_NS"
        ip -n "$SE_NS" addr add "$SE_IP/24" dev rasse0
        ip -n "$CLI_NS" addr add "$CLI_IP/24" dev rasse1
    fi
    ip -n "$SE_NS" link set rasse0 up
    ip -n "$CLI_NS" link set rasse1 up
}

namespaces_down() {
    local ns
    for ns in "$CLI_NS" "$SE_NS"; do
        ns_exists "$ns" || continue
        if [ -n "$(ip netns pids "$ns" 2>/dev/null)" ]; then
            ri_log "namespace $ns still has processes: not deleted"
        else
            ip netns del "$ns"
        fi
    done
}

seed_config() {
    # A partial configuration; SoftEther fills in every missing default (certificate,
    # key, ...).  Listeners: 5555 only (the admin port vpncmd uses); L2TP/IPsec does not
    # need a TCP listener.
    mkdir -p /var/lib/softether
    cat >"$CONF" <<'EOC'
declare root
{
	declare DDnsClient
	{
		bool Disabled true
	}
	declare ListenerList
	{
		declare Listener0
		{
			bool DisableDos true
			bool Enabled true
			uint Port 5555
		}
	}
	declare ServerConfiguration
	{
		bool DisableNatTraversal true
		bool DisableDosProtection true
		bool UseKeepConnect false
		bool EnableVpnAzure false
	}
}
EOC
    chmod 600 "$CONF"
}

configure() {
    vc() { vpncmd_ "$@" || { cat "$D/vpncmd.last" >&2; ri_die "vpncmd $1 failed"; }; }
    vh() { vpncmd_hub "$@" || { cat "$D/vpncmd.last" >&2; ri_die "vpncmd /HUB:$HUB $1 failed"; }; }
    vpncmd_ ProtoOptionsSet OpenVPN /NAME:Enabled /VALUE:false || true
    vpncmd_ ProtoOptionsSet SSTP /NAME:Enabled /VALUE:false || true
    vpncmd_ KeepDisable || true
    vpncmd_ VpnAzureSetEnable no || true
    vpncmd_ HubCreate "$HUB" /PASSWORD:"" || true        # fails harmlessly if it exists
    vc IPsecEnable /L2TP:yes /L2TPRAW:yes /ETHERIP:no /PSK:"$PSK" /DEFAULTHUB:"$HUB"
    vpncmd_hub UserCreate "$SE_USER" /GROUP:none /REALNAME:none /NOTE:none || true
    vh UserPasswordSet "$SE_USER" /PASSWORD:"$SE_PASS"
    # SecureNAT: a userspace virtual host and DHCP server on the hub; NAT off.
    vh SecureNatHostSet /MAC:none /IP:"$SNAT_IP" /MASK:255.255.255.0
    vh DhcpSet /START:"$POOL_START" /END:"$POOL_END" /MASK:255.255.255.0 /EXPIRE:7200 \
        /GW:none /DNS:"$SNAT_IP" /DNS2:none /DOMAIN:ras-interop /LOG:yes /PUSHROUTE:none
    vh SecureNatEnable
    vh NatDisable
    vh DhcpEnable
}

write_env() {
    cat >"$D/softether.env" <<EOE
SE_NS="$SE_NS"
CLIENT_NS="$CLI_NS"
SE_IP="$SE_IP"
CLIENT_IP="$CLI_IP"
HUB="$HUB"
USER="$SE_USER"
PASSWORD="$SE_PASS"
PSK="$PSK"
SNAT_IP="$SNAT_IP"
POOL_START="$POOL_START"
POOL_END="$POOL_END"
VERSION="$(dpkg-query -W -f='${Version}' softether-vpnserver)"
PID="$(cat "$SERVER_PID")"
EOE
    cat "$D/softether.env"
}

do_stop() {
    # the watchdog parent first (it would restart a dying child), then the server
    ri_kill_pidfile "$WATCHDOG_PID"
    ri_kill_pidfile "$SERVER_PID"
    rm -f /run/softether/.pid_* /run/softether/.ctl_* 2>/dev/null || true
}

do_start() {
    ri_apt_install softether-vpnserver softether-vpncmd iproute2
    mkdir -p "$D"
    namespaces_up
    if running; then write_env; return 0; fi
    do_stop
    local p
    for p in 500 4500 1701; do
        if listening "$SE_NS" udp $p; then ri_die "UDP $p is already in use in namespace $SE_NS"; fi
    done
    local fresh=0
    [ -s "$CONF" ] || { seed_config; fresh=1; }
    mkdir -p /var/log/softether /run/softether
    local t0; t0=$(date +%s%N)
    ip netns exec "$SE_NS" "$SE_BIN" execsvc >"$D/vpnserver.out" 2>&1 </dev/null &
    echo $! >"$WATCHDOG_PID"
    local i
    for i in $(seq 1 100); do ls /run/softether/.pid_* >/dev/null 2>&1 && break; sleep 0.1; done
    cat /run/softether/.pid_* >"$SERVER_PID" 2>/dev/null || true
    if ! wait_port "$SE_NS" tcp 5555 30 || ! running; then
        cat "$D/vpnserver.out" >&2; do_stop; ri_die "vpnserver did not start (no listener on TCP 5555)"
    fi
    ri_log "vpnserver up in $(ri_ms "$t0") ms (pid $(cat "$SERVER_PID"))"
    if [ $fresh = 1 ] || ! vpncmd_hub UserGet "$SE_USER"; then
        configure
        ri_log "configured in $(ri_ms "$t0") ms"
    fi
    # The IPsec/L2TP listeners open a few seconds after the admin port.
    if ! wait_port "$SE_NS" udp 500 30 || ! wait_port "$SE_NS" udp 1701 10; then
        do_stop; ri_die "SoftEther did not listen on UDP 500/1701 within 40 s"
    fi
    ri_log "L2TP/IPsec listening $(ri_ms "$t0") ms after start"
    write_env
}

case "${1:-}" in
    start) do_start ;;
    stop) do_stop; namespaces_down; ri_log "SoftEther stopped" ;;
    status) running && echo "running, pid $(cat "$SERVER_PID")" || { echo "SoftEther not running"; exit 1; } ;;
    reset) do_stop; rm -rf /var/lib/softether/*; ri_log "SoftEther configuration wiped" ;;
    *) echo "usage: $0 start|stop|status|reset" >&2; exit 2 ;;
esac
