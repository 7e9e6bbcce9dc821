//! The probe: a process attached to a jail, showing a title, holding nothing from the
//! host, that ends with [`TRIGGER_EXIT`] when a process sends it SIGHUP.
//!
//! The daemon never forks from its multi-threaded runtime to run Rust code: it execs
//! its own binary as a small single-threaded *helper* (argv[0] = the title, an empty
//! environment but for [`HELPER_ENV`]), and hands it its parameters as JSON on an
//! inherited pipe (descriptor 3), never in argv or the environment. The helper:
//!
//! 1. blocks SIGHUP (a HUP during setup stays pending), reads its parameters;
//! 2. attaches to the jail (FreeBSD `jail_attach`; Linux: the jail layer's attach,
//!    then a fork, as joining a pid namespace applies to children; the helper's parent
//!    half reports the child's host pid and exits, the daemon being the subreaper);
//! 3. becomes a session leader without terminal, drops supplementary groups, sets gid
//!    then uid, shows the title, reports `ok` on its status pipe (stdout);
//! 4. closes every descriptor it has (all from the host), points 0-2 at the jail's
//!    /dev/null, and waits for a SIGHUP sent by a process.
//!
//! The command is never sent to the helper: nothing in the probe's argv, environment
//! or memory names it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::sys::unix as sys;

/// Environment variable that makes the `jaildaemon` binary act as the probe helper.
pub const HELPER_ENV: &str = "JAILDAEMON_PROBE_HELPER";

/// Exit status of a probe that received SIGHUP from a process: the trigger.
pub const TRIGGER_EXIT: i32 = 97;

/// What the helper needs; sent on descriptor 3.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeParams {
    pub jid: i32,
    pub title: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Linux jail registry directory of the daemon.
    pub registry: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("starting the probe helper: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("probe in jail {jid}: {message}")]
    Setup { jid: i32, message: String },
}

/// The probe helper's status lines.
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Entry point of the helper (the binary calls this when [`HELPER_ENV`] is set).
pub fn helper_main() -> ! {
    sys::block_sighup();
    let Some(fd) = sys::take_inherited_fd(3) else {
        report("err no parameter pipe on descriptor 3");
        sys::exit_now(2);
    };
    let mut raw = String::new();
    let _ = std::fs::File::from(fd).read_to_string(&mut raw);
    let params: ProbeParams = match serde_json::from_str(&raw) {
        Ok(p) => p,
        Err(e) => {
            report(&format!("err bad parameters: {e}"));
            sys::exit_now(2);
        }
    };
    drop(raw);
    #[cfg(target_os = "linux")]
    if let Some(r) = &params.registry {
        std::env::set_var(crate::jail::linux::REGISTRY_ENV, r);
    }
    if let Err(e) = crate::jail::attach(&params.jid.to_string()) {
        report(&format!("err cannot attach to jail {}: {e}", params.jid));
        sys::exit_now(1);
    }
    #[cfg(target_os = "linux")]
    match sys::fork() {
        Ok(sys::Forked::Parent(pid)) => {
            report(&format!("pid {pid}"));
            sys::exit_now(0);
        }
        Ok(sys::Forked::Child) => {}
        Err(e) => {
            report(&format!("err fork into the jail: {e}"));
            sys::exit_now(1);
        }
    }
    #[cfg(target_os = "freebsd")]
    report(&format!("pid {}", sys::getpid()));

    sys::probe_signals();
    if let Err(e) = sys::setsid() {
        report(&format!("err setsid: {e}"));
        sys::exit_now(1);
    }
    let gid = params.gid.unwrap_or(0);
    let uid = params.uid.unwrap_or(0);
    if let Err(e) = sys::drop_privileges(uid, gid, &[]) {
        report(&format!("err cannot set uid {uid} gid {gid}: {e}"));
        sys::exit_now(1);
    }
    sys::set_title(&params.title);
    report("ok");
    drop(params);
    sys::close_fds_from(0);
    sys::stdio_to_devnull();
    sys::wait_for_sighup_from_process();
    sys::exit_now(TRIGGER_EXIT);
}

/// A probe that runs in its jail.
#[derive(Debug)]
pub struct Spawned {
    /// Host pid of the probe.
    pub pid: i32,
    /// Host pid of the helper (already exited on Linux; the probe itself on FreeBSD).
    pub helper_pid: i32,
}

/// Start a probe: exec the helper (`exe`) with argv[0] = title, hand it `params`, and
/// read its status lines. `spawn` starts the command (the caller registers the pid
/// with its reaper while doing so) and returns the helper's pid.
pub fn spawn(
    exe: &Path,
    params: &ProbeParams,
    spawn: impl FnOnce(&mut Command) -> std::io::Result<std::process::Child>,
) -> Result<Spawned, ProbeError> {
    use std::os::unix::process::CommandExt;
    let (r, w) = sys::pipe().map_err(ProbeError::Spawn)?;
    let mut cmd = Command::new(exe);
    cmd.arg0(&params.title)
        .env_clear()
        .env(HELPER_ENV, "1")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    sys::command_pass_fd(&mut cmd, r.as_raw_fd(), 3);
    let mut child = spawn(&mut cmd).map_err(ProbeError::Spawn)?;
    drop(r);
    let helper_pid = child.id() as i32;
    let body = serde_json::to_vec(params).expect("params serialize");
    let mut wf = std::fs::File::from(w);
    let _ = wf.write_all(&body);
    drop(wf);
    let out = child.stdout.take().expect("piped stdout");
    let mut pid = None;
    let mut ok = false;
    let mut err = None;
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { break };
        if let Some(p) = line.strip_prefix("pid ") {
            pid = p.trim().parse::<i32>().ok();
        } else if line == "ok" {
            ok = true;
        } else if let Some(e) = line.strip_prefix("err ") {
            err = Some(e.to_string());
        }
    }
    match (ok, pid, err) {
        (true, Some(pid), None) => Ok(Spawned { pid, helper_pid }),
        (_, _, Some(message)) => Err(ProbeError::Setup {
            jid: params.jid,
            message,
        }),
        _ => Err(ProbeError::Setup {
            jid: params.jid,
            message: "the probe helper ended without reporting".into(),
        }),
    }
}
