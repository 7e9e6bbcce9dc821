//! `snapshot`, `snaplist`, `snapremove`, `rollback`, `snapmount`, `snapumount`,
//! `clone`, `promote`, `export`, `import`: arguments and printing.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::R;
use crate::manager::{props, Manager, ManagerError};

#[derive(Debug, Subcommand)]
pub enum SnapCmd {
    /// Snapshot a jail's root (-r: the jail with its configuration): UUID|TAG[@NAME].
    #[command(visible_alias = "snap")]
    Snapshot {
        /// Accepted for iocage compatibility (no question is asked).
        #[arg(short = 'f')]
        force: bool,
        #[arg(short = 'r')]
        recursive: bool,
        jail: String,
    },
    /// List a jail's snapshots: NAME CREATED RSIZE USED.
    Snaplist {
        #[arg(short = 'H')]
        script: bool,
        #[arg(long)]
        json: bool,
        jail: String,
    },
    /// Remove a snapshot: UUID|TAG@NAME, or UUID|TAG@ALL.
    Snapremove { snapshot: String },
    /// Roll a stopped jail back to UUID|TAG@NAME (later snapshots are destroyed; -f: no question).
    Rollback {
        #[arg(short = 'f')]
        force: bool,
        snapshot: String,
    },
    /// Mount a snapshot read-only: UUID|TAG@NAME DESTINATION.
    Snapmount {
        snapshot: String,
        destination: PathBuf,
    },
    /// Unmount what snapmount mounted: UUID|TAG@NAME.
    Snapumount { snapshot: String },
    /// A new jail from UUID|TAG[@SNAPSHOT] (a template, a jail, a snapshot): [property=value ...].
    Clone {
        source: String,
        #[arg(value_name = "PROPERTY=VALUE")]
        args: Vec<String>,
    },
    /// Make a clone independent of the snapshot it was made from.
    Promote { jail: String },
    /// Archive a stopped jail into images/ (a .tar.gz and its .sha256).
    Export { jail: String },
    /// Make a jail from the archive UUID|prefix in images/ (checksum verified first): [property=value ...].
    /// Only inert properties are taken from the archive unless -t is given.
    Import {
        /// Trust the archive (one this admin made): keep its host-side properties
        /// (hooks, boot, network, allow_*, ...) and setuid/setgid bits.
        #[arg(short = 't', long = "trust")]
        trust: bool,
        /// Refuse an archive that unpacks to more than SIZE bytes (suffix K, M, G or T;
        /// default 8 times the archive, at least 256M).
        #[arg(short = 's', long = "max-size", value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<u64>,
        archive: String,
        #[arg(value_name = "PROPERTY=VALUE")]
        args: Vec<String>,
    },
}

fn confirm(question: &str, flag_hint: &str) -> Result<bool, ManagerError> {
    if !crate::sys::unix::stdin_is_tty() {
        return Err(ManagerError::Invalid(format!(
            "{question}: confirm with {flag_hint}"
        )));
    }
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    Ok(line.trim().eq_ignore_ascii_case("y"))
}

fn size(n: u64) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", units[u])
    }
}

fn date(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = crate::sys::unix::local_time(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

pub(super) fn run(m: &Manager, cmd: SnapCmd, out: &mut impl Write) -> R {
    match cmd {
        SnapCmd::Snapshot {
            recursive, jail, ..
        } => {
            let (uuid, name) = m.snapshot(&jail, recursive)?;
            let _ = writeln!(out, "snapshot {uuid}@{name} created");
        }
        SnapCmd::Snaplist { script, json, jail } => {
            let list = m.snaplist(&jail)?;
            if json {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&list).expect("json")
                );
            } else {
                if !script {
                    let _ = writeln!(out, "NAME\tCREATED\tRSIZE\tUSED");
                }
                for s in list {
                    let (r, u) = if script {
                        (s.rsize.to_string(), s.used.to_string())
                    } else {
                        (size(s.rsize), size(s.used))
                    };
                    let _ = writeln!(out, "{}\t{}\t{r}\t{u}", s.name, date(s.created));
                }
            }
        }
        SnapCmd::Snapremove { snapshot } => {
            for n in m.snapremove(&snapshot)? {
                let _ = writeln!(out, "removed snapshot {n}");
            }
        }
        SnapCmd::Rollback { force, snapshot } => {
            let later = m.rollback_plan(&snapshot)?;
            if !later.is_empty() && !force {
                let q = format!(
                    "rolling back to {snapshot} destroys the later snapshots {}",
                    later.join(", ")
                );
                if !confirm(&q, "rollback -f")? {
                    return Ok(ExitCode::from(1));
                }
            }
            for n in m.rollback(&snapshot)? {
                let _ = writeln!(out, "destroyed later snapshot {n}");
            }
            let _ = writeln!(out, "rolled back to {snapshot}");
        }
        SnapCmd::Snapmount {
            snapshot,
            destination,
        } => {
            let d = m.snapmount(&snapshot, &destination)?;
            let _ = writeln!(out, "{snapshot} mounted read-only at {}", d.display());
        }
        SnapCmd::Snapumount { snapshot } => {
            let d = m.snapumount(&snapshot)?;
            let _ = writeln!(out, "{snapshot} unmounted from {}", d.display());
        }
        SnapCmd::Clone { source, args } => {
            let given = props::parse_assignments(&args)?;
            let u = m.clone_jail(&source, &given)?;
            let _ = writeln!(out, "{u}");
        }
        SnapCmd::Promote { jail } => {
            let u = m.promote(&jail)?;
            let _ = writeln!(out, "promoted {u}");
        }
        SnapCmd::Export { jail } => {
            let p = m.export(&jail)?;
            let _ = writeln!(out, "exported {jail} to {}", p.display());
        }
        SnapCmd::Import {
            trust,
            max_size,
            archive,
            args,
        } => {
            let given = props::parse_assignments(&args)?;
            let opts = crate::manager::ImportOpts { trust, max_size };
            let r = m.import(&archive, &given, &opts)?;
            let (u, stripped) = (r.uuid, r.setid_dropped);
            if !r.props_dropped.is_empty() {
                eprintln!(
                    "jailctl: note: properties of the untrusted archive not imported (this host's defaults apply; import -t keeps them): {}",
                    r.props_dropped.join(" ")
                );
            }
            if stripped > 0 {
                eprintln!("jailctl: note: setuid/setgid bits dropped from {stripped} files of the untrusted archive");
            }
            let _ = writeln!(out, "{u}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `SIZE` in bytes, with an optional K, M, G or T suffix (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let (num, shift) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 10),
        Some('M') => (&s[..s.len() - 1], 20),
        Some('G') => (&s[..s.len() - 1], 30),
        Some('T') => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| format!("\"{s}\": give a size in bytes, with an optional K, M, G or T"))
}
