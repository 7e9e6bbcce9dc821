//! `jailctl`: the jail manager's command line: the `jail` subcommand (the
//! jail(8)/jls(8)/jexec(8) of the project) and the iocage-style commands (`manage`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::jail::{self, params, Flags, JailError, JailInfo};

#[derive(Debug, Parser)]
#[command(
    name = "jailctl",
    version,
    about = "Jail manager: jails, their parameters and their processes"
)]
pub struct Cli {
    /// Use the directory backend rooted at DIR (also JAILCTL_ROOT).
    #[arg(long, value_name = "DIR", global = false)]
    pub root: Option<std::path::PathBuf>,
    /// Use the ZFS backend on POOL (also JAILCTL_POOL); default: the active pool.
    #[arg(long, value_name = "POOL", global = false)]
    pub pool: Option<String>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Kernel-level jails: create, set, get, remove, list, exec (jail(8), jls(8), jexec(8)).
    #[command(subcommand)]
    Jail(JailCmd),
    #[command(flatten)]
    Manage(super::manage::ManageCmd),
}

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

/// `exec [-u user | -U user] JAIL command [args ...]`, shared by `jail exec` and the
/// manager's `exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Run as this user of the jail's own passwd database.
    #[arg(short = 'u', conflicts_with = "host_user")]
    pub user: Option<String>,
    /// Run as this user of the host's passwd database.
    #[arg(short = 'U')]
    pub host_user: Option<String>,
    pub jail: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Entry point used by the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jailctl: {e}");
            ExitCode::from(1)
        }
    }
}

pub fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match cli.cmd {
        Cmd::Jail(c) => Ok(run_jail(c)?),
        Cmd::Manage(c) => {
            let sel = crate::manager::Selection {
                root: cli.root,
                pool: cli.pool,
            };
            Ok(super::manage::run(&sel, c)?)
        }
    }
}

fn run_jail(cmd: JailCmd) -> Result<ExitCode, JailError> {
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
                    run_attached(&cmdline, None)
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
            let jid = jail::getid(&j)?;
            let host = match &host_user {
                Some(u) => {
                    Some(super::users::lookup(Path::new("/"), u).map_err(JailError::Invalid)?)
                }
                None => None,
            };
            jail::attach(&jid.to_string())?;
            let who = match (&user, host) {
                (Some(u), _) => Some(
                    super::users::lookup(Path::new("/"), u)
                        .map_err(|e| JailError::Invalid(format!("in jail {j}: {e}")))?,
                ),
                (None, h) => h,
            };
            run_attached(&command, who)
        }
        JailCmd::Params => {
            for p in params::PARAMS {
                let os = if cfg!(target_os = "linux") {
                    match p.linux {
                        params::LinuxSupport::Enforced => "enforced",
                        params::LinuxSupport::Recorded => "recorded, not enforced",
                        params::LinuxSupport::ReadOnly => "read-only",
                        params::LinuxSupport::Unsupported => "not supported on Linux",
                    }
                } else {
                    "kernel"
                };
                let linux = match jail::confine::rule(p.name) {
                    Some(r) if cfg!(target_os = "linux") => format!(" [Linux: {}]", r.effect),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "{:<32} {:<40} {:<24} {}{linux}",
                    p.name,
                    p.ty.to_string(),
                    os,
                    p.descr
                );
            }
            if cfg!(target_os = "linux") {
                let base = jail::confine::Policy::from_params(0, &Default::default())
                    .map(|p| p.cap_names().join(" "))
                    .unwrap_or_default();
                let _ = writeln!(out, "\nLinux: every jail keeps only {base};");
                let _ = writeln!(
                    out,
                    "its seccomp filter refuses (EPERM): {}.",
                    jail::confine::DENIED_SYSCALLS.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
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

/// Spawn `command` (the caller is attached to a jail, so it runs inside), wait, and
/// return its exit status (128+signal when killed).
fn run_attached(
    command: &[String],
    user: Option<super::users::User>,
) -> Result<ExitCode, JailError> {
    let mut cmd = std::process::Command::new(&command[0]);
    cmd.args(&command[1..]).current_dir("/");
    if let Some(u) = &user {
        crate::sys::unix::command_as(&mut cmd, u.uid, u.gid, u.groups.clone());
        cmd.env("USER", &u.name).env("HOME", &u.home);
    }
    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("jailctl: {}: {e}", command[0]);
            return Ok(ExitCode::from(
                if e.kind() == std::io::ErrorKind::NotFound {
                    127
                } else {
                    126
                },
            ));
        }
    };
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(ExitCode::from(code as u8))
}
