//! `ras profile …`: build (the CMAK role), sign, install, list, remove and check
//! Connection Manager service profiles. See docs/CONNECTION-MANAGER.md.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use profile::build::{BuildSpec, PhoneBookSpec, ServerSpec};
use profile::package::{self, TrustPolicy};
use profile::signing::{PublicKey, SigningKey};
use profile::store::{self, Scope};

#[derive(Subcommand)]
pub enum ProfileCommand {
    /// Create an ed25519 signing key pair: BASE.key (private, 0600) and BASE.pub.
    Keygen {
        /// Path of the key files without extension.
        #[arg(long, default_value = "ras-profile")]
        out: PathBuf,
    },
    /// Build a profile from an answer file and/or flags (or repackage a hand-edited one).
    Build(Box<BuildArgs>),
    /// Install a .rasprofile package (verified first).
    Install {
        /// The package file.
        package: PathBuf,
        /// Install for all users (/etc/ras/profiles) instead of the current user.
        #[arg(long)]
        all_users: bool,
        /// Trust this public key file (repeatable), in addition to the trusted-keys directory.
        #[arg(long = "trust", value_name = "KEYFILE")]
        trust: Vec<PathBuf>,
        /// Also install a package that carries no signature at all (never one whose
        /// signature fails or whose signer is not trusted).
        #[arg(long)]
        allow_unsigned: bool,
    },
    /// List installed profiles (both scopes unless one is chosen).
    List {
        /// Only per-user profiles.
        #[arg(long, conflicts_with = "all_users")]
        user: bool,
        /// Only all-users profiles.
        #[arg(long)]
        all_users: bool,
    },
    /// Remove an installed profile by short name or service name.
    Remove {
        /// Short name or service name.
        name: String,
        /// Remove from the all-users profiles.
        #[arg(long)]
        all_users: bool,
    },
    /// Load a profile and print what the dialer would use.
    Check {
        /// The profile: an installed profile's short or service name, or a path to its
        /// directory, .cms or .cmp (the same as `ras dial` takes).
        profile: String,
    },
}

#[derive(Args)]
pub struct BuildArgs {
    /// Answer file (TOML); flags override its values.
    #[arg(long, short = 'a')]
    answers: Option<PathBuf>,
    /// Repackage this existing profile directory (after advanced customization) instead of building.
    #[arg(long, conflicts_with = "answers")]
    rebuild: Option<PathBuf>,
    /// Output directory: <OUT>/<short>/ gets the plain files, <OUT>/<short>.rasprofile the package.
    #[arg(long, short = 'o', default_value = ".")]
    out: PathBuf,
    /// Private key to sign the package with (see `ras profile keygen`).
    #[arg(long, required_unless_present = "unsigned")]
    sign_key: Option<PathBuf>,
    /// Build an unsigned package (installing it then needs --allow-unsigned).
    #[arg(long, conflicts_with = "sign_key")]
    unsigned: bool,
    /// Service name.
    #[arg(long)]
    service_name: Option<String>,
    /// Short service name: 1 to 8 letters, digits, '_' or '-', not all digits (the
    /// phone book name rule).
    #[arg(long)]
    short_name: Option<String>,
    /// VPN server, `ADDRESS` or `NAME=ADDRESS`; ADDRESS is host, host:PORT (PORT is
    /// SSTP's when the profile tries SSTP), sstp://host:PORT or pptp://host:PORT
    /// (repeatable; replaces the answer file's list).
    #[arg(long = "vpn-server")]
    vpn_servers: Vec<String>,
    /// Protocol order, e.g. `--protocol sstp --protocol pptp`; `l2tp` alone or first
    /// (`l2tp sstp pptp`) needs `--psk-file`; `ikev2` alone or first (`ikev2 sstp
    /// pptp`) connects with EAP-MSCHAPv2 after the server's certificate.
    #[arg(long = "protocol")]
    protocols: Vec<String>,
    /// The L2TP/IPsec pre-shared key: the first line of FILE (written into the
    /// profile's .cms in clear text; 8 to 256 characters).
    #[arg(long, value_name = "FILE")]
    psk_file: Option<PathBuf>,
    /// Realm prefix (UserNamePrefix).
    #[arg(long)]
    realm_prefix: Option<String>,
    /// Realm suffix (UserNameSuffix).
    #[arg(long)]
    realm_suffix: Option<String>,
    /// Extra file to include (repeatable).
    #[arg(long = "extra-file")]
    extra_files: Vec<PathBuf>,
    /// Phone book (.pbk) to include.
    #[arg(long)]
    phonebook: Option<PathBuf>,
    /// Region file (.pbr) of the phone book.
    #[arg(long, requires = "phonebook")]
    region_file: Option<PathBuf>,
    /// Phone Book Service URL.
    #[arg(long, requires = "phonebook")]
    pb_url: Option<String>,
    /// Profile directory to merge (repeatable).
    #[arg(long = "merge")]
    merge: Vec<PathBuf>,
}

pub fn run(cmd: ProfileCommand) -> anyhow::Result<()> {
    match cmd {
        ProfileCommand::Keygen { out } => {
            let (key, private, public) = SigningKey::write_new(&out)?;
            println!(
                "created signing key {} (private: keep it secret) and {} (public key {})",
                private.display(),
                public.display(),
                key.public_key().to_hex()
            );
            Ok(())
        }
        ProfileCommand::Build(args) => build(*args),
        ProfileCommand::Install {
            package,
            all_users,
            trust,
            allow_unsigned,
        } => {
            let scope = scope(all_users);
            let mut policy = TrustPolicy {
                keys: store::trusted_keys(scope),
                allow_unsigned,
            };
            for path in &trust {
                policy.keys.push(PublicKey::read(path)?);
            }
            let bytes = std::fs::read(&package)
                .with_context(|| format!("reading {}", package.display()))?;
            let installed = store::install(&bytes, scope, &policy)
                .with_context(|| format!("installing {}", package.display()))?;
            println!(
                "installed {} ({}) for {} in {} [{}]",
                installed.record.short_name,
                installed.record.service_name,
                scope.name(),
                installed.dir.display(),
                installed.record.signature
            );
            Ok(())
        }
        ProfileCommand::List { user, all_users } => {
            let scopes: &[Scope] = match (user, all_users) {
                (true, _) => &[Scope::User],
                (_, true) => &[Scope::AllUsers],
                _ => &[Scope::User, Scope::AllUsers],
            };
            for &scope in scopes {
                for p in store::list(scope)? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        p.record.short_name,
                        p.record.service_name,
                        scope.name(),
                        p.dir.display(),
                        p.record.signature
                    );
                }
            }
            Ok(())
        }
        ProfileCommand::Remove { name, all_users } => {
            let scope = scope(all_users);
            let dir = store::remove(&name, scope)?;
            println!("removed {name} for {} ({})", scope.name(), dir.display());
            Ok(())
        }
        ProfileCommand::Check { profile } => check(&profile),
    }
}

fn scope(all_users: bool) -> Scope {
    if all_users {
        Scope::AllUsers
    } else {
        Scope::User
    }
}

fn build(args: BuildArgs) -> anyhow::Result<()> {
    let key = match &args.sign_key {
        Some(path) => Some(SigningKey::read(path)?),
        None => None,
    };
    let dir = match &args.rebuild {
        Some(dir) => dir.clone(),
        None => {
            let (mut spec, base, source) = match &args.answers {
                Some(path) => {
                    let (spec, source) = BuildSpec::read_source(path)?;
                    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
                    (spec, base, Some(source))
                }
                None => (BuildSpec::default(), PathBuf::from("."), None),
            };
            let from_file = FileCounts::of(&spec);
            apply_flags(&mut spec, &args)?;
            let out = profile::build::build(&spec, &base, &args.out).map_err(|e| {
                // A value from the answer file is named by file and line; one from a
                // flag by the flag.
                match (&source, e.field()) {
                    (Some(src), Some(field)) if !from_flag(field, &args, &from_file) => {
                        e.in_answer_file(src)
                    }
                    _ => e,
                }
            })?;
            out.dir
        }
    };
    let bytes = package::create(&dir, key.as_ref())?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let profile = profile::load(&dir)?;
    let pkg = args
        .out
        .join(format!("{}.{}", profile.short_name, package::EXTENSION));
    profile::load::write_atomic(&pkg, &bytes)?;
    println!(
        "built {}: files in {}, package {} ({} bytes, {})",
        profile.short_name,
        dir.display(),
        pkg.display(),
        bytes.len(),
        match &key {
            Some(k) => format!("signed by {}", k.public_key().to_hex()),
            None => "UNSIGNED".to_owned(),
        }
    );
    Ok(())
}

/// How many list entries came from the answer file (flags append after them).
struct FileCounts {
    extra_files: usize,
    merge: usize,
}

impl FileCounts {
    fn of(spec: &BuildSpec) -> FileCounts {
        FileCounts {
            extra_files: spec.extra_files.len(),
            merge: spec.merge.len(),
        }
    }
}

/// Whether the answer-file key `field` (as a `BuildError` names it) was given by a flag.
fn from_flag(field: &str, args: &BuildArgs, file: &FileCounts) -> bool {
    let top = field.split(['.', '[']).next().unwrap_or(field);
    let index = || {
        field
            .split_once('[')
            .and_then(|(_, i)| i.split(']').next())
            .and_then(|i| i.parse::<usize>().ok())
            .unwrap_or(0)
    };
    match top {
        "service_name" => args.service_name.is_some(),
        "short_name" => args.short_name.is_some(),
        "vpn" if field.starts_with("vpn.servers") => !args.vpn_servers.is_empty(),
        "vpn" if field.starts_with("vpn.protocols") => !args.protocols.is_empty(),
        "vpn" if field.starts_with("vpn.preshared_key") => args.psk_file.is_some(),
        "realm" => args.realm_prefix.is_some() || args.realm_suffix.is_some(),
        "phonebook" => args.phonebook.is_some(),
        "extra_files" => index() >= file.extra_files,
        "merge" => index() >= file.merge,
        _ => false,
    }
}

fn apply_flags(spec: &mut BuildSpec, args: &BuildArgs) -> anyhow::Result<()> {
    if let Some(v) = &args.service_name {
        spec.service_name = Some(v.clone());
    }
    if let Some(v) = &args.short_name {
        spec.short_name = Some(v.clone());
    }
    if !args.vpn_servers.is_empty() {
        spec.vpn.servers = args
            .vpn_servers
            .iter()
            .map(|s| match s.split_once('=') {
                Some((name, address)) => ServerSpec {
                    name: Some(name.to_owned()),
                    address: address.to_owned(),
                },
                None => ServerSpec {
                    name: None,
                    address: s.clone(),
                },
            })
            .collect();
    }
    if !args.protocols.is_empty() {
        spec.vpn.protocols = args.protocols.clone();
    }
    if let Some(path) = &args.psk_file {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the pre-shared key file {}", path.display()))?,
        );
        let line = text.lines().next().unwrap_or("");
        spec.vpn.preshared_key = Some(profile::model::Secret(line.to_owned()));
    }
    if let Some(v) = &args.realm_prefix {
        spec.realm.prefix = Some(v.clone());
    }
    if let Some(v) = &args.realm_suffix {
        spec.realm.suffix = Some(v.clone());
    }
    spec.extra_files.extend(args.extra_files.iter().cloned());
    spec.merge.extend(args.merge.iter().cloned());
    if let Some(pbk) = &args.phonebook {
        spec.phonebook = Some(PhoneBookSpec {
            pbk: pbk.clone(),
            pbr: args.region_file.clone(),
            url: args.pb_url.clone(),
        });
    }
    // With an answer file, a missing name is reported against the file (by `build`).
    if args.answers.is_none() && (spec.service_name.is_none() || spec.short_name.is_none()) {
        bail!("a profile needs a service name and a short name: give --answers FILE, or --service-name and --short-name");
    }
    Ok(())
}

fn check(name: &str) -> anyhow::Result<()> {
    let p = profile::load(&store::locate(name)?)?;
    let cm = &p.connection_manager;
    println!("short name:    {}", p.short_name);
    println!("service name:  {}", cm.service_name);
    println!("directory:     {}", p.files.dir.display());
    let kinds: Vec<&str> = p.connection_kinds().iter().map(|k| k.name()).collect();
    println!("connections:   {}", kinds.join(", "));
    if cm.tunnel {
        let protocols: Vec<&str> = p.vpn.protocols.iter().map(|v| v.name()).collect();
        println!("vpn protocols: {}", protocols.join(", "));
        if p.vpn.preshared_key.is_some() {
            // Never the key itself.
            println!("ipsec psk:     set (L2TP/IPsec)");
        }
        for s in &p.vpn.servers {
            println!("vpn server:    {} = {}", s.name, s.address);
        }
    }
    println!("realm:         {}", cm.realm.apply("<user>"));
    for pb in &p.isp.phone_books {
        println!(
            "phone book:    {} {}{}",
            pb.pbk,
            pb.pbr.as_deref().unwrap_or(""),
            pb.merged_from
                .as_deref()
                .map(|m| format!(" (merged from {m})"))
                .unwrap_or_default()
        );
    }
    for a in &p.actions {
        println!(
            "action:        {} #{} {}{} {} [{}]",
            a.point,
            a.index,
            a.program,
            a.entry_point
                .as_deref()
                .map(|e| format!(",{e}"))
                .unwrap_or_default(),
            a.parameters,
            a.description
        );
    }
    Ok(())
}
