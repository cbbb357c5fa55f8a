#!/bin/bash
# Runs INSIDE the interop guest VM (vm.sh start puts it in /mnt/share and runs it):
# starts real third-party VPN servers on every guest address (the server certificate
# and its CA come from the host in /mnt/share/pki), checks that each
# answers, writes /mnt/share/{guest.env,ready}, then serves until
# /mnt/share/stop exists (or LIFETIME seconds passed) and copies the logs to
# /mnt/share/logs.
#
#   sstp   sstpd (PyPI sstp-server 0.6.0) + pppd   TCP 443; verifies the SSTP crypto binding
#   pptp   pptpd + pppd                            TCP 1723 + GRE
#   l2tp   xl2tpd (LNS) + pppd                     UDP 1701, under strongSwan IKEv1 PSK
#                                                  (transport mode, NAT-T; plain L2TP works too)
#   ikev2  strongSwan charon (kernel ESP)          UDP 500/4500: "ikev2-eap" (server certificate
#                                                  + EAP-MSCHAPv2) and "ikev2-psk"
#   echo   TCP echo on 7777 and discard on 7778, every address (also the PPP server ends)
#
# Variables (vm.sh sets them from its RAS_INTEROP_* environment):
#   SERVERS USERS ("u:p ...") AUTH (mschapv2 mschap chap pap eap) PPTP_MPPE SSTP_MPPE
#   L2TP_MPPE (require|optional|none) IPV6 (0|1) PSK IKE_PSK_ID LIFETIME HOLD (0|stop)
SERVERS=${SERVERS:-sstp pptp l2tp ikev2 echo}
USERS=${USERS:-test:test123}
AUTH=${AUTH:-mschapv2}
PPTP_MPPE=${PPTP_MPPE:-require}; SSTP_MPPE=${SSTP_MPPE:-none}; L2TP_MPPE=${L2TP_MPPE:-none}
IPV6=${IPV6:-0}
PSK=${PSK:-ras-interop-psk}; IKE_PSK_ID=${IKE_PSK_ID:-psk@ras-interop}
LIFETIME=${LIFETIME:-7200}; HOLD=${HOLD:-0}
SSTP_PORT=443; ECHO_PORT=7777; DISCARD_PORT=7778
SSTP_LOCAL=192.168.20.1; SSTP_POOL=192.168.20.0/24; SSTP_RANGE=192.168.20.10-192.168.20.200
PPTP_LOCAL=192.168.50.1; PPTP_POOL=192.168.50.10-20
L2TP_LOCAL=192.168.60.1; L2TP_POOL=192.168.60.10-192.168.60.200
IKE_POOL=10.78.0.0/24; IKE_TARGET=10.79.0.1; DNS=10.79.0.1
SHARE=/mnt/share
GUEST_IP=$(ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}' | cut -d/ -f1)

PIDS=()
on() { [[ " $SERVERS " == *" $1 "* ]]; }
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    sleep 1
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    mkdir -p "$SHARE/logs" && cp /tmp/*.log "$SHARE/logs/" 2>/dev/null
    return 0
}
die() { echo "servers.sh: ERROR: $*"; cleanup; exit 1; }
T0=$(date +%s%N)
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
[ -n "$GUEST_IP" ] || die "eth0 has no IPv4 address"

# ---- PPP secrets and per-server pppd options
: >/etc/ppp/chap-secrets; : >/etc/ppp/pap-secrets; chmod 600 /etc/ppp/chap-secrets /etc/ppp/pap-secrets
for up in $USERS; do
    printf '"%s"\t*\t"%s"\t*\n' "${up%%:*}" "${up#*:}" | tee -a /etc/ppp/pap-secrets >>/etc/ppp/chap-secrets
done
ppp_opts() {   # ppp_opts NAME MPPE-MODE LOGFILE
    local a
    echo "name $1"
    for a in $AUTH; do
        case $a in
            mschapv2) echo require-mschap-v2 ;; mschap) echo require-mschap ;; chap) echo require-chap ;;
            pap) echo require-pap ;; eap) echo require-eap ;;
        esac
    done
    [[ " $AUTH " == *" eap "* ]] || echo refuse-eap
    case $2 in
        require)  printf '%s\n' require-mppe-128 nobsdcomp nodeflate ;;
        optional) printf '%s\n' nobsdcomp nodeflate ;;
        *)        printf '%s\n' nomppe noccp ;;
    esac
    [ "$IPV6" = 1 ] && echo "+ipv6"
    printf '%s\n' "ms-dns $DNS" nodefaultroute noproxyarp "lcp-echo-interval 0" debug "logfile $3"
}

# ---- the server certificate (SSTP's TLS and IKEv2): vm.sh made it and its CA on the host
if on sstp || on ikev2; then
    cp "$SHARE/pki/ca.pem" "$SHARE/pki/server.pem" "$SHARE/pki/server.key" /tmp/ 2>/dev/null \
        || die "no server certificate in $SHARE/pki"
    CERT_SHA256=$(openssl x509 -in /tmp/server.pem -noout -fingerprint -sha256 | cut -d= -f2)
fi

# ---- SSTP: sstpd (its pppd reads /etc/ppp/options.sstpd)
if on sstp; then
    ppp_opts sstpd "$SSTP_MPPE" /tmp/sstpd-ppp.log >/etc/ppp/options.sstpd
    ls /usr/lib/pppd/*/sstp-pppd-plugin.so >/dev/null 2>&1 || die "sstp-pppd-plugin.so missing: crypto binding cannot be verified"
    /opt/sstpd/bin/sstpd -l 0.0.0.0 -p "$SSTP_PORT" -c /tmp/server.pem -k /tmp/server.key --local "$SSTP_LOCAL" \
        --remote "$SSTP_POOL" --range "$SSTP_RANGE" -v 10 >/tmp/sstpd.log 2>&1 &
    PIDS+=($!)
fi

# ---- PPTP: pptpd
if on pptp; then
    ppp_opts pptpd "$PPTP_MPPE" /tmp/pptpd-ppp.log >/etc/ppp/pptpd-options
    printf 'option /etc/ppp/pptpd-options\nlocalip %s\nremoteip %s\n' "$PPTP_LOCAL" "$PPTP_POOL" >/etc/pptpd.conf
    pptpd -f -c /etc/pptpd.conf >/tmp/pptpd.log 2>&1 &
    PIDS+=($!)
fi

# ---- L2TP: xl2tpd as LNS
if on l2tp; then
    { ppp_opts l2tpd "$L2TP_MPPE" /tmp/xl2tpd-ppp.log; printf '%s\n' "mtu 1400" "mru 1400"; } >/etc/ppp/options.xl2tpd
    mkdir -p /run/xl2tpd
    cat >/etc/xl2tpd/xl2tpd.conf <<EOF
[global]
port = 1701
access control = no
[lns default]
ip range = $L2TP_POOL
local ip = $L2TP_LOCAL
require authentication = yes
name = l2tpd
pppoptfile = /etc/ppp/options.xl2tpd
length bit = yes
EOF
    xl2tpd -D -c /etc/xl2tpd/xl2tpd.conf -p /run/xl2tpd.pid -C /run/xl2tpd/l2tp-control >/tmp/xl2tpd.log 2>&1 &
    PIDS+=($!)
fi

# ---- strongSwan: IKEv1 PSK (for L2TP), IKEv2 with EAP-MSCHAPv2 or PSK
if on l2tp || on ikev2; then
    ip addr add "$IKE_TARGET/32" dev lo
    cat >/etc/strongswan.conf <<EOF
charon {
    load_modular = yes
    filelog {
        interop {
            path = /tmp/charon.log
            time_format = %T
            default = 1
            ike = 2
            flush_line = yes
        }
    }
    plugins {
        include strongswan.d/charon/*.conf
        dhcp {
            load = no
        }
        tpm {
            load = no
        }
    }
}
include strongswan.d/*.conf
EOF
    {
        echo "connections {"
        on l2tp && cat <<EOF
    l2tp-psk {
        version = 1
        proposals = aes256-sha1-modp2048,aes128-sha1-modp2048,aes256-sha1-modp1024,aes128-sha1-modp1024,3des-sha1-modp1024,aes256-sha256-modp2048,default
        local {
            auth = psk
        }
        remote {
            auth = psk
        }
        children {
            l2tp {
                mode = transport
                local_ts = dynamic[udp/1701]
                remote_ts = dynamic[udp]
                esp_proposals = aes256-sha1,aes128-sha1,3des-sha1,aes256-sha256,default
            }
        }
    }
EOF
        on ikev2 && cat <<EOF
    ikev2-eap {
        version = 2
        pools = ike_pool
        send_certreq = no
        proposals = aes256-sha256-modp2048,aes256-sha1-modp1024,aes256-sha256-modp1024,aes128-sha1-modp1024,default
        local {
            auth = pubkey
            certs = server.pem
            id = $GUEST_IP
        }
        remote {
            auth = eap-mschapv2
            eap_id = %any
        }
        children {
            net {
                local_ts = $IKE_TARGET/32
                esp_proposals = aes256-sha256,aes256-sha1,aes128-sha1,default
            }
        }
    }
    ikev2-psk {
        version = 2
        pools = ike_pool
        proposals = aes256-sha256-modp2048,aes256-sha1-modp1024,default
        local {
            auth = psk
            id = $GUEST_IP
        }
        remote {
            auth = psk
            id = $IKE_PSK_ID
        }
        children {
            net {
                local_ts = $IKE_TARGET/32
                esp_proposals = aes256-sha256,aes256-sha1,default
            }
        }
    }
EOF
        echo "}"
        printf 'pools {\n    ike_pool {\n        addrs = %s\n        dns = %s\n    }\n}\n' "$IKE_POOL" "$DNS"
        echo "secrets {"
        printf '    ike-psk {\n        secret = "%s"\n    }\n' "$PSK"
        i=0
        for up in $USERS; do
            i=$((i + 1))
            printf '    eap-%d {\n        id = %s\n        secret = "%s"\n    }\n' $i "${up%%:*}" "${up#*:}"
        done
        echo "}"
    } >/etc/swanctl/swanctl.conf
    if on ikev2; then cp /tmp/server.pem /etc/swanctl/x509/server.pem; cp /tmp/server.key /etc/swanctl/private/server.key; fi
    /usr/lib/ipsec/charon >/tmp/charon.out 2>&1 &
    PIDS+=($!)
    for i in $(seq 1 100); do [ -S /run/charon.vici ] && break; sleep 0.1; done
    swanctl --load-all --noprompt >/tmp/swanctl-load.log 2>&1 || { cat /tmp/swanctl-load.log; die "swanctl --load-all failed"; }
fi

# ---- TCP echo and discard (IPv4 and IPv6, every address)
if on echo; then
    cat >/tmp/echo.py <<'EOF'
import socket, sys, threading
def serve(port, echo):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port)); s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c, echo), daemon=True).start()
def handle(c, echo):
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                break
            if echo:
                c.sendall(d)
threading.Thread(target=serve, args=(int(sys.argv[2]), False), daemon=True).start()
serve(int(sys.argv[1]), True)
EOF
    python3 /tmp/echo.py "$ECHO_PORT" "$DISCARD_PORT" >/tmp/echo.log 2>&1 &
    PIDS+=($!)
fi

# ---- wait for the listeners
want=()
on sstp && want+=("tcp:$SSTP_PORT"); on pptp && want+=(tcp:1723); on l2tp && want+=(udp:1701 udp:500)
on ikev2 && want+=(udp:500 udp:4500); on echo && want+=("tcp:$ECHO_PORT" "tcp:$DISCARD_PORT")
for w in "${want[@]}"; do
    f=-lnt; [ "${w%%:*}" = udp ] && f=-lnu
    for i in $(seq 1 150); do ss $f | awk '{print $4}' | grep -Eq "[:.]${w#*:}\$" && break; sleep 0.1; done
    ss $f | awk '{print $4}' | grep -Eq "[:.]${w#*:}\$" || die "nothing listens on ${w%%:*} ${w#*:}"
done

# ---- self-check: each server answers its first message
rc=0; t1=$(date +%s%N); checks=()
on sstp && checks+=("sstp 127.0.0.1 $SSTP_PORT /tmp/ca.pem"); on pptp && checks+=("pptp 127.0.0.1")
on l2tp && checks+=("ike v1 127.0.0.1"); on ikev2 && checks+=("ike v2 127.0.0.1"); on echo && checks+=("echo 127.0.0.1 $ECHO_PORT")
[ ${#checks[@]} -eq 0 ] || python3 "$SHARE/probe.py" multi "${checks[@]}" || rc=1
echo "self-check $([ $rc = 0 ] && echo passed || echo FAILED) in $(ms_since "$t1") ms; servers up $(ms_since "$T0") ms after start"
if [ $rc != 0 ]; then
    echo "--- logs"; tail -n 5 /tmp/sstpd.log /tmp/pptpd.log /tmp/xl2tpd.log /tmp/charon.log 2>/dev/null
    die "self-check failed"
fi

# ---- facts for the host (KEY="value"; vm.sh adds the host side and writes servers.env)
{
    printf '%s="%s"\n' SERVERS "$SERVERS" USERS "$USERS" AUTH "$AUTH" \
        SSTP_MPPE "$SSTP_MPPE" PPTP_MPPE "$PPTP_MPPE" L2TP_MPPE "$L2TP_MPPE" IPV6 "$IPV6" \
        PSK "$PSK" IKE_PSK_ID "$IKE_PSK_ID" SSTP_PORT "$SSTP_PORT" ECHO_PORT "$ECHO_PORT" DISCARD_PORT "$DISCARD_PORT" \
        SSTP_LOCAL "$SSTP_LOCAL" SSTP_POOL "$SSTP_RANGE" PPTP_LOCAL "$PPTP_LOCAL" PPTP_POOL "$PPTP_POOL" \
        L2TP_LOCAL "$L2TP_LOCAL" L2TP_POOL "$L2TP_POOL" IKE_POOL "$IKE_POOL" IKE_TARGET "$IKE_TARGET" DNS "$DNS" \
        CERT_SHA256 "${CERT_SHA256:-}" SSTPD_VERSION "$(/opt/sstpd/bin/pip show sstp-server 2>/dev/null | awk '/^Version/{print $2}')" \
        PPPD_VERSION "$(dpkg-query -W -f='${Version}' ppp)" STRONGSWAN_VERSION "$(dpkg-query -W -f='${Version}' strongswan-charon)" \
        PPTPD_VERSION "$(dpkg-query -W -f='${Version}' pptpd)" XL2TPD_VERSION "$(dpkg-query -W -f='${Version}' xl2tpd)" \
        PPTP_CLIENT_VERSION "$(dpkg-query -W -f='${Version}' pptp-linux 2>/dev/null)" \
        SSTP_CLIENT_VERSION "$(dpkg-query -W -f='${Version}' sstp-client 2>/dev/null)" GUEST_JOBS 1
} >"$SHARE/guest.env"
touch "$SHARE/ready"

# ---- serve
# Jobs: the host drops $SHARE/jobs/NAME.sh (a client to run against a server on the host
# side, e.g. pptp-linux or sstpc against `ras server`); each runs once, in the
# background, with its output in NAME.out and its exit status in NAME.rc (written last).
run_jobs() {
    local j base
    for j in "$SHARE"/jobs/*.sh; do
        [ -e "$j" ] || continue
        base=${j%.sh}
        [ -e "$base.started" ] && continue
        touch "$base.started"
        ( bash "$j" >"$base.out" 2>&1 </dev/null; echo $? >"$base.rc.tmp"; mv "$base.rc.tmp" "$base.rc" ) &
    done
}
if [ "$HOLD" = stop ]; then
    end=$((SECONDS + LIFETIME))
    # runner.alive: the host side (guest_job) tells a dead job runner from a slow job.
    mkdir -p "$SHARE/jobs"; beat=-1
    until [ -e "$SHARE/stop" ] || [ $SECONDS -ge $end ]; do
        run_jobs
        if [ $SECONDS -ne $beat ]; then touch "$SHARE/jobs/runner.alive"; beat=$SECONDS; fi
        sleep 0.3
    done
    [ -e "$SHARE/stop" ] || echo "LIFETIME of $LIFETIME s reached: powering off"
    echo "--- PPP sessions seen"
    grep -hE 'remote IP address|MPPE .* enabled|authentication succeeded|Crypto Binding' /tmp/*-ppp.log /tmp/sstpd.log 2>/dev/null | sort | uniq -c
fi
cleanup
exit 0
