//! The bad items of `ras-bench torture`: for each listener a valid
//! template (the first message a real peer sends) and the ways to spoil
//! it: bit flips, truncation, a length field that lies, garbage appended,
//! and pure random bytes. A server must drop every one of them without a
//! panic, without keeping state for it, and without a log line each.

use rand::Rng;

/// One listener's kind of item.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Listener {
    /// TLS records and garbage on TCP 443 (before any handshake).
    Tls,
    /// SSTP HTTP requests with bad headers, inside a real TLS session.
    SstpHttp,
    /// SSTP framing after a valid HTTP upgrade (MS-SSTP §2.2.2, §2.2.3).
    SstpFraming,
    /// PPTP control messages on TCP 1723 (RFC 2637 §2).
    PptpControl,
    /// Enhanced GRE (RFC 2637 §4.1), raw IP protocol 47.
    Gre,
    /// IKE on UDP 500 (RFC 2408 §3.1, RFC 7296 §3.1).
    Ike500,
    /// IKE on UDP 4500 behind the non-ESP marker (RFC 3948 §2.2).
    Ike4500,
    /// ESP with unknown SPIs in UDP 4500 (RFC 3948 §2.1).
    EspUdp,
    /// ESP with unknown SPIs, raw IP protocol 50 (RFC 4303 §2).
    EspRaw,
}

impl Listener {
    pub const ALL: [Listener; 9] = [
        Listener::Tls,
        Listener::SstpHttp,
        Listener::SstpFraming,
        Listener::PptpControl,
        Listener::Gre,
        Listener::Ike500,
        Listener::Ike4500,
        Listener::EspUdp,
        Listener::EspRaw,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Listener::Tls => "TLS on 443",
            Listener::SstpHttp => "SSTP HTTP in TLS",
            Listener::SstpFraming => "SSTP framing in TLS",
            Listener::PptpControl => "PPTP control 1723",
            Listener::Gre => "GRE (proto 47)",
            Listener::Ike500 => "IKE on UDP 500",
            Listener::Ike4500 => "IKE on UDP 4500",
            Listener::EspUdp => "ESP in UDP 4500",
            Listener::EspRaw => "ESP (proto 50)",
        }
    }

    /// Share of the items: connection-based listeners cost a TCP (and
    /// TLS) handshake per item, so they get fewer.
    pub fn weight(self) -> u32 {
        match self {
            Listener::Tls | Listener::PptpControl => 4,
            Listener::SstpHttp | Listener::SstpFraming => 1,
            Listener::Gre | Listener::Ike500 | Listener::Ike4500 => 20,
            Listener::EspUdp | Listener::EspRaw => 15,
        }
    }

    /// Whether one item is one TCP connection (else one datagram).
    pub fn is_connection(self) -> bool {
        matches!(
            self,
            Listener::Tls | Listener::SstpHttp | Listener::SstpFraming | Listener::PptpControl
        )
    }

    /// The valid template and the offsets of its big-endian 16-bit length
    /// fields (the ones worth lying in).
    fn template(self, rng: &mut impl Rng) -> (Vec<u8>, &'static [usize]) {
        match self {
            Listener::Tls => (client_hello(rng), &[3, 7]),
            Listener::SstpHttp => (sstp_request().into_bytes(), &[]),
            Listener::SstpFraming => (sstp_call_connect_request(), &[2, 6, 10]),
            Listener::PptpControl => (pptp_sccrq(), &[0]),
            Listener::Gre => (gre(rng), &[4]),
            Listener::Ike500 => (ike(rng), &[26, 30]),
            Listener::Ike4500 => {
                let mut m = vec![0; 4];
                m.extend(ike(rng));
                (m, &[30, 34])
            }
            Listener::EspUdp | Listener::EspRaw => (esp(rng), &[]),
        }
    }

    /// One bad item: a spoiled template or random bytes.
    pub fn item(self, rng: &mut impl Rng) -> Vec<u8> {
        if self == Listener::SstpHttp {
            return bad_sstp_request(rng);
        }
        let (mut t, lengths) = self.template(rng);
        match rng.gen_range(0..6) {
            0 => random_bytes(rng, 1..1400),
            1 => {
                // Bit flips, 1 to 8.
                for _ in 0..rng.gen_range(1..=8) {
                    let i = rng.gen_range(0..t.len());
                    t[i] ^= 1 << rng.gen_range(0..8);
                }
                t
            }
            2 => {
                // Truncated: keep 0..len-1 bytes.
                t.truncate(rng.gen_range(0..t.len()));
                t
            }
            3 if !lengths.is_empty() => {
                // A length field that lies.
                let at = lengths[rng.gen_range(0..lengths.len())];
                let lie: u16 = match rng.gen_range(0..4) {
                    0 => 0,
                    1 => u16::MAX,
                    2 => (t.len() as u16).wrapping_add(rng.gen_range(1..64)),
                    _ => rng.gen(),
                };
                t[at..at + 2].copy_from_slice(&lie.to_be_bytes());
                t
            }
            4 => {
                // The template with garbage after it (a random chain of
                // further payloads or records).
                t.extend(random_bytes(rng, 1..600));
                t
            }
            _ => {
                // The template's first bytes, then random ones.
                let keep = rng.gen_range(1..t.len().min(40));
                t.truncate(keep);
                t.extend(random_bytes(rng, 0..600));
                t
            }
        }
    }
}

fn random_bytes(rng: &mut impl Rng, len: std::ops::Range<usize>) -> Vec<u8> {
    let mut v = vec![0u8; rng.gen_range(len)];
    rng.fill(&mut v[..]);
    v
}

/// A TLS 1.2 ClientHello record (RFC 5246 §7.4.1.2) with one suite and
/// no extensions.
fn client_hello(rng: &mut impl Rng) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    let mut random = [0u8; 32];
    rng.fill(&mut random);
    body.extend(random);
    body.push(0); // session id
    body.extend([0x00, 0x02, 0xc0, 0x2f]); // one cipher suite
    body.extend([0x01, 0x00]); // null compression
    let mut hs = vec![0x01, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend(body);
    let mut rec = vec![0x16, 0x03, 0x01, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend(hs);
    // Offsets 3 (record length) and 7 (low bytes of the handshake length).
    rec
}

/// The SSTP HTTP request a client sends (MS-SSTP §2.2.2).
pub fn sstp_request() -> String {
    "SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\n\
     Host: 10.201.2.1\r\n\
     Content-Length: 18446744073709551615\r\n\
     SSTPCORRELATIONID: {12345678-1234-1234-1234-123456789ABC}\r\n\r\n"
        .to_owned()
}

/// The request with bad headers: a wrong method or path, a huge or
/// negative Content-Length, a header line without end, binary in it.
fn bad_sstp_request(rng: &mut impl Rng) -> Vec<u8> {
    let good = sstp_request();
    let bad = match rng.gen_range(0..7) {
        0 => good.replace("SSTP_DUPLEX_POST", "GET"),
        1 => good.replace("18446744073709551615", "-1"),
        2 => good.replace("18446744073709551615", "99999999999999999999999"),
        3 => good.replace("/sra_", "/../../etc/passwd"),
        4 => good.replace("\r\n\r\n", "\r\nX-Pad: ") + &"A".repeat(rng.gen_range(100..20000)),
        5 => good.replace("HTTP/1.1", "HTTP/9.9"),
        _ => {
            let mut b = good.into_bytes();
            let cut = rng.gen_range(1..b.len());
            b.truncate(cut);
            b.extend(random_bytes(rng, 1..400));
            return b;
        }
    };
    bad.into_bytes()
}

/// SSTP Call Connect Request (MS-SSTP §2.2.9): the first control message.
fn sstp_call_connect_request() -> Vec<u8> {
    vec![
        0x10, 0x01, 0x00, 0x0e, // version 1.0, control, length 14
        0x00, 0x01, 0x00, 0x01, // CALL_CONNECT_REQUEST, 1 attribute
        0x00, 0x01, 0x00, 0x06, // Encapsulated Protocol Id, length 6
        0x00, 0x01, // PPP
    ]
}

/// PPTP Start-Control-Connection-Request (RFC 2637 §2.1), 156 bytes.
fn pptp_sccrq() -> Vec<u8> {
    let mut m = vec![0u8; 156];
    m[0..2].copy_from_slice(&156u16.to_be_bytes());
    m[2..4].copy_from_slice(&1u16.to_be_bytes()); // control message
    m[4..8].copy_from_slice(&0x1A2B_3C4Du32.to_be_bytes()); // magic cookie
    m[8..10].copy_from_slice(&1u16.to_be_bytes()); // SCCRQ
    m[12..14].copy_from_slice(&0x0100u16.to_be_bytes()); // version 1.0
    m[16..20].copy_from_slice(&3u32.to_be_bytes()); // framing
    m[20..24].copy_from_slice(&3u32.to_be_bytes()); // bearer
    m[24..26].copy_from_slice(&1u16.to_be_bytes());
    m[28..32].copy_from_slice(b"tort");
    m
}

/// Enhanced GRE with a sequence number for an unknown call (RFC 2637
/// §4.1), carrying a PPP frame's worth of bytes.
fn gre(rng: &mut impl Rng) -> Vec<u8> {
    let payload = random_bytes(rng, 4..300);
    let mut m = vec![0x30, 0x01, 0x88, 0x0b];
    m.extend((payload.len() as u16).to_be_bytes());
    m.extend(rng.gen::<u16>().to_be_bytes()); // call id
    m.extend(rng.gen::<u32>().to_be_bytes()); // sequence
    m.extend(payload);
    m
}

/// An IKE message: IKEv1 or IKEv2 header (28 bytes) with an unknown
/// initiator SPI, sometimes a responder SPI nobody made, and a chain of
/// generic payloads (next payload, flags, length, body).
fn ike(rng: &mut impl Rng) -> Vec<u8> {
    let mut m = Vec::with_capacity(300);
    m.extend(rng.gen::<u64>().to_be_bytes());
    m.extend(
        if rng.gen_bool(0.5) {
            0
        } else {
            rng.gen::<u64>()
        }
        .to_be_bytes(),
    );
    let v2 = rng.gen_bool(0.5);
    let first = if v2 { 33 } else { 1 }; // SA payload
    m.push(first);
    m.push(if v2 { 0x20 } else { 0x10 });
    m.push(if v2 { 34 } else { 2 }); // IKE_SA_INIT / Main Mode
    m.push(if v2 { 0x08 } else { 0 });
    m.extend(0u32.to_be_bytes());
    m.extend(0u32.to_be_bytes()); // length, set below
    let payloads = rng.gen_range(1..6);
    for i in 0..payloads {
        let body = random_bytes(rng, 0..120);
        let next: u8 = if i + 1 == payloads {
            0
        } else if v2 {
            rng.gen_range(33..49)
        } else {
            rng.gen_range(1..21)
        };
        m.push(next);
        m.push(0);
        m.extend(((body.len() + 4) as u16).to_be_bytes());
        m.extend(body);
    }
    let len = m.len() as u32;
    m[24..28].copy_from_slice(&len.to_be_bytes());
    m
}

/// ESP with an SPI nobody negotiated (never 0: in UDP 4500 that is the
/// non-ESP marker), a sequence number and "ciphertext".
fn esp(rng: &mut impl Rng) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend(rng.gen_range(256u32..=u32::MAX).to_be_bytes());
    m.extend(rng.gen::<u32>().to_be_bytes());
    m.extend(random_bytes(rng, 8..400));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn templates_are_well_formed_before_they_are_spoiled() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let hello = client_hello(&mut rng);
        assert_eq!(
            u16::from_be_bytes([hello[3], hello[4]]) as usize,
            hello.len() - 5
        );
        let sccrq = pptp_sccrq();
        assert_eq!(u16::from_be_bytes([sccrq[0], sccrq[1]]), 156);
        let ike = ike(&mut rng);
        assert_eq!(
            u32::from_be_bytes([ike[24], ike[25], ike[26], ike[27]]) as usize,
            ike.len()
        );
        let ccr = sstp_call_connect_request();
        assert_eq!(u16::from_be_bytes([ccr[2], ccr[3]]) as usize, ccr.len());
        let esp = esp(&mut rng);
        assert_ne!(&esp[0..4], &[0, 0, 0, 0]);
    }

    #[test]
    fn items_differ_from_the_templates_and_stay_bounded() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for l in Listener::ALL {
            let mut spoiled = 0;
            for _ in 0..200 {
                let item = l.item(&mut rng);
                assert!(item.len() < 21_000, "{l:?}: {} bytes", item.len());
                let (t, _) = l.template(&mut rng);
                if item != t {
                    spoiled += 1;
                }
            }
            // Templates carry random SPIs and bodies, so compare loosely:
            // nearly every item must differ from a fresh template.
            assert!(spoiled > 190, "{l:?}: only {spoiled} of 200 spoiled");
        }
    }

    #[test]
    fn a_length_lie_lands_on_a_length_field() {
        // Offset 0 of the SCCRQ is its length: the lie must change it.
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut seen_lie = false;
        for _ in 0..500 {
            let item = Listener::PptpControl.item(&mut rng);
            if item.len() == 156
                && item[0..2] != 156u16.to_be_bytes()
                && item[2..8] == pptp_sccrq()[2..8]
            {
                seen_lie = true;
            }
        }
        assert!(seen_lie);
    }
}
