//! MS-CHAP version 1 (RFC 2433) and stateful MPPE against real Linux pppd
//! in the interop VM (issue 11):
//!
//! - pptp-linux + pppd as the client of our `ras server`, with
//!   `require-mschap refuse-mschap-v2 refuse-eap` and MPPE-128: once
//!   stateless (our default), once stateful (`mppe-stateful` against
//!   `mppe_stateful = true`) with packets lost on purpose both ways in the
//!   guest, so that our decryptor and Linux's ask for resets, both answer
//!   with Reset-Acks and both must follow the other's key changes; pings
//!   must all pass once the loss stops.
//! - `ras connect pptp://` against pptpd whose pppd is switched to
//!   `require-mschap` for the length of the test (its options file is
//!   restored afterwards, by a guard even when the test fails, and by the
//!   guest itself after 3 minutes at the latest).

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::*;

/// Our server's PPP address (the default pool's first address).
const SERVER_PPP: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 20);

/// The tests of this file share port 1723 and the TUN name on the host,
/// pptpd's options file and the loss rules in the guest: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Hold this for the whole test (a failed test poisons nothing here).
fn serialised() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn vm_with_jobs() -> Option<&'static interop::Vm> {
    let vm = vm_with_guest_jobs("MS-CHAP interop")?;
    Some(vm)
}

/// Our `ras server` in the host's namespace with PPTP only, MS-CHAPv1
/// only and MPPE required (`encryption`: more lines of that section), the
/// VM's user added, logging at `log`.
fn start_server(
    vm: &interop::Vm,
    dir: &Path,
    user: &interop::User,
    encryption: &str,
    log: &str,
) -> Server {
    let state = dir.join("state");
    let config = dir.join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-interop-server\"\n\n\
             [sstp]\nlisten = []\n\n\
             [pptp]\nlisten = [\"{host}:1723\"]\n\n\
             [ipsec]\nenabled = false\n\n[tun]\nname = \"ras-mc0\"\n\n\
             [auth]\nmethods = [\"mschap\"]\n\n\
             [encryption]\nmppe = \"require\"\n{encryption}\n\
             [addresses]\nipv6_prefix = \"off\"\n",
            host = vm.host_ip
        ),
    )
    .unwrap();
    let pw = password_file(dir, &user.name, &user.password);
    add_user(&config, &user.name, &pw, &[]);
    Server::start_with(vm.command_in_ns(RAS), &config, log)
}

/// Start pppd + pptp-linux in the guest with `extra` options, wait for
/// `ppp9`, run `body`, hang up, print the pppd log.
fn pppd_job(host: Ipv4Addr, user: &interop::User, extra: &str, body: &str) -> String {
    format!(
        r#"set -u
HOST={host}; SERVER_PPP={SERVER_PPP}; UNIT=9; LOG=/tmp/ras-mschap.log
rm -f "$LOG"
pppd pty "pptp $HOST --nolaunchpppd" name "{user}" password "{pass}" remotename ras \
  require-mschap refuse-mschap-v2 refuse-eap refuse-pap refuse-chap require-mppe-128 {extra} \
  noauth nodefaultroute noipdefault nodeflate nobsdcomp novj nodetach debug unit $UNIT logfile "$LOG" &
pid=$!
up=
for i in $(seq 1 240); do
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
    ping -c 3 -i 0.3 -W 3 "$SERVER_PPP" || rc=3
{body}
else
    echo "the link did not come up"; rc=2
fi
kill -TERM "$pid" 2>/dev/null
for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
pkill -f "pptp $HOST" 2>/dev/null
echo "=== pppd log"; cat "$LOG"
exit $rc
"#,
        user = user.name,
        pass = user.password,
    )
}

/// The loss phase of the stateful run: for 60 pings, 20 % of what the
/// guest sends is lost (netem) and about 20 % of the GRE packets it
/// receives (a random drop on ingress: the guest has no iptables); then
/// none. Stateful mode learns of a loss only from the next packet, so a
/// few warm-up pings let the last Reset-Request round trips happen; then
/// 20 pings are counted (`AFTER_RECEIVED=`), for the test to judge.
const LOSSY_PINGS: &str = r#"
    modprobe sch_netem 2>/dev/null; modprobe act_gact 2>/dev/null; modprobe cls_u32 2>/dev/null
    if tc qdisc add dev eth0 root netem loss 20%; then echo "NETEM=on"; fi
    if tc qdisc add dev eth0 handle ffff: ingress && tc filter add dev eth0 parent ffff: \
        protocol ip prio 1 u32 match ip protocol 47 0xff action gact pass random netrand drop 5; then
        echo "INGRESS=on"
    fi
    ping -q -c 60 -i 0.1 -W 1 -s 600 "$SERVER_PPP"
    tc qdisc del dev eth0 root 2>/dev/null
    tc qdisc del dev eth0 ingress 2>/dev/null
    ping -q -c 5 -i 0.5 -W 1 "$SERVER_PPP"
    sleep 1
    ping -c 20 -i 0.2 -W 2 -s 1000 "$SERVER_PPP" > /tmp/ras-after.txt
    cat /tmp/ras-after.txt
    echo "AFTER_RECEIVED=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' /tmp/ras-after.txt)"
"#;

#[test]
fn real_pppd_with_ms_chap_v1_against_ras_server() {
    let _one = serialised();
    let Some(vm) = vm_with_jobs() else { return };
    let user = vm.user().clone();
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(vm, dir.path(), &user, "", "info,tunnel::sstp_session=debug");

    // 1. Stateless MPPE-128.
    let job = pppd_job(vm.host_ip, &user, "", "");
    let started = Instant::now();
    let (rc, out) = vm
        .guest_job("mschap1-stateless", &job, Duration::from_secs(150))
        .expect("pppd job");
    eprintln!("--- pppd, MS-CHAPv1 stateless (rc {rc}):\n{out}");
    assert_eq!(rc, 0, "pppd with require-mschap against ras server");
    assert!(out.contains("LOCAL=10.0.10."), "an address from our pool");
    assert!(
        out.contains("MPPE 128-bit stateless compression enabled"),
        "pppd reports MPPE-128"
    );
    server.expect(
        "authenticated: user \"test\", MS-CHAP ",
        Duration::from_secs(5),
    );
    server.expect("PPTP session ended", Duration::from_secs(20));
    eprintln!("stateless: {:.1} s", started.elapsed().as_secs_f64());
    drop(server);
}

/// Issue 11: stateful MPPE-128 with real pppd (`mppe-stateful`) against
/// our server with `mppe_stateful = true`, packets lost both ways (netem
/// on the guest's egress, a random GRE drop on its ingress). pppd must
/// report stateful mode, each side must ask the other for resets and get
/// a Reset-Ack (Linux decrypts nothing more until it gets one), the pings
/// before the loss must all pass, and after it nearly all (see below).
///
/// Both directions must survive lost flushed packets: Linux resynchronises
/// on ours because we flush at the block's flag packet, and we on Linux's
/// (which change the key at any count) by trial decryption.
#[test]
fn real_pppd_stateful_mppe_with_loss_against_ras_server() {
    let _one = serialised();
    let Some(vm) = vm_with_jobs() else { return };
    let user = vm.user().clone();
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(
        vm,
        dir.path(),
        &user,
        "mppe_stateful = true\n",
        "info,ppp::link=debug,tunnel::sstp_session=debug",
    );

    // Traffic that starts on our side: the guest's own pings get answers
    // only while our decryptor is in step, so after a long loss of its
    // flushed packets we might send too little for the guest's random
    // ingress drop to hit (seen in CI: four answers, none lost, no reset
    // asked by pppd). Echo requests from the host, 20 a second for 12 s
    // from the moment the link is up, cover the guest's whole loss phase.
    let pinger = host_pinger(vm);
    let job = pppd_job(vm.host_ip, &user, "mppe-stateful", LOSSY_PINGS);
    let (rc, out) = vm
        .guest_job("mschap1-stateful", &job, Duration::from_secs(200))
        .expect("pppd job");
    eprintln!("--- pppd, MS-CHAPv1 stateful with loss (rc {rc}):\n{out}");
    let pinged = pinger.join().expect("host pinger");
    eprintln!("--- host pings to the client:\n{pinged}");
    assert!(
        out.contains("MPPE 128-bit stateful compression enabled"),
        "pppd negotiated stateful MPPE"
    );
    assert!(
        out.contains("NETEM=on"),
        "the guest could not lose packets it sends"
    );
    assert!(
        out.contains("INGRESS=on"),
        "the guest could not lose packets it receives"
    );
    // Our decryptor saw the guest's losses and asked pppd for resets; pppd
    // answered (and its kernel flushed).
    assert!(
        out.contains("rcvd [CCP ResetReq"),
        "no Reset-Request from our server reached pppd"
    );
    assert!(
        out.contains("sent [CCP ResetAck"),
        "pppd acknowledged no reset"
    );
    // Linux lost packets from us, asked for resets, and got our Reset-Ack.
    assert!(
        out.contains("sent [CCP ResetReq"),
        "pppd lost packets from us but asked for no reset"
    );
    assert!(
        out.contains("rcvd [CCP ResetAck"),
        "our server answered no Reset-Request with a Reset-Ack"
    );
    assert_eq!(
        rc, 0,
        "the link came up and the pings before the loss all passed"
    );
    // After the loss both directions must be in step again. Not all 20:
    // a packet lost in the last moments of the loss phase may only show
    // up (as a gap) in the counted run and cost a Reset-Request round trip
    // of one or two pings. A direction left behind for good loses them
    // all, and one that resynchronises only by luck many of them.
    let after: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("AFTER_RECEIVED="))
        .and_then(|n| n.trim().parse().ok())
        .expect("the guest counted the pings after the loss");
    assert!(
        after >= 18,
        "only {after} of 20 pings after the loss came back"
    );
    eprintln!("after the loss: {after} of 20 pings");
    server.expect("PPTP session ended", Duration::from_secs(20));
    drop(server);
}

/// Pings the client's first pool address from the server's namespace:
/// waits (up to a minute) for the first answer, then sends 240 echo
/// requests 50 ms apart. Returns ping's summary.
fn host_pinger(vm: &'static interop::Vm) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let client = "10.0.10.21";
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let up = vm
                .command_in_ns("ping")
                .args(["-c", "1", "-W", "1", client])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if up {
                let out = vm
                    .command_in_ns("ping")
                    .args([
                        "-q", "-c", "240", "-i", "0.05", "-W", "1", "-s", "600", client,
                    ])
                    .output()
                    .expect("run ping");
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        "the client never answered a ping".to_string()
    })
}

/// Restores pptpd's options file when dropped.
struct RestorePptpd<'a>(&'a interop::Vm);

const RESTORE: &str = "if [ -f /tmp/pptpd-options.ras-bak ]; then \
    cp /tmp/pptpd-options.ras-bak /etc/ppp/pptpd-options && rm -f /tmp/pptpd-options.ras-bak; fi\n\
    grep -c require-mschap-v2 /etc/ppp/pptpd-options\n";

impl Drop for RestorePptpd<'_> {
    fn drop(&mut self) {
        match self
            .0
            .guest_job("pptpd-options-restore", RESTORE, Duration::from_secs(30))
        {
            Ok((rc, out)) => eprintln!("pptpd options restored (rc {rc}): {}", out.trim()),
            Err(e) => eprintln!("could not restore pptpd options: {e}"),
        }
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ras connect pptp://` (as the VM's default user, with `extra` options)
/// against the guest's pptpd, in the namespace, routed to pptpd's end of
/// the link; returns once our TUN has its address, with that end's address.
fn connect_to_pptpd(
    vm: &interop::Vm,
    dir: &Path,
    extra: &[&str],
    tun: &str,
    log: &str,
) -> (Killed, Ipv4Addr) {
    let user = vm.user().clone();
    let pw = dir.join("pw");
    std::fs::write(&pw, format!("{}\n", user.password)).unwrap();
    let local: Ipv4Addr = vm
        .get("PPTP_LOCAL")
        .and_then(|s| s.parse().ok())
        .unwrap_or(Ipv4Addr::new(192, 168, 50, 1));
    let target = format!("pptp://{}:{}", vm.guest_ip, vm.pptp_port);
    let mut client = Killed(
        vm.command_in_ns(RAS)
            .args(["connect", &target, "--user", &user.name, "--password-file"])
            .arg(&pw)
            .args(extra)
            .args(["--no-dns", "--tun-name", tun, "--route"])
            .arg(format!("{local}/32"))
            .env("RUST_LOG", log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ras connect"),
    );
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(status) = client.0.try_wait().unwrap() {
            let mut text = String::new();
            let _ = client.0.stderr.take().unwrap().read_to_string(&mut text);
            panic!("ras connect exited ({status}) before the link came up:\n{text}");
        }
        let addr = vm
            .run_in_ns(&["ip", "-4", "-o", "addr", "show", "dev", tun])
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(" inet "))
            .unwrap_or(false);
        if addr {
            return (client, local);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the PPTP link to pptpd ({extra:?}) did not come up within 60 s");
}

#[test]
fn ras_connect_with_ms_chap_v1_against_pptpd() {
    let _one = serialised();
    let Some(vm) = vm_with_jobs() else { return };
    assert!(vm.has_server("pptp"), "the VM runs no pptpd");
    // pptpd starts one pppd per call with these options: MS-CHAPv1 only
    // for the calls of this test. The guest puts the file back by itself
    // after 180 s should the guard never run.
    let switch = "set -e\n\
        [ -f /tmp/pptpd-options.ras-bak ] || cp /etc/ppp/pptpd-options /tmp/pptpd-options.ras-bak\n\
        sed -i 's/^require-mschap-v2$/require-mschap/' /etc/ppp/pptpd-options\n\
        grep -x require-mschap /etc/ppp/pptpd-options\n\
        nohup bash -c 'sleep 180; if [ -f /tmp/pptpd-options.ras-bak ]; then \
        cp /tmp/pptpd-options.ras-bak /etc/ppp/pptpd-options; rm -f /tmp/pptpd-options.ras-bak; fi' \
        >/dev/null 2>&1 &\n";
    let (rc, out) = vm
        .guest_job("pptpd-options-mschap", switch, Duration::from_secs(30))
        .expect("switch pptpd to MS-CHAPv1");
    let _restore = RestorePptpd(vm);
    assert_eq!(rc, 0, "switching pptpd to require-mschap: {out}");

    let dir = tempfile::tempdir().unwrap();
    let (mut client, local) = connect_to_pptpd(
        vm,
        dir.path(),
        &["--allow-weak-auth"],
        "ras-i-mschap",
        "info",
    );
    // Our TUN gets its address when IPCP opens; pptpd's pppd configures
    // its interface a moment later (the first ping was lost now and then),
    // so wait for the first answer before counting.
    let answering = (0..10).any(|_| {
        vm.run_in_ns(&["ping", "-c", "1", "-W", "1", &local.to_string()])
            .is_ok()
    });
    assert!(answering, "pptpd's side never answered a ping");
    let ping = vm
        .run_in_ns(&[
            "ping",
            "-c",
            "5",
            "-i",
            "0.3",
            "-W",
            "3",
            "-s",
            "1200",
            &local.to_string(),
        ])
        .unwrap();
    let ping_out = String::from_utf8_lossy(&ping.stdout).into_owned();
    assert!(
        ping_out.contains(" 5 received"),
        "ping {local} through MPPE: {ping_out}"
    );
    let _ = std::process::Command::new("kill")
        .args(["-INT", &client.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && client.0.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut text = String::new();
    if let Some(mut s) = client.0.stdout.take() {
        let _ = s.read_to_string(&mut text);
    }
    eprintln!("--- ras connect:\n{text}");
    assert!(
        text.contains("MS-CHAP,") || text.contains("MS-CHAP\n") || text.contains(", MS-CHAP"),
        "the status names MS-CHAP: {text}"
    );
}

/// Removes the guest's loss rules when dropped (the guest also removes
/// them by itself after 90 s should the guard never run).
struct NoLoss<'a>(&'a interop::Vm);

const LOSS_OFF: &str =
    "tc qdisc del dev eth0 root 2>/dev/null; tc qdisc del dev eth0 ingress 2>/dev/null; true\n";

impl Drop for NoLoss<'_> {
    fn drop(&mut self) {
        if let Err(e) = self
            .0
            .guest_job("loss-off", LOSS_OFF, Duration::from_secs(30))
        {
            eprintln!("could not remove the guest's loss rules: {e}");
        }
    }
}

/// Issue 11, the client direction: `ras connect pptp:// --mppe-stateful`
/// against pptpd whose pppd gets `mppe-stateful` for the length of the
/// test, with the same loss in the guest as above (its egress and its
/// GRE ingress) while we ping through the tunnel. Both sides must ask for
/// and acknowledge resets, and once the loss stops nearly all pings must
/// come back (the threshold of the server-side test, for its reasons).
#[test]
fn ras_connect_stateful_mppe_with_loss_against_pptpd() {
    let _one = serialised();
    let Some(vm) = vm_with_jobs() else { return };
    assert!(vm.has_server("pptp"), "the VM runs no pptpd");
    let switch = "set -e\n\
        [ -f /tmp/pptpd-options.ras-bak ] || cp /etc/ppp/pptpd-options /tmp/pptpd-options.ras-bak\n\
        grep -qx mppe-stateful /etc/ppp/pptpd-options || echo mppe-stateful >> /etc/ppp/pptpd-options\n\
        nohup bash -c 'sleep 180; if [ -f /tmp/pptpd-options.ras-bak ]; then \
        cp /tmp/pptpd-options.ras-bak /etc/ppp/pptpd-options; rm -f /tmp/pptpd-options.ras-bak; fi' \
        >/dev/null 2>&1 &\n\
        touch /tmp/pptpd-ppp.log; wc -l < /tmp/pptpd-ppp.log\n";
    let (rc, out) = vm
        .guest_job("pptpd-options-stateful", switch, Duration::from_secs(30))
        .expect("switch pptpd to stateful MPPE");
    let _restore = RestorePptpd(vm);
    assert_eq!(rc, 0, "switching pptpd to mppe-stateful: {out}");
    let log_start: usize = out.trim().parse().expect("pppd log length");

    let dir = tempfile::tempdir().unwrap();
    let (mut client, local) = connect_to_pptpd(
        vm,
        dir.path(),
        &["--mppe-stateful"],
        "ras-i-mstate",
        "info,ppp::link=debug",
    );
    // Counts what came back; a ping that got no answer at all is a
    // result here, not an error.
    let ping = |count: &str, interval: &str, size: &str| -> (u32, String) {
        let o = vm
            .command_in_ns("ping")
            .args(["-c", count, "-i", interval, "-W", "1", "-s", size])
            .arg(local.to_string())
            .stdin(Stdio::null())
            .output()
            .expect("run ping");
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let received = text
            .split(" received")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        (received, text)
    };
    // Our TUN gets its address when IPCP opens; pptpd's pppd configures
    // its interface a moment later, so wait for the first answer.
    let answering = (0..10).any(|_| ping("1", "0.2", "64").0 == 1);
    assert!(answering, "pptpd's side never answered a ping");
    let (before, text) = ping("5", "0.3", "600");
    assert_eq!(before, 5, "pings before the loss: {text}");

    let loss_on = "modprobe sch_netem 2>/dev/null; modprobe act_gact 2>/dev/null; modprobe cls_u32 2>/dev/null\n\
        nohup bash -c 'sleep 90; tc qdisc del dev eth0 root; tc qdisc del dev eth0 ingress' >/dev/null 2>&1 &\n\
        tc qdisc add dev eth0 root netem loss 20% && echo NETEM=on\n\
        tc qdisc add dev eth0 handle ffff: ingress && tc filter add dev eth0 parent ffff: \
        protocol ip prio 1 u32 match ip protocol 47 0xff action gact pass random netrand drop 5 \
        && echo INGRESS=on\n";
    let no_loss = NoLoss(vm);
    let (_, out) = vm
        .guest_job("loss-on", loss_on, Duration::from_secs(30))
        .expect("guest loss rules");
    assert!(
        out.contains("NETEM=on") && out.contains("INGRESS=on"),
        "{out}"
    );
    let (lossy, _) = ping("60", "0.1", "600");
    drop(no_loss);
    let (_, text) = ping("5", "0.5", "64");
    eprintln!("warm-up after the loss: {text}");
    std::thread::sleep(Duration::from_secs(1));
    let (after, text) = ping("20", "0.2", "1000");
    eprintln!("during the loss: {lossy} of 60; after: {after} of 20\n{text}");

    let _ = std::process::Command::new("kill")
        .args(["-INT", &client.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && client.0.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut text = String::new();
    if let Some(mut s) = client.0.stdout.take() {
        let _ = s.read_to_string(&mut text);
    }
    let mut err = String::new();
    if let Some(mut s) = client.0.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    eprintln!("--- ras connect:\n{text}\n{err}");
    let (_, pppd) = vm
        .guest_job(
            "pptpd-ppp-log",
            &format!("tail -n +{} /tmp/pptpd-ppp.log", log_start + 1),
            Duration::from_secs(30),
        )
        .expect("pptpd's pppd log");
    eprintln!("--- pptpd's pppd:\n{pppd}");
    assert!(
        text.contains("MPPE 128-bit stateful"),
        "ras connect reports stateful MPPE: {text}"
    );
    assert!(
        pppd.contains("MPPE 128-bit stateful compression enabled"),
        "pptpd's pppd negotiated stateful MPPE"
    );
    // Our side asks for a reset only when it cannot find the key of a
    // packet after a loss; trial decryption (a flushed packet of Linux's
    // lost) often finds it, and with 59 of 60 packets lost in one run it
    // never had to ask. Whatever we asked must have been acknowledged.
    if pppd.contains("rcvd [CCP ResetReq") {
        assert!(
            pppd.contains("sent [CCP ResetAck"),
            "we asked pptpd's pppd for a reset and it never acknowledged"
        );
    }
    assert!(
        pppd.contains("sent [CCP ResetReq") && pppd.contains("rcvd [CCP ResetAck"),
        "pptpd's pppd asked us for resets and we acknowledged"
    );
    assert!(
        after >= 18,
        "only {after} of 20 pings after the loss came back"
    );
}
