//! Rules the administrator meets: posting only over HTTPS, the service URL in either
//! form, POP checks with readable errors, outcomes in words, the shared name rule.

use std::time::Duration;

use phonebook::http::ServiceUrl;
use phonebook::import::parse_import_line;
use phonebook::pbk::check_pop;
use phonebook::post::{post_version, PostError};
use phonebook::UpdateOutcome;

/// An `http://` URL is refused before anything is sent: the listener never even sees a
/// connection, so the bearer token cannot cross the network in the clear.
#[tokio::test]
async fn posting_over_plain_http_connects_nowhere() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let url = ServiceUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let trust = phonebook::Trust::Roots(Vec::new());
    let err = post_version(&url, &trust, "s3cret-token", dir.path(), "Corp", 1, None)
        .await
        .unwrap_err();
    assert!(matches!(err, PostError::NotHttps(_)), "{err}");
    assert!(
        err.to_string().contains("only ever sent over HTTPS"),
        "{err}"
    );
    assert!(!err.to_string().contains("s3cret"), "{err}");
    let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
    assert!(accepted.is_err(), "something connected to the listener");
}

#[test]
fn the_service_is_named_by_its_base_url_or_by_the_pburl() {
    for (given, want) in [
        ("http://pbs.example:8080", "http://pbs.example:8080"),
        ("http://pbs.example:8080/", "http://pbs.example:8080"),
        (
            "http://pbs.example:8080/pbserver/pbserver.dll",
            "http://pbs.example:8080",
        ),
        (
            "http://pbs.example/PBServer/PBSERVER.DLL",
            "http://pbs.example:80",
        ),
        (
            "https://pbs.example:8443/pbserver/pbserver.dll?x=1",
            "https://pbs.example:8443",
        ),
        (
            "https://pbs.example/base/pbserver/pbserver.dll",
            "https://pbs.example:443/base",
        ),
        ("https://pbs.example/base", "https://pbs.example:443/base"),
    ] {
        assert_eq!(
            ServiceUrl::parse_service(given).unwrap().to_string(),
            want,
            "{given}"
        );
    }
}

#[test]
fn a_pop_needs_a_name_and_errors_name_the_input_not_line_zero() {
    let pop =
        parse_import_line("1, 1, 0, , 425, 5550134, 9600, 56000, 0, 0, ISP", "LINE", 0).unwrap();
    let err = check_pop(&pop, 0, "LINE", 0).unwrap_err().to_string();
    assert_eq!(
        err,
        "LINE: POP Name: 1 to 30 printable ASCII characters, no comma"
    );
    let err = parse_import_line("1, x", "LINE", 0)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("LINE: line: "), "{err}");
    // In a file the line is named.
    let err = check_pop(&pop, 0, "pops.txt", 7).unwrap_err().to_string();
    assert!(err.starts_with("pops.txt:7: POP Name: "), "{err}");
}

#[test]
fn update_outcomes_read_as_words() {
    assert_eq!(
        UpdateOutcome::Full { from: 0, to: 8 }.to_string(),
        "full update from version 0 to 8"
    );
    assert_eq!(
        UpdateOutcome::Delta { from: 6, to: 8 }.to_string(),
        "delta update from version 6 to 8"
    );
    assert_eq!(
        UpdateOutcome::UpToDate { version: 8 }.to_string(),
        "up to date at version 8"
    );
}

/// Phone books follow the same name rule as profile short names (`cmname`).
#[test]
fn phone_book_names_follow_the_profile_rule() {
    for name in ["corp_vpn", "c-vpn_1", "Corp1"] {
        assert!(phonebook::name::check_name(name).is_ok(), "{name}");
        assert!(profile::parse::validate_short_name(name).is_ok(), "{name}");
    }
    for name in ["a.b", "a b", "123", "toolong12"] {
        assert!(phonebook::name::check_name(name).is_err(), "{name}");
        assert!(profile::parse::validate_short_name(name).is_err(), "{name}");
    }
}
