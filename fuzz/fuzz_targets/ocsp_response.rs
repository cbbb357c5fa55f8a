//! Fuzz the OCSP answer check (RFC 6960 §4.2): any bytes a responder sends
//! are refused with a typed error or checked, never a panic. The query is
//! the one the unit tests match against OpenSSL's request, so a mutated
//! real answer reaches the signature and the time checks.
#![no_main]

use ipsec::ikev1::ocsp::{check, request, Query};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const CA: &[u8] = include_bytes!("../../crates/ipsec/src/ikev1/ocsp_vectors/ca.pem");
const GOOD: &[u8] = include_bytes!("../../crates/ipsec/src/ikev1/ocsp_vectors/good.pem");

fn query() -> &'static Query {
    static Q: OnceLock<Query> = OnceLock::new();
    Q.get_or_init(|| {
        let der = |pem: &[u8]| x509_parser::pem::parse_x509_pem(pem).unwrap().1.contents;
        request(&der(GOOD), &der(CA), Some(&[7; 16])).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = check(query(), data, 1_796_542_777);
});
