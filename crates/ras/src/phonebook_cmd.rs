//! `ras phonebook …`: the Phone Book Administrator (create, import, add,
//! edit, delete, list, publish, post) and the client update action
//! (`update`, what `ras dial` runs after connecting).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use phonebook::http::ServiceUrl;
use phonebook::import::{import_line, parse_import, parse_import_line};
use phonebook::pbk::check_pop;
use phonebook::pbr::parse_region_list;
use phonebook::publish::publish;
use phonebook::store::{Store, StoreChange};
use phonebook::Trust;

/// Where phone books live unless --root or RAS_PHONEBOOK_ROOT says.
const DEFAULT_ROOT: &str = "/var/lib/ras/phonebooks";

#[derive(Args)]
pub struct PhonebookArgs {
    /// Directory holding the phone books, one folder each [default:
    /// $RAS_PHONEBOOK_ROOT, else /var/lib/ras/phonebooks].
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    #[command(subcommand)]
    cmd: PhonebookCommand,
}

/// How to trust the Phone Book Service's certificate.
#[derive(Args)]
struct TrustArgs {
    /// SHA-256 fingerprint of the service certificate (as `ras pbs` prints it).
    #[arg(long)]
    fingerprint: Option<String>,
    /// CA certificate(s) that signed the service certificate (PEM).
    #[arg(long)]
    ca: Option<PathBuf>,
}

impl TrustArgs {
    fn trust(&self, url: &str) -> anyhow::Result<Trust> {
        match (&self.fingerprint, &self.ca) {
            (Some(f), None) => Ok(Trust::fingerprint(f)?),
            (None, Some(ca)) => Ok(Trust::ca_file(ca)?),
            (Some(_), Some(_)) => bail!("give either --fingerprint or --ca, not both"),
            (None, None) if url.starts_with("http://") => Ok(Trust::Roots(Vec::new())),
            (None, None) => bail!("an https:// service needs --fingerprint SHA256 or --ca FILE"),
        }
    }
}

#[derive(Subcommand)]
enum PhonebookCommand {
    /// Create an empty phone book.
    Create {
        /// The phone book's name: 1 to 8 letters, digits, '_' or '-', not all digits
        /// (the same rule as a profile's short name).
        name: String,
        /// File of region names, one per line.
        #[arg(long, value_name = "FILE")]
        regions: Option<PathBuf>,
    },
    /// Import POPs (PBA format: 11 fields separated by ", "); adds new, replaces existing.
    Import {
        /// The phone book.
        name: String,
        /// The import file: one POP per line, `;` comments and blank lines skipped.
        file: PathBuf,
        /// Replace the region list first with this file's names (one per line).
        #[arg(long, value_name = "FILE")]
        regions: Option<PathBuf>,
    },
    /// Add one POP.
    Add {
        /// The phone book.
        name: String,
        /// The POP as one import-format line, e.g. "1, 1, 0, Redmond, 425, 555-0134, 9600, 56000, 0, 0, ISP".
        line: String,
    },
    /// Replace a POP (an import-format line), and/or take it in or out of service.
    Edit {
        /// The phone book.
        name: String,
        /// The POP's new import-format line (its first field says which POP).
        line: Option<String>,
        /// The POP to change the status of (when no line is given).
        #[arg(long)]
        index: Option<u32>,
        /// Stop publishing this POP.
        #[arg(long, conflicts_with = "in_service")]
        out_of_service: bool,
        /// Publish this POP again.
        #[arg(long)]
        in_service: bool,
    },
    /// Delete POPs by index.
    Delete {
        /// The phone book.
        name: String,
        /// The POP Index of each POP to delete.
        #[arg(required = true)]
        indexes: Vec<u32>,
    },
    /// List the POPs (import format, out-of-service ones marked), or the history or versions.
    List {
        /// The phone book.
        name: String,
        /// Show the change history (PBA's history format) instead of the POPs.
        #[arg(long, conflicts_with = "versions")]
        history: bool,
        /// Show the published versions (number, full or delta, POPs, changes) instead.
        #[arg(long)]
        versions: bool,
    },
    /// Publish a new version (Full or Delta cabinet per the rule) in a numbered folder.
    Publish {
        /// The phone book.
        name: String,
    },
    /// Post a published version (default: the last) to the Phone Book Service.
    Post {
        /// The phone book.
        name: String,
        /// The service's HTTPS URL, e.g. https://pbs.example.com:8443 (the credential
        /// is never sent over plain HTTP).
        #[arg(long)]
        url: String,
        /// File holding the posting credential.
        #[arg(long)]
        token_file: PathBuf,
        /// The published version to post (default: the last one).
        #[arg(long)]
        version: Option<u32>,
        /// Limit the upload to this many bytes per second.
        #[arg(long)]
        rate: Option<u64>,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Update a profile's phone book from the service (the post-connect action).
    Update {
        /// The phone book (the stem of the profile's NAME.pbk).
        name: String,
        /// The service: its base URL (http://HOST:PORT) or the profile's PBURL
        /// (http://HOST:PORT/pbserver/pbserver.dll), alike.
        #[arg(long)]
        url: String,
        /// The profile directory holding NAME.pbk, NAME.pbr and NAME.vers.
        #[arg(long)]
        dir: PathBuf,
        /// The version to report (default: the one in NAME.vers, or 0).
        #[arg(long)]
        version: Option<u32>,
        #[command(flatten)]
        trust: TrustArgs,
    },
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({elapsed})")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_owned());
    pb
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    String::from_utf8(bytes).with_context(|| format!("{}: not ASCII/UTF-8 text", path.display()))
}

fn load_regions(store: &mut Store, file: &Path) -> anyhow::Result<()> {
    let names = parse_region_list(&read_text(file)?, &file.display().to_string())?;
    store.set_regions(&names)?;
    Ok(())
}

pub fn run(args: PhonebookArgs) -> anyhow::Result<()> {
    let root = args
        .root
        .or_else(|| std::env::var_os("RAS_PHONEBOOK_ROOT").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    match args.cmd {
        PhonebookCommand::Create { name, regions } => {
            let mut s = Store::create(&root, &name)?;
            if let Some(r) = regions {
                load_regions(&mut s, &r)?;
            }
            println!("created phone book {name} in {}", s.book_dir().display());
        }
        PhonebookCommand::Import {
            name,
            file,
            regions,
        } => {
            let mut s = Store::open(&root, &name)?;
            if let Some(r) = regions {
                load_regions(&mut s, &r)?;
            }
            let text = read_text(&file)?;
            let lines = text.lines().count() as u64;
            let pb = bar(lines, "checking");
            // Parse in slices so the bar moves; all is checked before
            // anything is stored.
            let origin = file.display().to_string();
            let region_count = s.regions()?.len();
            let pops = parse_import(&text, &origin, region_count)?;
            pb.set_position(lines);
            pb.finish_and_clear();
            let pb = bar(pops.len() as u64, "storing");
            let changes: Vec<StoreChange> = pops
                .into_iter()
                .map(|(_, p)| StoreChange::Upsert(p))
                .collect();
            for chunk in changes.chunks(changes.len().max(1)) {
                s.apply(chunk, true)?;
                pb.inc(chunk.len() as u64);
            }
            pb.finish_and_clear();
            println!("imported {} POPs into {name}", changes.len());
        }
        PhonebookCommand::Add { name, line } => {
            let mut s = Store::open(&root, &name)?;
            let pop = parse_import_line(&line, "LINE", 0)?;
            check_pop(&pop, s.regions()?.len(), "LINE", 0)?;
            let index = pop.index;
            s.apply(&[StoreChange::Add(pop)], false)?;
            println!("added POP {index} to {name}");
        }
        PhonebookCommand::Edit {
            name,
            line,
            index,
            out_of_service,
            in_service,
        } => {
            let mut s = Store::open(&root, &name)?;
            let status = match (out_of_service, in_service) {
                (true, _) => Some(false),
                (_, true) => Some(true),
                _ => None,
            };
            let pop = match (line, index) {
                (Some(l), _) => {
                    let pop = parse_import_line(&l, "LINE", 0)?;
                    check_pop(&pop, s.regions()?.len(), "LINE", 0)?;
                    pop
                }
                (None, Some(i)) => s
                    .pops()?
                    .into_iter()
                    .find(|(p, _)| p.index == i)
                    .map(|(p, _)| p)
                    .with_context(|| format!("POP {i} does not exist"))?,
                (None, None) => {
                    bail!("give the POP's new line, or --index with --in-service/--out-of-service")
                }
            };
            let index = pop.index;
            s.apply(
                &[StoreChange::Edit {
                    pop,
                    in_service: status,
                }],
                false,
            )?;
            let what = match status {
                Some(true) => "put back in service",
                Some(false) => "taken out of service",
                None => "changed",
            };
            println!("POP {index} of {name} {what}");
        }
        PhonebookCommand::Delete { name, indexes } => {
            let mut s = Store::open(&root, &name)?;
            let list: Vec<String> = indexes.iter().map(u32::to_string).collect();
            let changes: Vec<_> = indexes.into_iter().map(StoreChange::Delete).collect();
            s.apply(&changes, false)?;
            let noun = if list.len() == 1 { "POP" } else { "POPs" };
            println!("deleted {noun} {} from {name}", list.join(", "));
        }
        PhonebookCommand::List {
            name,
            history,
            versions,
        } => {
            let s = Store::open(&root, &name)?;
            if history {
                for l in s.history()? {
                    println!("{l}");
                }
            } else if versions {
                for v in s.versions()? {
                    println!(
                        "{}\t{}\t{} POPs\t{} changes",
                        v.version,
                        if v.full { "full" } else { "delta" },
                        v.pops,
                        v.changes
                    );
                }
            } else {
                for (p, in_service) in s.pops()? {
                    let mark = if in_service { "" } else { "\t; out of service" };
                    println!("{}{mark}", import_line(&p));
                }
            }
        }
        PhonebookCommand::Publish { name } => {
            let mut s = Store::open(&root, &name)?;
            let pb = bar(4, "publish");
            let out = publish(&mut s, &mut |step, done, _| {
                pb.set_message(step.to_owned());
                pb.set_position(done);
            })?;
            pb.finish_and_clear();
            println!(
                "published {name} version {} ({}; {} POPs, {} changes) in {}",
                out.version,
                out.kind.as_str(),
                out.pops,
                out.changes,
                out.dir.display()
            );
        }
        PhonebookCommand::Post {
            name,
            url,
            token_file,
            version,
            rate,
            trust,
        } => {
            let s = Store::open(&root, &name)?;
            let version = match version {
                Some(v) => v,
                None => match s.version()? {
                    0 => bail!("{name} has no published version (run publish first)"),
                    v => v,
                },
            };
            // Before the credential is even read: it only ever travels over HTTPS.
            let service = ServiceUrl::parse(&url)?;
            if !service.tls {
                bail!("refusing to post to {url}: the posting credential is only ever sent over HTTPS (use https://)");
            }
            let token = read_text(&token_file)?.trim().to_owned();
            let trust = trust.trust(&url)?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(phonebook::post::post_version(
                &service,
                &trust,
                &token,
                s.book_dir(),
                &name,
                version,
                rate,
            ))?;
            println!("posted {name} version {version} to {url}");
        }
        PhonebookCommand::Update {
            name,
            url,
            dir,
            version,
            trust,
        } => {
            let have = version.unwrap_or_else(|| phonebook::update::local_version(&dir, &name));
            let trust = trust.trust(&url)?;
            let rt = tokio::runtime::Runtime::new()?;
            let out = rt.block_on(phonebook::update_profile_phonebook(
                &url, &name, &dir, have, &trust,
            ))?;
            println!("phone book {name}: {out}");
        }
    }
    Ok(())
}
