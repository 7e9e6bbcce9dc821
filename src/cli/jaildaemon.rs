//! `jaildaemon` command line, option for option as jaildaemon(1):
//!
//! ```text
//! jaildaemon -D [-F] [-p pidfile] [-f ipcsockpath] [-s statefile] [-C config]
//!                                            (-s, -C new: state file, declared probes)
//! jaildaemon -c command -j jail [-rRw] [-u uid] [-g gid] [-t proctitle] [-L count/secs] [-m max]
//!            [-f ipcsockpath]                (-L, -m, -w new: rate limit, commands at once,
//!                                             wait for the jail)
//! jaildaemon -n [-C config]                  (new: check the configuration file)
//! jaildaemon -l [-J] [-f ipcsockpath]        (new: list probes)
//! jaildaemon -k id [-f ipcsockpath]          (new: remove a probe)
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use jaildaemon_proto::{ProbeInfo, ProbeSpec, Request, Respawn, Response};

use crate::daemon::{self, client};

pub const USAGE: &str =
    "usage: jaildaemon -D [-F] [-p pidfile] [-f ipcsockpath] [-s statefile] [-C config]
       jaildaemon -c command -j jail [-rRw] [-u uid] [-g gid] [-t proctitle]
                  [-L count/seconds] [-m max_running] [-f ipcsockpath]
       jaildaemon -n [-C config]
       jaildaemon -l [-J] [-f ipcsockpath]
       jaildaemon -k id [-f ipcsockpath]";

/// Exit status for usage errors (sysexits EX_USAGE).
pub const EX_USAGE: u8 = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Daemon {
        foreground: bool,
        pidfile: PathBuf,
    },
    Register(ProbeSpec),
    List {
        json: bool,
    },
    Remove {
        id: u64,
    },
    /// `-n`: check the configuration file and exit.
    Check,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub mode: Mode,
    pub socket: PathBuf,
    /// `-s`: the daemon's state file.
    pub state: PathBuf,
    /// `-C`: the configuration file, when given.
    pub config: Option<PathBuf>,
}

/// Options taking an argument.
const WITH_ARG: &[char] = &['p', 'f', 'c', 'j', 'u', 'g', 't', 'k', 'L', 'm', 's', 'C'];
/// Options without one.
const FLAGS: &[char] = &['D', 'F', 'r', 'R', 'l', 'J', 'h', 'w', 'n'];

/// getopt(3)-style parsing: clustered flags (`-rR`), attached or separate arguments
/// (`-ffile`, `-f file`), `--` ends the options; no operands are accepted.
pub fn parse(args: &[String]) -> Result<Invocation, String> {
    let mut opts: Vec<(char, Option<String>)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            if i < args.len() {
                return Err(format!("unexpected argument: {}", args[i]));
            }
            break;
        }
        let Some(cluster) = a.strip_prefix('-').filter(|c| !c.is_empty()) else {
            return Err(format!("unexpected argument: {a}"));
        };
        let chars: Vec<char> = cluster.chars().collect();
        let mut k = 0;
        while k < chars.len() {
            let c = chars[k];
            k += 1;
            if WITH_ARG.contains(&c) {
                let rest: String = chars[k..].iter().collect();
                let val = if !rest.is_empty() {
                    rest
                } else if i < args.len() {
                    i += 1;
                    args[i - 1].clone()
                } else {
                    return Err(format!("option requires an argument -- {c}"));
                };
                opts.push((c, Some(val)));
                break;
            } else if FLAGS.contains(&c) {
                opts.push((c, None));
            } else {
                return Err(format!("illegal option -- {c}"));
            }
        }
    }
    let last = |c: char| {
        opts.iter()
            .rev()
            .find(|(o, _)| *o == c)
            .map(|(_, v)| v.clone().unwrap_or_default())
    };
    let has = |c: char| opts.iter().any(|(o, _)| *o == c);
    if has('h') {
        return Err(String::new());
    }
    let socket = PathBuf::from(last('f').unwrap_or_else(|| daemon::DEFAULT_SOCKET.into()));
    let state = last('s')
        .map(PathBuf::from)
        .unwrap_or_else(daemon::state::default_path);
    let config = last('C').map(PathBuf::from);
    let modes: Vec<char> = ['D', 'c', 'l', 'k', 'n']
        .into_iter()
        .filter(|m| has(*m))
        .collect();
    let mode = match modes.as_slice() {
        ['D'] => Mode::Daemon {
            foreground: has('F'),
            pidfile: PathBuf::from(last('p').unwrap_or_else(|| daemon::DEFAULT_PIDFILE.into())),
        },
        ['c'] => {
            let jail = last('j').ok_or("-j jail is required with -c")?;
            let num = |c: char, what: &str| -> Result<Option<u32>, String> {
                match last(c) {
                    None => Ok(None),
                    Some(v) => v
                        .parse::<u32>()
                        .map(Some)
                        .map_err(|_| format!("-{c} {v}: the {what} must be a number")),
                }
            };
            let respawn = if has('R') {
                Respawn::Immediately
            } else if has('r') {
                Respawn::AfterCommand
            } else {
                Respawn::Never
            };
            let spec = ProbeSpec {
                command: last('c').unwrap_or_default(),
                jail,
                respawn,
                uid: num('u', "uid")?,
                gid: num('g', "gid")?,
                title: last('t'),
                rate: last('L')
                    .map(|v| jaildaemon_proto::Rate::parse(&v))
                    .transpose()?,
                max_running: match last('m') {
                    None => None,
                    Some(v) => Some(v.parse::<u32>().map_err(|_| {
                        format!("-m {v}: the number of commands running at once must be a number")
                    })?),
                },
                wait: has('w'),
            };
            spec.validate()?;
            Mode::Register(spec)
        }
        ['l'] => Mode::List { json: has('J') },
        ['n'] => Mode::Check,
        ['k'] => {
            let v = last('k').unwrap_or_default();
            Mode::Remove {
                id: v
                    .parse()
                    .map_err(|_| format!("-k {v}: the probe id must be a number"))?,
            }
        }
        [] => return Err("one of -D or -c must be given".into()),
        _ => return Err("only one of -D, -c, -l, -k and -n may be given".into()),
    };
    Ok(Invocation {
        mode,
        socket,
        state,
        config,
    })
}

/// Entry point used by the binary.
pub fn main() -> ExitCode {
    if std::env::var_os(crate::probe::HELPER_ENV).is_some() {
        crate::probe::helper_main();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let inv = match parse(&args) {
        Ok(i) => i,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("jaildaemon: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(EX_USAGE);
        }
    };
    match inv.mode {
        Mode::Daemon {
            foreground,
            pidfile,
        } => {
            if foreground {
                crate::logging::to_stderr("info");
            }
            let opts = daemon::Options {
                socket: inv.socket,
                pidfile,
                foreground,
                state: inv.state,
                config_given: inv.config.is_some(),
                config: inv.config.unwrap_or_else(daemon::config::default_path),
            };
            match daemon::run(&opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    if foreground {
                        tracing::error!("{e}");
                    } else {
                        eprintln!("jaildaemon: {e}");
                    }
                    ExitCode::from(1)
                }
            }
        }
        Mode::Check => check(inv.config),
        mode => {
            crate::logging::to_stderr("warn");
            utility(mode, &inv.socket)
        }
    }
}

/// `jaildaemon -n`: check the configuration file (every error with its line).
fn check(config: Option<PathBuf>) -> ExitCode {
    let path = config.clone().unwrap_or_else(daemon::config::default_path);
    match daemon::config::load(&path, false) {
        Ok(d) => {
            println!(
                "jaildaemon: {}: {} probe{} declared; the file is valid",
                path.display(),
                d.len(),
                if d.len() == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("jaildaemon: {}: {e}", path.display());
            }
            ExitCode::from(1)
        }
    }
}

fn utility(mode: Mode, socket: &std::path::Path) -> ExitCode {
    let (req, timeout) = match &mode {
        Mode::Register(spec) => (Request::Register(spec.clone()), Duration::from_secs(60)),
        Mode::List { json } => {
            return match client::list_all(socket, Duration::from_secs(10)) {
                Ok(Ok(list)) => {
                    if *json {
                        println!("{}", serde_json::to_string_pretty(&list).expect("json"));
                    } else {
                        print!("{}", table(&list));
                    }
                    ExitCode::SUCCESS
                }
                Ok(Err(message)) => {
                    eprintln!("jaildaemon: {message}");
                    ExitCode::from(1)
                }
                Err(e) => {
                    eprintln!("jaildaemon: {e}");
                    ExitCode::from(1)
                }
            };
        }
        Mode::Remove { id } => (Request::Remove { id: *id }, Duration::from_secs(30)),
        Mode::Daemon { .. } | Mode::Check => unreachable!(),
    };
    let resp = match client::request(socket, &req, timeout) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("jaildaemon: {e}");
            return ExitCode::from(1);
        }
    };
    match (mode, resp) {
        (_, Response::Error { message }) => {
            eprintln!("jaildaemon: {message}");
            ExitCode::from(1)
        }
        (Mode::Register(_), Response::Registered { .. }) => ExitCode::SUCCESS,
        (Mode::Remove { .. }, Response::Removed { .. }) => ExitCode::SUCCESS,
        (_, other) => {
            eprintln!("jaildaemon: unexpected answer from the daemon: {other:?}");
            ExitCode::from(1)
        }
    }
}

/// The probe table of `jaildaemon -l`.
pub fn table(list: &[ProbeInfo]) -> String {
    let mut out = format!(
        "{:>4} {:<16} {:>5} {:<24} {:>5} {:>5} {:<4} {:<14} {:>8} {:<20} {:>9} {:>7} {:>9} {}\n",
        "ID",
        "JAIL",
        "JID",
        "TITLE",
        "UID",
        "GID",
        "MODE",
        "STATE",
        "TRIGGERS",
        "LAST TRIGGER",
        "RATE",
        "RUNNING",
        "COALESCED",
        "COMMAND"
    );
    for p in list {
        let last = p.last_trigger.map(fmt_time).unwrap_or_else(|| "-".into());
        let state = match p.state {
            jaildaemon_proto::ProbeState::Armed => "armed".to_string(),
            jaildaemon_proto::ProbeState::Running => "running".to_string(),
            jaildaemon_proto::ProbeState::WaitingForJail => "waiting-jail".to_string(),
        };
        let state = if p.pending {
            format!("{state}+pending")
        } else {
            state
        };
        out.push_str(&format!(
            "{:>4} {:<16} {:>5} {:<24} {:>5} {:>5} {:<4} {:<14} {:>8} {:<20} {:>9} {:>7} {:>9} {}\n",
            p.id,
            p.jail,
            p.jid,
            p.title,
            p.uid,
            p.gid,
            p.respawn.flag(),
            state,
            p.triggers,
            last,
            format!("{}/{}s", p.rate_count, p.rate_secs),
            format!("{}/{}", p.running_commands, p.max_running),
            p.coalesced,
            p.command
        ));
    }
    out
}

/// UTC `YYYY-MM-DD HH:MM:SS` without a date crate.
fn fmt_time(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Invocation, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn daemon_mode_and_defaults() {
        let i = p(&["-D"]).unwrap();
        assert_eq!(i.socket, PathBuf::from("/var/run/jaildaemon.pipe"));
        assert_eq!(
            i.mode,
            Mode::Daemon {
                foreground: false,
                pidfile: "/var/run/jaildaemon.pid".into()
            }
        );
        let i = p(&["-DF", "-p/tmp/x.pid", "-f", "/tmp/s"]).unwrap();
        assert_eq!(
            i.mode,
            Mode::Daemon {
                foreground: true,
                pidfile: "/tmp/x.pid".into()
            }
        );
        assert_eq!(i.socket, PathBuf::from("/tmp/s"));
        // utility options are ignored in daemon mode
        assert!(matches!(
            p(&["-D", "-t", "x", "-u", "5", "-r"]).unwrap().mode,
            Mode::Daemon { .. }
        ));
    }

    #[test]
    fn utility_mode() {
        let i = p(&[
            "-c",
            "ezjail-admin restart",
            "-j",
            "23",
            "-t",
            "EZJAIL_REBOOT",
        ])
        .unwrap();
        match i.mode {
            Mode::Register(s) => {
                assert_eq!(s.command, "ezjail-admin restart");
                assert_eq!(s.jail, "23");
                assert_eq!(s.title.as_deref(), Some("EZJAIL_REBOOT"));
                assert_eq!(s.respawn, Respawn::Never);
            }
            m => panic!("{m:?}"),
        }
        let reg = |a: &[&str]| match p(a).unwrap().mode {
            Mode::Register(s) => s,
            m => panic!("{m:?}"),
        };
        assert_eq!(
            reg(&["-c", "x", "-j", "www", "-r"]).respawn,
            Respawn::AfterCommand
        );
        assert_eq!(
            reg(&["-c", "x", "-j", "www", "-rR"]).respawn,
            Respawn::Immediately
        );
        assert_eq!(
            reg(&["-c", "x", "-j", "www", "-R"]).respawn,
            Respawn::Immediately
        );
        let s = reg(&["-cx", "-jwww", "-u", "80", "-g80", "-p", "/ignored"]);
        assert_eq!((s.uid, s.gid), (Some(80), Some(80)));
    }

    #[test]
    fn usage_errors() {
        for bad in [
            vec![],
            vec!["-D", "-c", "x", "-j", "1"],
            vec!["-c", "x"],
            vec!["-c", "x", "-j"],
            vec!["-c", "x", "-j", "1", "-u", "www"],
            vec!["-c", "x", "-j", "1", "-g", "-5"],
            vec!["-X"],
            vec!["-D", "extra"],
            vec!["-c", "", "-j", "1"],
            vec!["-l", "-k", "1"],
            vec!["-k", "one"],
        ] {
            assert!(p(&bad).is_err(), "{bad:?} accepted");
        }
        assert!(p(&["-c", "x", "-j", "1", "-u", "www"])
            .unwrap_err()
            .contains("uid"));
        assert!(p(&["-c", "x"]).unwrap_err().contains("-j"));
    }

    #[test]
    fn list_and_remove() {
        assert_eq!(p(&["-l", "-J"]).unwrap().mode, Mode::List { json: true });
        assert_eq!(p(&["-k", "7"]).unwrap().mode, Mode::Remove { id: 7 });
    }

    #[test]
    fn time_format() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00:00");
        assert_eq!(fmt_time(1_795_392_000), "2026-11-23 00:00:00");
    }
}
