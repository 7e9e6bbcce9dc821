//! `jailctl jail`: the jail(8)/jls(8)/jexec(8) of the project, over the jail layer.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;

use super::args::ExecArgs;
use crate::jail::exec::{ExecSpec, ExecStatus, ExecUser};
use crate::jail::{self, params, Flags, JailError, JailInfo};

#[derive(Debug, Subcommand)]
pub enum JailCmd {
    /// Create a jail from `param=value` arguments and print its jid. Without `persist`
    /// a jail needs a command: `command=PROG [ARGS...]` (the rest of the line) runs in
    /// the new jail, and the jail goes away when nothing runs in it any more.
    Create {
        /// Modify the jail if it exists (jail(8) `-cm`: CREATE|UPDATE).
        #[arg(short = 'm')]
        modify: bool,
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "PARAM=VALUE"
        )]
        params: Vec<String>,
    },
    /// Change parameters of an existing jail.
    Set {
        jail: String,
        #[arg(required = true, value_name = "PARAM=VALUE")]
        params: Vec<String>,
    },
    /// Print parameters of a jail: one bare value per line for the names given,
    /// `name=value` lines for all of them otherwise.
    Get {
        /// Include a dying jail.
        #[arg(short = 'd')]
        dying: bool,
        jail: String,
        params: Vec<String>,
    },
    /// Remove a jail, killing every process in it.
    Remove { jail: String },
    /// List jails (jls(8)): JID, IP address, hostname, path; or the parameters named.
    List {
        /// Only this jail (jid or name).
        #[arg(short = 'j')]
        jail: Option<String>,
        /// Include dying jails.
        #[arg(short = 'd')]
        dying: bool,
        /// JSON: an array of objects with every parameter.
        #[arg(long)]
        json: bool,
        params: Vec<String>,
    },
    /// Run a command in a jail (jexec(8)); its exit status is jailctl's.
    Exec(ExecArgs),
    /// List every known jail parameter with its type and what this OS does with it.
    Params,
}

/// Run a `jail` subcommand; its exit status is jailctl's.
pub fn run(cmd: JailCmd) -> Result<ExitCode, JailError> {
    let mut out = std::io::stdout().lock();
    match cmd {
        JailCmd::Create {
            modify,
            params: args,
        } => {
            let create = if modify {
                Flags::CREATE | Flags::UPDATE
            } else {
                Flags::CREATE
            };
            let (assignments, command) = split_command(&args);
            let ps = jail::parse_assignments(assignments)?;
            let persist = ps
                .iter()
                .rev()
                .find(|p| p.name() == "persist")
                .map(|p| p.value == Some(jail::Value::Bool(true)))
                .unwrap_or(false);
            match command {
                None if !persist => Err(JailError::Invalid(
                    "a jail without persist has no process and would vanish at once: add `persist` or `command=PROG [ARGS...]`".into(),
                )),
                None => {
                    let jid = jail::set(&ps, create)?;
                    let _ = writeln!(out, "{jid}");
                    Ok(ExitCode::SUCCESS)
                }
                Some(cmdline) => {
                    jail::set(&ps, create | Flags::ATTACH)?;
                    Ok(exit(jail::exec::run_attached(&cmdline, None)))
                }
            }
        }
        JailCmd::Set {
            jail: j,
            params: args,
        } => {
            let jid = jail::getid(&j)?;
            let mut ps = jail::parse_assignments(&[format!("jid={jid}")])?;
            ps.extend(jail::parse_assignments(&args)?);
            jail::set(&ps, Flags::UPDATE)?;
            Ok(ExitCode::SUCCESS)
        }
        JailCmd::Get {
            dying,
            jail: j,
            params: names,
        } => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let flags = if dying { Flags::DYING } else { Flags::NONE };
            let ps = jail::get(&j, &names, flags)?;
            for p in ps {
                if names.is_empty() {
                    let _ = writeln!(out, "{}={}", p.name(), p.export());
                } else {
                    let _ = writeln!(out, "{}", p.export());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        JailCmd::Remove { jail: j } => {
            jail::remove(&j)?;
            Ok(ExitCode::SUCCESS)
        }
        JailCmd::List {
            jail: j,
            dying,
            json,
            params: names,
        } => {
            for n in &names {
                params::spec(n)?;
            }
            let mut jails: Vec<JailInfo> = match &j {
                Some(j) => vec![jail::lookup(j, dying)?],
                None => jail::list()?
                    .into_iter()
                    .filter(|i| dying || !i.dying)
                    .collect(),
            };
            jails.sort_by_key(|i| i.jid);
            if json {
                let v: Vec<BTreeMap<String, String>> = jails
                    .iter()
                    .map(|i| {
                        if names.is_empty() {
                            i.params.clone()
                        } else {
                            names
                                .iter()
                                .map(|n| (n.clone(), i.param(n).unwrap_or("").to_string()))
                                .collect()
                        }
                    })
                    .collect();
                let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).expect("json"));
            } else if names.is_empty() {
                let _ = writeln!(
                    out,
                    "{:>5}  {:<15} {:<29} Path",
                    "JID", "IP Address", "Hostname"
                );
                for i in &jails {
                    let ip = i
                        .param("ip4.addr")
                        .filter(|s| !s.is_empty())
                        .or(i.param("ip6.addr"))
                        .unwrap_or("");
                    let ip = ip.split(',').next().unwrap_or("");
                    let _ = writeln!(
                        out,
                        "{:>5}  {:<15} {:<29} {}",
                        i.jid,
                        ip,
                        i.param("host.hostname").unwrap_or(""),
                        i.param("path").unwrap_or("")
                    );
                }
            } else {
                for i in &jails {
                    let vals: Vec<String> = names
                        .iter()
                        .map(|n| quote(i.param(n).unwrap_or("")))
                        .collect();
                    let _ = writeln!(out, "{}", vals.join(" "));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        JailCmd::Exec(ExecArgs {
            user,
            host_user,
            jail: j,
            command,
        }) => {
            let mut spec = ExecSpec::new(j, command);
            spec.user = match (user, host_user) {
                (Some(u), _) => Some(ExecUser::Jail(u)),
                (None, Some(u)) => Some(ExecUser::Host(u)),
                (None, None) => None,
            };
            Ok(exit(jail::exec::run(spec)?))
        }
        JailCmd::Params => {
            for p in params::known() {
                let os = params::support_on_this_os(p);
                let effect = os
                    .effect
                    .map(|e| format!(" [Linux: {e}]"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{:<32} {:<40} {:<24} {}{effect}",
                    p.name,
                    p.ty.to_string(),
                    os.support,
                    p.descr
                );
            }
            let summary = params::confinement_summary();
            if !summary.is_empty() {
                let _ = writeln!(out);
            }
            for line in summary {
                let _ = writeln!(out, "{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// jexec's exit status as jailctl's, saying why a command could not be started.
fn exit(st: ExecStatus) -> ExitCode {
    if let ExecStatus::NotStarted { message, .. } = &st {
        eprintln!("jailctl: {message}");
    }
    ExitCode::from(st.code())
}

/// Split `a=b c=d command=prog arg...` into the assignments and the command.
fn split_command(args: &[String]) -> (&[String], Option<Vec<String>>) {
    match args.iter().position(|a| a.starts_with("command=")) {
        Some(i) => {
            let mut cmd = vec![args[i]["command=".len()..].to_string()];
            cmd.extend(args[i + 1..].iter().cloned());
            (&args[..i], Some(cmd))
        }
        None => (args, None),
    }
}

fn quote(s: &str) -> String {
    if s.is_empty() || s.contains(char::is_whitespace) {
        format!("\"{s}\"")
    } else {
        s.to_string()
    }
}
