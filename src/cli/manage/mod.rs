//! The iocage-style commands of `jailctl` (the manager core).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::manager::{fetch::Origin, props, CreateOpts, Jail, Manager, ManagerError, Selection};

mod boot;
mod limits;
mod list;
mod snap;

use boot::boot_sequence;
use list::list;

#[derive(Debug, Subcommand)]
pub enum ManageCmd {
    /// Mark ZPOOL as the pool jailctl uses and create its layout.
    Activate { pool: String },
    /// Remove the mark from ZPOOL.
    Deactivate { pool: String },
    /// Fetch a release: release=NAME (ftplocaldir=DIR | ftphost=http://HOST/PATH) [ftpfiles="base.txz ..."].
    Fetch {
        #[arg(required = true, value_name = "KEY=VALUE")]
        args: Vec<String>,
    },
    /// Create jails: [release=NAME] [tag=TAG] [count=N] [pkglist=FILE] [property=value ...]; prints their UUIDs.
    Create {
        /// An empty jail (no release).
        #[arg(short = 'e')]
        empty: bool,
        /// A thick jail: a full copy of the release.
        #[arg(short = 'T')]
        thick: bool,
        #[arg(value_name = "PROPERTY=VALUE")]
        args: Vec<String>,
    },
    /// Destroy a stopped jail (irreversible; -f confirms; -R: the jails cloned from it too).
    Destroy {
        #[arg(short = 'f')]
        force: bool,
        #[arg(short = 'R')]
        dependants: bool,
        jail: String,
    },
    /// List jails (JID UUID BOOT STATE TAG TYPE IP4 RELEASE), templates (-t) or releases (-r).
    List {
        #[arg(short = 't', conflicts_with = "releases")]
        templates: bool,
        #[arg(short = 'r')]
        releases: bool,
        /// Sort by a column or property.
        #[arg(short = 's', value_name = "KEY")]
        sort: Option<String>,
        /// Tab-separated, without header (for scripts).
        #[arg(short = 'H')]
        script: bool,
        #[arg(long)]
        json: bool,
    },
    /// Print a property (bare value) or `all` of a jail; -r: of every jail.
    Get {
        #[arg(short = 'r')]
        recursive: bool,
        property: String,
        jail: Option<String>,
    },
    /// Set properties: property=value ... UUID|TAG|default.
    Set {
        #[arg(required = true, num_args = 2.., value_name = "PROPERTY=VALUE ... UUID|TAG|default")]
        args: Vec<String>,
    },
    /// Print the default of every property.
    Defaults,
    /// Reset a jail's properties (or ALL jails') to the defaults; UUID and TAG are kept.
    Reset { jail: String },
    /// Start a jail (-f: a template, for editing).
    Start {
        #[arg(short = 'f')]
        force: bool,
        jail: String,
    },
    /// Stop a jail (or ALL).
    Stop { jail: String },
    /// Stop and start a jail; -s: soft restart (exec_stop, exec_start inside).
    Restart {
        #[arg(short = 's')]
        soft: bool,
        jail: String,
    },
    /// Same as restart.
    Reboot {
        #[arg(short = 's')]
        soft: bool,
        jail: String,
    },
    /// Start every jail with boot=on, by priority and `depends`.
    Rcboot {
        /// Start at most N jails at once (default: the number of CPUs).
        #[arg(short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        jobs: Option<u32>,
    },
    /// Stop every running jail with boot=on, in the reverse order.
    Rcshutdown {
        /// Stop at most N jails at once (default: the number of CPUs).
        #[arg(short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        jobs: Option<u32>,
    },
    /// Run a command in a jail (or in ALL running jails), as jexec(8).
    Exec(super::args::ExecArgs),
    /// A login shell in the jail (-f: start it first if needed).
    Console {
        #[arg(short = 'f')]
        force: bool,
        jail: String,
    },
    /// The running jail's kernel parameters.
    Runtime { jail: String },
    /// Apply the running jail's resource limits (again, after `set`).
    Cap { jail: String },
    /// Lift every resource limit of the running jail.
    Uncap { jail: String },
    /// The resource limits in force on a running jail, or on every one.
    Limits(limits::TableArgs),
    /// What a running jail (or every one) consumes: memory, processes, CPU, files.
    Inuse(limits::TableArgs),
    /// Destroy data: -a everything, -r releases, -j jails, -t templates (needs -f).
    Clean {
        #[arg(short = 'f')]
        force: bool,
        #[arg(short = 'a')]
        all: bool,
        #[arg(short = 'r')]
        releases: bool,
        #[arg(short = 'j')]
        jails: bool,
        #[arg(short = 't')]
        templates: bool,
    },
    /// Rebuild the TAG index from every jail (it repairs itself on use; this does it
    /// at once, after editing tags by hand).
    Reindex,
    /// Print the version.
    Version,
    #[command(flatten)]
    Snap(snap::SnapCmd),
}

pub(crate) type R = Result<ExitCode, ManagerError>;

fn kv(args: &[String]) -> Result<BTreeMap<String, String>, ManagerError> {
    args.iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| ManagerError::Invalid(format!("\"{a}\" is not key=value")))
        })
        .collect()
}

pub fn run(sel: &Selection, cmd: ManageCmd) -> R {
    let mut out = std::io::stdout().lock();
    match cmd {
        ManageCmd::Activate { pool } => {
            Manager::activate(&pool)?;
            Ok(ExitCode::SUCCESS)
        }
        ManageCmd::Deactivate { pool } => {
            Manager::deactivate(&pool)?;
            Ok(ExitCode::SUCCESS)
        }
        ManageCmd::Version => {
            let _ = writeln!(out, "jailctl {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        cmd => {
            let m = Manager::open(sel)?;
            run_with(&m, sel, cmd, &mut out)
        }
    }
}

fn run_with(m: &Manager, sel: &Selection, cmd: ManageCmd, out: &mut impl Write) -> R {
    match cmd {
        ManageCmd::Fetch { args } => {
            let mut a = kv(&args)?;
            let release = a
                .remove("release")
                .ok_or_else(|| ManagerError::Invalid("fetch: release=NAME is required".into()))?;
            let origin = match (a.remove("ftplocaldir"), a.remove("ftphost")) {
                (Some(d), None) => Origin::Local(PathBuf::from(d)),
                (None, Some(h)) => Origin::parse_http(&h)?,
                (Some(_), Some(_)) => {
                    return Err(ManagerError::Invalid(
                        "fetch: give ftplocaldir or ftphost, not both".into(),
                    ))
                }
                (None, None) => {
                    return Err(ManagerError::Invalid(
                        "fetch: ftplocaldir=DIR or ftphost=http://HOST/PATH is required".into(),
                    ))
                }
            };
            let files: Vec<String> = a
                .remove("ftpfiles")
                .map(|f| f.split_whitespace().map(String::from).collect())
                .unwrap_or_else(|| vec!["base.txz".into()]);
            let mut limits = crate::manager::fetch::Timeouts::default();
            for (key, slot) in [
                ("connect_timeout", &mut limits.connect),
                ("read_timeout", &mut limits.read),
            ] {
                if let Some(v) = a.remove(key) {
                    let secs: u64 = v
                        .parse()
                        .ok()
                        .filter(|s| (1..=3600).contains(s))
                        .ok_or_else(|| {
                            ManagerError::Invalid(format!(
                                "fetch: {key}={v}: expected whole seconds from 1 to 3600"
                            ))
                        })?;
                    *slot = std::time::Duration::from_secs(secs);
                }
            }
            if let Some(k) = a.keys().next() {
                return Err(ManagerError::Invalid(format!(
                    "fetch: unknown option {k} (release, ftplocaldir, ftphost, ftpfiles, connect_timeout, read_timeout)"
                )));
            }
            for (f, sum) in m.fetch(&release, &origin, &files, limits)? {
                let _ = writeln!(out, "{f}\tsha256:{sum}");
            }
            let _ = writeln!(out, "release {release} fetched");
            Ok(ExitCode::SUCCESS)
        }
        ManageCmd::Create { empty, thick, args } => {
            let mut o = CreateOpts {
                empty,
                thick,
                count: 1,
                ..Default::default()
            };
            let mut rest = Vec::new();
            let mut template = None;
            for a in &args {
                let (k, v) = a.split_once('=').ok_or_else(|| {
                    ManagerError::Invalid(format!("\"{a}\" is not property=value"))
                })?;
                match k {
                    "release" | "base" => o.release = Some(v.to_string()),
                    "count" => {
                        o.count = v
                            .parse::<usize>()
                            .ok()
                            .filter(|n| (1..=10_000).contains(n))
                            .ok_or_else(|| {
                                ManagerError::Invalid(format!(
                                    "count={v}: expected a number from 1 to 10000"
                                ))
                            })?
                    }
                    "pkglist" if v != "none" => o.pkglist = Some(PathBuf::from(v)),
                    "template" => template = Some(v.to_string()),
                    _ => rest.push(a.clone()),
                }
            }
            if empty && (thick || o.release.is_some()) {
                return Err(ManagerError::Invalid(
                    "create -e makes an empty jail: it takes neither -T nor release=".into(),
                ));
            }
            o.props = props::parse_assignments(&rest)?;
            if let Some(t) = template {
                // `create template=TPL`: a clone of the template
                let _ = writeln!(out, "{}", m.clone_jail(&t, &o.props)?);
                return Ok(ExitCode::SUCCESS);
            }
            for u in m.create(&o)? {
                let _ = writeln!(out, "{u}");
            }
            Ok(ExitCode::SUCCESS)
        }
        ManageCmd::Destroy {
            force,
            dependants,
            jail,
        } => {
            if !force {
                if !crate::sys::unix::stdin_is_tty() {
                    return Err(ManagerError::Invalid(format!(
                        "destroy is irreversible: confirm with `jailctl destroy -f {jail}`"
                    )));
                }
                eprint!("destroy jail {jail}? [y/N] ");
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                if !line.trim().eq_ignore_ascii_case("y") {
                    return Ok(ExitCode::from(1));
                }
            }
            let done = if dependants {
                m.destroy_tree(&jail)?
            } else {
                vec![m.destroy(&jail)?]
            };
            for u in done {
                let _ = writeln!(out, "destroyed {u}");
            }
            Ok(ExitCode::SUCCESS)
        }
        ManageCmd::List {
            templates,
            releases,
            sort,
            script,
            json,
        } => {
            if releases {
                let rs = m.releases()?;
                if json {
                    let _ = writeln!(out, "{}", serde_json::to_string_pretty(&rs).expect("json"));
                } else {
                    if !script {
                        let _ = writeln!(out, "RELEASE");
                    }
                    for r in rs {
                        let _ = writeln!(out, "{r}");
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            list(m, templates, sort, script, json, out)
        }
        ManageCmd::Get {
            recursive,
            property,
            jail,
        } => {
            if property != "all" {
                props::lookup(&property)?;
            }
            let jails: Vec<Jail> = match (recursive, jail) {
                (true, None) => m.jails()?,
                (_, Some(j)) => vec![m.resolve(&j)?],
                (false, None) => {
                    return Err(ManagerError::Invalid(
                        "get: which jail? (UUID|TAG, or -r for all)".into(),
                    ))
                }
            };
            for j in &jails {
                if let Some(p) = &j.problem {
                    eprintln!("jailctl: jail {} is corrupt: {p}", j.uuid);
                }
                if property == "all" {
                    for (k, v) in &j.props() {
                        let _ = if recursive {
                            writeln!(out, "{}\t{k}:{v}", j.tag())
                        } else {
                            writeln!(out, "{k}:{v}")
                        };
                    }
                } else if recursive {
                    let _ = writeln!(out, "{}\t{}\t{}", j.uuid, j.tag(), j.get(&property));
                } else {
                    let _ = writeln!(out, "{}", j.get(&property));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ManageCmd::Set { mut args } => {
            let key = args.pop().expect("clap requires two arguments");
            if key.contains('=') {
                return Err(ManagerError::Invalid(format!(
                    "set: the last argument must be the jail (UUID|TAG|default), not \"{key}\""
                )));
            }
            let a = props::parse_assignments(&args)?;
            for n in m.set(&a, &key)? {
                eprintln!("jailctl: note: {n}");
            }
            Ok(ExitCode::SUCCESS)
        }
        ManageCmd::Defaults => {
            for (k, v) in m.defaults()? {
                let _ = writeln!(out, "{k}:{v}");
            }
            Ok(ExitCode::SUCCESS)
        }
        ManageCmd::Reset { jail } => {
            for u in m.reset(&jail)? {
                let _ = writeln!(out, "reset {u}");
            }
            Ok(ExitCode::SUCCESS)
        }
        ManageCmd::Start { force, jail } => {
            let targets = if jail == "ALL" {
                m.boot_order()?.into_iter().map(|j| j.uuid).collect()
            } else {
                vec![jail]
            };
            for t in targets {
                let jid = m.start(&t, force)?;
                let _ = writeln!(out, "started {t} (jid {jid})");
            }
            Ok(ExitCode::SUCCESS)
        }
        ManageCmd::Stop { jail } => {
            let targets: Vec<String> = if jail == "ALL" {
                m.running()?.into_iter().map(|(j, _)| j.uuid).collect()
            } else {
                vec![jail]
            };
            for t in targets {
                let was = m.stop(&t)?;
                let _ = writeln!(
                    out,
                    "{} {t}",
                    if was { "stopped" } else { "already stopped:" }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ManageCmd::Restart { soft, jail } | ManageCmd::Reboot { soft, jail } => {
            m.restart(&jail, soft)?;
            Ok(ExitCode::SUCCESS)
        }
        ManageCmd::Reindex => {
            let n = m.reindex()?;
            let _ = writeln!(out, "{n} jails indexed");
            Ok(ExitCode::SUCCESS)
        }
        ManageCmd::Rcboot { jobs } => boot_sequence(m, sel, false, jobs, out),
        ManageCmd::Rcshutdown { jobs } => boot_sequence(m, sel, true, jobs, out),
        ManageCmd::Exec(super::args::ExecArgs {
            user,
            host_user,
            jail,
            command,
        }) => {
            let jails: Vec<Jail> = if jail == "ALL" {
                m.running()?.into_iter().map(|(j, _)| j).collect()
            } else {
                vec![m.resolve(&jail)?]
            };
            // One jail failing (an unknown user there, say) does not stop the others.
            let mut code = 0;
            for j in &jails {
                match m.exec(j, user.as_deref(), host_user.as_deref(), &command) {
                    Ok(0) => {}
                    Ok(c) => code = c,
                    Err(e) if jails.len() > 1 => {
                        eprintln!("jailctl: {e}");
                        code = 1;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(ExitCode::from(code as u8))
        }
        ManageCmd::Console { force, jail } => Ok(ExitCode::from(m.console(&jail, force)? as u8)),
        ManageCmd::Cap { jail } => limits::cap(m, &jail),
        ManageCmd::Uncap { jail } => limits::uncap(m, &jail),
        ManageCmd::Limits(a) => limits::limits(m, &a, out),
        ManageCmd::Inuse(a) => limits::inuse(m, &a, out),
        ManageCmd::Runtime { jail } => {
            for (k, v) in m.runtime(&jail)? {
                let _ = writeln!(out, "{k}={v}");
            }
            Ok(ExitCode::SUCCESS)
        }
        ManageCmd::Clean {
            force,
            all,
            releases,
            jails,
            templates,
        } => {
            let what: Vec<&str> = [
                (all, "all"),
                (releases, "releases"),
                (jails, "jails"),
                (templates, "templates"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, w)| *w)
            .collect();
            if what.len() != 1 {
                return Err(ManagerError::Invalid(
                    "clean: give exactly one of -a, -r, -j, -t".into(),
                ));
            }
            if !force {
                return Err(ManagerError::Invalid(format!(
                    "clean destroys data ({}): confirm with -f",
                    what[0]
                )));
            }
            m.clean(what[0])?;
            Ok(ExitCode::SUCCESS)
        }
        ManageCmd::Snap(c) => snap::run(m, c, out),
        ManageCmd::Activate { .. } | ManageCmd::Deactivate { .. } | ManageCmd::Version => {
            unreachable!()
        }
    }
}
