#!/usr/bin/env bash
# IKEv2 handshake rate and ESP throughput of `ras server` against strongSwan's
# own responder, in the same run, on this machine (run setup.sh once first).
#
#   scripts/ikev2-bench/bench.sh [all|ike|tput|clean] [--ras PATH]      (as root)
#
# The `ras` binary: --ras PATH, else $RAS, else ${CARGO_TARGET_DIR:-target}/release/ras
# (built with `cargo build --release -p ras` when missing and cargo is at hand).
#
# Layout (three network namespaces, two identical veth pairs):
#   ikba  198.18.210.1 (ikba0) <-> ikbb 198.18.210.2 (ikbb0): `ras server`, wireguard-go peer
#   ikba  198.18.211.1 (ikba1) <-> ikbc 198.18.211.2 (ikbc0): strongSwan responder
#   ikba holds every client: the load generator, the libipsec client, iperf3 -c.
#
#  ike:  a burst of $IKE_N IKE_SAs from strongSwan's load tester (a 5.9.8 charon
#        built by setup.sh, fake kernel) against the responder in ikbb: `ras server`
#        or Debian's charon with kernel-libipsec (same namespace and address, one
#        responder at a time).  Each IKE_SA:
#        IKE_SA_INIT ($IKE_PROP) + IKE_AUTH with one CHILD_SA (aes128gcm16) and a
#        virtual IPv4 address.  Rate = N / time until the last one is established.
#        GENERATORS="ras" (or "loadtester ras") uses `ras-bench ike-burst` instead: our
#        sans-IO initiator for every IKE SA of the burst from one thread, the same
#        profiles and proposal (x25519 only), a fraction of the load tester's CPU.
#        Profiles: lt-psk (PSK both ways, ids c<n>@psk.lt.ikbench / 198.18.210.2) and
#        lt-eap (server RSA-2048 certificate + EAP-MSCHAPv2, ids c<n>@eap.lt.ikbench;
#        for ras also an ECDSA P-256 certificate).  Responders are fresh for each
#        repetition; repetitions alternate the responders.  strongSwan has
#        dos_protection = no and ras cookie_threshold = $RAS_COOKIE_THRESHOLD (both:
#        no cookies, the load generator has one source address); RAS_COOKIES=1 adds
#        a ras PSK run with the default threshold (64), SW_COOKIE_THRESHOLD=N
#        turns strongSwan's cookies on.
#  tput: iperf3 TCP, 1 stream, $T s, $RUNS rounds, each round alternating
#        bare veth ikba->ikbb | ESP to ras | ESP strongSwan<->strongSwan | wireguard-go.
#        The ESP client is Debian's charon with kernel-libipsec in ikba (user-space
#        ESP, always ESP-in-UDP 4500, TUN ipsec0 MTU 1400), one IKE_SA to each
#        responder (PSK, AES-GCM-128 child).
# Results: $RAS_IKEBENCH_DIR/results/<stamp>/summary.txt (+ iperf3 JSON, logs).
# Knobs: RUNS=3 T=10 IKE_N="250 1000" IKE_REPS=3 IKE_PROP=aes128gcm16-prfsha256-x25519
#        IKE_TIMEOUT=60 RESPONDERS="strongswan ras" GENERATORS=loadtester RAS_COOKIES=0 SW_LOGLEVEL=0 RAS_LOG=info
#        RAS_COOKIE_THRESHOLD=100000 SW_COOKIE_THRESHOLD= (unset: strongSwan dos_protection = no)
#        SW_RMEM=4194304 (the strongSwan responder's socket buffers, as ras's IKE sockets; empty: system default)
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
B=${RAS_IKEBENCH_DIR:-/var/tmp/ras-ikebench}
S=$B/state
STAMP=$(date +%Y%m%d-%H%M%S)
R=${R:-$B/results/$STAMP}
LT=$B/sw-lt
RUNS=${RUNS:-3}
T=${T:-10}
IKE_N=${IKE_N:-"250 1000"}
IKE_REPS=${IKE_REPS:-3}
IKE_CASES=${IKE_CASES:-psk eap eap-ecdsa psk-cookies}
IKE_PROP=${IKE_PROP:-aes128gcm16-prfsha256-x25519}
IKE_TIMEOUT=${IKE_TIMEOUT:-60}
RESPONDERS=${RESPONDERS:-"strongswan ras"}
GENERATORS=${GENERATORS:-loadtester}
SW_RMEM=${SW_RMEM-4194304}
RAS_COOKIES=${RAS_COOKIES:-0}
RAS_COOKIE_THRESHOLD=${RAS_COOKIE_THRESHOLD:-100000}
NSA=ikba; NSB=ikbb; NSC=ikbc
IPA=198.18.210.1; IPB=198.18.210.2; IPA2=198.18.211.1; IPC=198.18.211.2
RAS_ADDR=10.200.128.1   # the server's address: the first of its pool
PSK_T=ikbench-tput-psk; PSK_L=ikbench-lt-psk; EAP_PW=ikbench-eap-pw

log() { printf '[ikbench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"

WHAT=all; RAS=${RAS:-}; RAS_BENCH=${RAS_BENCH:-}
while [ $# -gt 0 ]; do
    case $1 in
        --ras) RAS=$2; shift 2 ;;
        --ras-bench) RAS_BENCH=$2; shift 2 ;;
        all|ike|tput|clean) WHAT=$1; shift ;;
        *) die "usage: $0 [all|ike|tput|clean] [--ras PATH] [--ras-bench PATH]" ;;
    esac
done

# ---------------------------------------------------------------- processes, namespaces
# start_bg NAME CMD...: run CMD in the background, its PID in $S/NAME.pid
start_bg() { local n=$1; shift; "$@" >"$S/$n.out" 2>&1 & echo $! >"$S/$n.pid"; }
stop_pid() {   # NAME: TERM the recorded PID, KILL after 5 s
    local f=$S/$1.pid pid i
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}
# strongSwan 5.9.8 has no setting for its IKE sockets' receive buffer; ras asks
# for 4 MiB. SW_RMEM (bytes, default 4 MiB, empty: off) is made the system's
# default while charon opens its sockets, so both responders get the same
# room for a burst; the old value is put back at once (and by cleanup).
sw_rmem_raise() {
    [ -n "$SW_RMEM" ] || return 0
    [ -f "$S/rmem_default.orig" ] || sysctl -n net.core.rmem_default >"$S/rmem_default.orig"
    sysctl -qw net.core.rmem_default="$SW_RMEM"
}
sw_rmem_restore() {
    [ -f "$S/rmem_default.orig" ] || return 0
    sysctl -qw net.core.rmem_default="$(cat "$S/rmem_default.orig")" && rm -f "$S/rmem_default.orig"
}
cleanup() {
    local f n
    sw_rmem_restore
    for f in "$S"/*.pid; do [ -e "$f" ] || continue; n=$(basename "$f" .pid); stop_pid "$n"; done
    if [ -f "$S/netns.created" ]; then
        for n in $(cat "$S/netns.created"); do
            ip netns list | awk '{print $1}' | grep -qx "$n" && ip netns del "$n"
        done
        rm -f "$S/netns.created"
    fi
}
setup_net() {
    local n
    for n in $NSA $NSB $NSC; do
        ip netns list | awk '{print $1}' | grep -qx "$n" && die "netns $n exists and is not ours (not in $S/netns.created)"
        ip netns add "$n"; echo "$n" >>"$S/netns.created"
        ip -n "$n" link set lo up
    done
    ip link add ikba0 netns $NSA type veth peer name ikbb0 netns $NSB
    ip link add ikba1 netns $NSA type veth peer name ikbc0 netns $NSC
    ip -n $NSA addr add $IPA/24 dev ikba0; ip -n $NSA link set ikba0 up
    ip -n $NSA addr add $IPA2/24 dev ikba1; ip -n $NSA link set ikba1 up
    ip -n $NSB addr add $IPB/24 dev ikbb0; ip -n $NSB link set ikbb0 up
    ip -n $NSC addr add $IPC/24 dev ikbc0; ip -n $NSC link set ikbc0 up
    # inner addresses of the strongSwan<->strongSwan tunnel; the load tests' target
    ip -n $NSA addr add 10.200.1.1/32 dev lo
    ip -n $NSC addr add 10.200.2.1/32 dev lo
    ip -n $NSB addr add 10.200.0.1/32 dev lo
    ip netns exec $NSA ping -c1 -W2 $IPB >/dev/null || die "veth ping ikba->ikbb failed"
    ip netns exec $NSA ping -c1 -W2 $IPC >/dev/null || die "veth ping ikba->ikbc failed"
}

# ---------------------------------------------------------------- ras
find_ras() {
    if [ -z "$RAS" ]; then
        local t=${CARGO_TARGET_DIR:-$REPO/target}
        RAS=$t/release/ras
        if [ ! -x "$RAS" ] && command -v cargo >/dev/null; then
            log "building ras (cargo build --release -p ras)"
            (cd "$REPO" && cargo build --release -p ras) >&2
        fi
    fi
    [ -x "$RAS" ] || die "no ras binary at $RAS: cargo build --release -p ras, or --ras PATH"
    RAS=$(readlink -f "$RAS")
}
find_ras_bench() {   # ras-bench: --ras-bench PATH, else next to ras
    find_ras
    [ -n "$RAS_BENCH" ] || RAS_BENCH=$(dirname "$RAS")/ras-bench
    [ -x "$RAS_BENCH" ] || die "no ras-bench at $RAS_BENCH: cargo build --release -p bench, or --ras-bench PATH"
    RAS_BENCH=$(readlink -f "$RAS_BENCH")
}
# ras_conf CERT(rsa|ecdsa) THRESHOLD -> $S/ras/ras-CERT-THRESHOLD.toml
ras_conf() {
    local c=$1 th=$2 d=$S/ras
    mkdir -p "$d/state"
    printf '%s\n' "$PSK_L" >"$d/ipsec-psk"
    cat >"$d/ras-$c-$th.toml" <<EOC
state_dir = "$d/state"
server_name = "$IPB"

[sstp]
listen = []

[pptp]
listen = []

[certificate]
chain = "$S/pki/server-$c.pem"
key = "$S/pki/server-$c.key"

[ipsec]
listen = "$IPB"
psk_file = "$d/ipsec-psk"

[ikev2]
auth = ["eap", "psk"]
local_id = "$IPB"
cookie_threshold = $th
# Bursts of 1000 need more than RRAS's default 128 IKEv2 ports.
ports = 4096

[addresses]
ipv4_pool = ["$RAS_ADDR-10.200.135.254"]

[tun]
name = "ikbras0"
EOC
}
# ras_users N: c1..cN@eap.lt.ikbench with the load tester's EAP password (once per run)
ras_users() {
    local n=$1 have=0 i pw=$S/ras/eap-pw
    [ -f "$S/ras/users" ] && have=$(cat "$S/ras/users")
    [ "$have" -ge "$n" ] && return 0
    printf '%s\n' "$EAP_PW" >"$pw"
    log "ras user add c$((have + 1))..c$n@eap.lt.ikbench"
    for i in $(seq $((have + 1)) "$n"); do
        "$RAS" user --config "$S/ras/ras-rsa-$RAS_COOKIE_THRESHOLD.toml" add "c$i@eap.lt.ikbench" --password-file "$pw" >/dev/null \
            || die "ras user add c$i@eap.lt.ikbench failed"
    done
    echo "$n" >"$S/ras/users"
}
# start_ras NAME CONF NS: `ras server` in NS, waits for its "ras server:" line
start_ras() {
    local n=$1 conf=$2 ns=$3 i
    start_bg "$n" ip netns exec "$ns" env RUST_LOG="${RAS_LOG:-info}" "$RAS" server --config "$conf"
    for i in $(seq 150); do
        grep -q '^ras server:' "$S/$n.out" 2>/dev/null && break
        kill -0 "$(cat "$S/$n.pid")" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^ras server:' "$S/$n.out" || { cat "$S/$n.out" >&2; die "ras server $n did not start"; }
}

# ---------------------------------------------------------------- strongSwan
# SW_COOKIE_THRESHOLD unset: no cookies or per-IP half-open limits (the load generator
# has one source address); set: cookies above that many half-open IKE_SAs, like ras's knob
sw_dos_protection() {
    if [ -z "${SW_COOKIE_THRESHOLD:-}" ]; then
        echo "    dos_protection = no"
    else
        printf '    dos_protection = yes\n    cookie_threshold = %s\n    block_threshold = 100000\n' "$SW_COOKIE_THRESHOLD"
    fi
}
# Debian charon: Debian's plugin set (load_modular, /etc/strongswan.d) + kernel-libipsec
sw_conf_debian() {   # NAME -> $S/NAME/strongswan.conf
    local d=$S/$1
    mkdir -p "$d"
    cat >"$d/strongswan.conf" <<EOC
charon {
    load_modular = yes
    install_virtual_ip = yes
$(sw_dos_protection)
    filelog {
        swlog {
            path = $d/charon.log
            time_format = %T
            default = ${SW_LOGLEVEL:-0}
            flush_line = no
        }
    }
    plugins {
        include /etc/strongswan.d/charon/*.conf
        kernel-libipsec { load = yes }
        vici { socket = unix://$d/charon.vici }
        # side effects not wanted in a benchmark namespace
        resolve { load = no }
        dhcp { load = no }
        tpm { load = no }
        bypass-lan { load = no }
        farp { load = no }
        stroke { load = no }
        connmark { load = no }
        ha { load = no }
        forecast { load = no }
    }
}
include /etc/strongswan.d/*.conf
EOC
}
# start_charon NAME NS CONF BIN WAITFILE: charon with a private /run (its pid file) in NS
start_charon() {
    local n=$1 ns=$2 conf=$3 bin=$4 wf=$5 i
    rm -f "$wf"; : >"$(dirname "$conf")/charon.log"
    start_bg "$n" ip netns exec "$ns" unshare -m sh -c \
        'mount -t tmpfs -o mode=755 ikbrun /run && exec env STRONGSWAN_CONF="$1" "$2"' charon "$conf" "$bin"
    for i in $(seq 100); do [ -S "$wf" ] && break; kill -0 "$(cat "$S/$n.pid")" 2>/dev/null || break; sleep 0.1; done
    [ -S "$wf" ] || { cat "$S/$n.out" >&2; die "charon $n did not start"; }
}
swanctl_load() {   # NAME
    swanctl --load-all --noprompt --uri "unix://$S/$1/charon.vici" --file "$S/$1/swanctl/swanctl.conf" >"$S/$1/load.log" 2>&1 \
        || { cat "$S/$1/load.log" >&2; die "swanctl --load-all ($1) failed"; }
}
make_certs() {   # a CA (RSA-2048) and two server certificates for $IPB: RSA-2048, ECDSA P-256
    local d=$S/pki
    mkdir -p "$d"
    exec 3>&2 2>"$S/pki.err"   # pki's tpm plugin complains about a missing TSS library
    pki --gen --type rsa --size 2048 --outform pem >"$d/ca.key"
    pki --self --ca --lifetime 3650 --in "$d/ca.key" --type rsa --dn "CN=ikbench CA" --outform pem >"$d/ca.pem"
    pki --gen --type rsa --size 2048 --outform pem >"$d/server-rsa.key"
    pki --gen --type ecdsa --size 256 --outform pem >"$d/server-ecdsa.key"
    local k
    for k in rsa ecdsa; do
        pki --pub --in "$d/server-$k.key" --type "$k" | pki --issue --lifetime 730 --cacert "$d/ca.pem" --cakey "$d/ca.key" \
            --dn "CN=$IPB" --san "$IPB" --flag serverAuth --flag ikeIntermediate --outform pem >"$d/server-$k.pem"
    done
    exec 2>&3 3>&-
    [ -s "$d/server-ecdsa.pem" ] || die "pki failed: $(cat "$S/pki.err")"
    # ras reads PKCS#8 keys; pki writes PKCS#1 / SEC1
    for k in rsa ecdsa; do
        openssl pkcs8 -topk8 -nocrypt -in "$d/server-$k.key" -out "$d/server-$k.p8" 2>/dev/null && mv "$d/server-$k.p8" "$d/server-$k.key"
    done
}
conf_sw_responder() {   # the strongSwan responder: the load-test profiles on $IPB (ikbb), tput on $IPC (ikbc)
    local d=$S/$1/swanctl
    mkdir -p "$d"/{x509,x509ca,private}
    cp "$S/pki/server-rsa.pem" "$d/x509/"; cp "$S/pki/server-rsa.key" "$d/private/"; cp "$S/pki/ca.pem" "$d/x509ca/"
    cat >"$d/swanctl.conf" <<EOC
connections {
    tput {
        version = 2
        local_addrs = $IPC
        remote_addrs = $IPA2
        proposals = $IKE_PROP
        local { auth = psk
                id = c@ikbench }
        remote { auth = psk
                 id = a@ikbench }
        children {
            gcm { local_ts = 10.200.2.1/32
                  remote_ts = 10.200.1.1/32
                  esp_proposals = aes128gcm16 }
        }
    }
    lt-psk {
        version = 2
        local_addrs = $IPB
        proposals = $IKE_PROP
        pools = ltpool
        unique = never
        local { auth = psk
                id = $IPB }
        remote { auth = psk
                 id = *@psk.lt.ikbench }
        children { net { local_ts = 10.200.0.1/32
                         esp_proposals = aes128gcm16 } }
    }
    lt-eap {
        version = 2
        local_addrs = $IPB
        proposals = $IKE_PROP
        pools = ltpool
        unique = never
        send_certreq = no
        local { auth = pubkey
                certs = server-rsa.pem
                id = $IPB }
        remote { auth = eap-mschapv2
                 id = *@eap.lt.ikbench
                 eap_id = %any }
        children { net { local_ts = 10.200.0.1/32
                         esp_proposals = aes128gcm16 } }
    }
}
pools { ltpool { addrs = 10.200.128.0/17 } }
secrets {
    ike-tput { id-1 = a@ikbench
               id-2 = c@ikbench
               secret = $PSK_T }
    ike-lt   { id-1 = *@psk.lt.ikbench
               id-2 = $IPB
               secret = $PSK_L }
    eap-lt   { id = *@eap.lt.ikbench
               secret = $EAP_PW }
}
EOC
}
conf_sw_client() {   # ikba: one IKE_SA to ras (virtual IP, PSK), one to the strongSwan responder
    local d=$S/cli/swanctl
    mkdir -p "$d"
    cat >"$d/swanctl.conf" <<EOC
connections {
    ras {
        version = 2
        local_addrs = $IPA
        remote_addrs = $IPB
        proposals = $IKE_PROP
        vips = 0.0.0.0
        local { auth = psk
                id = tput@psk.lt.ikbench }
        remote { auth = psk
                 id = $IPB }
        children {
            gcm { remote_ts = $RAS_ADDR/32
                  esp_proposals = aes128gcm16 }
        }
    }
    sw {
        version = 2
        local_addrs = $IPA2
        remote_addrs = $IPC
        proposals = $IKE_PROP
        local { auth = psk
                id = a@ikbench }
        remote { auth = psk
                 id = c@ikbench }
        children {
            gcm { local_ts = 10.200.1.1/32
                  remote_ts = 10.200.2.1/32
                  esp_proposals = aes128gcm16 }
        }
    }
}
secrets {
    ike-ras  { id-1 = tput@psk.lt.ikbench
               id-2 = $IPB
               secret = $PSK_L }
    ike-sw   { id-1 = a@ikbench
               id-2 = c@ikbench
               secret = $PSK_T }
}
EOC
}
conf_loadtester() {   # CASE (psk|eap) -> $S/lt-CASE/strongswan.conf
    local c=$1 d=$S/lt-$1 ia ra iid
    mkdir -p "$d"
    if [ "$c" = psk ]; then ia=psk; ra=psk; iid=c%d@psk.lt.ikbench; else ia=eap-mschapv2; ra=pubkey; iid=c%d@eap.lt.ikbench; fi
    cat >"$d/strongswan.conf" <<EOC
charon {
    # load-tester before kernel-netlink: its fake kernel-ipsec must be registered first
    load = load-tester random nonce openssl pem pkcs1 pkcs8 x509 pubkey constraints curve25519 gmp aes sha1 sha2 md4 md5 hmac kdf gcm attr kernel-netlink socket-default eap-identity eap-mschapv2
    install_virtual_ip = no
    install_routes = no
    filelog {
        ltlog {
            path = $d/charon.log
            time_format = %T
            default = ${SW_LOGLEVEL:-0}
        }
    }
    plugins {
        load-tester {
            enable = yes
            initiators = 0
            socket = unix://$d/charon.ldt
            fake_kernel = yes
            initiator = $IPA
            responder = $IPB
            proposal = $IKE_PROP
            esp = aes128gcm16
            initiator_auth = $ia
            responder_auth = $ra
            initiator_id = $iid
            responder_id = $IPB
            preshared_key = $PSK_L
            eap_password = $EAP_PW
            request_virtual_ip = yes
            initiator_tsr = 10.200.0.1/32
            issuer_cert = $S/pki/ca.pem
            issuer_key = $S/pki/ca.key
            child_rekey = 3600
            ike_rekey = 0
        }
    }
}
EOC
}

# ---------------------------------------------------------------- wireguard-go
start_wg() {
    local k i
    for k in a b; do (umask 077; wg genkey >"$S/wg$k.key"; wg pubkey <"$S/wg$k.key" >"$S/wg$k.pub"); done
    export WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
    start_bg wga ip netns exec $NSA wireguard-go -f ikbwga
    start_bg wgb ip netns exec $NSB wireguard-go -f ikbwgb
    for i in $(seq 50); do ip -n $NSA link show ikbwga >/dev/null 2>&1 && ip -n $NSB link show ikbwgb >/dev/null 2>&1 && break; sleep 0.1; done
    sleep 0.3
    ip netns exec $NSA wg set ikbwga private-key "$S/wga.key" listen-port 51820 \
        peer "$(cat "$S/wgb.pub")" endpoint $IPB:51820 allowed-ips 10.200.3.2/32
    ip netns exec $NSB wg set ikbwgb private-key "$S/wgb.key" listen-port 51820 \
        peer "$(cat "$S/wga.pub")" endpoint $IPA:51820 allowed-ips 10.200.3.1/32
    ip -n $NSA addr add 10.200.3.1/24 dev ikbwga; ip -n $NSA link set ikbwga up
    ip -n $NSB addr add 10.200.3.2/24 dev ikbwgb; ip -n $NSB link set ikbwgb up
    ip netns exec $NSA ping -c1 -W3 -I 10.200.3.1 10.200.3.2 >/dev/null || die "wireguard ping failed"
}

# ---------------------------------------------------------------- throughput
cpu_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
# UDP datagrams dropped for a full receive buffer, summed over the namespaces given
udp_drops() {
    local n t=0 v
    for n in "$@"; do
        v=$(ip netns exec "$n" awk '/^Udp:/{k++; if (k == 2) print $6}' /proc/net/snmp); t=$((t + v))
    done
    echo "$t"
}
pticks() { awk '{print $14+$15}' "/proc/$(cat "$S/$1.pid")/stat" 2>/dev/null || echo 0; }
# the PID a start_bg wrapper (ip netns exec, unshare, sh) finally exec'd into is the same PID
iperf_once() {   # LABEL DST SRC RUN [CLIENT_PROC SERVER_PROC] -> a line in $R/tput-LABEL.txt
    local l=$1 dst=$2 src=$3 j=$R/iperf-$1-$4.json c0 c1 u0 u1 ua0 ua1 pa0=0 pb0=0 pa1=0 pb1=0 t0 t1 la
    la=$(cut -d' ' -f1 /proc/loadavg)
    c0=$(cpu_busy); u0=$(udp_drops $NSB $NSC); ua0=$(udp_drops $NSA)
    if [ -n "${5:-}" ]; then pa0=$(pticks "$5"); pb0=$(pticks "$6"); fi; t0=$(date +%s%N)
    ip netns exec $NSA iperf3 -c "$dst" -B "$src" -t "$T" -J >"$j" 2>&1 || { log "iperf3 $l failed"; echo nan 0 0 "$la" 0 0 >>"$R/tput-$l.txt"; return 0; }
    c1=$(cpu_busy); u1=$(udp_drops $NSB $NSC); ua1=$(udp_drops $NSA); t1=$(date +%s%N)
    if [ -n "${5:-}" ]; then pa1=$(pticks "$5"); pb1=$(pticks "$6")
        # CPU % (of one core) of the tunnel process at the client (ikba) and server end
        awk -v a=$((pa1-pa0)) -v b=$((pb1-pb0)) -v hz="$(getconf CLK_TCK)" -v dt=$((t1-t0)) \
            'BEGIN{printf "%.0f %.0f\n", 100*a/hz/(dt/1e9), 100*b/hz/(dt/1e9)}' >>"$R/tput-proc-$l.txt"
    fi
    # Gbit/s(receiver) tcp_retransmits system_cpu_busy%(of ncpu*100) load_average_before udp_rcvbuf_drops(server side, client side)
    python3 - "$j" "$c0" "$c1" "$la" $((u1 - u0)) $((ua1 - ua0)) >>"$R/tput-$l.txt" <<'EOP'
import json,os,sys
e=json.load(open(sys.argv[1]))["end"]
b0,t0=map(int,sys.argv[2].split()); b1,t1=map(int,sys.argv[3].split())
print("%.3f %d %.0f %s %s %s" % (e["sum_received"]["bits_per_second"]/1e9, e["sum_sent"].get("retransmits",0),
      100.0*os.cpu_count()*(b1-b0)/max(t1-t0,1), sys.argv[4], sys.argv[5], sys.argv[6]))
EOP
    log "  $l run $4: $(tail -1 "$R/tput-$l.txt") (Gbit/s tcp_retrans cpu_busy% load udp_drops_server udp_drops_client)"
}
do_tput() {
    find_ras
    [ -f "$S/pki/ca.pem" ] || make_certs
    ras_conf rsa "$RAS_COOKIE_THRESHOLD"
    start_ras ras "$S/ras/ras-rsa-$RAS_COOKIE_THRESHOLD.toml" $NSB
    sw_conf_debian swc; conf_sw_responder swc
    start_charon swc $NSC "$S/swc/strongswan.conf" /usr/lib/ipsec/charon "$S/swc/charon.vici"; swanctl_load swc
    sw_conf_debian cli; conf_sw_client
    start_charon cli $NSA "$S/cli/strongswan.conf" /usr/lib/ipsec/charon "$S/cli/charon.vici"; swanctl_load cli
    local v="--uri unix://$S/cli/charon.vici" vip
    swanctl --initiate --child gcm --ike ras $v >"$S/cli/init-ras.log" 2>&1 || { cat "$S/cli/init-ras.log" "$S/ras.out" >&2; die "initiate to ras failed"; }
    swanctl --initiate --child gcm --ike sw $v >"$S/cli/init-sw.log" 2>&1 || { cat "$S/cli/init-sw.log" >&2; die "initiate to strongSwan failed"; }
    swanctl --list-sas $v >"$R/swanctl-list-sas.txt"
    # the ras CHILD_SA's local traffic selector is the virtual IP (10.200.128.x/32)
    vip=$(awk '/^ras:/{f=1} /^sw:/{f=0} f && /^    local /{sub("/.*","",$2); print $2; exit}' "$R/swanctl-list-sas.txt")
    [ -n "$vip" ] || vip=$(ip -n $NSA -4 -o addr show dev ipsec0 | awk '{sub("/.*","",$4); print $4; exit}')
    [ -n "$vip" ] || { cat "$R/swanctl-list-sas.txt" >&2; die "no virtual IP from ras"; }
    [ "$(grep -c 'AES_GCM_16-128' "$R/swanctl-list-sas.txt")" -ge 2 ] || { cat "$R/swanctl-list-sas.txt" >&2; die "CHILD_SAs not AES-GCM-128"; }
    log "libipsec client: virtual IP $vip from ras"
    ip netns exec $NSA ping -c1 -W3 -I "$vip" $RAS_ADDR >/dev/null || die "ESP ping to ras failed"
    ip netns exec $NSA ping -c1 -W3 -I 10.200.1.1 10.200.2.1 >/dev/null || die "ESP ping to strongSwan failed"
    start_wg
    start_bg iperf3b ip netns exec $NSB iperf3 -s
    start_bg iperf3c ip netns exec $NSC iperf3 -s
    sleep 0.5
    local r
    for r in $(seq "$RUNS"); do
        log "round $r/$RUNS"
        iperf_once bare    $IPB       $IPA       "$r"
        iperf_once esp-ras $RAS_ADDR  "$vip"     "$r" cli ras
        iperf_once esp-sw  10.200.2.1 10.200.1.1 "$r" cli swc
        iperf_once wg-go   10.200.3.2 10.200.3.1 "$r" wga wgb
    done
    swanctl --list-sas $v >"$R/swanctl-list-sas-after.txt"
    cp "$S/ras.out" "$R/ras-tput.log"
    stop_pid iperf3b; stop_pid iperf3c; stop_pid wga; stop_pid wgb; stop_pid cli; stop_pid swc; stop_pid ras
}

# ---------------------------------------------------------------- IKE handshake rate
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }   # 0 once the process is gone
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# burst GENERATOR RESPONDER CASE N REP: one burst against a fresh responder
burst() {
    local gen=$1 who=$2 c=$3 n=$4 rep=$5 lc rn rp lp r0 l0 out r1 l1 hz up rss0 rss1 la ras_log="" gcpu f ua0 ub0
    lc=psk; case $c in eap*) lc=eap ;; esac
    la=$(cut -d' ' -f1 /proc/loadavg)
    if [ "$who" = strongswan ]; then
        rn=swb
        sw_rmem_raise
        start_charon swb $NSB "$S/swb/strongswan.conf" /usr/lib/ipsec/charon "$S/swb/charon.vici"; swanctl_load swb
        sw_rmem_restore
    else
        rn=rasb
        local cert=rsa th=$RAS_COOKIE_THRESHOLD
        case $c in eap-ecdsa) cert=ecdsa ;; psk-cookies) th=64 ;; esac
        ras_conf "$cert" "$th"
        start_ras rasb "$S/ras/ras-$cert-$th.toml" $NSB
        ras_log=$S/rasb.out
    fi
    rp=$(cat "$S/$rn.pid")
    if [ "$gen" = ras ]; then
        sleep 0.3
        r0=$(cpu_ticks "$rp"); rss0=$(rss_kib "$rp"); ua0=$(udp_drops $NSA); ub0=$(udp_drops $NSB)
        # secs ok fail retransmits errors generator_cpu_s
        out=$(ip netns exec $NSA "$RAS_BENCH" ike-burst --server $IPB --bind $IPA --count "$n" --auth $lc \
            --identity "c{}@$lc.lt.ikbench" --psk-file "$S/gen-psk" --eap-password-file "$S/gen-eap-pw" \
            --ca "$S/pki/ca.pem" --group "${IKE_PROP##*-}" --timeout "$IKE_TIMEOUT" 2>"$S/gen.err") || { cat "$S/gen.err" >&2; die "ras-bench ike-burst failed"; }
        gcpu=${out##* }; out=${out% *}
        log "  UDP receive-buffer drops during the burst: generator $(($(udp_drops $NSA) - ua0)), responder $(($(udp_drops $NSB) - ub0))"
    else
    start_charon "lt-$lc" $NSA "$S/lt-$lc/strongswan.conf" "$LT/libexec/ipsec/charon" "$S/lt-$lc/charon.ldt"
    lp=$(cat "$S/lt-$lc.pid")
    # the process that does the work: charon is exec'd in place; ras too
    sleep 0.3
    r0=$(cpu_ticks "$rp"); l0=$(cpu_ticks "$lp"); rss0=$(rss_kib "$rp")
    out=$(python3 - "$S/lt-$lc/charon.ldt" "$n" "$IKE_TIMEOUT" <<'EOP'
import socket,sys,time
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(float(sys.argv[3]))
t0=time.monotonic(); s.sendall(("%s\n" % sys.argv[2]).encode()); buf=b""
while True:
    try: d=s.recv(65536)
    except socket.timeout: sys.stderr.write("load-tester: timeout, incomplete\n"); break
    if not d: break
    buf+=d
t=time.monotonic()-t0; b=buf.decode()
print("%.3f %d %d %d %d" % (t, b.count("+"), b.count("-"), b.count("*"), b.count("!")))
EOP
)
    fi
    hz=$(getconf CLK_TCK); r1=$(cpu_ticks "$rp"); rss1=$(rss_kib "$rp")
    if [ "$gen" = ras ]; then
        head -3 "$S/gen.err" >&2
    else
        l1=$(cpu_ticks "$lp"); gcpu=$(awk -v a="$l0" -v b="$l1" -v h="$hz" 'BEGIN{printf "%.2f",(b-a)/h}')
    fi
    kill -0 "$rp" 2>/dev/null || log "  the $who responder exited during the burst: $(tail -3 "$S/$rn.out" | tr '\n' ' ')"
    if [ "$who" = strongswan ]; then
        up=$(swanctl --stats --uri "unix://$S/swb/charon.vici" 2>/dev/null | awk '/^IKE_SAs:/{print $2; exit}')
    else
        sleep 0.2
        up=$(grep -c ': ESP .* up, SPIs' "$ras_log" || true)
    fi
    # secs ok fail retransmits initerr resp_cpu_s init_cpu_s resp_established resp_rss_growth_kib load
    # the load tester's files keep their old names; the other generator's carry its name
    f=ike-$who-$c-$n; [ "$gen" = loadtester ] || f=ike-$gen-$who-$c-$n
    echo "$out $(awk -v a="$r0" -v b="$r1" -v h="$hz" 'BEGIN{printf "%.2f",(b-a)/h}') $gcpu ${up:-?} $((rss1 - rss0)) $la" >>"$R/$f.txt"
    log "  $gen -> $who $c N=$n rep $rep: $(tail -1 "$R/$f.txt") (secs ok fail retrans err resp_cpu_s init_cpu_s resp_up rss_kib load)"
    [ "$gen" = loadtester ] && cp "$S/lt-$lc/charon.log" "$R/charon-lt-$who-$c-$n-$rep.log"
    if [ "$who" = strongswan ]; then cp "$S/swb/charon.log" "$R/charon-responder-$gen-$c-$n-$rep.log"
    else cp "$ras_log" "$R/ras-$gen-$c-$n-$rep.log"; fi
    [ "$gen" = loadtester ] && stop_pid "lt-$lc"
    stop_pid "$rn"
}
do_ike() {
    case " $GENERATORS " in *" loadtester "*)
        [ -x "$LT/libexec/ipsec/charon" ] || die "load-tester charon missing: run $HERE/setup.sh"
        mkdir -p "$LT/run" ;;
    esac
    case " $GENERATORS " in *" ras "*)
        find_ras_bench
        case "$IKE_PROP" in aes128gcm16-prfsha256-x25519|aes128gcm16-prfsha256-ecp256|aes128gcm16-prfsha256-modp2048) ;;
            *) die "GENERATORS=ras offers aes128gcm16-prfsha256- with x25519, ecp256 or modp2048 only" ;; esac
        printf '%s\n' "$PSK_L" >"$S/gen-psk"; printf '%s\n' "$EAP_PW" >"$S/gen-eap-pw" ;;
    esac
    [ -f "$S/pki/ca.pem" ] || make_certs
    local gen who c n rep maxn=0 cases
    for n in $IKE_N; do [ "$n" -gt "$maxn" ] && maxn=$n; done
    case " $RESPONDERS " in *" ras "*)
        find_ras; ras_conf rsa "$RAS_COOKIE_THRESHOLD"; ras_users "$maxn" ;;
    esac
    sw_conf_debian swb; conf_sw_responder swb
    conf_loadtester psk; conf_loadtester eap
    for n in $IKE_N; do
        for c in $IKE_CASES; do
            for rep in $(seq "$IKE_REPS"); do
                for gen in $GENERATORS; do
                for who in $RESPONDERS; do
                    # strongSwan serves the RSA certificate only, as in the issue's figures
                    [ "$who" = strongswan ] && [ "$c" != psk ] && [ "$c" != eap ] && continue
                    [ "$c" = psk-cookies ] && [ "$RAS_COOKIES" != 1 ] && continue
                    burst "$gen" "$who" "$c" "$n" "$rep"
                done
                done
            done
        done
    done
}

# ---------------------------------------------------------------- summary
summary() {
    python3 - "$R" "$RUNS" "$T" "$IKE_N" "$IKE_PROP" <<'EOP' | tee "$R/summary.txt"
import os,sys,statistics as st
R,runs,T,NS,prop=sys.argv[1],sys.argv[2],sys.argv[3],sys.argv[4].split(),sys.argv[5]
def rows(f):
    p=os.path.join(R,f)
    return [l.split() for l in open(p)] if os.path.exists(p) else []
print(open(os.path.join(R,"header.txt")).read().rstrip())
bare=[float(r[0]) for r in rows("tput-bare.txt")]
if bare:
    mb=st.median(bare)
    print("\n== iperf3 TCP, 1 stream, %s s, %s rounds (alternating), Gbit/s (receiver) ==" % (T,runs))
    print("%-8s %-24s %7s %7s  %s" % ("path","per run","median","/bare","medians: system CPU busy (of %d%%), TCP retransmits, UDP rcvbuf drops server/client end; tunnel process CPU%% client/server, server ms per Gbit; load per run" % (100*os.cpu_count())))
    names={"bare":"bare","esp-ras":"ras","esp-sw":"strongSwan","wg-go":"wg-go"}
    for k in ["bare","esp-ras","esp-sw","wg-go"]:
        r=rows("tput-%s.txt"%k)
        if not r: continue
        v=[float(x[0]) for x in r]; m=st.median(v)
        cpu=st.median([float(x[2]) for x in r]); rt=st.median([int(x[1]) for x in r])
        pr=rows("tput-proc-%s.txt"%k)
        ud="%d/%d" % (st.median([int(x[4]) for x in r]), st.median([int(x[5]) for x in r]))
        ps="" if not pr else "; %.0f/%.0f, %.0f ms" % (st.median([float(x[0]) for x in pr]), st.median([float(x[1]) for x in pr]),
                                              st.median([10*float(p[1])/max(float(x[0]),1e-3) for p,x in zip(pr,r)]))
        print("%-8s %-24s %7.3f %6.1f%%  %.0f%%, %d, %s%s; %s" % (k," ".join("%.3f"%x for x in v),m,100*m/mb,cpu,rt,ud,ps," ".join(x[3] for x in r)))
names={"psk":"PSK","eap":"RSA-2048 server certificate + EAP-MSCHAPv2","eap-ecdsa":"ECDSA P-256 server certificate + EAP-MSCHAPv2","psk-cookies":"PSK, ras default cookie_threshold 64"}
gens={"":"strongSwan's load tester","ras-":"ras-bench ike-burst"}
for N in [int(n) for n in NS]:
  for c in ["psk","eap","eap-ecdsa","psk-cookies"]:
   for g in ["","ras-"]:
    for who in ["strongswan","ras"]:
        r=rows("ike-%s%s-%s-%d.txt"%(g,who,c,N))
        if not r: continue
        print("\n== %s: IKEv2 handshakes, %s, %s, bursts of %d (each +1 CHILD_SA aes128gcm16, +virtual IP), from %s ==" % (who,names[c],prop,N,gens[g]))
        rates=[]; rc=[]
        for x in r:
            t,ok,fail,rt=float(x[0]),int(x[1]),int(x[2]),int(x[3])
            rate=ok/t; rates.append(rate)
            rcpu=float(x[5]); icpu=float(x[6]); rc.append(1000*rcpu/max(ok,1))
            print("  %6.3f s  ok %d fail %d retransmits %d -> %7.1f IKE_SA/s  responder CPU %.2f s (%.2f ms/SA), initiator CPU %.2f s, responder shows %s, RSS +%s KiB, load %s" % (t,ok,fail,rt,rate,rcpu,1000*rcpu/max(ok,1),icpu,x[7],x[8],x[9]))
        print("  median %.1f IKE_SA/s; responder CPU median %.2f ms per IKE_SA" % (st.median(rates), st.median(rc)))
EOP
}

header() {
    {
        echo "ikbench $STAMP on $(uname -r), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "ras $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?') ($RAS); strongSwan $(dpkg-query -W -f='${Version}' strongswan-charon) (Debian charon, kernel-libipsec); iperf3 $(dpkg-query -W -f='${Version}' iperf3); wireguard-go $(dpkg-query -W -f='${Version}' wireguard-go)"
        echo "IKE proposal $IKE_PROP; ESP aes128gcm16; ras cookie_threshold $RAS_COOKIE_THRESHOLD, strongSwan $(sw_dos_protection | xargs | sed 's/ = /=/g') rcvbuf ${SW_RMEM:-default}; ipsec0 MTU 1400, wg MTU 1420, veth MTU 1500"
    } >"$R/header.txt"
}

main() {
    mkdir -p "$S"
    if [ "$WHAT" = clean ]; then cleanup; log "cleaned"; return 0; fi
    cleanup
    rm -rf "$S"; mkdir -p "$S" "$R"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    if [ "$WHAT" != tput ] && [ ! -x "$LT/libexec/ipsec/charon" ] && case " $GENERATORS " in *" loadtester "*) true ;; *) false ;; esac; then
        die "load-tester charon missing: run $HERE/setup.sh"
    fi
    if [ "$WHAT" = tput ] || [ "$WHAT" = all ] || case " $RESPONDERS " in *" ras "*) true ;; *) false ;; esac; then
        find_ras
    fi
    setup_net
    header
    case $WHAT in
        all)  do_tput; do_ike ;;
        tput) do_tput ;;
        ike)  do_ike ;;
    esac
    summary
    ln -sfn "$R" "$B/results/latest"
    log "results: $R"
}
main
