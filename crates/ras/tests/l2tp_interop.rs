//! `ras server` serving plain L2TP (`[l2tp] allow_plain = true`) to a real
//! LAC we did not write: xl2tpd 1.3.18 + pppd 2.4.9 in the interop VM, as
//! a guest job. The guest's own xl2tpd (an LNS for other tests) holds UDP
//! 1701, so the job runs a second xl2tpd with its own configuration,
//! control and pid files on port 1702, dialling our server as a LAC.
//! pppd authenticates with MS-CHAPv2 only; the link comes up with an
//! address from our pool, pings (small and large: data echoed back)
//! pass through the tunnel to our server's end, the LAC hangs up, and our
//! server logs the session end.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

mod support;
use support::*;

/// Our server's PPP address (the default pool's server address).
const SERVER_PPP: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 20);

#[test]
fn xl2tpd_lac_against_ras_server() {
    let Some(vm) = vm_with_guest_jobs("L2TP interop") else {
        return;
    };
    let user = vm.user().clone();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-interop-l2tp\"\n\n\
             [sstp]\nlisten = []\n\n\
             [pptp]\nlisten = []\n\n\
             [l2tp]\nallow_plain = true\nlisten = [\"{host}:1701\"]\n\n\
             [ipsec]\nenabled = false\n\n[tun]\nname = \"ras-l2i0\"\n",
            host = vm.host_ip
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), &user.name, &user.password);
    add_user(&config, &user.name, &pw, &[]);
    let server = Server::start_with(vm.command_in_ns(RAS), &config, "info");

    let job = format!(
        r#"set -u
HOST={host}
SERVER_PPP={SERVER_PPP}
UNIT=7
D=/tmp/ras-l2tp-lac
rm -rf "$D"; mkdir -p "$D"
cat > "$D/xl2tpd.conf" <<EOF
[global]
port = 1702
access control = no

[lac ras]
lns = $HOST:1701
redial = no
require authentication = no
ppp debug = yes
length bit = yes
pppoptfile = $D/options
EOF
cat > "$D/options" <<EOF
name {user}
password {pass}
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
unit $UNIT
debug
logfile $D/ppp.log
EOF
xl2tpd -D -c "$D/xl2tpd.conf" -p "$D/xl2tpd.pid" -C "$D/control" > "$D/xl2tpd.log" 2>&1 &
pid=$!
for i in $(seq 1 40); do [ -p "$D/control" ] && break; sleep 0.25; done
echo "c ras" > "$D/control"
up=
for i in $(seq 1 160); do
    # Up means addressed and routed: pppd sets the address before the
    # link is up, and a ping in between gets "Network is unreachable".
    if ip -4 -o addr show "ppp$UNIT" 2>/dev/null | grep -q ' peer ' \
        && ip -4 route get "$SERVER_PPP" 2>/dev/null | grep -q "dev ppp$UNIT"; then up=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
done
rc=0
if [ -n "$up" ]; then
    echo "LOCAL=$(ip -4 -o addr show "ppp$UNIT" | sed -n 's/.*inet \([0-9.]*\).*/\1/p')"
    echo "PEER=$(ip -4 -o addr show "ppp$UNIT" | sed -n 's/.* peer \([0-9.]*\).*/\1/p')"
    ping -c 3 -i 0.3 -W 3 "$SERVER_PPP" || rc=3
    ping -c 5 -i 0.3 -s 1300 -W 3 "$SERVER_PPP" || rc=4
else
    echo "the link did not come up"
    rc=2
fi
echo "d ras" > "$D/control"
for i in $(seq 1 20); do ip link show "ppp$UNIT" >/dev/null 2>&1 || break; sleep 0.25; done
kill -TERM "$pid" 2>/dev/null
for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
kill -KILL "$pid" 2>/dev/null
echo "=== xl2tpd log"; cat "$D/xl2tpd.log"
echo "=== pppd log"; cat "$D/ppp.log" 2>/dev/null
exit $rc
"#,
        host = vm.host_ip,
        user = user.name,
        pass = user.password,
    );
    let started = Instant::now();
    let (rc, out) = vm
        .guest_job("l2tp-lac", &job, Duration::from_secs(120))
        .expect("xl2tpd LAC job");
    eprintln!("--- xl2tpd + pppd in the guest (rc {rc}):\n{out}");
    assert_eq!(rc, 0, "xl2tpd + pppd against ras server");
    let address: Ipv4Addr = out
        .lines()
        .find_map(|l| l.strip_prefix("LOCAL="))
        .and_then(|a| a.trim().parse().ok())
        .expect("an address");
    assert!(
        (21..=29).contains(&address.octets()[3]) && address.octets()[..3] == [10, 0, 10],
        "{address} from our pool"
    );
    let peer = out.lines().find_map(|l| l.strip_prefix("PEER="));
    assert_eq!(peer.map(str::trim), Some("10.0.10.20"));
    server.expect(
        &format!("authenticated: user \"{}\", MS-CHAPv2", user.name),
        Duration::from_secs(5),
    );
    server.expect("L2TP session of", Duration::from_secs(20));
    eprintln!(
        "xl2tpd: up, pinged and down in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(server);
}
