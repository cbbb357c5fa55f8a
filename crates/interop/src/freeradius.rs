//! A private FreeRADIUS 3.2 (Debian's package) as the real RADIUS server
//! for the server's RADIUS tests: its own copy of the configuration, run in
//! debug mode (`-X`, single-threaded, every attribute in its log) as root,
//! optionally inside a network namespace, listening on one loopback
//! address so that two instances (a primary and an alternate) can run
//! side by side.
//!
//! Facts verified by `../shared/lab/freeradius.sh` on this kind of machine:
//! the package's configuration works once `user`/`group` are commented out;
//! `radtest` and `eapol_test` (package `eapoltest`) exercise it.
//!
//! Our RADIUS client requires a Message-Authenticator in every Access-*
//! reply (the BlastRADIUS mitigation). FreeRADIUS 3.2.1 adds one by itself
//! only to EAP replies, so the post-auth sections here add it to every
//! Access-Accept and Access-Reject.

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shared secret of every instance.
pub const SECRET: &str = "testing123";

/// Users every instance knows (FreeRADIUS `users` syntax).
pub const USERS: &str = r#"test	Cleartext-Password := "test123"
	Reply-Message := "Hello, %{User-Name}"

static	Cleartext-Password := "static123"
	Framed-IP-Address = 10.0.10.25,
	Session-Timeout = 3600,
	Class := "ras-static-class"

short	Cleartext-Password := "short123"
	Session-Timeout = 4

v6	Cleartext-Password := "v6pass123"
	Framed-IPv6-Prefix = "fd99:1:2:3::/64"

branch	Cleartext-Password := "branch123"
	Framed-Route = "10.77.0.0/24 0.0.0.0 1",
	Framed-Route += "10.79.0.5/24 0.0.0.0 1"

branch6	Cleartext-Password := "branch6pw"
	Framed-IPv6-Route = "2001:db8:77::/64 :: 1"

ikebranch	Cleartext-Password := "ikebranch1"
	Framed-Route = "10.97.0.0/24 0.0.0.0 1"

ikebranch6	Cleartext-Password := "ikebranch6"
	Framed-Route = "10.97.0.0/24 0.0.0.0 1",
	Framed-IPv6-Route = "2001:db8:97::/64 :: 1"

l2tpbranch	Cleartext-Password := "l2tpbranch1"
	Framed-Route = "10.96.0.0/24 0.0.0.0 1"

reject	Auth-Type := Reject
	Reply-Message := "rejected by the lab"

"#;

/// Whether the FreeRADIUS package is installed.
pub fn available() -> bool {
    Path::new("/usr/sbin/freeradius").exists() && Path::new("/etc/freeradius/3.0").is_dir()
}

/// One running instance.
pub struct FreeRadius {
    dir: PathBuf,
    ns: Option<String>,
    pub address: Ipv4Addr,
    child: Option<Child>,
}

/// Drops every top-level `listen { … }` block of `text` that `drop`
/// selects, and rewrites the lines of the others with `edit`.
fn edit_listen_blocks(
    text: &str,
    drop: impl Fn(&str) -> bool,
    edit: impl Fn(&str) -> String,
) -> String {
    let mut out = String::new();
    let mut block: Option<(Vec<String>, i32)> = None;
    for line in text.lines() {
        if let Some((lines, depth)) = block.as_mut() {
            lines.push(line.to_owned());
            *depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
            if *depth <= 0 {
                let body = lines.join("\n");
                if !drop(&body) {
                    for l in lines.iter() {
                        out.push_str(&edit(l));
                        out.push('\n');
                    }
                }
                block = None;
            }
            continue;
        }
        if line.trim_start().starts_with("listen {") && !line.starts_with('#') {
            block = Some((vec![line.to_owned()], 1));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Adds `Message-Authenticator` to replies in the post-auth section and in
/// its REJECT subsection (FreeRADIUS computes the value when encoding).
fn sign_replies(site: &str) -> String {
    const UPDATE: &str =
        "\tupdate reply {\n\t\t&Message-Authenticator := 0x00000000000000000000000000000000\n\t}\n";
    let mut out = String::new();
    for line in site.lines() {
        out.push_str(line);
        out.push('\n');
        let t = line.trim();
        if line.starts_with("post-auth {") || t == "Post-Auth-Type REJECT {" {
            out.push_str(UPDATE);
        }
    }
    out
}

impl FreeRadius {
    /// Writes a private configuration under `dir` and starts FreeRADIUS on
    /// `address` (ports 1812/1813), in network namespace `ns` if given.
    pub fn start(dir: &Path, ns: Option<&str>, address: Ipv4Addr) -> Result<FreeRadius, String> {
        let raddb = dir.join("raddb");
        let _ = std::fs::remove_dir_all(&raddb);
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let status = Command::new("cp")
            .arg("-a")
            .arg("/etc/freeradius/3.0")
            .arg(&raddb)
            .status()
            .map_err(|e| format!("cp: {e}"))?;
        if !status.success() {
            return Err("copying /etc/freeradius/3.0 failed".into());
        }
        let log_dir = dir.join("log");
        std::fs::create_dir_all(&log_dir).map_err(|e| e.to_string())?;

        let conf = raddb.join("radiusd.conf");
        let text = read(&conf)?
            .lines()
            .map(|l| {
                let t = l.trim_start();
                if t.starts_with("user = freerad") || t.starts_with("group = freerad") {
                    format!("#{l}")
                } else if t.starts_with("logdir = ") {
                    format!("logdir = {}", log_dir.display())
                } else if t.starts_with("pidfile = ") {
                    format!("pidfile = {}", dir.join("radiusd.pid").display())
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        write(&conf, &text)?;

        let addr = address.to_string();
        let site = raddb.join("sites-available/default");
        let text = edit_listen_blocks(
            &read(&site)?,
            |block| {
                block
                    .lines()
                    .any(|l| l.trim_start().starts_with("ipv6addr"))
            },
            |l| {
                if l.trim_start().starts_with("ipaddr = *") {
                    format!("\tipaddr = {addr}")
                } else {
                    l.to_owned()
                }
            },
        );
        write(&site, &sign_replies(&text))?;
        let inner = raddb.join("sites-available/inner-tunnel");
        let text = read(&inner)?.replace("ipaddr = 127.0.0.1", &format!("ipaddr = {addr}"));
        write(&inner, &text)?;

        let clients = raddb.join("clients.conf");
        let mut text = read(&clients)?;
        text.push_str(&format!(
            "\nclient ras_tests {{\n\tipaddr = 127.0.0.0/8\n\tsecret = {SECRET}\n}}\n"
        ));
        write(&clients, &text)?;
        let users = raddb.join("mods-config/files/authorize");
        let text = format!("{USERS}{}", read(&users)?);
        write(&users, &text)?;

        let mut fr = FreeRadius {
            dir: dir.to_owned(),
            ns: ns.map(str::to_owned),
            address,
            child: None,
        };
        fr.launch()?;
        Ok(fr)
    }

    fn command(&self) -> Command {
        let raddb = self.dir.join("raddb");
        let mut c = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "freeradius"]);
                c
            }
            None => Command::new("freeradius"),
        };
        c.arg("-X").arg("-d").arg(raddb);
        c
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("radiusd.log")
    }

    fn launch(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| e.to_string())?;
        let start_len = log.metadata().map(|m| m.len()).unwrap_or(0);
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("freeradius: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut text = String::new();
            if let Ok(mut f) = std::fs::File::open(self.log_path()) {
                let _ = f.read_to_string(&mut text);
            }
            let fresh = text.get(start_len as usize..).unwrap_or("");
            if fresh.contains("Ready to process requests") {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
                .is_some();
            if exited || Instant::now() > deadline {
                self.stop();
                let tail: String = fresh
                    .lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(format!("freeradius did not start:\n{tail}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the instance (it can be started again with [`Self::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// EAP-TLS (RFC 5216) with the caller's PKI: the server certificate and
    /// key FreeRADIUS presents, and the CA client certificates must chain
    /// to (`tls-common` of the eap module, which the package points at the
    /// snakeoil certificate and the system CAs). Restarts the instance.
    pub fn use_eap_tls(&mut self, ca: &Path, cert: &Path, key: &Path) -> Result<(), String> {
        let eap = self.dir.join("raddb/mods-available/eap");
        let text = read(&eap)?
            .lines()
            .map(|l| {
                let t = l.trim_start();
                let indent = &l[..l.len() - t.len()];
                if t.starts_with("private_key_file = ") {
                    format!("{indent}private_key_file = {}", key.display())
                } else if t.starts_with("certificate_file = ") {
                    format!("{indent}certificate_file = {}", cert.display())
                } else if t.starts_with("ca_file = ") {
                    format!("{indent}ca_file = {}", ca.display())
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        write(&eap, &text)?;
        self.restart()
    }

    /// Starts a stopped instance again with the same configuration.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.launch()
    }

    /// Whether it runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// The debug log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Every accounting record written by the `detail` module so far
    /// (all files under `log/radacct`), concatenated.
    pub fn detail(&self) -> String {
        let mut out = String::new();
        let root = self.dir.join("log/radacct");
        let mut stack = vec![root];
        let mut files = Vec::new();
        while let Some(d) = stack.pop() {
            if let Ok(rd) = std::fs::read_dir(&d) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else {
                        files.push(p);
                    }
                }
            }
        }
        files.sort();
        for f in files {
            out.push_str(&std::fs::read_to_string(&f).unwrap_or_default());
        }
        out
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The records of a `detail` file: blank-line separated blocks of
/// `Attribute = value` lines.
pub fn detail_records(detail: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for line in detail.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if let Some((k, v)) = line.trim().split_once(" = ") {
            current.push((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_listeners_are_dropped_and_ipv4_rebound() {
        let site = "server default {\nlisten {\n\ttype = auth\n#\tipv6addr = ::\n\tipaddr = *\n\tport = 0\n}\nlisten {\n\ttype = auth\n\tipv6addr = ::\n}\n}\n";
        let out = edit_listen_blocks(
            site,
            |b| b.lines().any(|l| l.trim_start().starts_with("ipv6addr")),
            |l| l.replace("ipaddr = *", "ipaddr = 127.0.0.2"),
        );
        assert!(out.contains("ipaddr = 127.0.0.2"));
        assert!(!out.lines().any(|l| l.trim_start().starts_with("ipv6addr")));
        assert!(out.contains("#\tipv6addr"), "comments are kept");
        assert_eq!(out.matches("listen {").count(), 1);
    }

    #[test]
    fn detail_blocks_are_parsed() {
        let text = "Mon Nov 23 10:00:00 2026\n\tAcct-Status-Type = Start\n\tUser-Name = \"test\"\n\nMon Nov 23 10:01:00 2026\n\tAcct-Status-Type = Stop\n\tAcct-Input-Octets = 42\n";
        let r = detail_records(text);
        assert_eq!(r.len(), 2);
        assert!(r[1].contains(&("Acct-Input-Octets".into(), "42".into())));
        assert!(r[0].contains(&("User-Name".into(), "test".into())));
    }
}
