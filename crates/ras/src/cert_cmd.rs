//! `ras cert …`: issue a server certificate the built-in VPN clients accept,
//! and check an existing one against their rules.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use server::cert_issue::{issue, CaMaterial, KeyType};
use server::cert_rules::{check_server_certificate, Severity};
use zeroize::Zeroizing;

/// Key types `ras cert issue` makes.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KeyArg {
    /// RSA 2048 (every client).
    Rsa,
    /// ECDSA P-256 (every current client; smaller and faster).
    Ecdsa,
}

/// The `ras cert` subcommands.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Make a server certificate for IKEv2 and SSTP (and a CA to sign it,
    /// unless ca-cert.pem and ca-key.pem are already in the directory).
    Issue {
        /// A host name clients dial (repeat for several).
        #[arg(long = "name", value_name = "HOST")]
        names: Vec<String>,
        /// An address clients dial (repeat for several).
        #[arg(long = "address", value_name = "IP")]
        addresses: Vec<IpAddr>,
        /// Where the files go: ca-cert.pem, ca-key.pem, server-cert.pem,
        /// server-key.pem.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// The key type of the server certificate (and of a new CA).
        #[arg(long, value_enum, default_value = "rsa")]
        key: KeyArg,
        /// Validity of the server certificate in days (Apple clients refuse
        /// more than 825).
        #[arg(long, default_value_t = 825)]
        days: u32,
        /// Replace an existing server-cert.pem and server-key.pem.
        #[arg(long)]
        force: bool,
    },
    /// Check a server certificate (PEM, leaf first) against what Windows,
    /// Apple and Android clients require; exits 1 if a client will refuse it.
    Check {
        /// The certificate file.
        file: PathBuf,
        /// The name or address clients dial.
        #[arg(long, value_name = "HOST")]
        name: Option<String>,
        /// One JSON object per finding, for scripts.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: CertCommand) -> anyhow::Result<()> {
    match cmd {
        CertCommand::Issue {
            names,
            addresses,
            dir,
            key,
            days,
            force,
        } => issue_cmd(&names, &addresses, &dir, key, days, force),
        CertCommand::Check { file, name, json } => check_cmd(&file, name.as_deref(), json),
    }
}

fn write_file(path: &Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if private {
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn issue_cmd(
    names: &[String],
    addresses: &[IpAddr],
    dir: &Path,
    key: KeyArg,
    days: u32,
    force: bool,
) -> anyhow::Result<()> {
    if names.is_empty() && addresses.is_empty() {
        bail!("give the name clients dial with --name HOST or --address IP");
    }
    let (ca_cert, ca_key) = (dir.join("ca-cert.pem"), dir.join("ca-key.pem"));
    let (cert_path, key_path) = (dir.join("server-cert.pem"), dir.join("server-key.pem"));
    if !force && (cert_path.exists() || key_path.exists()) {
        bail!(
            "{} or {} exists already; nothing was changed (--force replaces them)",
            cert_path.display(),
            key_path.display()
        );
    }
    let ca = if ca_cert.exists() && ca_key.exists() {
        Some(CaMaterial {
            cert_pem: std::fs::read_to_string(&ca_cert)
                .with_context(|| format!("cannot read {}", ca_cert.display()))?,
            key_pem: Zeroizing::new(
                std::fs::read_to_string(&ca_key)
                    .with_context(|| format!("cannot read {}", ca_key.display()))?,
            ),
        })
    } else {
        None
    };
    let key_type = match key {
        KeyArg::Rsa => KeyType::Rsa2048,
        KeyArg::Ecdsa => KeyType::EcdsaP256,
    };
    let issued = issue(ca.as_ref(), names, addresses, key_type, days)
        .with_context(|| format!("with the CA in {}", ca_cert.display()))?;
    if let Some(new_ca) = &issued.new_ca {
        write_file(&ca_key, new_ca.key_pem.as_bytes(), true)?;
        write_file(&ca_cert, new_ca.cert_pem.as_bytes(), false)?;
        println!(
            "created a CA: {} (its key: {})",
            ca_cert.display(),
            ca_key.display()
        );
    } else {
        println!("signed with the CA in {}", ca_cert.display());
    }
    write_file(&key_path, issued.key_pem.as_bytes(), true)?;
    write_file(&cert_path, issued.chain_pem.as_bytes(), false)?;
    println!(
        "server certificate: {} (key: {})",
        cert_path.display(),
        key_path.display()
    );
    println!(
        "in the server's configuration: [certificate] chain = \"{}\", key = \"{}\"",
        cert_path.display(),
        key_path.display()
    );
    println!(
        "on each client: install {} as a trusted root certification authority",
        ca_cert.display()
    );
    Ok(())
}

fn check_cmd(file: &Path, name: Option<&str>, json: bool) -> anyhow::Result<()> {
    let pem = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let leaf = CertificateDer::pem_slice_iter(&pem)
        .next()
        .with_context(|| format!("{}: no PEM certificate in it", file.display()))?
        .with_context(|| format!("{}: unreadable PEM", file.display()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let findings = check_server_certificate(&leaf, name, now)
        .with_context(|| format!("{}", file.display()))?;
    let mut out = std::io::stdout().lock();
    for finding in &findings {
        let line = if json {
            serde_json::to_string(finding).unwrap_or_default()
        } else {
            finding.to_string()
        };
        // A closed standard output must not take the command down.
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    if findings.iter().any(|f| f.severity == Severity::Refused) {
        std::process::exit(1);
    }
    Ok(())
}
