//! `ras server` serving IKEv2 remote access to a client we did not write:
//! strongSwan 5.9.8 (charon, kernel ESP in tunnel mode) in the interop VM,
//! as a guest job. The guest's charon (an IKE responder for other tests)
//! gets one more connection, `ras-ikev2`, that initiates to our server,
//! asks for a virtual address (configuration payload) and sends pings to
//! our server's address through the tunnel.
//!
//! - EAP-MSCHAPv2 against our user store, the server authenticated by its
//!   ECDSA certificate signature (RFC 7427), as Windows and macOS connect.
//! - The pre-shared key both ways, with UDP-encapsulated ESP (strongSwan
//!   `encap = yes` pretends a NAT) and a child SA rekey under traffic.
//! - A client certificate (`auth = pubkey`, RFC 7296 §2.15) checked against
//!   `[ikev2] client_ca`, and one from another CA refused.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

mod support;
use support::guest_hold;
use support::pki::TestPki;
use support::*;

/// Our server's own address (the default pool's server address), which
/// answers the pings.
const SERVER_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 20);
/// The server certificate's DNS name, which strongSwan checks as IDr.
const SERVER_ID: &str = "ras-interop-server";
/// The server's IPv6 address on its TUN (`[addresses] ipv6_prefix` ::1).
const SERVER_V6: &str = "fd00:77:1:2::1";

/// The guest's shell job: the strongSwan connection, the pings, the checks.
const JOB: &str = r#"
D=/tmp/ras-ikev2
rm -rf "$D"; mkdir -p "$D"
# Only this run's part of charon's log is shown and checked.
L0=$(wc -l < /tmp/charon.log)
cp /etc/swanctl/swanctl.conf "$D/swanctl.conf.orig"
cat > "$D/conn" <<EOF
    ras-ikev2 {
        version = 2
        remote_addrs = $HOST
        proposals = $IKE
        encap = $ENCAP
        vips = $VIPS
        dpd_delay = 10s
        rekey_time = $IKE_REKEY
        local {
            auth = $LOCAL_AUTH
            id = $LOCAL_ID
            $EAP_ID
        }
        remote {
            auth = $REMOTE_AUTH
            id = $SERVER_ID
        }
        children {
            ras-ikev2 {
                local_ts = $LOCAL_TS
                remote_ts = $REMOTE_TS
                esp_proposals = $ESP
                rekey_time = $REKEY
            }
        }
    }
EOF
sed -i "/^connections {/r $D/conn" /etc/swanctl/swanctl.conf
# Behind the host's NAT: the server's subnet is reached through the host.
[ -n "$NATNET" ] && ip route replace "$NATNET" via "$HOSTGW"
if [ -n "$EXTRA_SECRET" ]; then
    printf '    eap-ras-extra {\n        %s\n    }\n' "$EXTRA_SECRET" > "$D/secret"
    sed -i "/^secrets {/r $D/secret" /etc/swanctl/swanctl.conf
fi
restore() {
    swanctl --terminate --ike ras-ikev2 --timeout 10 >/dev/null 2>&1
    [ -n "$GUEST_NETS" ] && ip link del ras-branch0 2>/dev/null
    cp "$D/swanctl.conf.orig" /etc/swanctl/swanctl.conf
    [ -n "$NATNET" ] && ip route del "$NATNET" via "$HOSTGW" 2>/dev/null
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
if ! swanctl --initiate --child ras-ikev2 --timeout 30 > "$D/initiate.log" 2>&1; then
    echo "=== swanctl --initiate"; cat "$D/initiate.log"; echo "=== charon log"; tail -n 60 /tmp/charon.log; restore; exit 7
fi
echo "UP_SECONDS=$(awk "BEGIN { print $(date +%s.%N) - $t0 }")"
swanctl --list-sas --ike ras-ikev2 | sed 's/^/SA: /'
echo "VIP=$(ip -4 -o addr show | sed -n 's/.* inet \(10\.0\.10\.[0-9]*\)\/32.*/\1/p' | head -n 1)"
rc=0
if [ -n "$HOLD" ]; then
    # The host checks its side while the tunnel is up, then creates $HOLD.
    echo "HOLDING"
    for i in $(seq 1 600); do [ -e "$HOLD" ] && break; sleep 0.2; done
    [ -e "$HOLD" ] || { echo "HOLD: never released"; rc=11; }
    rm -f "$HOLD"
fi
if [ "$EXPECT_CLOSE" = 1 ]; then
    # The server ends the session (a RADIUS Session-Timeout): its Delete
    # takes the IKE SA away on our side.
    ping -c 2 -i 0.3 -W 3 "$SERVER_ADDRESS" || rc=3
    for i in $(seq 1 60); do
        swanctl --list-sas --ike ras-ikev2 2>/dev/null | grep -q ESTABLISHED || break
        sleep 0.25
    done
    if swanctl --list-sas --ike ras-ikev2 2>/dev/null | grep -q ESTABLISHED; then
        echo "CLOSED_BY_SERVER=no"; rc=8
    else
        echo "CLOSED_BY_SERVER=yes"
    fi
    restore
    echo "=== charon log"; tail -n +"$((L0 + 1))" /tmp/charon.log | grep -aE "DELETE|IKE_SA|deleted" | tail -n 20
    exit $rc
fi
ping -c 3 -i 0.3 -W 3 "$SERVER_ADDRESS" || rc=3
ping -c "$PINGS" -i 0.2 -s 1300 -W 3 "$SERVER_ADDRESS" > "$D/ping.log" 2>&1 || rc=4
tail -n 3 "$D/ping.log"
if [ -n "$SERVER_V6" ]; then
    echo "VIP6=$(ip -6 -o addr show | sed -n 's/.* inet6 \(fd00:77:1:2:[0-9a-f:]*\)\/128.*/\1/p' | head -n 1)"
    ping -6 -c 5 -i 0.3 -W 3 "$SERVER_V6" > "$D/ping6.log" 2>&1 || rc=9
    tail -n 2 "$D/ping6.log" | sed 's/^/PING6: /'
fi
if [ "$ECHO_PORT" != 0 ]; then
    # 10 MB to our side's echo service and back, compared by hash.
    head -c 10000000 /dev/urandom > "$D/blob"
    want=$(sha256sum < "$D/blob" | cut -d' ' -f1)
    e0=$(date +%s.%N)
    got=$(timeout 120 nc -N -w 20 "$SERVER_ADDRESS" "$ECHO_PORT" < "$D/blob" | sha256sum | cut -d' ' -f1)
    echo "ECHO_SECONDS=$(awk "BEGIN { print $(date +%s.%N) - $e0 }")"
    if [ "$want" = "$got" ]; then echo "ECHO_INTACT=yes"; else echo "ECHO_INTACT=no"; rc=5; fi
fi
swanctl --list-sas --ike ras-ikev2 | sed 's/^/SA: /'
swanctl --terminate --ike ras-ikev2 --timeout 10 > "$D/terminate.log" 2>&1
echo "TERMINATED=$?"
restore
# Counted over the whole run: a long run's rekeys push the first lines out
# of the excerpt below.
echo "FRAGMENT_LINES=$(tail -n +"$((L0 + 1))" /tmp/charon.log | grep -acE 'received fragment #|reassembled fragmented IKE message')"
echo "=== charon log"; tail -n +"$((L0 + 1))" /tmp/charon.log | grep -aE "ras-ikev2|authentication of|EAP|CHILD_SA|IKE_SA|virtual IP|fragment|rekey" | tail -n 80
exit $rc
"#;

/// The tests share the guest's charon configuration and our server's UDP
/// 500 on the host address: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Run {
    rc: i32,
    out: String,
    server: Server,
    /// After the server: the NAT goes once the server has stopped.
    _nat: Option<support::nat_lab::NatLab>,
    radius: Option<interop::freeradius::FreeRadius>,
    user: String,
    /// What the host saw while the guest held the tunnel up.
    held: Option<guest_hold::Held>,
    _dir: tempfile::TempDir,
    /// Last: released after the server above is stopped.
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// How the client authenticates.
#[derive(Clone, Copy, PartialEq)]
enum ClientAuth {
    /// EAP-MSCHAPv2 with the VM's test user; the server signs.
    Eap,
    /// The pre-shared key both ways.
    Psk,
    /// The test PKI's client certificate, its subject DN as IDi; the
    /// server signs.
    Certificate,
    /// EAP-TLS with the test PKI's client certificate, relayed to
    /// FreeRADIUS (`radius`), which presents the server certificate.
    EapTls,
}

struct Job {
    name: &'static str,
    auth: ClientAuth,
    ike: &'static str,
    esp: &'static str,
    /// CHILD_SA and IKE SA rekey times.
    rekey_secs: u32,
    ike_rekey_secs: u32,
    pings: u32,
    encap: bool,
    /// The server's certificate key (RSA-3072 makes IKE_AUTH too large
    /// for one 1280-byte datagram, RFC 7383).
    server_key: &'static rcgen::SignatureAlgorithm,
    /// Send 10 MB through our side's echo service.
    echo: bool,
    /// Relay EAP to a FreeRADIUS in the server's namespace (RFC 3579).
    radius: bool,
    /// EAP as this user and password instead of the VM's test user.
    eap_user: Option<(&'static str, &'static str)>,
    /// The server is expected to end the session on its own.
    expect_close: bool,
    /// Flood the server with IKE_SA_INIT requests from many source ports
    /// during the pings.
    flood: bool,
    /// Put the server behind a real NAT (nft masquerade on the host).
    behind_nat: bool,
    /// What the client asks to reach, and `[ikev2] routes` (TOML array).
    remote_ts: &'static str,
    /// Ask for an IPv6 address too, and ping the server over IPv6.
    ipv6: bool,
    routes: &'static str,
    /// `[ikev2] client_ca` is a CA of another PKI than the client's.
    foreign_client_ca: bool,
    /// `[certificate] crl_files` holds the CA's CRL revoking the client's
    /// certificate.
    revoked_client: bool,
    /// More `[ikev2]` keys (the proposal lists), one per line.
    server_ikev2: &'static str,
    /// More `[ipsec]` keys, one per line.
    server_ipsec: &'static str,
    /// What the client offers as its own side (strongSwan `local_ts`).
    local_ts: &'static str,
    /// Addresses (with length) on a dummy interface in the guest: the
    /// networks behind a branch router.
    guest_nets: &'static str,
    /// Once the tunnel is up, the guest waits while the host pings these
    /// addresses from the server's namespace (see [`guest_hold::Held`]).
    ping_while_up: &'static [&'static str],
}

impl Default for Job {
    fn default() -> Job {
        Job {
            name: "ikev2",
            auth: ClientAuth::Eap,
            ike: "aes256-sha256-modp2048",
            esp: "aes256-sha256",
            rekey_secs: 3600,
            ike_rekey_secs: 14400,
            pings: 20,
            encap: false,
            server_key: &rcgen::PKCS_ECDSA_P256_SHA256,
            echo: false,
            radius: false,
            eap_user: None,
            expect_close: false,
            flood: false,
            behind_nat: false,
            remote_ts: "10.0.10.20/32",
            ipv6: false,
            routes: "[]",
            foreign_client_ca: false,
            revoked_client: false,
            server_ikev2: "",
            server_ipsec: "",
            local_ts: "dynamic",
            guest_nets: "",
            ping_while_up: &[],
        }
    }
}

/// What a flood of IKE_SA_INIT requests got back.
#[derive(Debug, Default)]
struct FloodReport {
    sent: u64,
    answers: u64,
    cookies: u64,
}

/// From `wait` on, for `length`, sends IKE_SA_INIT requests to `server`
/// from 64 UDP ports in the server's namespace, each with fresh SPIs and a
/// fresh key share, never completing one: half-open SAs pile up until the
/// responder asks for cookies (RFC 7296 §2.6).
fn flood(
    vm: &interop::Vm,
    server: std::net::SocketAddr,
    wait: Duration,
    length: Duration,
) -> std::thread::JoinHandle<FloodReport> {
    use ipsec::ikev2::{ClientAuth, Ikev2Initiator, Ikev2InitiatorConfig};
    let sockets: Vec<std::net::UdpSocket> = vm
        .in_ns(|| {
            (0..64)
                .map(|_| std::net::UdpSocket::bind("0.0.0.0:0").expect("a flood socket"))
                .collect()
        })
        .expect("the namespace");
    std::thread::spawn(move || {
        let mut report = FloodReport::default();
        std::thread::sleep(wait);
        let end = Instant::now() + length;
        let mut buf = [0u8; 2048];
        for s in &sockets {
            s.set_nonblocking(true).unwrap();
        }
        while Instant::now() < end {
            for s in &sockets {
                let config = Ikev2InitiatorConfig::new(
                    ClientAuth::SharedKey(zeroize::Zeroizing::new(b"flood".to_vec())),
                    "flood@example",
                );
                let local = s.local_addr().unwrap();
                let mut initiator = Ikev2Initiator::new(config, local, server, Instant::now());
                while let Some(t) = initiator.poll_transmit() {
                    if s.send_to(&t.bytes, server).is_ok() {
                        report.sent += 1;
                    }
                }
                while let Ok(n) = s.recv(&mut buf) {
                    report.answers += 1;
                    // A COOKIE notify (type 16390) first in the answer.
                    if n > 34 && buf[16] == 41 && buf[28 + 6..28 + 8] == 16390u16.to_be_bytes() {
                        report.cookies += 1;
                    }
                }
            }
        }
        report
    })
}

fn run(job: Job) -> Option<Run> {
    let vm = vm_with_guest_jobs("IKEv2 interop")?;
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let nat = job
        .behind_nat
        .then(|| support::nat_lab::NatLab::create(&vm.ns));
    let host = if nat.is_some() {
        support::nat_lab::SERVER_IP
    } else {
        vm.host_ip
    };
    let user = vm.user().clone();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    let psk = dir.path().join("ipsec-psk");
    std::fs::write(&psk, format!("{}\n", vm.psk)).unwrap();
    let pki = TestPki::new(job.server_key);
    let echo_port = if job.echo { echo_service(vm) } else { 0 };
    // With RADIUS: FreeRADIUS knows the same user and password as the
    // guest's EAP secret; our user store does not.
    let (radius, radius_section) = if job.radius {
        let (mut fr, section) = freeradius_for_vm(vm, dir.path(), &state, "IKEv2 with RADIUS")?;
        if job.auth == ClientAuth::EapTls {
            let files = dir.path().join("fr-tls");
            std::fs::create_dir_all(&files).unwrap();
            let (ca, cert, key) = (
                files.join("ca.pem"),
                files.join("server.pem"),
                files.join("server-key.pem"),
            );
            std::fs::write(&ca, &pki.ca).unwrap();
            std::fs::write(&cert, &pki.server_cert).unwrap();
            std::fs::write(&key, &pki.server_key).unwrap();
            fr.use_eap_tls(&ca, &cert, &key)
                .expect("FreeRADIUS with EAP-TLS");
        }
        (Some(fr), section)
    } else {
        (None, String::new())
    };
    let (chain, key) = (
        dir.path().join("server.pem"),
        dir.path().join("server-key.pem"),
    );
    std::fs::write(&chain, &pki.server_cert).unwrap();
    std::fs::write(&key, &pki.server_key).unwrap();
    let crl_files = if job.revoked_client {
        let crl = dir.path().join("client-ca.crl");
        std::fs::write(&crl, &pki.client_revoked_crl).unwrap();
        format!("crl_files = [{crl:?}]\n")
    } else {
        String::new()
    };
    // Certificate clients: their CA, or another PKI's.
    let (auth, client_ca) = if job.auth == ClientAuth::Certificate {
        let client_ca = dir.path().join("client-ca.pem");
        let ca = if job.foreign_client_ca {
            TestPki::new(job.server_key).ca
        } else {
            pki.ca.clone()
        };
        std::fs::write(&client_ca, ca).unwrap();
        (
            "[\"eap\", \"certificate\"]",
            format!("client_ca = {client_ca:?}\n"),
        )
    } else {
        ("[\"eap\", \"psk\"]", String::new())
    };
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-interop-ikev2\"\n\n\
             [sstp]\nlisten = []\n\n\
             [pptp]\nlisten = []\n\n\
             [certificate]\nchain = {chain:?}\nkey = {key:?}\n{crl_files}\n\
             [ipsec]\nlisten = \"{host}\"\npsk_file = {psk:?}\n{server_ipsec}\n\
             [ikev2]\nauth = {auth}\n{client_ca}local_id = \"{SERVER_ID}\"\nroutes = {routes}\n{server_ikev2}\n\
             [addresses]\nipv6_prefix = \"fd00:77:1:2::/64\"\n\n\
             {radius_section}[tun]\nname = \"ras-ike0\"\n",
            routes = job.routes,
            server_ikev2 = job.server_ikev2,
            server_ipsec = job.server_ipsec,
        ),
    )
    .unwrap();
    if radius.is_none() {
        let pw = password_file(dir.path(), &user.name, &user.password);
        add_user(&config, &user.name, &pw, &[]);
    }
    let command = if nat.is_some() {
        let mut c = std::process::Command::new("ip");
        c.args(["netns", "exec", support::nat_lab::SERVER_NS, RAS]);
        c
    } else {
        vm.command_in_ns(RAS)
    };
    let server = Server::start_with(command, &config, "info");
    let (local_auth, local_id, eap_id, remote_auth) = match job.auth {
        ClientAuth::Eap => (
            "eap-mschapv2",
            "ras-ikev2-client",
            format!(
                "eap_id = {}",
                job.eap_user.map_or(user.name.as_str(), |u| u.0)
            ),
            "pubkey",
        ),
        ClientAuth::Psk => ("psk", "psk-client@ras", String::new(), "psk"),
        // strongSwan's eap-tls plugin; the EAP identity is the CN.
        ClientAuth::EapTls => (
            "eap-tls",
            "'\"CN=ras-interop-client\"'",
            "certs = ras-test-client.pem\n            eap_id = ras-interop-client".to_string(),
            "pubkey",
        ),
        // Windows' machine certificates send the subject DN as IDi.
        ClientAuth::Certificate => (
            "pubkey",
            "'\"CN=ras-interop-client\"'",
            "certs = ras-test-client.pem".to_string(),
            "pubkey",
        ),
    };
    let script = format!(
        "set -u\nHOST={host}\nREMOTE_TS={remote_ts}\nVIPS={vips}\nSERVER_V6={server_v6}\nNATNET={natnet}\nHOSTGW={hostgw}\nSERVER_ADDRESS={SERVER_ADDRESS}\nSERVER_ID={SERVER_ID}\n\
         LOCAL_TS={local_ts}\nGUEST_NETS='{guest_nets}'\nHOLD={hold}\n\
         IKE={ike}\nESP={esp}\nREKEY={rekey}s\nIKE_REKEY={ike_rekey}s\nPINGS={pings}\nENCAP={encap}\n\
         ECHO_PORT={echo_port}\n\
         LOCAL_AUTH={local_auth}\nLOCAL_ID={local_id}\nEAP_ID='{eap_id}'\nREMOTE_AUTH={remote_auth}\n\
         EXTRA_SECRET='{extra_secret}'\nEXPECT_CLOSE={expect_close}\n\
         {files}{JOB}",
        natnet = if nat.is_some() { "10.88.0.0/24" } else { "" },
        hostgw = vm.host_ip,
        remote_ts = if job.ipv6 {
            format!("{},{SERVER_V6}/128", job.remote_ts)
        } else {
            job.remote_ts.to_string()
        },
        vips = if job.ipv6 { "0.0.0.0,::" } else { "0.0.0.0" },
        server_v6 = if job.ipv6 { SERVER_V6 } else { "" },
        local_ts = job.local_ts,
        guest_nets = job.guest_nets,
        hold = if !job.ping_while_up.is_empty() {
            guest_hold::release_path(job.name)
        } else {
            String::new()
        },
        ike = job.ike,
        esp = job.esp,
        rekey = job.rekey_secs,
        ike_rekey = job.ike_rekey_secs,
        pings = job.pings,
        encap = if job.encap { "yes" } else { "no" },
        files = pki.guest_files(),
        extra_secret = job
            .eap_user
            .map(|(name, password)| format!("id = {name}\n        secret = \"{password}\""))
            .unwrap_or_default(),
        expect_close = u8::from(job.expect_close),
    );
    let flooding = job.flood.then(|| {
        flood(
            vm,
            std::net::SocketAddr::new(vm.host_ip.into(), 500),
            Duration::from_secs(4),
            Duration::from_secs(15),
        )
    });
    let started = Instant::now();
    let name = job.name;
    let guest = guest_hold::spawn_job(vm, name, script, Duration::from_secs(240));
    let held = (!job.ping_while_up.is_empty())
        .then(|| guest_hold::hold(vm, name, job.ping_while_up, &guest));
    let (rc, out) = guest
        .join()
        .expect("the guest job's thread")
        .expect("strongSwan job");
    if let Some(flooding) = flooding {
        let report = flooding.join().expect("the flood");
        eprintln!(
            "--- flood: {} IKE_SA_INIT sent, {} answered, {} with a cookie request",
            report.sent, report.answers, report.cookies
        );
        assert!(
            report.cookies > 0,
            "the responder asked the flood for cookies"
        );
    }
    eprintln!(
        "--- strongSwan IKEv2 in the guest, {} (rc {rc}, {:.1} s):\n{out}",
        job.name,
        started.elapsed().as_secs_f64()
    );
    Some(Run {
        rc,
        out,
        server,
        _nat: nat,
        radius,
        user: user.name,
        held,
        _dir: dir,
        _turn: turn,
    })
}

/// What ping said about loss, e.g. "0% packet loss".
fn loss_line(out: &str) -> String {
    out.lines()
        .rfind(|l| l.contains("packet loss"))
        .unwrap_or("no ping summary")
        .to_string()
}

/// Every ping through the tunnel was answered.
fn assert_no_loss(run: &Run) {
    let line = loss_line(&run.out);
    assert!(line.contains(" 0% packet loss"), "{line}");
}

/// The virtual address strongSwan installed, which must be from our pool.
fn check_address(run: &Run) {
    let address: Ipv4Addr = run
        .out
        .lines()
        .find_map(|l| l.strip_prefix("VIP="))
        .and_then(|a| a.trim().parse().ok())
        .expect("a virtual address from the configuration payload");
    assert!(
        (21..=29).contains(&address.octets()[3]) && address.octets()[..3] == [10, 0, 10],
        "{address} from our pool"
    );
}

#[test]
fn strongswan_eap_mschapv2_with_certificate_against_ras_server() {
    let Some(run) = run(Job {
        name: "ikev2-eap",
        ..Job::default()
    }) else {
        return;
    };
    assert_eq!(run.rc, 0, "strongSwan IKEv2 EAP against ras server");
    check_address(&run);
    assert_no_loss(&run);
    run.server.expect(
        &format!("authenticated: user \"{}\", EAP over IKEv2", run.user),
        Duration::from_secs(5),
    );
    run.server
        .expect("ESP aes256-cbc/hmac-sha256-128 up", Duration::from_secs(5));
    // The client's Delete ends the session and frees its address.
    run.server
        .expect("IKE SA ended: deleted by the peer", Duration::from_secs(15));
    run.server
        .expect("session ended, address freed", Duration::from_secs(10));
}

#[test]
fn strongswan_psk_in_udp_with_child_rekeys_against_ras_server() {
    let Some(run) = run(Job {
        name: "ikev2-psk",
        auth: ClientAuth::Psk,
        ike: "aes128gcm16-prfsha256-x25519",
        esp: "aes128gcm16",
        rekey_secs: 10,
        pings: 120,
        encap: true,
        ..Job::default()
    }) else {
        return;
    };
    assert_eq!(run.rc, 0, "strongSwan IKEv2 PSK against ras server");
    check_address(&run);
    assert_no_loss(&run);
    run.server.expect(
        "authenticated: user \"psk-client@ras\", pre-shared key over IKEv2",
        Duration::from_secs(5),
    );
    // The first child and at least two rekeyed ones (every 10 s over the
    // 25 s of pings), all in UDP, all for the same address.
    for _ in 0..3 {
        let line = run
            .server
            .expect("ESP aes128gcm16 up", Duration::from_secs(5));
        assert!(line.contains(", in UDP"), "{line}");
        assert!(line.contains("address 10.0.10.2"), "{line}");
    }
    run.server
        .expect("IKE SA ended: deleted by the peer", Duration::from_secs(15));
}

/// A client certificate (strongSwan `auth = pubkey`, its subject DN as
/// IDi, as Windows' machine certificates) against `[ikev2] auth =
/// ["eap", "certificate"]`: it sends AUTH, so it is a certificate client
/// (RFC 7296 §2.16); the user is the certificate's CN, and our server
/// answers with its own signature.
#[test]
fn strongswan_client_certificate_against_ras_server() {
    client_certificate(&rcgen::PKCS_ECDSA_P256_SHA256, "ikev2-cert");
}

/// The same on P-521 (CA, server and client): a P-521 CA signs with
/// ecdsa-with-SHA512, and each side checks the other's AUTH signature
/// (RFC 7427 with SHA-512).
#[test]
fn strongswan_p521_client_certificate_against_ras_server() {
    client_certificate(&rcgen::PKCS_ECDSA_P521_SHA512, "ikev2-cert-p521");
}

fn client_certificate(alg: &'static rcgen::SignatureAlgorithm, name: &'static str) {
    let Some(run) = run(Job {
        name,
        auth: ClientAuth::Certificate,
        server_key: alg,
        ..Job::default()
    }) else {
        return;
    };
    assert_eq!(run.rc, 0, "strongSwan IKEv2 with a client certificate");
    check_address(&run);
    assert_no_loss(&run);
    assert!(
        run.out.lines().any(
            |l| l.contains("authentication of 'ras-interop-server' with")
                && l.ends_with("successful")
        ),
        "strongSwan checked our signature"
    );
    run.server.expect(
        "authenticated: user \"ras-interop-client\", certificate \"CN=ras-interop-client\" over IKEv2",
        Duration::from_secs(5),
    );
    run.server
        .expect("ESP aes256-cbc/hmac-sha256-128 up", Duration::from_secs(5));
    run.server
        .expect("IKE SA ended: deleted by the peer", Duration::from_secs(15));
}

/// `[ikev2]` proposal lists (issue 14: "Operators can remove weak ones; a
/// refusal logs what the client offered"): with MODP groups removed from
/// `ike_groups`, strongSwan proposing only MODP-2048 is refused with
/// NO_PROPOSAL_CHOSEN and the log names its offer; with AES-CBC removed
/// from `esp`, a client that offers only aes128-sha1 ESP gets its IKE SA
/// but no child SA (the refusal logged with the ESP offer); and the same
/// client with the listed AES-GCM goes through on those lists.
#[test]
fn the_operators_proposal_lists_refuse_what_they_leave_out() {
    const LISTS: &str = "ike_groups = [\"ecp256\", \"ecp384\"]\nesp = [\"aes256gcm16\"]\n";
    let Some(refused) = run(Job {
        name: "ikev2-no-modp",
        ike: "aes256-sha256-modp2048",
        server_ikev2: LISTS,
        ..Job::default()
    }) else {
        return;
    };
    assert_ne!(refused.rc, 0, "the connection must fail");
    assert!(
        refused.out.contains("NO_PROPOSAL_CHOSEN"),
        "strongSwan was told NO_PROPOSAL_CHOSEN"
    );
    let line = refused.server.expect(
        "no acceptable IKEv2 proposal (NO_PROPOSAL_CHOSEN); offered: ",
        Duration::from_secs(5),
    );
    assert!(line.contains("MODP-2048"), "{line}");
    drop(refused);

    let Some(no_esp) = run(Job {
        name: "ikev2-no-cbc-esp",
        ike: "aes256-sha256-ecp256",
        esp: "aes128-sha1",
        server_ikev2: LISTS,
        ..Job::default()
    }) else {
        return;
    };
    assert_ne!(
        no_esp.rc, 0,
        "no child SA without an acceptable ESP proposal"
    );
    let line = no_esp.server.expect(
        "no acceptable ESP proposal from IKEv2 client",
        Duration::from_secs(5),
    );
    assert!(line.contains("offered: "), "{line}");
    drop(no_esp);

    let Some(listed) = run(Job {
        name: "ikev2-listed",
        ike: "aes256-sha256-ecp256",
        esp: "aes256gcm16",
        server_ikev2: LISTS,
        ..Job::default()
    }) else {
        return;
    };
    assert_no_loss(&listed);
    check_address(&listed);
}

/// IKEv2 without L2TP/IPsec (`[ipsec] ikev1 = false`): strongSwan's IKEv2
/// connects and pings as usual, and an IKEv1 Main Mode message to the same
/// port is dropped with a log line.
#[test]
fn an_ikev2_only_server_serves_ikev2_and_drops_ikev1() {
    let Some(run) = run(Job {
        name: "ikev2-only",
        server_ipsec: "ikev1 = false\n",
        ..Job::default()
    }) else {
        return;
    };
    assert_eq!(run.rc, 0, "strongSwan's IKEv2 connection");
    assert_no_loss(&run);
    check_address(&run);
    // An ISAKMP header (RFC 2408 §3.1): version 1.0, Main Mode (2), an SA
    // payload next; the server drops it before reading further.
    let vm = interop::Vm::shared().expect("the VM is up");
    let mut header = vec![0u8; 28];
    header[..8].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    header[16] = 1; // next payload: SA
    header[17] = 0x10; // major version 1, minor 0
    header[18] = 2; // Main Mode (Identity Protection)
    header[24..28].copy_from_slice(&28u32.to_be_bytes());
    let host = vm.host_ip;
    vm.in_ns(move || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        s.send_to(&header, (host, 500)).unwrap();
    })
    .unwrap();
    run.server.expect(
        "an IKEv1 (L2TP/IPsec) message dropped: this server answers IKEv2 only",
        Duration::from_secs(5),
    );
}

/// A client certificate from a CA that `[ikev2] client_ca` does not hold is
/// refused with AUTHENTICATION_FAILED, and the server's log says why.
#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let Some(run) = run(Job {
        name: "ikev2-cert-foreign",
        auth: ClientAuth::Certificate,
        foreign_client_ca: true,
        ..Job::default()
    }) else {
        return;
    };
    refused_with_authentication_failed(
        &run,
        "IKEv2 client CN=ras-interop-client refused: its certificate was refused: no trusted CA issued \"CN=ras-interop-client\"",
    );
}

/// swanctl failed to initiate (rc 7) because it was told
/// AUTHENTICATION_FAILED, and our log line with `log` in it.
fn refused_with_authentication_failed(run: &Run, log: &str) -> String {
    assert_eq!(run.rc, 7, "swanctl --initiate fails");
    assert!(
        run.out.contains("AUTHENTICATION_FAILED"),
        "strongSwan was told AUTHENTICATION_FAILED"
    );
    run.server.expect(log, Duration::from_secs(5))
}

/// strongSwan with a client certificate its CA has revoked: `ras server`,
/// holding the CA's CRL (`[certificate] crl_files`), refuses it with
/// AUTHENTICATION_FAILED (RFC 7296 §2.21.2, the same answer as for any bad
/// certificate) and logs the serial and the revocation.
#[test]
fn a_revoked_client_certificate_is_refused() {
    let Some(run) = run(Job {
        name: "ikev2-cert-revoked",
        auth: ClientAuth::Certificate,
        revoked_client: true,
        ..Job::default()
    }) else {
        return;
    };
    let line =
        refused_with_authentication_failed(&run, "IKEv2 client CN=ras-interop-client refused");
    // The serial as openssl shows it (0xc11e47 = c1:1e:47, DER adds a
    // leading zero octet), the date and the CRL entry's reason.
    assert!(
        line.contains(":c1:1e:47 revoked on") && line.contains("(keyCompromise)"),
        "{line}"
    );
}

/// An RSA-3072 server certificate makes the IKE_AUTH answer larger than
/// one datagram: it goes in RFC 7383 fragments. Then 10 MB are echoed
/// while the CHILD_SA is rekeyed with a key exchange (PFS) and the IKE SA
/// is rekeyed too.
#[test]
fn strongswan_fragmented_ike_auth_and_rekeys_with_pfs_under_a_transfer() {
    let Some(run) = run(Job {
        name: "ikev2-rekeys",
        ike: "aes128gcm16-prfsha256-ecp256",
        esp: "aes128gcm16-ecp256",
        // Whole seconds: strongSwan's kernel lifetimes are (rekey 10 s,
        // expiry 11 s); at 6 s both round to the same second.
        rekey_secs: 10,
        ike_rekey_secs: 14,
        pings: 80,
        server_key: &rcgen::PKCS_RSA_SHA256,
        echo: true,
        ..Job::default()
    }) else {
        return;
    };
    assert_eq!(run.rc, 0, "strongSwan IKEv2 against ras server");
    check_address(&run);
    assert!(run.out.contains("ECHO_INTACT=yes"), "10 MB echoed intact");
    assert_no_loss(&run);
    // strongSwan reassembled our fragments, rekeyed both SAs.
    let fragment_lines: u32 = run
        .out
        .lines()
        .find_map(|l| l.strip_prefix("FRAGMENT_LINES="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(fragment_lines > 0, "IKE_AUTH in fragments");
    assert!(run.out.contains("rekeyed"), "strongSwan logged a rekey");
    let first = run
        .server
        .expect("ESP aes128gcm16 up", Duration::from_secs(5));
    assert!(first.contains("address 10.0.10.2"), "{first}");
    run.server
        .expect("ESP aes128gcm16 up", Duration::from_secs(5));
}

/// EAP relayed to FreeRADIUS (RFC 3579), as NPS does for RRAS: the user is
/// known only to RADIUS, and the MSK in its Access-Accept (MS-MPPE keys)
/// keys both AUTH payloads.
#[test]
fn strongswan_eap_relayed_to_freeradius_against_ras_server() {
    let Some(run) = run(Job {
        name: "ikev2-radius",
        radius: true,
        ..Job::default()
    }) else {
        return;
    };
    let radius_log = run.radius.as_ref().map(|r| r.log()).unwrap_or_default();
    assert_eq!(
        run.rc,
        0,
        "strongSwan IKEv2 EAP through FreeRADIUS; FreeRADIUS said:\n{}",
        radius_log
            .lines()
            .rev()
            .take(80)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    check_address(&run);
    assert_no_loss(&run);
    assert!(
        radius_log.contains("MS-MPPE-Recv-Key"),
        "FreeRADIUS sent the keys"
    );
    run.server
        .expect("IKE SA ended: deleted by the peer", Duration::from_secs(15));
}

/// EAP-TLS relayed to FreeRADIUS, as NPS does for RRAS' "smart card or
/// other certificate": strongSwan's eap-tls proves the client certificate
/// to FreeRADIUS (which presents the server certificate), and the MSK in
/// the Access-Accept keys the AUTH payloads.
#[test]
fn strongswan_eap_tls_relayed_to_freeradius_against_ras_server() {
    let Some(run) = run(Job {
        name: "ikev2-eap-tls",
        auth: ClientAuth::EapTls,
        radius: true,
        ..Job::default()
    }) else {
        return;
    };
    let radius_log = run.radius.as_ref().map(|r| r.log()).unwrap_or_default();
    assert_eq!(
        run.rc,
        0,
        "strongSwan IKEv2 EAP-TLS through FreeRADIUS; FreeRADIUS said:\n{}",
        radius_log
            .lines()
            .rev()
            .take(80)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    check_address(&run);
    assert_no_loss(&run);
    assert!(radius_log.contains("eap_tls"), "FreeRADIUS ran EAP-TLS");
    assert!(
        radius_log.contains("MS-MPPE-Recv-Key"),
        "FreeRADIUS sent the keys"
    );
    run.server.expect(
        "authenticated: user \"ras-interop-client\", EAP over IKEv2",
        Duration::from_secs(5),
    );
    run.server
        .expect("IKE SA ended: deleted by the peer", Duration::from_secs(15));
}

/// A RADIUS Session-Timeout (FreeRADIUS's user "short": 4 s) ends the
/// session from the server's side: the IKE SA is deleted with the client
/// told, the address freed, accounting says Session-Timeout.
#[test]
fn a_radius_session_timeout_deletes_the_ike_sa() {
    let Some(run) = run(Job {
        name: "ikev2-timeout",
        radius: true,
        eap_user: Some(("short", "short123")),
        expect_close: true,
        ..Job::default()
    }) else {
        return;
    };
    assert_eq!(run.rc, 0, "the server closed the IKE SA");
    assert!(run.out.contains("CLOSED_BY_SERVER=yes"));
    run.server.expect(
        "authenticated: user \"short\", EAP over IKEv2",
        Duration::from_secs(5),
    );
    run.server
        .expect("IKE SA ended: session timeout", Duration::from_secs(15));
    run.server
        .expect("cause=Session-Timeout", Duration::from_secs(5));
}

/// A flood of IKE_SA_INIT requests that never finish turns cookies on
/// (RFC 7296 §2.6) and does not stall an established tunnel: 100 pings
/// through it while the flood runs lose nothing.
#[test]
fn an_ike_sa_init_flood_turns_on_cookies_and_spares_the_tunnel() {
    let Some(run) = run(Job {
        name: "ikev2-flood",
        auth: ClientAuth::Psk,
        pings: 100,
        flood: true,
        ..Job::default()
    }) else {
        return;
    };
    assert_eq!(run.rc, 0, "strongSwan IKEv2 during a flood");
    assert_no_loss(&run);
}

/// The server behind a real NAT (nft masquerade on the host): NAT
/// detection sees the rewrite, ESP goes in UDP on 4500 both ways.
#[test]
fn strongswan_through_a_real_nat_against_ras_server() {
    let Some(run) = run(Job {
        name: "ikev2-nat",
        behind_nat: true,
        ..Job::default()
    }) else {
        return;
    };
    assert_eq!(run.rc, 0, "strongSwan IKEv2 through a NAT");
    check_address(&run);
    assert_no_loss(&run);
    let up = run
        .server
        .expect("authenticated as \"test\"", Duration::from_secs(5));
    assert!(up.contains("client behind NAT"), "{up}");
    assert!(
        up.contains("IKEv2: 10.88.0.2:"),
        "from the NAT's address: {up}"
    );
    let child = run.server.expect("ESP aes256-cbc", Duration::from_secs(5));
    assert!(child.contains(", in UDP"), "{child}");
}

/// Split tunnelling: the client asks for everything (0.0.0.0/0) and gets
/// its traffic selectors narrowed to `[ikev2] routes` (RFC 7296 §2.9).
#[test]
fn a_full_tunnel_request_is_narrowed_to_the_configured_routes() {
    let Some(run) = run(Job {
        name: "ikev2-routes",
        auth: ClientAuth::Psk,
        remote_ts: "0.0.0.0/0",
        routes: "[\"10.0.10.0/24\", \"192.0.2.0/24\"]",
        ..Job::default()
    }) else {
        return;
    };
    assert_eq!(run.rc, 0, "strongSwan IKEv2 with split routes");
    let remote: Vec<&str> = run
        .out
        .lines()
        .filter_map(|l| l.trim_start_matches("SA:").trim().strip_prefix("remote "))
        .filter(|l| l.contains('/'))
        .collect();
    assert!(
        remote.iter().any(|l| l.contains("10.0.10.0/24"))
            && remote.iter().any(|l| l.contains("192.0.2.0/24")),
        "narrowed to the routes: {remote:?}"
    );
    assert!(
        !remote.iter().any(|l| l.contains("0.0.0.0/0")),
        "not everything: {remote:?}"
    );
    assert_no_loss(&run);
}

/// A dual-stack client (strongSwan `vips = 0.0.0.0,::`) gets an IPv4 and
/// an IPv6 address (INTERNAL_IP6_ADDRESS, RFC 7296 §3.15.1) from the
/// server's /64 and pings the server over both.
#[test]
fn a_dual_stack_client_gets_an_ipv6_address_too() {
    let Some(run) = run(Job {
        name: "ikev2-ipv6",
        auth: ClientAuth::Psk,
        ipv6: true,
        ..Job::default()
    }) else {
        return;
    };
    assert_eq!(run.rc, 0, "strongSwan IKEv2 dual stack against ras server");
    check_address(&run);
    assert_no_loss(&run);
    let v6: std::net::Ipv6Addr = run
        .out
        .lines()
        .find_map(|l| l.strip_prefix("VIP6="))
        .and_then(|a| a.trim().parse().ok())
        .expect("an IPv6 address from the configuration payload");
    assert_eq!(v6.segments()[..4], [0xfd00, 0x77, 1, 2], "{v6} in our /64");
    assert!(
        run.out.contains("PING6: 5 packets transmitted, 5 received"),
        "five IPv6 pings answered"
    );
}

/// The networks the CHILD_SA covers on one side, from `swanctl --list-sas`
/// (`local  10.0.10.21/32 10.97.0.0/24`), every listing of the run.
fn child_selectors<'a>(run: &'a Run, side: &str) -> Vec<&'a str> {
    run.out
        .lines()
        .filter_map(|l| l.strip_prefix("SA:"))
        .filter_map(|l| l.trim().strip_prefix(side))
        .filter(|l| l.starts_with(' ') && l.contains('/'))
        .flat_map(str::split_whitespace)
        .collect()
}

/// Issue 14: a branch router dials in over IKEv2 with EAP-MSCHAPv2 through
/// FreeRADIUS, whose Access-Accept for `ikebranch` carries
/// `Framed-Route = "10.97.0.0/24 0.0.0.0 1"` (RFC 2865 §5.22). strongSwan
/// offers its virtual address and two networks behind it (RFC 7296 §2.9
/// TSi); the server narrows TSi to the address and the framed network,
/// so 10.98.0.0/24, which RADIUS did not give, is left out. While the
/// tunnel is up, the kernel routes the network to the TUN and a ping from
/// the server's side reaches 10.97.0.1 in the guest through ESP; the route
/// goes with the session. (10.77.0.0/24, the SSTP test's network, is the
/// VM's own link here.)
#[test]
fn a_framed_route_from_freeradius_reaches_a_network_behind_strongswan() {
    let Some(run) = run(Job {
        name: "ikev2-framed",
        radius: true,
        eap_user: Some(("ikebranch", "ikebranch1")),
        local_ts: "dynamic,10.97.0.0/24,10.98.0.0/24",
        guest_nets: "10.97.0.1/32 10.98.0.1/32",
        ping_while_up: &["10.97.0.1"],
        ..Job::default()
    }) else {
        return;
    };
    assert_eq!(run.rc, 0, "strongSwan IKEv2 branch through FreeRADIUS");
    check_address(&run);
    assert_no_loss(&run);
    run.server.expect(
        "authenticated: user \"ikebranch\", EAP over IKEv2",
        Duration::from_secs(5),
    );
    run.server.expect(
        "framed routes through the session: 10.97.0.0/24",
        Duration::from_secs(5),
    );
    // The CHILD_SA as strongSwan installed it: TSi narrowed.
    let local = child_selectors(&run, "local");
    assert!(
        local.contains(&"10.97.0.0/24"),
        "TSi covers the framed network: {local:?}"
    );
    assert!(
        !local.iter().any(|ts| ts.starts_with("10.98.")),
        "TSi narrowed: no network RADIUS did not give: {local:?}"
    );
    assert!(
        !local.iter().any(|ts| ts.starts_with("0.0.0.0")),
        "TSi narrowed: not everything: {local:?}"
    );
    let held = run.held.as_ref().expect("the host's checks while up");
    assert!(held.up, "the guest held its tunnel up:\n{}", run.out);
    assert!(
        held.has_route("10.97.0.0/24", "ras-ike0"),
        "the kernel route to the TUN while up:\n{}",
        held.routes
    );
    assert!(
        !held.routes.lines().any(|l| l.starts_with("10.98.")),
        "{}",
        held.routes
    );
    assert!(
        held.answered("10.97.0.1"),
        "a ping from the server's side to 10.97.0.1 answered through the tunnel"
    );
    run.server
        .expect("IKE SA ended: deleted by the peer", Duration::from_secs(15));
    let vm = interop::Vm::shared().unwrap();
    assert_eq!(
        guest_hold::route_left(vm, "10.97.0.0/24"),
        "",
        "the route is removed when the session ends"
    );
}

/// Issue 14 for IPv6 (RFC 3162 §2.5): the branch router is dual stack
/// (strongSwan `vips = 0.0.0.0,::`, an address from the server's /64 by
/// INTERNAL_IP6_ADDRESS) and FreeRADIUS's Access-Accept for `ikebranch6`
/// carries `Framed-IPv6-Route = "2001:db8:97::/64 :: 1"` next to the
/// Framed-Route of the test above. strongSwan offers both networks and
/// 2001:db8:98::/64, which RADIUS did not give: TSi is narrowed to the
/// addresses and the two framed networks (RFC 7296 §2.9). While the
/// tunnel is up the kernel routes 2001:db8:97::/64 to the TUN and a ping6
/// from the server's side reaches 2001:db8:97::1 in the guest through ESP;
/// the route goes with the session.
#[test]
fn a_framed_ipv6_route_from_freeradius_reaches_a_network_behind_strongswan() {
    let Some(run) = run(Job {
        name: "ikev2-framed6",
        radius: true,
        ipv6: true,
        eap_user: Some(("ikebranch6", "ikebranch6")),
        local_ts: "dynamic,10.97.0.0/24,2001:db8:97::/64,2001:db8:98::/64",
        guest_nets: "10.97.0.1/32 2001:db8:97::1/128 2001:db8:98::1/128",
        ping_while_up: &["2001:db8:97::1", "10.97.0.1"],
        ..Job::default()
    }) else {
        return;
    };
    assert_eq!(
        run.rc, 0,
        "strongSwan IKEv2 dual-stack branch through FreeRADIUS"
    );
    check_address(&run);
    assert_no_loss(&run);
    assert!(
        run.out.contains("PING6: 5 packets transmitted, 5 received"),
        "the client's own IPv6 pings to the server answered"
    );
    run.server.expect(
        "authenticated: user \"ikebranch6\", EAP over IKEv2",
        Duration::from_secs(5),
    );
    let routed = run
        .server
        .expect("framed routes through the session:", Duration::from_secs(5));
    assert!(
        routed.contains("2001:db8:97::/64") && routed.contains("10.97.0.0/24"),
        "{routed}"
    );
    // The CHILD_SA as strongSwan installed it: TSi narrowed.
    let local = child_selectors(&run, "local");
    assert!(
        local.contains(&"2001:db8:97::/64"),
        "TSi covers the framed IPv6 network: {local:?}"
    );
    assert!(
        local.contains(&"10.97.0.0/24"),
        "TSi covers the framed IPv4 network: {local:?}"
    );
    assert!(
        !local.iter().any(|ts| ts.starts_with("2001:db8:98:")),
        "TSi narrowed: no network RADIUS did not give: {local:?}"
    );
    assert!(
        !local
            .iter()
            .any(|ts| *ts == "::/0" || ts.starts_with("0.0.0.0")),
        "TSi narrowed: not everything: {local:?}"
    );
    let held = run.held.as_ref().expect("the host's checks while up");
    assert!(held.up, "the guest held its tunnel up:\n{}", run.out);
    assert!(
        held.has_route("2001:db8:97::/64", "ras-ike0"),
        "the kernel IPv6 route to the TUN while up:\n{}",
        held.routes
    );
    assert!(
        !held.routes.lines().any(|l| l.starts_with("2001:db8:98:")),
        "{}",
        held.routes
    );
    assert!(
        held.answered("2001:db8:97::1"),
        "a ping6 from the server's side to 2001:db8:97::1 answered through the tunnel"
    );
    assert!(
        held.answered("10.97.0.1"),
        "a ping from the server's side to 10.97.0.1 answered through the tunnel"
    );
    run.server
        .expect("IKE SA ended: deleted by the peer", Duration::from_secs(15));
    let vm = interop::Vm::shared().unwrap();
    assert_eq!(
        guest_hold::route_left(vm, "2001:db8:97::/64"),
        "",
        "the IPv6 route is removed when the session ends"
    );
    assert_eq!(guest_hold::route_left(vm, "10.97.0.0/24"), "");
}
