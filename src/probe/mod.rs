//! The probe: a process attached to a jail, showing a title, holding nothing from the
//! host, that ends with [`TRIGGER_EXIT`] when a process *inside its jail* sends it
//! SIGHUP.
//!
//! The daemon never forks from its multi-threaded runtime to run Rust code: it execs
//! its own binary as a small single-threaded *helper* (argv[0] = the title, an empty
//! environment but for [`HELPER_ENV`]). Helper and daemon talk over a `SOCK_SEQPACKET`
//! socket pair on the helper's descriptor 3: the parameters go down as one datagram,
//! one typed [`Handoff`] comes back. The helper:
//!
//! 1. blocks SIGHUP (a HUP during setup stays pending), reads its parameters, makes
//!    itself untraceable (non-dumpable; FreeBSD `PROC_TRACE_CTL_DISABLE`);
//! 2. attaches to the jail (the jail layer's attach: on Linux the namespaces, the
//!    devices cgroup and the jail's confinement). On Linux, as joining a pid namespace
//!    applies to children, it forks the probe, opens a pidfd for it (its own unreaped
//!    child: the pidfd names exactly that process) and waits at most
//!    [`SETUP_TIMEOUT`] for the probe's own report on a private pipe. The probe first
//!    closes the daemon's socket, so nothing visible in the jail ever holds the
//!    handoff channel;
//! 3. the probe becomes a session leader without terminal, drops supplementary groups,
//!    sets gid then uid, closes every descriptor it has (all from the host), points 0-2
//!    at /dev/null and waits for a SIGHUP sent by a process of its jail;
//! 4. the helper sends [`Handoff::Ready`] with the pidfd attached (`SCM_RIGHTS`) and
//!    exits; the probe is reparented to the daemon, a subreaper. On FreeBSD the helper
//!    is the probe (jail_attach needs no fork): the daemon knows it by the pid it
//!    forked, and signals it only through its reaper, which refuses once that pid has
//!    been reaped (see `daemon::children`).
//!
//! The daemon learns the probe's identity from the kernel only (the pidfd, or the pid
//! it forked), never from bytes: the handoff carries no pid. Anything but exactly one
//! `Ready` with exactly one pidfd (Linux) fails the registration, and so does silence
//! past [`SETUP_TIMEOUT`] (the helper is then killed, and with it, by its parent-death
//! signal or the helper's own kill, the half-made probe).
//!
//! The command is never sent to the helper: nothing in the probe's argv, environment
//! or memory names it.

use std::os::fd::AsRawFd;
#[cfg(target_os = "linux")]
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::jail::handoff::{encode, Handoff};
use crate::sys::unix as sys;

/// Environment variable that makes the `jaildaemon` binary act as the probe helper.
pub const HELPER_ENV: &str = "JAILDAEMON_PROBE_HELPER";

/// Exit status of a probe that received SIGHUP from a process: the trigger.
pub const TRIGGER_EXIT: i32 = 97;

/// How long a probe may take to be set up before it is killed and its registration
/// fails. The helper gives up a little earlier, so that it reports why.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(5);
const HELPER_TIMEOUT: Duration = Duration::from_secs(4);

/// Largest handoff datagram.
const MAX_MESSAGE: usize = 4096;

/// Descriptors that come with a helper's `Ready`: the probe's pidfd on Linux; none on
/// FreeBSD, where the helper is the probe.
#[cfg(target_os = "linux")]
const HANDED_OVER_FDS: usize = 1;
#[cfg(not(target_os = "linux"))]
const HANDED_OVER_FDS: usize = 0;

/// What the helper needs; sent as one datagram on descriptor 3.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeParams {
    pub jid: i32,
    pub title: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("starting the probe helper: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("probe in jail {jid}: {message}")]
    Setup { jid: i32, message: String },
    #[error("probe in jail {jid}: did not finish setting up within {} s; it was killed", SETUP_TIMEOUT.as_secs())]
    Timeout { jid: i32 },
    /// The daemon's task that runs [`spawn`] off the async threads failed.
    #[error("probe spawner failed: {0}")]
    Spawner(String),
}

/// Entry point of the helper (the binary calls this when [`HELPER_ENV`] is set).
pub fn helper_main() -> ! {
    sys::block_sighup();
    let Some(sock) = sys::take_inherited_fd(3) else {
        sys::exit_now(2);
    };
    let fail = |h: Handoff| -> ! {
        let _ = sys::send_with_fds(&sock, &encode(&h), &[]);
        sys::exit_now(1);
    };
    let params: ProbeParams = match sys::recv_with_fds(&sock, MAX_MESSAGE, HELPER_TIMEOUT) {
        Ok(Some((bytes, fds))) if fds.is_empty() => match serde_json::from_slice(&bytes) {
            Ok(p) => p,
            Err(e) => fail(Handoff::Failed {
                step: format!("bad parameters: {e}"),
                errno: 0,
            }),
        },
        _ => fail(Handoff::Failed {
            step: "no parameters on descriptor 3".into(),
            errno: 0,
        }),
    };
    if let Err(e) = sys::make_untraceable() {
        fail(Handoff::failed("make the probe untraceable", &e));
    }
    if let Err(e) = crate::jail::attach(&params.jid.to_string()) {
        fail(Handoff::Failed {
            step: format!("cannot attach to jail {}: {e}", params.jid),
            errno: 0,
        });
    }
    #[cfg(target_os = "linux")]
    {
        let (pidfd, report) = match fork_probe(&params, &sock) {
            Ok(x) => x,
            Err(h) => fail(h),
        };
        match wait_report(report) {
            Handoff::Ready => {
                if let Err(e) =
                    sys::send_with_fds(&sock, &encode(&Handoff::Ready), &[pidfd.as_raw_fd()])
                {
                    let _ = sys::pidfd_kill(&pidfd);
                    fail(Handoff::failed("hand the probe over", &e));
                }
                sys::exit_now(0);
            }
            h => {
                let _ = sys::pidfd_kill(&pidfd);
                fail(h);
            }
        }
    }
    #[cfg(target_os = "freebsd")]
    {
        if let Err(h) = become_probe(&params) {
            fail(h);
        }
        if sys::send_with_fds(&sock, &encode(&Handoff::Ready), &[]).is_err() {
            sys::exit_now(1);
        }
        drop(sock);
        drop(params);
        arm()
    }
}

/// The probe's own setup after attach: session, credentials, title.
fn become_probe(params: &ProbeParams) -> Result<(), Handoff> {
    sys::probe_signals();
    sys::setsid().map_err(|e| Handoff::failed("setsid", &e))?;
    let gid = params.gid.unwrap_or(0);
    let uid = params.uid.unwrap_or(0);
    sys::drop_privileges(uid, gid, &[])
        .map_err(|e| Handoff::failed(format!("cannot set uid {uid} gid {gid}"), &e))?;
    // A credential change resets dumpability to fs.suid_dumpable: set it again.
    sys::make_untraceable().map_err(|e| Handoff::failed("make the probe untraceable", &e))?;
    sys::set_title(&params.title);
    Ok(())
}

/// Close everything from the host and wait for the trigger.
fn arm() -> ! {
    sys::close_fds_from(0);
    sys::stdio_to_devnull();
    sys::wait_for_sighup_from_process();
    sys::exit_now(TRIGGER_EXIT);
}

/// Fork the probe inside the jail. Returns its pidfd and the read end of its report
/// pipe.
#[cfg(target_os = "linux")]
fn fork_probe(params: &ProbeParams, sock: &OwnedFd) -> Result<(OwnedFd, OwnedFd), Handoff> {
    let (r, w) = sys::pipe().map_err(|e| Handoff::failed("pipe", &e))?;
    // The helper is single-threaded: fork is fine here.
    match sys::fork() {
        Err(e) => Err(Handoff::failed("fork into the jail", &e)),
        Ok(sys::Forked::Child) => {
            // The handoff channel must not live in a process the jail can see.
            sys::close_fd(sock.as_raw_fd());
            sys::close_fd(r.as_raw_fd());
            let report = |h: &Handoff| {
                let _ = sys::write_all_fd(w.as_raw_fd(), &encode(h));
            };
            // A helper killed by the daemon's timeout takes the half-made probe with
            // it. Asked for before and after the credential change, which clears it.
            sys::die_with_parent();
            let setup = become_probe(params).map(|()| {
                sys::die_with_parent();
            });
            match setup {
                Ok(()) => {
                    sys::live_on_parent_death();
                    report(&Handoff::Ready);
                    arm()
                }
                Err(h) => {
                    report(&h);
                    sys::exit_now(1)
                }
            }
        }
        Ok(sys::Forked::Parent(pid)) => {
            drop(w);
            // Our unreaped child: its pid cannot name anything else.
            let fd = sys::pidfd_open(pid).map_err(|e| {
                let _ = sys::kill_now(pid);
                Handoff::failed("pidfd_open of the probe", &e)
            })?;
            Ok((fd, r))
        }
    }
}

/// The probe's report, or a failure when it says nothing in time.
#[cfg(target_os = "linux")]
fn wait_report(r: OwnedFd) -> Handoff {
    match sys::read_with_timeout(&r, MAX_MESSAGE, HELPER_TIMEOUT) {
        Ok(Some(bytes)) if !bytes.is_empty() => {
            serde_json::from_slice(&bytes).unwrap_or(Handoff::Failed {
                step: "the probe sent an unreadable report".into(),
                errno: 0,
            })
        }
        Ok(Some(_)) => Handoff::Failed {
            step: "the probe ended during setup".into(),
            errno: 0,
        },
        Ok(None) => Handoff::Failed {
            step: format!(
                "the probe did not finish setting up within {} s (stopped from inside the jail?)",
                HELPER_TIMEOUT.as_secs()
            ),
            errno: nix::errno::Errno::ETIMEDOUT as i32,
        },
        Err(e) => Handoff::failed("reading the probe's report", &e),
    }
}

/// A probe that runs in its jail.
#[derive(Debug)]
pub struct Spawned {
    /// The probe, named by the kernel (its pidfd on Linux; on FreeBSD the pid the
    /// daemon forked, signalled only through its reaper while unreaped).
    pub probe: sys::ProcessRef,
    /// Host pid of the helper (already exited on Linux; the probe itself on FreeBSD).
    pub helper_pid: i32,
}

/// Start a probe: exec the helper (`exe`) with argv[0] = title, hand it `params`, and
/// take the probe over. `spawn` starts the command and returns the helper as its
/// reaper tracks it (registered before it can be reaped; a signal through it never
/// reaches the pid once reaped). Blocks at most [`SETUP_TIMEOUT`].
pub fn spawn(
    exe: &Path,
    params: &ProbeParams,
    spawn: impl FnOnce(&mut Command) -> std::io::Result<sys::ProcessRef>,
) -> Result<Spawned, ProbeError> {
    use std::os::unix::process::CommandExt;
    let (mine, theirs) = sys::seqpacket_pair().map_err(ProbeError::Spawn)?;
    let mut cmd = Command::new(exe);
    cmd.arg0(&params.title)
        .env_clear()
        .env(HELPER_ENV, "1")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Whatever the jail layer needs to find its jails (never named here).
    cmd.envs(crate::jail::child_env());
    sys::command_pass_fd(&mut cmd, theirs.as_raw_fd(), 3);
    let helper = spawn(&mut cmd).map_err(ProbeError::Spawn)?;
    drop(cmd);
    drop(theirs);
    let helper_pid = helper.pid;
    let setup = |message: String| ProbeError::Setup {
        jid: params.jid,
        message,
    };
    // Through the reaper: a helper that has already exited and been reaped is not
    // signalled (its pid may be someone else's by now).
    let kill_helper = || {
        let _ = helper.kill();
    };
    let body = serde_json::to_vec(params).expect("params serialize");
    if let Err(e) = sys::send_with_fds(&mine, &body, &[]) {
        kill_helper();
        return Err(setup(format!("sending the parameters: {e}")));
    }
    let got = sys::recv_with_fds(&mine, MAX_MESSAGE, SETUP_TIMEOUT);
    let (bytes, mut fds) = match got {
        Ok(Some(x)) => x,
        Ok(None) => {
            kill_helper();
            return Err(ProbeError::Timeout { jid: params.jid });
        }
        Err(e) => {
            kill_helper();
            return Err(setup(format!("reading the helper's answer: {e}")));
        }
    };
    let answer = Handoff::decode(&bytes);
    match answer {
        Some(Handoff::Ready) if fds.len() == HANDED_OVER_FDS => {
            #[cfg(target_os = "linux")]
            let probe = sys::ProcessRef::from_pidfd(fds.remove(0)).map_err(|e| {
                kill_helper();
                setup(format!("the probe handed over: {e}"))
            })?;
            #[cfg(not(target_os = "linux"))]
            let probe = {
                fds.clear();
                helper
            };
            Ok(Spawned { probe, helper_pid })
        }
        Some(Handoff::Failed { step, .. }) if fds.is_empty() => {
            kill_helper();
            Err(setup(step))
        }
        _ => {
            // Kill whatever was handed over, then the helper.
            #[cfg(target_os = "linux")]
            for fd in fds {
                if let Ok(p) = sys::ProcessRef::from_pidfd(fd) {
                    let _ = p.kill();
                }
            }
            kill_helper();
            if bytes.is_empty() {
                Err(setup("the probe helper ended without reporting".into()))
            } else {
                Err(setup(
                    "unexpected answer from the probe helper; registration refused".into(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_strict() {
        assert!(serde_json::from_slice::<ProbeParams>(
            br#"{"jid":1,"title":"t","uid":null,"gid":null,"registry":"/x"}"#
        )
        .is_err());
    }
}
