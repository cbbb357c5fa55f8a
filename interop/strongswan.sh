#!/usr/bin/env bash
# strongSwan charon (Debian 12's 5.9.x) as a real IKEv2 remote-access server for
# `ras connect ikev2://`.  It runs on the host, inside its own network namespace, with
# the kernel-libipsec plugin: IKE in charon and ESP in userspace over a TUN device
# (ipsec0), so no kernel ESP support is needed.  A second namespace holds the client:
#
#   netns ras-sw-cli  10.74.0.2/24 ──veth── 10.74.0.1/24  netns ras-sw (charon)
#                                                           lo: 10.74.20.1 (behind the tunnel)
#
# Neither namespace has a route out.
#
#   strongswan.sh start    install (once), write the config and certificates, start charon,
#                          load the connections; writes and prints $STATE/strongswan/strongswan.env
#   strongswan.sh stop     stop charon (by recorded PID), delete the namespaces
#   strongswan.sh sas      swanctl --list-sas (what the server has now)
#   strongswan.sh status   exit 0 if running
#
# Connections (swanctl):
#   ikev2-eap : server auth = RSA certificate (CN and SAN 10.74.0.1, from our own CA),
#               client auth = EAP-MSCHAPv2, user test / test123 (Windows' "IKEv2 + MSCHAPv2")
#   ikev2-psk : PSK both ways, ESP ChaCha20-Poly1305 only; the client's IKE identity must be psk@ras-interop
#   ikev2-cert: server auth = its RSA certificate, client auth = a client certificate from
#               the same CA (ECDSA P-256, SEC1 key, EKU clientAuth), IDi its subject DN
#               CN=ras-sw-client (what Windows' machine certificates send)
#   Both assign virtual IPs from 10.74.10.0/24 with DNS 10.74.20.1, and narrow the traffic
#   selectors to 10.74.20.1/32 (an address on the server namespace's lo).
#
# Facts learned with the lab's strongswan-libipsec.sh: the eap-mschapv2 plugin needs
# libcharon-extauth-plugins AND libstrongswan-standard-plugins (without the openssl plugin it
# fails to load with no clear error); kernel-libipsec only does UDP-encapsulated ESP, so
# charon fakes a NAT (its NAT-D never matches) and a client floats to 4500; charon gets a
# private /run (its pid file and control socket are at fixed paths there).
. "$(dirname "$0")/lib.sh"
ri_need_root

SW_NS=${RAS_SW_NS:-ras-sw}
CLI_NS=${RAS_SW_CLIENT_NS:-ras-sw-cli}
SERVER_IP=10.74.0.1
CLIENT_IP=10.74.0.2
POOL=10.74.10.0/24
TARGET=10.74.20.1
EAP_USER=test
EAP_PASS=test123
PSK=ras-interop-psk
PSK_ID=psk@ras-interop
# The PSK client of conn ikev2-rekey, whose IKE SA strongSwan rekeys every 15 s.
REKEY_ID=rekey@ras-interop
CERT_ID=CN=ras-sw-client
D=$STATE/strongswan
PIDF=$D/charon.pid
VICI=unix://$D/charon.vici
running() { ri_pid_alive "$PIDF"; }
ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }
listening() { ip netns exec "$SW_NS" ss -lnu 2>/dev/null | awk '{print $4}' | grep -Eq "[:.]$1\$"; }

namespaces_up() {
    local ns
    for ns in "$SW_NS" "$CLI_NS"; do
        ns_exists "$ns" || ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
    if ! ip -n "$SW_NS" link show rassw0 >/dev/null 2>&1; then
        ip -n "$CLI_NS" link del rassw1 2>/dev/null || true
        ip link add rassw0 netns "$SW_NS" type veth peer name rassw1 netns "$CLI_NS"
        ip -n "$SW_NS" addr add "$SERVER_IP/24" dev rassw0
        ip -n "$CLI_NS" addr add "$CLIENT_IP/24" dev rassw1
    fi
    ip -n "$SW_NS" link set rassw0 up
    ip -n "$CLI_NS" link set rassw1 up
    ip -n "$SW_NS" addr show dev lo | grep -q "inet $TARGET/32" || ip -n "$SW_NS" addr add "$TARGET/32" dev lo
}

namespaces_down() {
    local ns
    for ns in "$CLI_NS" "$SW_NS"; do
        ns_exists "$ns" || continue
        if [ -n "$(ip netns pids "$ns" 2>/dev/null)" ]; then
            ri_log "namespace $ns still has processes: not deleted"
        else
            ip netns del "$ns"
        fi
    done
}

write_config() {
    mkdir -p "$D/swanctl"/{x509,x509ca,private}
    cat >"$D/strongswan.conf" <<EOC
charon {
    load_modular = yes
    install_virtual_ip = no
    # The client's Delete must be answered and logged before a test looks.
    filelog {
        testlog {
            path = $D/charon.log
            time_format = %T
            default = 1
            ike = 2
            knl = 1
            flush_line = yes
        }
    }
    plugins {
        include /etc/strongswan.d/charon/*.conf
        kernel-libipsec {
            load = yes
            allow_peer_ts = yes
        }
        vici {
            socket = $VICI
        }
        dhcp {
            load = no
        }
        tpm {
            load = no
        }
    }
}
include /etc/strongswan.d/*.conf
EOC
    # The client certificate came later, and the CA key is kept since CRL tests sign with
    # it: a state without either is made anew.
    if [ ! -s "$D/ca.pem" ] || [ ! -s "$D/client.pem" ] || [ ! -s "$D/ca.key" ]; then
        rm -f "$D"/swanctl/x509ca/* "$D"/swanctl/x509/* "$D"/swanctl/private/*
        pki --gen --type rsa --size 2048 --outform pem >"$D/ca.key" 2>/dev/null
        pki --self --ca --lifetime 3650 --in "$D/ca.key" --type rsa \
            --dn "CN=ras interop strongSwan CA" --outform pem >"$D/swanctl/x509ca/ca.pem" 2>/dev/null
        pki --gen --type rsa --size 2048 --outform pem >"$D/swanctl/private/server.key" 2>/dev/null
        pki --pub --in "$D/swanctl/private/server.key" --type rsa 2>/dev/null \
          | pki --issue --lifetime 3650 --cacert "$D/swanctl/x509ca/ca.pem" --cakey "$D/ca.key" \
                --dn "CN=$SERVER_IP" --san "$SERVER_IP" --flag serverAuth --flag ikeIntermediate \
                --outform pem >"$D/swanctl/x509/server.pem" 2>/dev/null
        pki --gen --type ecdsa --size 256 --outform pem >"$D/client-key.pem" 2>/dev/null
        pki --pub --in "$D/client-key.pem" --type ecdsa 2>/dev/null \
          | pki --issue --lifetime 3650 --cacert "$D/swanctl/x509ca/ca.pem" --cakey "$D/ca.key" \
                --dn "$CERT_ID" --san client@ras-interop --flag clientAuth \
                --outform pem >"$D/client.pem" 2>/dev/null
        chmod 600 "$D/client-key.pem"
        # Outside swanctl's private/ (swanctl loads all of it), for `pki --signcrl`.
        chmod 600 "$D/ca.key"
        cp "$D/swanctl/x509ca/ca.pem" "$D/ca.pem"
    fi
    cat >"$D/swanctl/swanctl.conf" <<EOC
connections {
    ikev2-eap {
        version = 2
        local_addrs = $SERVER_IP
        pools = ras_pool
        send_certreq = no
        local {
            auth = pubkey
            certs = server.pem
            id = $SERVER_IP
        }
        remote {
            auth = eap-mschapv2
            eap_id = %any
        }
        children {
            net {
                local_ts = $TARGET/32
            }
        }
    }
    ikev2-cert {
        version = 2
        local_addrs = $SERVER_IP
        pools = ras_pool
        local {
            auth = pubkey
            certs = server.pem
            id = $SERVER_IP
        }
        remote {
            auth = pubkey
            id = "$CERT_ID"
        }
        children {
            net {
                local_ts = $TARGET/32
            }
        }
    }
    ikev2-rekey {
        version = 2
        local_addrs = $SERVER_IP
        pools = ras_pool
        # strongSwan starts an IKE SA rekey 15 s after the SA came up (no
        # jitter), and ends the SA 60 s later if it cannot.
        rekey_time = 15s
        rand_time = 0s
        over_time = 60s
        local {
            auth = psk
            id = $SERVER_IP
        }
        remote {
            auth = psk
            id = $REKEY_ID
        }
        children {
            net {
                local_ts = $TARGET/32
            }
        }
    }
    ikev2-psk {
        version = 2
        local_addrs = $SERVER_IP
        pools = ras_pool
        local {
            auth = psk
            id = $SERVER_IP
        }
        remote {
            auth = psk
            id = $PSK_ID
        }
        children {
            net {
                local_ts = $TARGET/32
                # ChaCha20-Poly1305 ESP (RFC 7634) only: what Apple and
                # strongSwan clients offer; the PSK test proves ours.
                esp_proposals = chacha20poly1305
            }
        }
    }
}
pools {
    ras_pool {
        addrs = $POOL
        dns = $TARGET
    }
}
secrets {
    eap-user {
        id = $EAP_USER
        secret = "$EAP_PASS"
    }
    ike-psk {
        id-1 = $PSK_ID
        id-2 = $SERVER_IP
        id-3 = $REKEY_ID
        secret = "$PSK"
    }
}
EOC
}

write_env() {
    cat >"$D/strongswan.env" <<EOE
SW_NS="$SW_NS"
CLIENT_NS="$CLI_NS"
SERVER_IP="$SERVER_IP"
CLIENT_IP="$CLIENT_IP"
CLIENT_LINK="rassw1"
POOL="$POOL"
TARGET="$TARGET"
USER="$EAP_USER"
PASSWORD="$EAP_PASS"
PSK="$PSK"
PSK_ID="$PSK_ID"
REKEY_ID="$REKEY_ID"
CLIENT_CERT="$D/client.pem"
CLIENT_KEY="$D/client-key.pem"
CLIENT_CERT_ID="$CERT_ID"
CA="$D/ca.pem"
LOG="$D/charon.log"
VICI="$VICI"
VERSION="$(dpkg-query -W -f='${Version}' strongswan-charon)"
PID="$(cat "$PIDF")"
EOE
    cat "$D/strongswan.env"
}

do_start() {
    ri_apt_install strongswan-charon strongswan-swanctl strongswan-pki \
        libcharon-extauth-plugins libstrongswan-standard-plugins \
        libstrongswan-extra-plugins iproute2
    mkdir -p "$D"
    namespaces_up
    if running; then
        # A charon left running by an earlier run takes this script's
        # connections as they are now.
        write_config
        swanctl --load-all --noprompt --uri "$VICI" --file "$D/swanctl/swanctl.conf" >"$D/load.log" 2>&1 \
            || { cat "$D/load.log" >&2; ri_die "swanctl --load-all failed"; }
        write_env
        return 0
    fi
    if listening 500 || listening 4500; then ri_die "UDP 500/4500 already in use in namespace $SW_NS"; fi
    write_config
    : >"$D/charon.log"
    local t0; t0=$(date +%s%N)
    ip netns exec "$SW_NS" unshare -m sh -c \
        'mount -t tmpfs -o mode=755 ras-sw-run /run && exec env STRONGSWAN_CONF="$1" /usr/lib/ipsec/charon' \
        charon "$D/strongswan.conf" >"$D/charon.out" 2>&1 </dev/null &
    echo $! >"$PIDF"
    local i
    for i in $(seq 1 100); do [ -S "$D/charon.vici" ] && break; running || break; sleep 0.1; done
    if ! running || [ ! -S "$D/charon.vici" ]; then
        cat "$D/charon.out" "$D/charon.log" >&2; ri_kill_pidfile "$PIDF"; ri_die "charon did not start"
    fi
    swanctl --load-all --noprompt --uri "$VICI" --file "$D/swanctl/swanctl.conf" >"$D/load.log" 2>&1 \
        || { cat "$D/load.log" >&2; ri_kill_pidfile "$PIDF"; ri_die "swanctl --load-all failed"; }
    grep -q 'eap-mschapv2' "$D/charon.log" || { ri_kill_pidfile "$PIDF"; ri_die "charon has no eap-mschapv2 plugin (log: $D/charon.log)"; }
    for i in $(seq 1 50); do listening 4500 && break; sleep 0.1; done
    ri_log "charon up in $(ri_ms "$t0") ms (pid $(cat "$PIDF"))"
    write_env
}

case "${1:-}" in
    start) do_start ;;
    stop) ri_kill_pidfile "$PIDF"; rm -f "$D/charon.vici"; namespaces_down; ri_log "strongSwan stopped" ;;
    sas) swanctl --list-sas --uri "$VICI" ;;
    status) running && echo "running, pid $(cat "$PIDF")" || { echo "strongSwan not running"; exit 1; } ;;
    *) echo "usage: $0 start|stop|sas|status" >&2; exit 2 ;;
esac
