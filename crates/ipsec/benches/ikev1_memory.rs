//! Heap held by the IKEv1 responder per idle client: one IKE SA and one
//! ESP SA pair (the responder's records plus the two keyed `EspSa`s a
//! driver installs), measured with a counting allocator over 1,000
//! clients. Prints one line.
//!
//!     cargo bench -p ipsec --bench ikev1_memory

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use ipsec::esp::EspSa;
use ipsec::ike_crypto::{DhGroup, HashAlg, IkeCipher};
use ipsec::ikev1::initiator::Initiator;
use ipsec::ikev1::initiator_config::{IkeOffer, InitiatorConfig};
use ipsec::ikev1::{IkeEvent, PskTable, Responder, ResponderConfig};

struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CLIENTS: usize = 1000;

fn main() {
    let now = Instant::now();
    let server: SocketAddr = "198.51.100.1:500".parse().unwrap();
    let mut responder = Responder::new(ResponderConfig {
        psks: PskTable::new().with_wildcard(b"psk"),
        half_open_per_source: usize::MAX,
        half_open_total: usize::MAX,
        max_ike_sas: usize::MAX,
        ..Default::default()
    });
    let mut installed: Vec<(EspSa, EspSa)> = Vec::with_capacity(CLIENTS);
    let before = HELD.load(Ordering::Relaxed);
    for i in 0..CLIENTS {
        let client = SocketAddr::new("192.0.2.10".parse().unwrap(), 1024 + i as u16);
        let mut config = InitiatorConfig::new(b"psk");
        config.ike_offers = vec![IkeOffer::new(
            IkeCipher::Aes256Cbc,
            HashAlg::Sha256,
            DhGroup::Ecp256,
        )];
        let mut initiator = Initiator::new(config, client, server, now);
        let mut up = None;
        for _ in 0..16 {
            while let Some(t) = initiator.poll_transmit() {
                responder.handle_datagram(now, server, client, t.from_nat_t_port, &t.bytes);
            }
            while let Some(t) = responder.poll_transmit() {
                initiator.handle_datagram(now, t.from_nat_t_port, &t.bytes);
            }
            while let Some(e) = responder.poll_event() {
                if let IkeEvent::ChildSaUp(c) = e {
                    up = Some((
                        EspSa::new(&c.inbound, now).unwrap(),
                        EspSa::new(&c.outbound, now).unwrap(),
                    ));
                }
            }
            while initiator.poll_event().is_some() {}
            if up.is_some() {
                break;
            }
        }
        // The initiator is the client's, not the server's: freed here.
        drop(initiator);
        installed.push(up.expect("connected"));
    }
    let held = HELD.load(Ordering::Relaxed) - before;
    println!(
        "IKEv1 responder: {} clients established (ECP-256, AES-256/SHA2-256, ESP aes256-cbc), {:.1} KiB of heap per client (IKE SA, child records, two keyed ESP SAs)",
        responder.child_sa_count(),
        held as f64 / CLIENTS as f64 / 1024.0
    );
}
