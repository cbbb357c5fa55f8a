use sstp::http::*;

fn request() -> Vec<u8> {
    let mut v = Vec::new();
    encode_request("vpn.example.com", &Guid([0xAB; 16]), &mut v);
    v
}

#[test]
fn request_bytes() {
    let r = String::from_utf8(request()).unwrap();
    assert_eq!(
        r,
        "SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\n\
         Host: vpn.example.com\r\n\
         Content-Length: 18446744073709551615\r\n\
         SSTPCORRELATIONID: {ABABABAB-ABAB-ABAB-ABAB-ABABABABABAB}\r\n\r\n"
    );
}

#[test]
fn valid_request_with_trailing_sstp_bytes() {
    let mut r = request();
    let hdr = r.len();
    r.extend_from_slice(&[0x10, 0x01, 0x00, 0x0E]);
    match parse_request(&r).unwrap() {
        Parsed::Done { value, consumed } => {
            assert_eq!(consumed, hdr);
            assert_eq!(value.host.as_deref(), Some("vpn.example.com"));
            assert_eq!(
                value.correlation_id.as_deref(),
                Some("{ABABABAB-ABAB-ABAB-ABAB-ABABABABABAB}")
            );
        }
        Parsed::NeedMore => panic!(),
    }
}

#[test]
fn partial_request_needs_more() {
    let r = request();
    for i in 0..r.len() {
        assert_eq!(
            parse_request(&r[..i]).unwrap(),
            Parsed::NeedMore,
            "prefix {i}"
        );
    }
}

#[test]
fn wrong_uri_is_404() {
    let r = b"SSTP_DUPLEX_POST /other/ HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n";
    let e = parse_request(r).unwrap_err();
    assert_eq!(e.status(), 404);
}

#[test]
fn wrong_method_is_405() {
    let r = b"GET /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(parse_request(r).unwrap_err().status(), 405);
}

#[test]
fn wrong_version_is_505() {
    let r = b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.0\r\nContent-Length: 18446744073709551615\r\n\r\n";
    assert_eq!(parse_request(r).unwrap_err().status(), 505);
}

#[test]
fn content_length_checks() {
    let r = b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(parse_request(r).unwrap_err().status(), 411);
    let r = b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\nContent-Length: 10\r\n\r\n";
    assert_eq!(parse_request(r).unwrap_err().status(), 400);
}

#[test]
fn garbage_is_400() {
    assert_eq!(
        parse_request(b"\x16\x03\x01\x02\x00\r\n\r\n")
            .unwrap_err()
            .status(),
        400
    );
}

#[test]
fn oversized_headers_are_rejected() {
    let mut r =
        b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\nX-Pad: "
            .to_vec();
    r.extend(std::iter::repeat_n(b'a', MAX_HEADER_BYTES));
    assert_eq!(parse_request(&r).unwrap_err(), RequestError::HeaderTooLarge);
    // Too many headers.
    let mut r =
        b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\n".to_vec();
    for i in 0..100 {
        r.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    assert_eq!(parse_request(&r).unwrap_err().status(), 431);
}

#[test]
fn response_round_trip() {
    let mut v = Vec::new();
    encode_response(Some("ras"), Some(&format_http_date(1_163_033_469)), &mut v);
    let s = String::from_utf8(v.clone()).unwrap();
    assert!(s.starts_with("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n"));
    // MS-SSTP §4.1's example date.
    assert!(s.contains("Date: Thu, 09 Nov 2006 00:51:09 GMT\r\n"));
    let n = v.len();
    v.extend_from_slice(&[0x10]);
    assert_eq!(
        parse_response(&v).unwrap(),
        Parsed::Done {
            value: SstpResponse {
                server: Some("ras".into())
            },
            consumed: n
        }
    );
    assert_eq!(parse_response(&v[..n - 1]).unwrap(), Parsed::NeedMore);
}

#[test]
fn error_response_parses_as_status() {
    let mut v = Vec::new();
    encode_error_response(404, &mut v);
    assert!(v.starts_with(b"HTTP/1.1 404 Not Found\r\n"));
    assert_eq!(parse_response(&v).unwrap_err(), ResponseError::Status(404));
}

#[test]
fn http_dates() {
    assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(
        format_http_date(951_782_400),
        "Tue, 29 Feb 2000 00:00:00 GMT"
    );
}

#[test]
fn random_guid_format() {
    let g = Guid::random().to_string();
    assert_eq!(g.len(), 38);
    assert!(g.starts_with('{') && g.ends_with('}'));
}
