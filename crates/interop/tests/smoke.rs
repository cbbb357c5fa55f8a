//! Smoke test of the interop VM: from inside its network namespace, each server the
//! clients will be tested against answers its first message.
//!
//! Needs root and qemu (see interop/README.md); skips otherwise unless
//! RAS_INTEROP_REQUIRED=1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(15);

fn vm() -> Option<&'static interop::Vm> {
    if !interop::require_root_or_skip() {
        return None;
    }
    Some(interop::Vm::shared().unwrap_or_else(|e| panic!("{e}")))
}

fn connect(vm: &interop::Vm, port: u16) -> TcpStream {
    let addr = vm.addr(port);
    let s = vm
        .in_ns(|| TcpStream::connect_timeout(&addr, TIMEOUT))
        .expect("enter the namespace")
        .unwrap_or_else(|e| panic!("connect {addr} from namespace {}: {e}", vm.ns));
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// RFC 2637 §2.1: Start-Control-Connection-Request, 156 bytes.
fn pptp_sccrq() -> Vec<u8> {
    let mut m = Vec::with_capacity(156);
    m.extend_from_slice(&156u16.to_be_bytes()); // Length
    m.extend_from_slice(&1u16.to_be_bytes()); // PPTP Message Type: control message
    m.extend_from_slice(&0x1A2B_3C4Du32.to_be_bytes()); // Magic Cookie
    m.extend_from_slice(&1u16.to_be_bytes()); // Control Message Type: SCCRQ
    m.extend_from_slice(&0u16.to_be_bytes()); // Reserved0
    m.extend_from_slice(&0x0100u16.to_be_bytes()); // Protocol Version 1.0
    m.extend_from_slice(&0u16.to_be_bytes()); // Reserved1
    m.extend_from_slice(&1u32.to_be_bytes()); // Framing Capabilities: asynchronous
    m.extend_from_slice(&1u32.to_be_bytes()); // Bearer Capabilities: analog
    m.extend_from_slice(&0u16.to_be_bytes()); // Maximum Channels
    m.extend_from_slice(&1u16.to_be_bytes()); // Firmware Revision
    let mut host = [0u8; 64];
    host[..11].copy_from_slice(b"ras-interop");
    m.extend_from_slice(&host); // Host Name
    let mut vendor = [0u8; 64];
    vendor[..3].copy_from_slice(b"ras");
    m.extend_from_slice(&vendor); // Vendor String
    assert_eq!(m.len(), 156);
    m
}

#[test]
fn pptp_answers_start_control_connection_request() {
    let Some(vm) = vm() else { return };
    let t0 = Instant::now();
    let mut s = connect(vm, vm.pptp_port);
    s.write_all(&pptp_sccrq()).unwrap();
    // RFC 2637 §2.2: Start-Control-Connection-Reply, also 156 bytes.
    let mut reply = [0u8; 156];
    s.read_exact(&mut reply).expect("read the SCCRP");
    assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), 156, "length");
    assert_eq!(
        u16::from_be_bytes([reply[2], reply[3]]),
        1,
        "control message"
    );
    assert_eq!(&reply[4..8], &0x1A2B_3C4Du32.to_be_bytes(), "magic cookie");
    assert_eq!(u16::from_be_bytes([reply[8], reply[9]]), 2, "SCCRP");
    assert_eq!(
        reply[14], 1,
        "result code 1 (successful channel establishment)"
    );
    let host = String::from_utf8_lossy(&reply[28..92]);
    eprintln!(
        "pptp: SCCRP from {}, version {:#06x}, host {:?}, in {:?}",
        vm.addr(vm.pptp_port),
        u16::from_be_bytes([reply[12], reply[13]]),
        host.trim_end_matches('\0'),
        t0.elapsed()
    );
}

#[test]
fn echo_echoes() {
    let Some(vm) = vm() else { return };
    let t0 = Instant::now();
    let mut s = connect(vm, vm.echo_port);
    let data: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let writer = {
        let mut w = s.try_clone().unwrap();
        let data = data.clone();
        std::thread::spawn(move || w.write_all(&data))
    };
    let mut got = vec![0u8; data.len()];
    s.read_exact(&mut got).expect("read the echo");
    writer.join().unwrap().expect("write to the echo service");
    assert!(got == data, "echo returned different bytes");
    eprintln!(
        "echo: {} bytes echoed by {} in {:?}",
        data.len(),
        vm.addr(vm.echo_port),
        t0.elapsed()
    );
}

#[test]
fn sstp_duplex_post_gets_http_200() {
    let Some(vm) = vm() else { return };
    let t0 = Instant::now();
    let guest = vm.guest_ip.to_string();
    // openssl checks the certificate chain against the harness CA and the guest address
    // against the certificate's SAN; it aborts the handshake otherwise.
    let mut child = vm
        .command_in_ns("openssl")
        .args([
            "s_client",
            "-quiet",
            "-verify_return_error",
            "-verify_ip",
            &guest,
        ])
        .arg("-CAfile")
        .arg(&vm.ca_pem)
        .args(["-connect", &vm.addr(vm.sstp_port).to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl s_client");
    let request = format!(
        "SSTP_DUPLEX_POST /sra_{{BA195980-CD49-458b-9E23-C84EE0ADCD75}}/ HTTP/1.1\r\n\
         Host: {guest}\r\nContent-Length: 18446744073709551615\r\n\
         SSTPCORRELATIONID: {{6A4F1E52-3C4B-4D4B-9D9E-2A8E2B8F1C01}}\r\n\r\n"
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(request.as_bytes()).unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.send(head);
    });
    let head = rx.recv_timeout(TIMEOUT);
    // sstpd now waits for SSTP packets: end our own s_client.
    drop(stdin);
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait for openssl");
    let head = String::from_utf8_lossy(&head.unwrap_or_default()).into_owned();
    let status = head.lines().next().unwrap_or("");
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "SSTP_DUPLEX_POST to {}: got {head:?}; openssl stderr:\n{}",
        vm.addr(vm.sstp_port),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "sstp: TLS verified against {}, SSTP_DUPLEX_POST -> {status:?} in {:?}",
        vm.ca_pem.display(),
        t0.elapsed()
    );
}

#[test]
fn namespace_has_no_route_out() {
    let Some(vm) = vm() else { return };
    let out = vm
        .run_in_ns(&["ip", "-4", "route", "show"])
        .expect("ip route in the namespace");
    let routes = String::from_utf8_lossy(&out.stdout);
    assert!(
        !routes.contains("default"),
        "namespace {} has a default route:\n{routes}",
        vm.ns
    );
}
