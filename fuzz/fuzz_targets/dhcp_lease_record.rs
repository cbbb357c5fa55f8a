//! The DHCP lease record of the state directory (server::dhcp_leftovers):
//! whatever the file holds, decoding returns leases or an error, never
//! panics, and what it accepts is at most the bound and encodes back to
//! the same leases.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::dhcp_leftovers::{decode, encode, MAX_LEASES};

fuzz_target!(|data: &[u8]| {
    if let Ok(leases) = decode(data) {
        assert!(leases.len() <= MAX_LEASES);
        assert_eq!(decode(encode(&leases).as_bytes()).as_ref(), Ok(&leases));
    }
});
