//! `ras server` serving L2TP/IPsec to real Linux clients we did not write:
//! strongSwan 5.9.8 (charon, IKEv1 Main Mode with a pre-shared key, Quick
//! Mode transport mode, kernel ESP) + xl2tpd 1.3.18 + pppd 2.4.9 in the
//! interop VM, as a guest job. The guest's charon (an IKE responder for
//! other tests) gets one more connection, `ras-l2tp`, that initiates to our
//! server; the guest's own xl2tpd LNS holds UDP 1701, so a second xl2tpd
//! dials our server as a LAC from port 1702, and the IPsec policy protects
//! exactly that flow (UDP 1702 → 1701). MS-CHAPv2 over PPP, an address
//! from our pool, pings through the tunnel, then the client hangs up and
//! deletes its SAs; our server logs each step.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

mod support;
use support::guest_hold;
use support::pki::TestPki;
use support::*;

/// Our server's PPP address (the default pool's server address).
const SERVER_PPP: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 20);
/// The UDP port the server's namespace listens on for the guest's
/// datagrams from other source addresses (`Job::ping_from`).
const UDP_PORT: u16 = 9996;

/// The guest's shell job: the strongSwan connection, the LAC, the checks.
/// `IKE`/`ESP` are the proposals, `REKEY` the child's rekey time, `PINGS`
/// how many large pings to send.
const JOB: &str = r#"
D=/tmp/ras-l2tp-ipsec
rm -rf "$D"; mkdir -p "$D"
cp /etc/swanctl/swanctl.conf "$D/swanctl.conf.orig"
cat > "$D/conn" <<EOF
    ras-l2tp {
        version = 1
        remote_addrs = $HOST
        proposals = $IKE
        encap = $ENCAP
        dpd_delay = 5s
        fragmentation = yes
        local {
            auth = $AUTH
            $LOCAL_CERTS
        }
        remote {
            auth = $AUTH
        }
        children {
            ras-l2tp {
                mode = transport
                local_ts = dynamic[udp/1702]
                remote_ts = dynamic[udp/1701]
                esp_proposals = $ESP
                rekey_time = $REKEY
            }
        }
    }
EOF
sed -i "/^connections {/r $D/conn" /etc/swanctl/swanctl.conf
restore() {
    swanctl --terminate --ike ras-l2tp --timeout 10 >/dev/null 2>&1
    [ -n "$GUEST_NETS" ] && ip link del ras-branch0 2>/dev/null
    cp "$D/swanctl.conf.orig" /etc/swanctl/swanctl.conf
    rm -f /etc/swanctl/x509ca/ras-test-* /etc/swanctl/x509/ras-test-* /etc/swanctl/private/ras-test-*
    swanctl --load-all --noprompt >/dev/null 2>&1
}
# Networks behind the client (a branch router's), on a dummy interface.
if [ -n "$GUEST_NETS" ]; then
    ip link add ras-branch0 type dummy && ip link set ras-branch0 up || { restore; exit 10; }
    for a in $GUEST_NETS; do ip addr add "$a" dev ras-branch0 || { restore; exit 10; }; done
fi
swanctl --load-all --noprompt > "$D/load.log" 2>&1 || { cat "$D/load.log"; restore; exit 6; }
t0=$(date +%s.%N)
if ! swanctl --initiate --child ras-l2tp --timeout 30 > "$D/initiate.log" 2>&1; then
    echo "=== swanctl --initiate"; cat "$D/initiate.log"; restore; exit 7
fi
echo "IPSEC_UP_SECONDS=$(awk "BEGIN { print $(date +%s.%N) - $t0 }")"
swanctl --list-sas --ike ras-l2tp | sed 's/^/SA: /'
grep -aE "fragment|authentication of|received end entity|CERT" /tmp/charon.log | tail -n 20 | sed 's/^/CHARON: /'
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
    echo "PPP_UP_SECONDS=$(awk "BEGIN { print $(date +%s.%N) - $t0 }")"
    echo "LOCAL=$(ip -4 -o addr show "ppp$UNIT" | sed -n 's/.*inet \([0-9.]*\).*/\1/p')"
    echo "PEER=$(ip -4 -o addr show "ppp$UNIT" | sed -n 's/.* peer \([0-9.]*\).*/\1/p')"
    ping -c 3 -i 0.3 -W 3 "$SERVER_PPP" || rc=3
    ping -c "$PINGS" -i 0.2 -s 1300 -W 3 "$SERVER_PPP" > "$D/ping.log" 2>&1 || rc=4
    tail -n 3 "$D/ping.log"
    if [ "$ECHO_PORT" != 0 ]; then
        # 10 MB to our side's echo service and back, compared by hash.
        head -c 10000000 /dev/urandom > "$D/blob"
        want=$(sha256sum < "$D/blob" | cut -d' ' -f1)
        e0=$(date +%s.%N)
        got=$(timeout 180 nc -N -w 20 "$SERVER_PPP" "$ECHO_PORT" < "$D/blob" | sha256sum | cut -d' ' -f1)
        echo "ECHO_SECONDS=$(awk "BEGIN { print $(date +%s.%N) - $e0 }")"
        if [ "$want" = "$got" ]; then echo "ECHO_INTACT=yes"; else echo "ECHO_INTACT=no"; rc=5; fi
    fi
    swanctl --list-sas --ike ras-l2tp | sed 's/^/SA: /'
    if [ -n "$HOLD" ]; then
        # The host checks its side while the link is up, then creates $HOLD.
        echo "HOLDING"
        for i in $(seq 1 600); do [ -e "$HOLD" ] && break; sleep 0.2; done
        [ -e "$HOLD" ] || { echo "HOLD: never released"; rc=11; }
        rm -f "$HOLD"
    fi
    # Pings to the server from other source addresses of ours: the server
    # answers only those it routes to this session.
    for s in $FROM; do
        if ping -c 3 -i 0.3 -W 2 -I "$s" "$SERVER_PPP" > "$D/from.log" 2>&1; then
            echo "FROM $s: answered"
        else
            echo "FROM $s: unanswered"
        fi
        grep "packet loss" "$D/from.log" | sed "s/^/FROM $s: /"
        # And one UDP datagram, which the host's listener sees if it
        # passes the server, answered or not.
        printf 'from %s' "$s" | nc -u -w 1 -s "$s" "$SERVER_PPP" "$UDP_PORT"
    done
    if [ "$VANISH" = 1 ]; then
        # The client vanishes without a word: nothing it sends reaches us.
        # A rule ahead of strongSwan's own routing table (220) drops it all.
        ip rule add to "$HOST/32" blackhole priority 10
        echo "VANISHED"
        sleep "$VANISH_SECONDS"
        ip rule del to "$HOST/32" blackhole priority 10
    fi
else
    echo "the link did not come up"
    rc=2
fi
echo "d ras" > "$D/control"
for i in $(seq 1 20); do ip link show "ppp$UNIT" >/dev/null 2>&1 || break; sleep 0.25; done
kill -TERM "$pid" 2>/dev/null
for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
kill -KILL "$pid" 2>/dev/null
restore
echo "=== charon log"; tail -n 60 /tmp/charon.log
echo "=== xl2tpd log"; cat "$D/xl2tpd.log"
echo "=== pppd log"; cat "$D/ppp.log" 2>/dev/null
exit $rc
"#;

/// The tests share the guest's charon configuration, xl2tpd port 1702,
/// and our server's UDP 500 on the host address: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Run {
    rc: i32,
    out: String,
    server: Server,
    /// After the server: FreeRADIUS stops once the server has.
    _radius: Option<interop::freeradius::FreeRadius>,
    user: String,
    /// What the host saw while the guest held the link up.
    held: Option<guest_hold::Held>,
    /// The guest's UDP datagrams (`Job::ping_from`) that reached the
    /// server's namespace, with the source they came from.
    udp_from: Vec<(String, std::net::IpAddr)>,
    _dir: tempfile::TempDir,
    /// Last: released after the server above is stopped (fields drop in
    /// order).
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// What one guest run does.
struct Job<'a> {
    name: &'a str,
    ike: &'a str,
    esp: &'a str,
    rekey_secs: u32,
    pings: u32,
    /// Seconds the client stays silent after the pings (0: it hangs up).
    vanish_secs: u32,
    /// More server configuration (`[ipsec]` keys).
    ipsec_extra: &'a str,
    /// strongSwan's `encap`: UDP-encapsulated ESP on port 4500 as if
    /// behind a NAT (it fakes its NAT-D payloads).
    encap: bool,
    /// Certificates instead of the pre-shared key.
    pki: Option<&'a TestPki>,
    /// Send 10 MB through our side's echo service.
    echo: bool,
    /// With `pki`: `[certificate] crl_files` holds the CA's CRL that
    /// revokes the client's certificate.
    revoked_client: bool,
    /// Authenticate this user and password through a FreeRADIUS in the
    /// server's namespace (MS-CHAPv2 relayed, RFC 2548) instead of the
    /// VM's test user in our user store.
    radius_user: Option<(&'a str, &'a str)>,
    /// Addresses (with length) on a dummy interface in the guest: the
    /// networks behind a branch router.
    guest_nets: &'a str,
    /// Once the link is up, the guest waits while the host pings these
    /// addresses from the server's namespace (see [`guest_hold::Held`]).
    ping_while_up: &'a [&'a str],
    /// Then the guest pings the server from each of these addresses of
    /// its own ("FROM <address>: answered" or "unanswered"), and sends it
    /// a UDP datagram "from <address>" (see `Run::udp_from`).
    ping_from: &'a str,
}

impl Default for Job<'_> {
    fn default() -> Self {
        Job {
            name: "l2tp-ipsec",
            ike: "aes256-sha1-modp2048",
            esp: "aes256-sha1",
            rekey_secs: 3600,
            pings: 20,
            vanish_secs: 0,
            ipsec_extra: "",
            encap: false,
            pki: None,
            echo: false,
            revoked_client: false,
            radius_user: None,
            guest_nets: "",
            ping_while_up: &[],
            ping_from: "",
        }
    }
}

fn run(job: Job) -> Option<Run> {
    let Job {
        name,
        ike,
        esp,
        rekey_secs,
        pings,
        vanish_secs,
        ipsec_extra,
        encap,
        pki,
        echo,
        revoked_client,
        radius_user,
        guest_nets,
        ping_while_up,
        ping_from,
    } = job;
    let vm = vm_with_guest_jobs("L2TP/IPsec interop")?;
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let echo_port = if echo { echo_service(vm) } else { 0 };
    let user = match radius_user {
        Some((name, password)) => interop::User {
            name: name.to_owned(),
            password: password.to_owned(),
        },
        None => vm.user().clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    let psk = dir.path().join("ipsec-psk");
    std::fs::write(&psk, format!("{}\n", vm.psk)).unwrap();
    // With certificates: the server signs with [certificate] and checks
    // the client against ca_file.
    let (cert_section, cert_keys) = match pki {
        Some(pki) => {
            let (chain, key, ca) = (
                dir.path().join("server.pem"),
                dir.path().join("server-key.pem"),
                dir.path().join("ca.pem"),
            );
            std::fs::write(&chain, &pki.server_cert).unwrap();
            std::fs::write(&key, &pki.server_key).unwrap();
            std::fs::write(&ca, &pki.ca).unwrap();
            let crl_files = if revoked_client {
                let crl = dir.path().join("ca.crl");
                std::fs::write(&crl, &pki.client_revoked_crl).unwrap();
                format!("crl_files = [{crl:?}]\n")
            } else {
                String::new()
            };
            (
                format!("[certificate]\nchain = {chain:?}\nkey = {key:?}\n{crl_files}\n"),
                format!("ca_file = {ca:?}\n"),
            )
        }
        None => (String::new(), String::new()),
    };
    // With RADIUS: FreeRADIUS knows the user; our user store does not.
    let (radius, radius_section) = if radius_user.is_some() {
        let (fr, section) = freeradius_for_vm(vm, dir.path(), &state, "L2TP/IPsec with RADIUS")?;
        (Some(fr), section)
    } else {
        (None, String::new())
    };
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-interop-l2tp-ipsec\"\n\n\
             [sstp]\nlisten = []\n\n\
             [pptp]\nlisten = []\n\n\
             {cert_section}\
             [ipsec]\nlisten = \"{host}\"\npsk_file = {psk:?}\n{cert_keys}{ipsec_extra}\n\n\
             {radius_section}[tun]\nname = \"ras-lis0\"\n",
            host = vm.host_ip
        ),
    )
    .unwrap();
    if radius.is_none() {
        let pw = password_file(dir.path(), &user.name, &user.password);
        add_user(&config, &user.name, &pw, &[]);
    }
    let server = Server::start_with(vm.command_in_ns(RAS), &config, "info");
    let job = format!(
        "set -u\nHOST={host}\nSERVER_PPP={SERVER_PPP}\nUSER={user}\nPASS={pass}\nUNIT=6\n\
         IKE={ike}\nESP={esp}\nREKEY={rekey_secs}s\nPINGS={pings}\nECHO_PORT={echo_port}\n\
         VANISH={vanish}\nVANISH_SECONDS={vanish_secs}\nENCAP={encap}\n\
         GUEST_NETS='{guest_nets}'\nHOLD={hold}\nFROM='{ping_from}'\nUDP_PORT={UDP_PORT}\n\
         AUTH={auth}\nLOCAL_CERTS='{local_certs}'\n{files}{JOB}",
        auth = if pki.is_some() { "pubkey" } else { "psk" },
        local_certs = if pki.is_some() {
            "certs = ras-test-client.pem"
        } else {
            ""
        },
        files = pki.map(TestPki::guest_files).unwrap_or_default(),
        encap = if encap { "yes" } else { "no" },
        vanish = u8::from(vanish_secs > 0),
        hold = if ping_while_up.is_empty() {
            String::new()
        } else {
            guest_hold::release_path(name)
        },
        host = vm.host_ip,
        user = user.name,
        pass = user.password,
    );
    // The server's namespace listens for the guest's datagrams before the
    // guest starts.
    let listener = vm
        .in_ns(|| {
            let s = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, UDP_PORT)).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            s
        })
        .expect("the namespace");
    let started = Instant::now();
    let guest = guest_hold::spawn_job(vm, name, job, Duration::from_secs(240));
    let held =
        (!ping_while_up.is_empty()).then(|| guest_hold::hold(vm, name, ping_while_up, &guest));
    let (rc, out) = guest
        .join()
        .expect("the guest job's thread")
        .expect("strongSwan + xl2tpd job");
    let mut udp_from = Vec::new();
    let mut buf = [0u8; 64];
    while let Ok((n, from)) = listener.recv_from(&mut buf) {
        udp_from.push((String::from_utf8_lossy(&buf[..n]).into_owned(), from.ip()));
    }
    eprintln!(
        "--- strongSwan + xl2tpd + pppd in the guest, {name} (rc {rc}, {:.1} s):\n{out}",
        started.elapsed().as_secs_f64()
    );
    Some(Run {
        rc,
        out,
        server,
        _radius: radius,
        user: user.name,
        held,
        udp_from,
        _dir: dir,
        _turn: turn,
    })
}

fn check_link(run: &Run) {
    check_guest(run);
    run.server.expect(
        &format!("authenticated: user \"{}\", MS-CHAPv2", run.user),
        Duration::from_secs(5),
    );
    run.server
        .expect("L2TP session of", Duration::from_secs(20));
}

/// The guest's side of [`check_link`]: it ran through, with an address
/// from our pool.
fn check_guest(run: &Run) {
    assert_eq!(run.rc, 0, "strongSwan + xl2tpd + pppd against ras server");
    let address: Ipv4Addr = run
        .out
        .lines()
        .find_map(|l| l.strip_prefix("LOCAL="))
        .and_then(|a| a.trim().parse().ok())
        .expect("an address");
    assert!(
        (21..=29).contains(&address.octets()[3]) && address.octets()[..3] == [10, 0, 10],
        "{address} from our pool"
    );
}

#[test]
fn strongswan_and_xl2tpd_over_ipsec_against_ras_server() {
    let Some(run) = run(Job {
        name: "l2tp-ipsec-cbc",
        echo: true,
        ..Job::default()
    }) else {
        return;
    };
    check_link(&run);
    assert!(
        run.out.contains("ECHO_INTACT=yes"),
        "10 MB echoed intact through L2TP/IPsec"
    );
    // The client deleted its SAs on the way out.
    run.server
        .expect("ended: deleted by the peer", Duration::from_secs(15));
}

/// What ping said about loss, e.g. "0% packet loss".
fn loss_line(out: &str) -> String {
    out.lines()
        .rfind(|l| l.contains("packet loss"))
        .unwrap_or("no ping summary")
        .to_string()
}

/// AES-GCM ESP over ECP-256 Main Mode, and a child rekey every 15 s while
/// 40 s of large pings run: strongSwan starts a new Quick Mode before the
/// old SA ends and deletes the old one after; our server keeps both
/// inbound SAs meanwhile and sends on the newest, so not one ping is lost.
#[test]
fn gcm_and_two_quick_mode_rekeys_under_traffic_lose_nothing() {
    let Some(run) = run(Job {
        name: "l2tp-ipsec-gcm-rekey",
        ike: "aes128-sha256-ecp256",
        esp: "aes128gcm16",
        rekey_secs: 15,
        pings: 200,
        ..Job::default()
    }) else {
        return;
    };
    assert_eq!(run.rc, 0, "strongSwan + xl2tpd + pppd against ras server");
    let loss = loss_line(&run.out);
    assert!(loss.contains(" 0% packet loss"), "{loss}");
    let lines = run.server.drain(Duration::from_secs(3));
    let ups = lines
        .iter()
        .filter(|l| l.contains("ESP aes128gcm16 up"))
        .count();
    let deleted = lines
        .iter()
        .filter(|l| l.contains("ended: deleted by the peer") && l.contains("ESP SPIs"))
        .count();
    assert!(
        ups >= 3,
        "the first ESP SA and at least two rekeys: {ups} came up"
    );
    assert!(deleted >= 2, "the replaced SAs were deleted: {deleted}");
    assert!(lines
        .iter()
        .any(|l| l.contains("Main Mode AES-CBC-128/SHA2-256/ECP-256/PSK")));
}

/// A client that vanishes (its packets stop reaching us, no Delete, no
/// StopCCN) is found by dead peer detection; its SAs, L2TP tunnel and PPP
/// session end and its address is freed.
#[test]
fn a_vanished_client_is_found_by_dpd_and_its_address_freed() {
    let Some(run) = run(Job {
        name: "l2tp-ipsec-vanish",
        vanish_secs: 35,
        ipsec_extra: "dpd_delay_secs = 5\ndpd_timeout_secs = 15",
        ..Job::default()
    }) else {
        return;
    };
    assert!(run.out.contains("VANISHED"), "the client vanished");
    let lines = run.server.drain(Duration::from_secs(3));
    let position = |text: &str| {
        lines
            .iter()
            .position(|l| l.contains(text))
            .unwrap_or_else(|| panic!("server never said {text:?}"))
    };
    let dead = position("the peer stopped answering dead peer detection");
    let freed = position("session ended, address freed (10.0.10.21)");
    assert!(dead < freed, "DPD ended the session");
}

/// NAT traversal as strongSwan does it when it believes it is behind a
/// NAT (`encap = yes`): RFC 3947 NAT-D, the float to UDP 4500 for Main
/// Mode message 5, UDP-encapsulated transport mode, ESP in UDP with the
/// non-ESP marker telling IKE apart, NAT keepalives.
#[test]
fn nat_traversal_floats_to_4500_and_carries_esp_in_udp() {
    let Some(run) = run(Job {
        name: "l2tp-ipsec-natt",
        encap: true,
        ..Job::default()
    }) else {
        return;
    };
    check_link(&run);
    assert!(
        run.out.contains("remote '10.77.0.1' @ 10.77.0.1[4500]"),
        "strongSwan floated to port 4500"
    );
    run.server
        .expect("ended: deleted by the peer", Duration::from_secs(15));
}

/// Main Mode with RSA certificates (RFC 2409 §5.1): strongSwan signs with
/// a 3072-bit client key and checks our server certificate against the
/// test CA; we check its certificate against `ca_file`. Messages 5 and 6
/// are over 1280 bytes, so both sides send them in IKEv1 fragments.
#[test]
fn rsa_certificates_with_fragmentation_against_ras_server() {
    let pki = TestPki::new(&rcgen::PKCS_RSA_SHA256);
    let Some(run) = run(Job {
        name: "l2tp-ipsec-rsa-cert",
        pki: Some(&pki),
        ..Job::default()
    }) else {
        return;
    };
    let up = run.server.expect(
        "authenticated as CN=ras-interop-client",
        Duration::from_secs(5),
    );
    assert!(
        up.contains("Main Mode AES-CBC-256/SHA1/MODP-2048/RSA"),
        "{up}"
    );
    check_link(&run);
    let charon: Vec<&str> = run
        .out
        .lines()
        .filter(|l| l.starts_with("CHARON: "))
        .collect();
    assert!(
        charon
            .iter()
            .any(|l| l.contains("authentication of 'CN=ras-interop-server'")
                && l.contains("successful")),
        "strongSwan verified our signature: {charon:?}"
    );
    assert!(
        charon.iter().any(|l| l.contains("fragment")),
        "messages 5 and 6 went in fragments: {charon:?}"
    );
}

/// The same with ECDSA P-256 keys (RFC 4754: method 9, r||s signatures).
#[test]
fn ecdsa_certificates_against_ras_server() {
    ecdsa_certificates(
        &rcgen::PKCS_ECDSA_P256_SHA256,
        "l2tp-ipsec-ecdsa-cert",
        "/ECDSA-256",
    );
}

/// ECDSA on P-521 both ways (RFC 4754 method 11 with SHA-512): a P-521 CA
/// signing with ecdsa-with-SHA512, our server certificate and strongSwan's
/// client certificate on P-521.
#[test]
fn ecdsa_p521_certificates_against_ras_server() {
    ecdsa_certificates(
        &rcgen::PKCS_ECDSA_P521_SHA512,
        "l2tp-ipsec-ecdsa521-cert",
        "/ECDSA-521",
    );
}

/// strongSwan and `ras server` with ECDSA certificates of `alg` (CA,
/// server and client): Main Mode names `method`, both signatures verify,
/// the link comes up.
fn ecdsa_certificates(alg: &'static rcgen::SignatureAlgorithm, name: &'static str, method: &str) {
    let pki = TestPki::new(alg);
    let Some(run) = run(Job {
        name,
        pki: Some(&pki),
        pings: 5,
        ..Job::default()
    }) else {
        return;
    };
    let up = run.server.expect(
        "authenticated as CN=ras-interop-client",
        Duration::from_secs(5),
    );
    assert!(up.contains(method), "{up}");
    check_link(&run);
    assert!(
        run.out.lines().any(|l| l.starts_with("CHARON: ")
            && l.contains("authentication of 'CN=ras-interop-server'")
            && l.contains("successful")),
        "strongSwan verified our signature"
    );
}

/// strongSwan's Main Mode with a client certificate its CA has revoked:
/// `ras server` holds the CA's CRL (`[certificate] crl_files`) and refuses
/// the certificate (RFC 2408 §3.14.1 INVALID-CERTIFICATE), naming the
/// serial, the date and the reason; no L2TP session starts.
#[test]
fn a_revoked_client_certificate_is_refused_in_main_mode() {
    let pki = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let Some(run) = run(Job {
        name: "l2tp-ipsec-revoked-cert",
        pki: Some(&pki),
        pings: 1,
        revoked_client: true,
        ..Job::default()
    }) else {
        return;
    };
    assert_ne!(run.rc, 0, "the guest must not connect:\n{}", run.out);
    let line = run.server.expect("revoked on", Duration::from_secs(5));
    assert!(
        line.contains("CN=ras-interop-client")
            && line.contains(":c1:1e:47 revoked on")
            && line.contains("(keyCompromise)"),
        "{line}"
    );
    let later = run.server.drain(Duration::from_millis(500));
    assert!(
        !later.iter().any(|l| l.contains("L2TP session of")),
        "no L2TP session for a revoked certificate: {later:?}"
    );
}

/// The extremes of what clients propose: Main Mode over ECP-521 (RFC 5903)
/// with SHA-384, and 3DES-CBC ESP (RFC 2451) for a client that offers
/// nothing newer, accepted because the operator listed `3des-sha1`.
#[test]
fn ecp521_main_mode_and_listed_3des_esp_against_ras_server() {
    let Some(run) = run(Job {
        name: "l2tp-ipsec-ecp521-3des",
        ike: "aes256-sha384-ecp521",
        esp: "3des-sha1",
        ipsec_extra: "esp = [\"aes256-sha1\", \"3des-sha1\"]",
        ..Job::default()
    }) else {
        return;
    };
    let up = run
        .server
        .expect("authenticated as", Duration::from_secs(5));
    assert!(up.contains("/ECP-521/"), "{up}");
    run.server
        .expect("ESP 3des-cbc/hmac-sha1-96 up", Duration::from_secs(5));
    check_link(&run);
}

/// Issue 14 through L2TP/IPsec: a branch router (strongSwan + xl2tpd +
/// pppd) authenticates as `l2tpbranch` with MS-CHAPv2, which the server
/// relays to FreeRADIUS (RFC 2548); the Access-Accept carries
/// `Framed-Route = "10.96.0.0/24 0.0.0.0 1"` (RFC 2865 §5.22). While the
/// link is up the kernel routes the network to the TUN and a ping from the
/// server's side reaches 10.96.0.1 (a dummy interface in the guest) through
/// L2TP in ESP; the guest reaches back over ppp0's peer route. The client
/// may send from the framed network, but a packet from 10.95.0.1 (neither
/// its address nor a network RADIUS gave it) is dropped by the server's
/// source filter. The route goes with the session.
#[test]
fn a_framed_route_from_freeradius_reaches_a_network_behind_xl2tpd() {
    let Some(run) = run(Job {
        name: "l2tp-ipsec-framed",
        pings: 5,
        radius_user: Some(("l2tpbranch", "l2tpbranch1")),
        guest_nets: "10.96.0.1/32 10.95.0.1/32",
        ping_while_up: &["10.96.0.1"],
        ping_from: "10.96.0.1 10.95.0.1",
        ..Job::default()
    }) else {
        return;
    };
    check_guest(&run);
    // The server's lines in their order.
    run.server.expect(
        "authenticated: user \"l2tpbranch\", MS-CHAPv2",
        Duration::from_secs(5),
    );
    run.server.expect(
        "framed routes through the session: 10.96.0.0/24",
        Duration::from_secs(5),
    );
    let held = run.held.as_ref().expect("the host's checks while up");
    assert!(held.up, "the guest held its link up:\n{}", run.out);
    assert!(
        held.has_route("10.96.0.0/24", "ras-lis0"),
        "the kernel route to the TUN while up:\n{}",
        held.routes
    );
    assert!(
        !held.routes.lines().any(|l| l.starts_with("10.95.")),
        "{}",
        held.routes
    );
    assert!(
        held.answered("10.96.0.1"),
        "a ping from the server's side to 10.96.0.1 answered through the tunnel"
    );
    // Source filter: the framed network may send, another address not.
    assert!(
        run.out.contains("FROM 10.96.0.1: answered"),
        "a ping from the framed network answered:\n{}",
        run.out
    );
    assert!(
        run.out.contains("FROM 10.95.0.1: unanswered"),
        "a ping from outside the client's networks dropped:\n{}",
        run.out
    );
    assert_eq!(
        run.udp_from,
        vec![(
            "from 10.96.0.1".to_string(),
            std::net::IpAddr::from([10, 96, 0, 1])
        )],
        "only the datagram from the framed network reached the server's side"
    );
    run.server
        .expect("dropped a packet from 10.95.0.1", Duration::from_secs(5));
    // The three pings and the datagram from 10.95.0.1, counted.
    let down = run.server.expect("PPP link down:", Duration::from_secs(20));
    assert!(
        down.contains("; 4 packet(s) dropped by the source check"),
        "{down}"
    );
    run.server
        .expect("L2TP session of", Duration::from_secs(20));
    run.server
        .expect("ended: deleted by the peer", Duration::from_secs(15));
    let vm = interop::Vm::shared().unwrap();
    assert_eq!(
        guest_hold::route_left(vm, "10.96.0.0/24"),
        "",
        "the route is removed when the session ends"
    );
}
