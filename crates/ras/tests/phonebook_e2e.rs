//! End to end through the `ras` binary: the administrator publishes and
//! posts, `ras pbs` serves, `ras phonebook update` updates a profile.
//!
//! * the service's decision table (current 10: client 10 or 11 → none,
//!   7 → delta, 3 → full; bad query → 400; unknown phone book → 404);
//! * the update action moves a profile from 3 to 10 through a full
//!   cabinet and from 8 to 10 through a delta;
//! * kill -9 of a post mid-way (the poster, then the service) leaves the
//!   previous version served;
//! * 200 concurrent clients querying and downloading while versions are
//!   posted always get a complete, valid cabinet.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use phonebook::answer::{parse_answer, UpdateKind};
use phonebook::cab::{read_cab, CabLimits};
use phonebook::version_file::read_version;
use sha2::Digest;

const RAS: &str = env!("CARGO_BIN_EXE_ras");
const TOKEN: &str = "post-secret-0123456789";

/// A running `ras pbs`, killed on drop.
struct Pbs {
    child: Child,
    http: SocketAddr,
    https: SocketAddr,
    fingerprint: String,
}

impl Pbs {
    fn start(data: &Path) -> Pbs {
        let token = data.with_extension("token");
        std::fs::write(&token, TOKEN).unwrap();
        let mut child = Command::new(RAS)
            .args([
                "pbs",
                "--http",
                "127.0.0.1:0",
                "--https",
                "127.0.0.1:0",
                "--server-name",
                "127.0.0.1",
            ])
            .arg("--data")
            .arg(data)
            .arg("--post-token-file")
            .arg(&token)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "pbs listening http=A https=B fingerprint=F"
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .unwrap_or_else(|| panic!("no {k} in {line:?}"))
                .to_owned()
        };
        Pbs {
            http: field("http=").parse().unwrap(),
            https: field("https=").parse().unwrap(),
            fingerprint: field("fingerprint="),
            child,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.https.port())
    }

    fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Pbs {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `ras phonebook --root ROOT ARGS…`, returns stdout; panics on failure.
fn admin(root: &Path, args: &[&str]) -> String {
    let out = Command::new(RAS)
        .arg("phonebook")
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ras phonebook {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A plain HTTP GET; (status, headers, body).
fn http_get(addr: SocketAddr, target: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    (status, head, buf[split + 4..].to_vec())
}

fn query(addr: SocketAddr, pbver: &str, pb: &str) -> (u16, String) {
    let (status, _, body) = http_get(
        addr,
        &format!("/pbserver/pbserver.dll?osarch=0&ostype=0&osver=1&cmver=1&lcid=1033&pbver={pbver}&pb={pb}"),
        "",
    );
    (status, String::from_utf8(body).unwrap())
}

fn import_file(dir: &Path, n: u32, salt: u32) -> PathBuf {
    let text: String = (1..=n)
        .map(|i| {
            format!(
                "{i}, 1, {}, POP {i}, 425, 555-{:04}, 9600, 56000, 0, 32, Dial{}\r\n",
                i % 3,
                (i * 7919 + salt) % 10_000,
                i % 97
            )
        })
        .collect();
    let path = dir.join(format!("import-{n}-{salt}.txt"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Creates phone book NAME with `n` POPs and publishes version 1.
fn new_book(root: &Path, name: &str, n: u32) {
    let regions = root.join("regions.txt");
    std::fs::write(&regions, "Seattle\nRedmond\n").unwrap();
    admin(
        root,
        &["create", name, "--regions", regions.to_str().unwrap()],
    );
    admin(
        root,
        &["import", name, import_file(root, n, 0).to_str().unwrap()],
    );
    admin(root, &["publish", name]);
}

/// One change, then publish: the next version.
fn next_version(root: &Path, name: &str, v: u32) {
    let line = format!("{v}, 1, 0, POP {v}, 425, 555-{v:04}, 9600, 56000, 0, 32, Changed{v}");
    admin(root, &["edit", name, &line]);
    admin(root, &["publish", name]);
}

fn post(root: &Path, pbs: &Pbs, name: &str) {
    let token = root.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    admin(
        root,
        &[
            "post",
            name,
            "--url",
            &pbs.url(),
            "--token-file",
            token.to_str().unwrap(),
            "--fingerprint",
            &pbs.fingerprint,
        ],
    );
}

fn update(root: &Path, pbs: &Pbs, name: &str, dir: &Path) -> String {
    admin(
        root,
        &[
            "update",
            name,
            "--url",
            &pbs.url(),
            "--dir",
            dir.to_str().unwrap(),
            "--fingerprint",
            &pbs.fingerprint,
        ],
    )
}

#[test]
fn decision_table_and_updates_3_to_10_full_and_8_to_10_delta() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("admin");
    std::fs::create_dir_all(&root).unwrap();
    let pbs = Pbs::start(&tmp.path().join("pbs"));
    new_book(&root, "Corp", 50);
    post(&root, &pbs, "Corp");
    let (at3, at8) = (tmp.path().join("profile3"), tmp.path().join("profile8"));
    assert!(update(&root, &pbs, "Corp", &at3).contains("full update from version 0 to 1"));
    for v in 2..=10 {
        next_version(&root, "Corp", v);
        post(&root, &pbs, "Corp");
        if v == 3 {
            assert!(update(&root, &pbs, "Corp", &at3).contains("delta update from version 1 to 3"));
        }
        if v == 8 {
            assert!(update(&root, &pbs, "Corp", &at8).contains("full update from version 0 to 8"));
        }
    }
    // The decision table at current 10.
    for (pbver, want) in [
        ("10", "None"),
        ("11", "None"),
        ("7", "Delta"),
        ("3", "Full"),
        ("0", "Full"),
    ] {
        let (status, body) = query(pbs.http, pbver, "Corp");
        assert_eq!(status, 200, "{pbver}");
        let a = parse_answer(&body).unwrap();
        assert_eq!((a.update.as_str(), a.version), (want, 10), "pbver={pbver}");
    }
    // Parameter names are case-insensitive, the path too.
    let (s, _, body) = http_get(
        pbs.http,
        "/PBServer/PBServer.dll?OSArch=0&OSType=2&LCID=1033&PBVer=7&PB=CORP",
        "",
    );
    assert_eq!(s, 200);
    assert_eq!(
        parse_answer(std::str::from_utf8(&body).unwrap())
            .unwrap()
            .update,
        UpdateKind::Delta
    );
    for bad in [
        "",
        "?pb=Corp",
        "?pbver=1",
        "?pbver=x&pb=Corp",
        "?pbver=1&pb=Corp&pbver=2",
        "?pbver=1&pb=bad%20name",
        "?pbver=-1&pb=Corp",
        "?pbver=1&pb=Corp&lcid=en",
    ] {
        let (s, _, _) = http_get(pbs.http, &format!("/pbserver/pbserver.dll{bad}"), "");
        assert_eq!(s, 400, "{bad}");
    }
    assert_eq!(query(pbs.http, "1", "Other").0, 404);
    // The profiles: 3 → 10 through the full cabinet, 8 → 10 through a delta.
    assert_eq!(phonebook::update::local_version(&at3, "Corp"), 3);
    assert_eq!(phonebook::update::local_version(&at8, "Corp"), 8);
    assert!(update(&root, &pbs, "Corp", &at3).contains("full update from version 3 to 10"));
    assert!(update(&root, &pbs, "Corp", &at8).contains("delta update from version 8 to 10"));
    assert!(update(&root, &pbs, "Corp", &at8).contains("up to date at version 10"));
    let published = std::fs::read(root.join("Corp/10/Corp.pbk")).unwrap();
    for dir in [&at3, &at8] {
        assert_eq!(
            std::fs::read(dir.join("Corp.pbk")).unwrap(),
            published,
            "{}",
            dir.display()
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("Corp.vers"))
                .unwrap()
                .trim(),
            "10"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("Corp.pbr")).unwrap(),
            "2\r\nSeattle\r\nRedmond\r\n"
        );
    }
    // Cabinets: ETag, If-None-Match, Range.
    let (s, head, full) = http_get(pbs.http, "/pbserver/data/Corp/10/full.cab", "");
    assert_eq!(s, 200);
    assert!(read_cab(&full, CabLimits::default()).is_ok());
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("an ETag")
        .to_owned();
    let (s, _, _) = http_get(
        pbs.http,
        "/pbserver/data/Corp/10/full.cab",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(s, 304);
    let (s, head, part) = http_get(
        pbs.http,
        "/pbserver/data/Corp/10/full.cab",
        "Range: bytes=10-19\r\n",
    );
    assert_eq!((s, part.as_slice()), (206, &full[10..20]));
    assert!(
        head.contains(&format!("content-range: bytes 10-19/{}", full.len())),
        "{head}"
    );
    let (s, _, _) = http_get(
        pbs.http,
        "/pbserver/data/Corp/10/full.cab",
        &format!("Range: bytes={}-\r\n", full.len()),
    );
    assert_eq!(s, 416);
    // Posting over plain HTTP is not offered; a bad credential is refused.
    let (s, _, metrics) = http_get(pbs.http, "/metrics", "");
    assert_eq!(s, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    for (name, min) in [
        ("pbs_full_hits_total", 4),
        ("pbs_delta_hits_total", 3),
        ("pbs_no_update_hits_total", 3),
        ("pbs_error_hits_total", 9),
    ] {
        let v: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing in {metrics}"))
            .parse()
            .unwrap();
        assert!(v >= min, "{name} = {v}");
    }
    let bad_token = tmp.path().join("bad");
    std::fs::write(&bad_token, "wrong").unwrap();
    let out = Command::new(RAS)
        .args(["phonebook", "--root"])
        .arg(&root)
        .args([
            "post",
            "Corp",
            "--url",
            &pbs.url(),
            "--fingerprint",
            &pbs.fingerprint,
            "--token-file",
        ])
        .arg(&bad_token)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn served_version(pbs: &Pbs, name: &str) -> u32 {
    let (status, body) = query(pbs.http, "0", name);
    assert_eq!(status, 200, "{body}");
    parse_answer(&body).unwrap().version
}

#[test]
fn kill_9_mid_post_leaves_the_previous_version_served() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("admin");
    std::fs::create_dir_all(&root).unwrap();
    let data = tmp.path().join("pbs");
    let mut pbs = Pbs::start(&data);
    new_book(&root, "Big", 20_000);
    post(&root, &pbs, "Big");
    // Version 2 changes every access number: a big cabinet.
    admin(
        &root,
        &[
            "import",
            "Big",
            import_file(&root, 6000, 1).to_str().unwrap(),
        ],
    );
    admin(&root, &["publish", "Big"]);
    let token = root.join("token");
    let slow_post = |pbs: &Pbs| {
        Command::new(RAS)
            .args(["phonebook", "--root"])
            .arg(&root)
            .args([
                "post",
                "Big",
                "--rate",
                "20000",
                "--url",
                &pbs.url(),
                "--fingerprint",
                &pbs.fingerprint,
                "--token-file",
            ])
            .arg(&token)
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // 1. The poster dies mid-upload.
    let mut poster = slow_post(&pbs);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        poster.try_wait().unwrap().is_none(),
        "the post finished before it could be killed"
    );
    poster.kill().unwrap();
    poster.wait().unwrap();
    assert_eq!(served_version(&pbs, "Big"), 1);
    assert!(!data.join("Big/2").exists());
    // 2. The service dies mid-post, and comes back serving version 1.
    let mut poster = slow_post(&pbs);
    std::thread::sleep(Duration::from_millis(1500));
    pbs.kill9();
    let _ = poster.wait();
    let pbs = Pbs::start(&data);
    assert_eq!(served_version(&pbs, "Big"), 1);
    let (s, _, cab) = http_get(pbs.http, "/pbserver/data/Big/1/full.cab", "");
    assert_eq!(s, 200);
    assert!(read_cab(&cab, CabLimits::default()).is_ok());
    // 3. A whole post then installs version 2.
    post(&root, &pbs, "Big");
    assert_eq!(served_version(&pbs, "Big"), 2);
}

/// One client round: query as a client with no phone book, download the
/// cabinet named, check it. Returns the version it got.
fn client_round(http: SocketAddr) -> Result<u32, String> {
    let (status, body) = query(http, "0", "Load");
    if status != 200 {
        return Err(format!("query: HTTP {status}"));
    }
    let a = parse_answer(&body).map_err(|e| e.to_string())?;
    let c = a.cabinet.ok_or("no cabinet")?;
    let (status, _, cab) = http_get(http, &c.url, "");
    if status != 200 {
        return Err(format!("{}: HTTP {status}", c.url));
    }
    if cab.len() as u64 != c.size || <[u8; 32]>::from(sha2::Sha256::digest(&cab)) != c.sha256 {
        return Err(format!("{}: size or SHA-256 differs", c.url));
    }
    let files = read_cab(&cab, CabLimits::default()).map_err(|e| e.to_string())?;
    let vers = files
        .iter()
        .find(|f| f.name == "Load.vers")
        .ok_or("no Load.vers")?;
    let v = read_version(&String::from_utf8_lossy(&vers.data)).map_err(|e| e.to_string())?;
    if v != a.version || !files.iter().any(|f| f.name == "Load.pbk") {
        return Err(format!(
            "cabinet says version {v}, the answer {}",
            a.version
        ));
    }
    Ok(v)
}

#[test]
fn two_hundred_clients_while_versions_are_posted() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("admin");
    std::fs::create_dir_all(&root).unwrap();
    let pbs = Pbs::start(&tmp.path().join("pbs"));
    new_book(&root, "Load", 2000);
    post(&root, &pbs, "Load");
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let http = pbs.http;
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let (stop, rounds) = (stop.clone(), rounds.clone());
            std::thread::spawn(move || -> Result<Vec<u32>, String> {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) || seen.is_empty() {
                    seen.push(client_round(http)?);
                    rounds.fetch_add(1, Ordering::Relaxed);
                }
                Ok(seen)
            })
        })
        .collect();
    let started = Instant::now();
    for v in 2..=8 {
        next_version(&root, "Load", v);
        post(&root, &pbs, "Load");
    }
    stop.store(true, Ordering::Relaxed);
    let mut versions = std::collections::BTreeSet::new();
    for c in clients {
        let seen = c
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("a client got a bad answer: {e}"));
        versions.extend(seen);
    }
    eprintln!(
        "{} client rounds in {:?}, versions seen: {versions:?}",
        rounds.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(versions.len() >= 2, "clients saw only {versions:?}");
    assert!(versions.contains(&8) || served_version(&pbs, "Load") == 8);
}

/// Runs `ras phonebook --root ROOT ARGS…` that must fail; returns stderr.
fn admin_fails(root: &Path, args: &[&str]) -> String {
    let out = Command::new(RAS)
        .arg("phonebook")
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .unwrap();
    assert!(!out.status.success(), "ras phonebook {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

/// What the administrator meets: the name rule shared with profiles, one line for
/// each change, POP errors that name the argument and field, posting refused over
/// plain HTTP before connecting, and the update taking the profile's PBURL as well
/// as the base URL.
#[test]
fn the_administrator_commands_speak_plainly() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("books");
    // `_` and `-` as in profile short names.
    let out = admin(&root, &["create", "corp_1"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let out = admin(
        &root,
        &[
            "add",
            "corp_1",
            "1, 1, 0, Redmond, 425, 555-0134, 9600, 56000, 0, 0, ISP",
        ],
    );
    assert_eq!(out.trim(), "added POP 1 to corp_1");
    // An empty POP name is refused, naming the argument and the field (not "POP:0:").
    let err = admin_fails(
        &root,
        &["add", "corp_1", "2, 1, 0, , 425, 555-0135, 0, 0, 0, 0, "],
    );
    assert!(err.contains("LINE: POP Name: 1 to 30"), "{err}");
    assert!(!err.contains(":0:"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let out = admin(
        &root,
        &["edit", "corp_1", "--index", "1", "--out-of-service"],
    );
    assert_eq!(out.trim(), "POP 1 of corp_1 taken out of service");
    let out = admin(&root, &["edit", "corp_1", "--index", "1", "--in-service"]);
    assert_eq!(out.trim(), "POP 1 of corp_1 put back in service");
    let out = admin(&root, &["publish", "corp_1"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let versions = admin(&root, &["list", "corp_1", "--versions"]);
    assert!(versions.starts_with("1\tfull\t1 POPs"), "{versions}");

    // Posting over plain HTTP: refused before anything is sent.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let token = tmp.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let err = admin_fails(
        &root,
        &[
            "post",
            "corp_1",
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--token-file",
            token.to_str().unwrap(),
        ],
    );
    assert!(err.contains("only ever sent over HTTPS"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        listener.accept().is_err(),
        "the post connected over plain HTTP"
    );

    // Posted over HTTPS, then updated through the full PBURL and the base URL alike.
    let data = tmp.path().join("pbs");
    let pbs = Pbs::start(&data);
    post(&root, &pbs, "corp_1");
    for (i, url) in [
        format!("http://127.0.0.1:{}/pbserver/pbserver.dll", pbs.http.port()),
        format!("http://127.0.0.1:{}", pbs.http.port()),
    ]
    .iter()
    .enumerate()
    {
        let dir = tmp.path().join(format!("profile{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let out = admin(
            &root,
            &[
                "update",
                "corp_1",
                "--url",
                url,
                "--dir",
                dir.to_str().unwrap(),
            ],
        );
        assert_eq!(
            out.trim(),
            "phone book corp_1: full update from version 0 to 1",
            "{url}"
        );
        assert!(dir.join("corp_1.pbk").is_file());
    }
    let out = admin(&root, &["delete", "corp_1", "1"]);
    assert_eq!(out.trim(), "deleted POP 1 from corp_1");
}

/// The service's standard output and error are a pipe nobody reads any
/// more (a terminal closed, a supervisor restarted): its banner line is
/// lost, the service keeps answering (println! used to panic on EPIPE).
#[test]
fn the_service_keeps_serving_when_its_output_went_away() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(RAS)
        .args(["pbs", "--http", &format!("127.0.0.1:{port}")])
        .arg("--data")
        .arg(dir.path())
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(20);
    let answered = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the service exited ({status}) when its output went away");
        }
        if TcpStream::connect(addr).is_ok() {
            // Past the banner: it still answers a query (404 for a phone
            // book it does not hold), and logs it to the closed stderr.
            break query(addr, "0", "Nothing").0;
        }
        assert!(Instant::now() < deadline, "the service never listened");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(answered, 404);
    std::thread::sleep(Duration::from_millis(300));
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(still_running, "the service stopped after its banner");
}
