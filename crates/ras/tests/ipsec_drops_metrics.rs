//! IKE and ESP drops are counted in `/metrics`: a host that is no client
//! sends garbage to UDP 500 (not ISAKMP; IKEv2 for an IKE SA the server
//! does not have; IKEv2 whose length lies) and to UDP 4500 (too short for
//! ESP; ESP for SPIs nobody negotiated), and every one of them shows up
//! under `ras_ipsec_dropped_total{protocol,reason}`, with one rate-limited
//! line naming the ESP drops' reason and peer. Needs root; skips with a
//! message otherwise (fails under RAS_INTEROP_REQUIRED=1).

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use interop::netns::{Topology, SERVER_FOR_CLI1};

mod support;
use support::*;

const NOT_ISAKMP: usize = 5;
const IKEV2_UNKNOWN_SA: usize = 4;
const IKEV2_LENGTH_LIE: usize = 3;
const ESP_TOO_SHORT: usize = 2;
/// More than the 64 early-ESP packets the server keeps for an SA being
/// negotiated, so that some are counted at once and the rest a second
/// later.
const ESP_UNKNOWN_SPI: usize = 100;

/// An IKEv2 header (RFC 7296 §3.1) of an IKE_AUTH request for responder
/// SPI `spi_r`, declaring `length` octets.
fn ikev2_header(spi_r: u8, length: u32) -> Vec<u8> {
    let mut m = vec![0x11; 8];
    m.extend_from_slice(&[spi_r; 8]);
    m.extend_from_slice(&[0, 0x20, 35, 0x08]);
    m.extend_from_slice(&1u32.to_be_bytes());
    m.extend_from_slice(&length.to_be_bytes());
    m
}

/// The value of `ras_ipsec_dropped_total{protocol,reason}`.
fn dropped(socket: &Path, protocol: &str, reason: &str) -> f64 {
    metric(
        socket,
        "ras_ipsec_dropped_total",
        &[("protocol", protocol), ("reason", reason)],
    )
}

/// Waits (up to 5 s) until the counter reaches `want`; returns its value.
fn settles(socket: &Path, protocol: &str, reason: &str, want: usize) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = dropped(socket, protocol, reason);
        if v == want as f64 || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ike_and_esp_garbage_is_counted_per_reason_in_metrics() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("ipsecdrop").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-ipsecdrop\"\n\n\
             [sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n\
             [pptp]\nlisten = [\"{SERVER_FOR_CLI1}:1723\"]\n\n\
             [ipsec]\nlisten = \"{SERVER_FOR_CLI1}\"\n\n\
             [tun]\nname = \"rasipd0\"\n"
        ),
    )
    .unwrap();
    let server = Server::start(&topo, &config);
    let admin = admin_socket_for(&config);
    for (reason, n) in [("malformed", 0.0), ("unknown_spi", 0.0)] {
        assert_eq!(dropped(&admin, "esp", reason), n);
    }

    topo.in_ns("cli1", || {
        let udp = UdpSocket::bind("0.0.0.0:0").unwrap();
        let ike = (SERVER_FOR_CLI1, 500);
        let nat_t = (SERVER_FOR_CLI1, 4500);
        for _ in 0..NOT_ISAKMP {
            udp.send_to(&[0xaa; 20], ike).unwrap();
        }
        for i in 0..IKEV2_UNKNOWN_SA {
            udp.send_to(&ikev2_header(0x90 + i as u8, 28), ike).unwrap();
        }
        for _ in 0..IKEV2_LENGTH_LIE {
            udp.send_to(&ikev2_header(0x90, 200), ike).unwrap();
        }
        for _ in 0..ESP_TOO_SHORT {
            udp.send_to(&[1, 2, 3], nat_t).unwrap();
        }
        for i in 0..ESP_UNKNOWN_SPI as u32 {
            let mut esp = (0x1234_0000 + i).to_be_bytes().to_vec();
            esp.extend_from_slice(&1u32.to_be_bytes());
            esp.extend_from_slice(&[0x5a; 40]);
            udp.send_to(&esp, nat_t).unwrap();
            // Paced: a burst larger than the socket buffer would be the
            // kernel's drop, not the server's.
            if i % 20 == 19 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // A second later, one more unknown SPI: the kept ones are too old
        // now and are counted (this one is kept in their place).
        std::thread::sleep(Duration::from_millis(1_200));
        let mut esp = 0x1235_0000u32.to_be_bytes().to_vec();
        esp.extend_from_slice(&[0x5a; 44]);
        udp.send_to(&esp, nat_t).unwrap();
    })
    .unwrap();

    let got = [
        ("ikev1", "malformed", NOT_ISAKMP),
        ("ikev2", "unknown_sa", IKEV2_UNKNOWN_SA),
        ("ikev2", "malformed", IKEV2_LENGTH_LIE),
        ("esp", "malformed", ESP_TOO_SHORT),
        ("esp", "unknown_spi", ESP_UNKNOWN_SPI),
    ]
    .map(|(p, r, want)| (p, r, want, settles(&admin, p, r, want)));
    eprintln!("ras_ipsec_dropped_total: {got:?}");
    for (p, r, want, v) in got {
        assert_eq!(v, want as f64, "{p} {r}");
    }
    // Nothing was counted under a reason it does not belong to.
    for (p, r) in [
        ("esp", "replay"),
        ("esp", "bad_icv"),
        ("esp", "selector"),
        ("ikev2", "integrity_failed"),
    ] {
        assert_eq!(dropped(&admin, p, r), 0.0, "{p} {r}");
    }

    // The ESP drops were told in a summary line, not one line each, naming
    // the reason and the sender.
    let lines = server.lines_for(Duration::from_millis(500));
    let esp_lines: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("IPsec: ESP packets dropped"))
        .collect();
    eprintln!("ESP drop lines: {esp_lines:#?}");
    assert!(esp_lines.len() <= 3, "{esp_lines:#?}");
    assert!(
        esp_lines.iter().any(|l| l.contains("from 10.201.1.2:")),
        "{lines:#?}"
    );
}
