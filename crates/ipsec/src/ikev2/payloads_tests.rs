use super::*;

#[test]
fn key_exchange_round_trip() {
    let body = KeyExchange::encode(19, &[7; 64]);
    assert_eq!(&body[..4], &[0, 19, 0, 0]);
    let ke = KeyExchange::parse(&body).expect("KE");
    assert_eq!(ke.group, 19);
    assert_eq!(ke.data, &[7; 64][..]);
    assert_eq!(
        KeyExchange::parse(&[0, 19, 0]),
        Err(PayloadError::Truncated("KE"))
    );
}

#[test]
fn nonce_length_is_bounded_by_section_3_9() {
    assert!(parse_nonce(&[1; 16]).is_ok());
    assert!(parse_nonce(&[1; 256]).is_ok());
    assert_eq!(parse_nonce(&[1; 15]), Err(PayloadError::NonceLength(15)));
    assert_eq!(parse_nonce(&[1; 257]), Err(PayloadError::NonceLength(257)));
}

#[test]
fn identities_describe_themselves_safely() {
    let v4 = Identification::encode(id_type::IPV4_ADDR, &[192, 168, 1, 20]);
    let id = Identification::parse(&v4).expect("ID");
    assert_eq!(id.describe(), "192.168.1.20");
    assert_eq!(id.body, &v4[..], "AUTH signs the whole body");
    let fqdn = Identification::encode(id_type::FQDN, b"vpn.example\n\x1bforged");
    assert_eq!(
        Identification::parse(&fqdn).expect("ID").describe(),
        "vpn.example\\x0a\\x1bforged"
    );
    let long = Identification::encode(id_type::FQDN, &[b'a'; 300]);
    assert_eq!(
        Identification::parse(&long)
            .expect("ID")
            .describe()
            .chars()
            .count(),
        129
    );
}

#[test]
fn notify_with_and_without_spi() {
    let body = Notify::encode_for(3, &[1, 2, 3, 4], 16393, &[]);
    let n = Notify::parse(&body).expect("notify");
    assert_eq!((n.protocol, n.spi, n.kind), (3, &[1, 2, 3, 4][..], 16393));
    assert!(!n.is_error());
    let cookie = Notify::encode(16390, &[9; 32]);
    let n = Notify::parse(&cookie).expect("notify");
    assert_eq!(n.data, &[9; 32][..]);
    // SPI size past the end
    assert_eq!(
        Notify::parse(&[3, 8, 0, 14, 1]),
        Err(PayloadError::Truncated("Notify"))
    );
}

#[test]
fn delete_payload_lengths_are_checked() {
    let d = Delete {
        protocol: 3,
        spis: vec![[1, 2, 3, 4], [5, 6, 7, 8]],
    };
    let body = d.encode();
    assert_eq!(Delete::parse(&body).expect("delete"), d);
    let ike = Delete {
        protocol: 1,
        spis: vec![],
    };
    assert_eq!(ike.encode(), [1, 0, 0, 0]);
    let mut bad = body.clone();
    bad[3] = 3; // three SPIs declared, two present
    assert!(matches!(
        Delete::parse(&bad),
        Err(PayloadError::DeleteLength { declared: 3, .. })
    ));
    // a huge declared count costs nothing: it is a length mismatch
    assert!(Delete::parse(&[3, 4, 0xff, 0xff]).is_err());
}

#[test]
fn certificate_request_hashes() {
    let body = Certificate::encode(cert_encoding::X509_SIGNATURE, &[0xab; 41]);
    let c = Certificate::parse(&body).expect("CERTREQ");
    assert_eq!(c.encoding, 4);
    assert_eq!(c.ca_hashes().count(), 2, "a partial hash is ignored");
    assert_eq!(
        Certificate::parse(&[]),
        Err(PayloadError::Truncated("CERT"))
    );
}

#[test]
fn auth_round_trip() {
    let body = Authentication::encode(auth_method::SHARED_KEY_MIC, &[5; 20]);
    let a = Authentication::parse(&body).expect("AUTH");
    assert_eq!(a.method, 2);
    assert_eq!(a.data.len(), 20);
}
