//! `ras server` against real clients we did not write, run in the interop
//! VM (Linux kernel PPP) as guest jobs:
//!
//! - pptp-linux + pppd: MS-CHAPv2 only, MPPE-128 required (stateless);
//! - sstp-client (sstpc) + pppd: MS-CHAPv2 only, with the SSTP crypto
//!   binding computed from the MPPE keys sstp-client's pppd plugin hands
//!   back (MS-SSTP §3.2.5.2), which our server verifies.
//!
//! For each: the link comes up with an address from our pool, pings of
//! small and large packets pass through the tunnel to our server's end,
//! the client hangs up and our server logs the session end. pppd over PPTP
//! also negotiates IPv6CP (`+ipv6`) and pings our server's link-local
//! address, fe80::<the interface identifier our side negotiated>, which
//! pppd logs as the "remote LL address".

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

mod support;
use support::*;

/// Our server's PPP address and pool (the defaults).
const SERVER_PPP: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 20);

/// The guest's shell steps shared by both clients: wait for `ppp$UNIT` to
/// come up while `$pid` lives, then ping our end, hang up, print the log.
const WAIT_PING_HANG_UP: &str = r#"
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
    echo "PEER=$(ip -4 -o addr show "ppp$UNIT" | sed -n 's/.* peer \([0-9.]*\).*/\1/p')"
    ping -c 3 -i 0.3 -W 3 "$SERVER_PPP" || rc=3
    ping -c 5 -i 0.3 -s 1300 -W 3 "$SERVER_PPP" || rc=4
    if [ "${LL_PING:-0}" = 1 ]; then
        RLL=
        for i in $(seq 1 40); do
            RLL=$(sed -n 's/.*remote LL address \(fe80::[0-9a-f:]*\).*/\1/p' "$LOG" | tail -n 1)
            [ -n "$RLL" ] && break
            sleep 0.25
        done
        echo "SERVER_LL=$RLL"
        ping -6 -c 3 -i 0.3 -W 3 "$RLL%ppp$UNIT" || rc=5
    fi
else
    echo "the link did not come up"
    rc=2
fi
kill -TERM "$pid" 2>/dev/null
for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
pkill -f "$KILL_PATTERN" 2>/dev/null
echo "=== pppd log"
cat "$LOG"
exit $rc
"#;

/// The client's address from the job's output, if the link came up.
fn local_address(output: &str) -> Option<Ipv4Addr> {
    output
        .lines()
        .find_map(|l| l.strip_prefix("LOCAL="))
        .and_then(|a| a.trim().parse().ok())
}

#[test]
fn real_pptp_and_sstp_clients_against_ras_server() {
    let Some(vm) = vm_with_guest_jobs("server interop") else {
        return;
    };
    let user = vm.user().clone();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-interop-server\"\n\n\
             [sstp]\nlisten = [\"{host}:443\"]\n\n\
             [pptp]\nlisten = [\"{host}:1723\"]\n\n\
             [ipsec]\nenabled = false\n\n[tun]\nname = \"ras-si0\"\n",
            host = vm.host_ip
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), &user.name, &user.password);
    add_user(&config, &user.name, &pw, &[]);
    let server = Server::start_with(
        vm.command_in_ns(RAS),
        &config,
        "info,tunnel::sstp_session=debug",
    );
    let jobs = vm.env_file.parent().unwrap().join("share").join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::copy(state.join("server-cert.pem"), jobs.join("ras-server.pem")).unwrap();
    let common = format!(
        "set -u\nSERVER_PPP={SERVER_PPP}\nHOST={host}\nUSER={user}\nPASS={pass}\n\
         PPP_OPTS=\"refuse-pap refuse-chap refuse-mschap noauth \
         nodefaultroute noipdefault nodeflate nobsdcomp novj nodetach debug\"\n",
        host = vm.host_ip,
        user = user.name,
        pass = user.password,
    );

    // pptp-linux: pppd with pptp as its pty, MPPE-128 required, IPv6CP.
    let pptp_job = format!(
        "{common}UNIT=9\nLOG=/tmp/ras-pptpc.log\nKILL_PATTERN='pptp $HOST'\nLL_PING=1\nrm -f \"$LOG\"\n\
         pppd pty \"pptp $HOST --nolaunchpppd\" name \"$USER\" password \"$PASS\" remotename ras \
         require-mschap-v2 refuse-eap require-mppe-128 +ipv6 $PPP_OPTS unit $UNIT logfile \"$LOG\" &\n\
         pid=$!\n{WAIT_PING_HANG_UP}"
    );
    let started = Instant::now();
    let (rc, out) = vm
        .guest_job("pptp-client", &pptp_job, Duration::from_secs(150))
        .expect("pptp client job");
    eprintln!("--- pptp-linux in the guest (rc {rc}):\n{out}");
    assert_eq!(rc, 0, "pptp-linux + pppd against ras server");
    let address = local_address(&out).expect("an address");
    assert!(
        (21..=29).contains(&address.octets()[3]) && address.octets()[..3] == [10, 0, 10],
        "{address} from our pool"
    );
    assert!(
        out.contains("MPPE 128-bit stateless compression enabled"),
        "pppd reports MPPE-128"
    );
    // The link-local ping (rc 5 if unanswered) went to the address our
    // server negotiated for its side.
    // pppd writes each group with 4 digits (fe80::0c14:…), our log the
    // short form (fe80::c14:…): compare addresses, not text.
    let server_ll: std::net::Ipv6Addr = out
        .lines()
        .find_map(|l| l.strip_prefix("SERVER_LL="))
        .expect("pppd logged the remote LL address")
        .trim()
        .parse()
        .expect("an IPv6 address");
    let up = server.expect("PPP link up", Duration::from_secs(5));
    let ours: Option<std::net::Ipv6Addr> = up
        .split("(server ")
        .filter_map(|part| part.split(')').next())
        .find_map(|a| a.parse().ok());
    assert_eq!(ours, Some(server_ll), "{server_ll} is our side's: {up}");
    server.expect("PPTP session ended", Duration::from_secs(20));
    eprintln!(
        "pptp-linux: up, pinged and down in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // sstp-client: sstpc starts pppd (and its plugin, which returns the
    // MPPE keys for the crypto binding that our server checks); once with
    // MS-CHAPv2, once with EAP-MSCHAPv2 (what our server offers first).
    // sstp-client 1.0.18 now and then exits ("The event loop terminated
    // unsuccessfully") right after writing its HTTP request, before any
    // answer can arrive (packet captures show its FIN ahead of our 200),
    // whatever the TLS version, and against `openssl s_server` as well
    // (2 of 6 starts): a client-side race, so the job starts it again, up
    // to 12 times (five failed starts in a row were seen once on a loaded
    // machine), and reports how many starts it took.
    for (name, auth) in [
        ("sstp-mschapv2", "require-mschap-v2 refuse-eap"),
        ("sstp-eap", ""),
    ] {
        let sstp_job = format!(
            "{common}UNIT=8\nLOG=/tmp/ras-sstpc.log\nKILL_PATTERN='sstpc'\n\
             attempt=0\nwhile :; do\n\
             attempt=$((attempt+1)); rm -f \"$LOG\"\n\
             sstpc --log-stderr --log-level 2 --cert-warn --ca-cert /mnt/share/jobs/ras-server.pem \
             --ipparam rasi --user \"$USER\" --password \"$PASS\" \"$HOST\" \
             {auth} $PPP_OPTS unit $UNIT logfile \"$LOG\" &\npid=$!\n\
             for i in $(seq 1 40); do ip link show \"ppp$UNIT\" >/dev/null 2>&1 && break; \
             kill -0 \"$pid\" 2>/dev/null || break; sleep 0.25; done\n\
             kill -0 \"$pid\" 2>/dev/null && break\n\
             [ $attempt -ge 12 ] && break\n\
             echo \"sstpc exited before the link came up (start $attempt); again\"; sleep 1\n\
             done\necho \"STARTS=$attempt\"\n{WAIT_PING_HANG_UP}"
        );
        let started = Instant::now();
        let (rc, out) = vm
            .guest_job(name, &sstp_job, Duration::from_secs(150))
            .expect("sstp client job");
        eprintln!("--- sstp-client in the guest, {name} (rc {rc}):\n{out}");
        assert_eq!(rc, 0, "sstpc + pppd against ras server ({name})");
        assert!(local_address(&out).is_some());
        let method = if auth.is_empty() { "EAP" } else { "MS-CHAPv2" };
        server.expect(
            &format!("authenticated: user \"{}\", {method}", user.name),
            Duration::from_secs(5),
        );
        server.expect("SSTP crypto binding complete", Duration::from_secs(5));
        server.expect("SSTP session ended", Duration::from_secs(20));
        eprintln!(
            "sstp-client ({name}): up, pinged and down in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    drop(server);
}
