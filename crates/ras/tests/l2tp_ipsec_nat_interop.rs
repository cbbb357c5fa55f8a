//! Two real L2TP/IPsec clients behind ONE NAT, connected to `ras server`
//! at the same time (issue 13: "two clients behind one nft masquerade").
//!
//! Every Windows client behind a home router looks alike to the server:
//! the same public address, the same private-looking identity, L2TP tunnel
//! ID 1. Our server keys IKE by (address, port) + cookies, ESP by SPI and
//! L2TP by (IPsec peer, tunnel ID); this test proves that with clients we
//! did not write, strongSwan 5.9.8 charon (IKEv1 Main Mode PSK, transport
//! mode, kernel ESP) + xl2tpd 1.3.18 + pppd 2.4.9 in the interop VM:
//!
//! ```text
//!  guest netns ras-nat-b            guest root                 host: vm.ns (rasi)                    host: ras-natsrv
//!  charon B, xl2tpd B, ppp7 ──veth── charon A, xl2tpd A, ppp6 ──tap── forwards, nft masquerade ──veth── ras server
//!  10.89.0.2                10.89.0.1  10.77.0.2           10.77.0.1           10.88.0.2            10.88.0.1
//! ```
//!
//! The guest image has no nft, so the NAT sits on the host: `ras server`
//! runs in a namespace of its own behind `vm.ns`, which masquerades all
//! that leaves towards it, so both clients reach it from 10.88.0.2 with
//! NAT-chosen ports (real NAT-T: RFC 3947 NAT-D sees the rewrite). Client
//! A is the guest's running charon (one more connection, restored after);
//! client B is a second charon in a guest network namespace with its own
//! strongswan.conf, vici socket, pid file (a private /run) and swanctl
//! file. Each has its own xl2tpd LAC on port 1702 and its own pppd unit.
//!
//! Both links come up with two different pool addresses, both ping at
//! once, the server logs two IKE SAs from 10.88.0.2 with different ports,
//! each "client behind NAT"; client A hangs up and B still pings; then B
//! hangs up. Everything created on the host (namespace, veth, nft table,
//! route, forwarding) is undone by a guard even when the test fails; the
//! guest job undoes its part in an EXIT trap.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::nat_lab::*;
use support::*;

/// Our server's PPP address (the default pool's server address).
const SERVER_PPP: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 20);
/// The guest's shell job: client B's namespace and charon, both
/// connections, both LACs, the checks, and the clean-up on exit.
const JOB: &str = r#"
D=/tmp/ras-l2tp-nat
NS=ras-nat-b
rm -rf "$D"; mkdir -p "$D/a" "$D/b/run"
cp /etc/swanctl/swanctl.conf "$D/swanctl.conf.orig"
FWD=$(sysctl -n net.ipv4.ip_forward)
VICI_B="unix://$D/b/run/charon-b.vici"
now() { date +%s.%N; }
since() { awk "BEGIN { printf \"%.2f\", $(now) - $1 }"; }
T0=$(now)
# Runs a command in client S's network namespace (A: the guest root).
in_ns() { s=$1; shift; if [ "$s" = b ]; then ip netns exec "$NS" "$@"; else "$@"; fi; }
unit() { if [ "$1" = b ]; then echo 7; else echo 6; fi; }
# Writing into a FIFO whose reader died would block for ever.
tell() { timeout 3 sh -c "echo '$2' > '$D/$1/control'" 2>/dev/null; }
hangup() {
    s=$1
    [ -f "$D/$s/xl2tpd.started" ] || return 0
    tell "$s" "d ras"
    for i in $(seq 1 20); do in_ns "$s" ip link show "ppp$(unit "$s")" >/dev/null 2>&1 || break; sleep 0.25; done
    pid=$(cat "$D/$s/xl2tpd.started")
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null
    rm -f "$D/$s/xl2tpd.started"
    if [ "$s" = a ]; then
        swanctl --terminate --ike ras-l2tp-a --timeout 10 >/dev/null 2>&1
    else
        swanctl --terminate --uri "$VICI_B" --ike ras-l2tp-b --timeout 10 >/dev/null 2>&1
    fi
}
cleanup() {
    hangup a; hangup b
    cp "$D/swanctl.conf.orig" /etc/swanctl/swanctl.conf
    swanctl --load-all --noprompt >/dev/null 2>&1
    if [ -n "${CHARON_B:-}" ]; then
        kill -TERM "$CHARON_B" 2>/dev/null
        for i in $(seq 1 40); do kill -0 "$CHARON_B" 2>/dev/null || break; sleep 0.25; done
        kill -KILL "$CHARON_B" 2>/dev/null
    fi
    ip netns pids "$NS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    ip route del "$NATNET" via "$HOSTGW" 2>/dev/null
    sysctl -qw "net.ipv4.ip_forward=$FWD"
    echo "=== charon A log"; grep -a 'ras-l2tp-a' /tmp/charon.log | tail -n 30
    echo "=== charon B log"; tail -n 40 "$D/b/charon.log" 2>/dev/null; cat "$D/b/charon.out" 2>/dev/null
    for s in a b; do
        echo "=== xl2tpd $s log"; cat "$D/$s/xl2tpd.log" 2>/dev/null
        echo "=== pppd $s log"; tail -n 40 "$D/$s/ppp.log" 2>/dev/null
    done
}
trap cleanup EXIT

# Client B's network: a namespace behind the guest root, which forwards
# (no NAT in the guest: the host's masquerade maps both clients).
ip netns del "$NS" 2>/dev/null
ip link del rnatb0 2>/dev/null
ip netns add "$NS" || exit 10
ip link add rnatb0 type veth peer name rnatb1 netns "$NS" || exit 10
ip addr add 10.89.0.1/24 dev rnatb0 && ip link set rnatb0 up || exit 10
ip -n "$NS" link set lo up
ip -n "$NS" addr add 10.89.0.2/24 dev rnatb1 && ip -n "$NS" link set rnatb1 up || exit 10
ip -n "$NS" route add default via 10.89.0.1 || exit 10
ip route replace "$NATNET" via "$HOSTGW" || exit 10
sysctl -qw net.ipv4.ip_forward=1

# Client B's charon: its own strongswan.conf, vici socket, and a private
# /run (charon refuses to start while /run/charon.pid names a live one,
# and its pid file and sockets must not replace the guest charon's).
cat > "$D/b/strongswan.conf" <<EOF
charon {
    load_modular = yes
    filelog {
        b {
            path = $D/b/charon.log
            time_format = %T
            default = 1
            ike = 2
            flush_line = yes
        }
    }
    plugins {
        include /etc/strongswan.d/charon/*.conf
        stroke {
            load = no
        }
        dhcp {
            load = no
        }
        tpm {
            load = no
        }
        vici {
            socket = unix:///run/charon-b.vici
        }
    }
}
EOF
ip netns exec "$NS" unshare -m sh -c "mount --bind '$D/b/run' /run && exec env STRONGSWAN_CONF='$D/b/strongswan.conf' /usr/lib/ipsec/charon" > "$D/b/charon.out" 2>&1 &
CHARON_B=$!
for i in $(seq 1 40); do [ -S "$D/b/run/charon-b.vici" ] && break; sleep 0.25; done
[ -S "$D/b/run/charon-b.vici" ] || { echo "charon B did not start"; exit 11; }
echo "CHARON_B_PID_FILE=$(cat "$D/b/run/charon.pid" 2>/dev/null)"

conn() {
    cat <<EOF
    ras-l2tp-$1 {
        version = 1
        remote_addrs = $SERVER
        proposals = aes256-sha1-modp2048
        dpd_delay = 5s
        local {
            auth = psk
        }
        remote {
            auth = psk
        }
        children {
            ras-l2tp-$1 {
                mode = transport
                local_ts = dynamic[udp/1702]
                remote_ts = dynamic[udp/1701]
                esp_proposals = aes256-sha1
            }
        }
    }
EOF
}
conn a > "$D/a/conn"
sed -i "/^connections {/r $D/a/conn" /etc/swanctl/swanctl.conf
swanctl --load-all --noprompt > "$D/a/load.log" 2>&1 || { cat "$D/a/load.log"; exit 6; }
{
    echo "connections {"; conn b; echo "}"
    echo "secrets {"; echo "    ike-b {"; echo "        secret = \"$PSK\""; echo "    }"; echo "}"
} > "$D/b/swanctl.conf"
swanctl --load-all --uri "$VICI_B" --noprompt --file "$D/b/swanctl.conf" > "$D/b/load.log" 2>&1 \
    || { cat "$D/b/load.log"; exit 6; }

# Both clients start IKE at once.
t_ike=$(now)
swanctl --initiate --child ras-l2tp-a --timeout 30 > "$D/a/initiate.log" 2>&1 &
ia=$!
swanctl --initiate --uri "$VICI_B" --child ras-l2tp-b --timeout 30 > "$D/b/initiate.log" 2>&1 &
ib=$!
wait $ia || { echo "=== initiate A"; cat "$D/a/initiate.log"; exit 7; }
wait $ib || { echo "=== initiate B"; cat "$D/b/initiate.log"; exit 7; }
echo "IPSEC_BOTH_UP_SECONDS=$(since "$t_ike")"
swanctl --list-sas --ike ras-l2tp-a | sed 's/^/SA A: /'
swanctl --list-sas --uri "$VICI_B" --ike ras-l2tp-b | sed 's/^/SA B: /'

lac() {
    s=$1
    cat > "$D/$s/xl2tpd.conf" <<EOF
[global]
port = 1702
access control = no

[lac ras]
lns = $SERVER:1701
redial = no
require authentication = no
ppp debug = yes
length bit = yes
pppoptfile = $D/$s/options
EOF
    cat > "$D/$s/options" <<EOF
name $USER
password $PASS
noauth
refuse-pap
refuse-chap
refuse-mschap
refuse-eap
noccp
nodeflate
nobsdcomp
novj
nodefaultroute
noipdefault
mtu 1400
mru 1400
unit $(unit "$s")
debug
logfile $D/$s/ppp.log
EOF
    in_ns "$s" xl2tpd -D -c "$D/$s/xl2tpd.conf" -p "$D/$s/xl2tpd.pid" -C "$D/$s/control" > "$D/$s/xl2tpd.log" 2>&1 &
    echo $! > "$D/$s/xl2tpd.started"
    for i in $(seq 1 40); do [ -p "$D/$s/control" ] && break; sleep 0.25; done
}
t_ppp=$(now)
lac a; lac b
tell a "c ras"; tell b "c ras"
linked() { in_ns "$1" ip -4 -o addr show "ppp$(unit "$1")" 2>/dev/null | grep -q ' peer '; }
for i in $(seq 1 160); do
    linked a && linked b && break
    sleep 0.25
done
linked a || { echo "link A did not come up"; exit 2; }
linked b || { echo "link B did not come up"; exit 2; }
echo "PPP_BOTH_UP_SECONDS=$(since "$t_ppp")"
for s in a b; do
    u=$(unit "$s")
    echo "ADDR_$s=$(in_ns "$s" ip -4 -o addr show "ppp$u" | sed -n 's/.*inet \([0-9.]*\).*/\1/p')"
done

# Both ping at once, large packets (ESP in UDP through the NAT).
rc=0
t_ping=$(now)
ping -c 30 -i 0.2 -s 1200 -W 3 "$SERVER_PPP" > "$D/a/ping.log" 2>&1 &
pa=$!
ip netns exec "$NS" ping -c 30 -i 0.2 -s 1200 -W 3 "$SERVER_PPP" > "$D/b/ping.log" 2>&1 &
pb=$!
wait $pa || rc=3
wait $pb || rc=3
echo "PINGS_AT_ONCE_SECONDS=$(since "$t_ping")"
echo "PING_BOTH_a: $(grep 'packet loss' "$D/a/ping.log")"
echo "PING_BOTH_b: $(grep 'packet loss' "$D/b/ping.log")"

# Client A hangs up; B must stay up and keep passing traffic.
t_hang=$(now)
hangup a
echo "A_HUNG_UP_SECONDS=$(since "$t_hang")"
if ip link show ppp6 >/dev/null 2>&1; then echo "link A still up after hanging up"; rc=4; fi
linked b || { echo "link B went down with A"; rc=5; }
ip netns exec "$NS" ping -c 10 -i 0.2 -W 3 "$SERVER_PPP" > "$D/b/ping-after.log" 2>&1 || rc=5
echo "PING_B_AFTER_A: $(grep 'packet loss' "$D/b/ping-after.log")"
swanctl --list-sas --uri "$VICI_B" --ike ras-l2tp-b | sed 's/^/SA B: /'
hangup b
echo "TOTAL_SECONDS=$(since "$T0")"
exit $rc
"#;

/// `KEY=value` from the job's output.
fn fact<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
}

#[test]
fn two_strongswan_clients_behind_one_nat_at_the_same_time() {
    let Some(vm) = vm_with_guest_jobs("L2TP/IPsec NAT interop") else {
        return;
    };
    // Declared first: dropped last, after the server in its namespace.
    let _lab = NatLab::create(&vm.ns);
    let user = vm.user().clone();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    let psk = dir.path().join("ipsec-psk");
    std::fs::write(&psk, format!("{}\n", vm.psk)).unwrap();
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-interop-l2tp-nat\"\n\n\
             [sstp]\nlisten = []\n\n\
             [pptp]\nlisten = []\n\n\
             [ipsec]\nlisten = \"{SERVER_IP}\"\npsk_file = {psk:?}\n\n\
             [tun]\nname = \"ras-nat0\"\n",
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), &user.name, &user.password);
    add_user(&config, &user.name, &pw, &[]);
    let mut command = Command::new("ip");
    command.args(["netns", "exec", SERVER_NS, RAS]);
    // RAS_INTEROP_SERVER_LOG (e.g. "info,ipsec=debug,tunnel=debug") to dig.
    let log = std::env::var("RAS_INTEROP_SERVER_LOG").unwrap_or_else(|_| "info".to_owned());
    let server = Server::start_with(command, &config, &log);

    let job = format!(
        "set -u\nSERVER={SERVER_IP}\nSERVER_PPP={SERVER_PPP}\nUSER={user}\nPASS={pass}\n\
         PSK='{psk}'\nNATNET={net}\nHOSTGW={host}\n{JOB}",
        user = user.name,
        pass = user.password,
        psk = vm.psk,
        net = "10.88.0.0/24",
        host = vm.host_ip,
    );
    let started = Instant::now();
    let (rc, out) = vm
        .guest_job("l2tp-ipsec-nat", &job, Duration::from_secs(300))
        .expect("two strongSwan + xl2tpd clients");
    let job_secs = started.elapsed().as_secs_f64();
    eprintln!("--- two clients behind one NAT (rc {rc}, {job_secs:.1} s):\n{out}");
    let lines = server.drain(Duration::from_secs(3));

    // Timings, for the record.
    for key in [
        "IPSEC_BOTH_UP_SECONDS",
        "PPP_BOTH_UP_SECONDS",
        "PINGS_AT_ONCE_SECONDS",
        "A_HUNG_UP_SECONDS",
        "TOTAL_SECONDS",
    ] {
        eprintln!("timing: {key} = {}", fact(&out, key).unwrap_or("?"));
    }
    eprintln!("timing: guest job {job_secs:.1} s");

    assert_eq!(rc, 0, "both clients behind one NAT against ras server");

    // Two links at once, two different addresses from our pool.
    let address = |s: &str| -> Ipv4Addr {
        fact(&out, &format!("ADDR_{s}"))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("client {s} got no address"))
    };
    let (a, b) = (address("a"), address("b"));
    assert_ne!(a, b, "each client its own address");
    for addr in [a, b] {
        assert!(
            (21..=29).contains(&addr.octets()[3]) && addr.octets()[..3] == [10, 0, 10],
            "{addr} from our pool"
        );
    }
    for (what, key) in [
        ("pings from both at once", "PING_BOTH_a:"),
        ("pings from both at once", "PING_BOTH_b:"),
        ("client B's pings after A hung up", "PING_B_AFTER_A:"),
    ] {
        let loss = out
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or("no ping summary");
        assert!(loss.contains(" 0% packet loss"), "{what}: {loss}");
    }

    // The server saw both from the NAT's one address, on different ports,
    // and knew each was behind a NAT (RFC 3947 §3.2 NAT-D).
    let ike_ups: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains("authenticated as") && l.contains("Main Mode"))
        .map(String::as_str)
        .collect();
    assert_eq!(ike_ups.len(), 2, "two IKE SAs:\n{}", ike_ups.join("\n"));
    let mut ports = BTreeSet::new();
    for line in &ike_ups {
        let peer: SocketAddrV4 = line
            .split("IPsec: ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no peer in {line:?}"));
        assert_eq!(*peer.ip(), NAT_IP, "{line}");
        assert!(line.contains("client behind NAT"), "{line}");
        ports.insert(peer.port());
    }
    assert_eq!(ports.len(), 2, "two NAT ports:\n{}", ike_ups.join("\n"));
    let esp_in_udp = lines
        .iter()
        .filter(|l| l.contains("ESP") && l.contains(" up, SPIs") && l.contains(", in UDP"))
        .count();
    assert_eq!(esp_in_udp, 2, "two ESP SAs, each in UDP");
    // Each L2TP tunnel rode its own IPsec peer: the server keys L2TP by
    // (IPsec peer, tunnel ID), never by the shared address alone.
    let tunnels: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains("L2TP tunnel") && l.contains(" up with "))
        .filter_map(|l| l.split(" up with ").nth(1)?.split(" (host").next())
        .collect();
    let distinct: BTreeSet<&str> = tunnels.iter().copied().collect();
    assert!(
        tunnels.len() == 2 && distinct.len() == 2,
        "two L2TP tunnels over two IPsec peers: {}",
        tunnels.join("; ")
    );

    // Each user's session ended with its own address, A's first.
    let position = |text: &str| {
        lines
            .iter()
            .position(|l| l.contains(text))
            .unwrap_or_else(|| panic!("server never said {text:?}"))
    };
    let freed_a = position(&format!("session ended, address freed ({a})"));
    let freed_b = position(&format!("session ended, address freed ({b})"));
    assert!(freed_a < freed_b, "client A hung up first, B stayed up");
    let deleted = lines.iter().filter(|l| l.contains("IKE SA ended")).count();
    assert_eq!(deleted, 2, "both IKE SAs ended");
}
