//! The probe: a process attached to a jail, showing a title, holding nothing from the
//! host, that ends with [`TRIGGER_EXIT`] when a process *inside its jail* sends it
//! SIGHUP.
//!
//! The daemon never forks from its multi-threaded runtime to run Rust code. A probe
//! is set up by a small single-threaded *helper*: on Linux a worker forked (without
//! exec) by the *spawner* ([`spawner`]), a process the daemon starts once by
//! executing its own binary (an empty environment but for [`HELPER_ENV`]); on FreeBSD
//! the daemon executes its own binary as the helper for every probe (argv[0] = the
//! title). Helper and daemon talk over a `SOCK_SEQPACKET` socket pair made for that
//! probe (the spawner passes the helper's end on to the worker it forks; an exec'd
//! helper has it on descriptor 3): the parameters go down as one datagram, one typed
//! [`Handoff`] comes back. The spawner never sees the parameters. The helper
//! ([`helper`]):
//!
//! 1. blocks SIGHUP (a HUP during setup stays pending), reads its parameters, shows
//!    the title (a worker writes it over its own argument area), makes itself
//!    untraceable (non-dumpable; FreeBSD `PROC_TRACE_CTL_DISABLE`);
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
//!    exits; the probe is reparented to the daemon, a subreaper (the spawner is not
//!    one). On FreeBSD the helper is the probe (jail_attach needs no fork): the daemon
//!    knows it by the pid it forked, and signals it only through its reaper, which
//!    refuses once that pid has been reaped (see `daemon::children`).
//!
//! The daemon learns the probe's identity from the kernel only (the pidfd, or the pid
//! it forked), never from bytes: the handoff carries no pid. Anything but exactly one
//! `Ready` with exactly one pidfd (Linux) fails the registration, and so does silence
//! past [`SETUP_TIMEOUT`] (an exec'd helper is then killed, and with it, by its
//! parent-death signal or the helper's own kill, the half-made probe; a worker gives
//! up by itself before that, and the spawner kills one that outlives the limit).
//!
//! The command is never sent to the helper: nothing in the probe's argv, environment
//! or memory names it.

mod helper;
#[cfg(target_os = "linux")]
mod spawner;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::jail::handoff::Handoff;
use crate::sys::unix as sys;

/// Environment variable that makes the `jaildaemon` binary act as the probe helper.
pub const HELPER_ENV: &str = "JAILDAEMON_PROBE_HELPER";

/// Exit status of a probe that received SIGHUP from a process: the trigger.
pub const TRIGGER_EXIT: i32 = 97;

/// How long a probe may take to be set up before it is killed and its registration
/// fails. The helper gives up a little earlier, so that it reports why.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(5);
const HELPER_TIMEOUT: Duration = Duration::from_secs(4);

/// Probes being set up at once, at most: on Linux the spawner's worker cap. The
/// daemon holds a slot from the request until the answer or its timeout, so it never
/// has more requests outstanding than the spawner may serve, and never more than this
/// many setups' descriptors open.
pub const MAX_SETUPS: usize = 256;

/// The daemon's slots for setups in flight (see [`MAX_SETUPS`]).
#[derive(Debug)]
pub(crate) struct SetupSlots(std::sync::Arc<tokio::sync::Semaphore>);

/// One setup's slot, given back when dropped.
pub type SetupPermit = tokio::sync::OwnedSemaphorePermit;

impl SetupSlots {
    pub(crate) fn new() -> SetupSlots {
        SetupSlots(std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_SETUPS)))
    }

    /// Wait for a slot, first come first served, at most [`SETUP_TIMEOUT`] (slots
    /// are held that long at most, past the spawner's send limit).
    pub(crate) async fn admit(&self) -> Result<SetupPermit, ProbeError> {
        match tokio::time::timeout(SETUP_TIMEOUT, self.0.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(ProbeError::Busy),
        }
    }
}

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
    /// The daemon gave up on a setup by the spawner: the worker can no longer hand a
    /// probe over, and kills (or never forks) it.
    #[error("probe in jail {jid}: did not finish setting up within {} s; the registration timed out and no probe was left", SETUP_TIMEOUT.as_secs())]
    SetupTimedOut { jid: i32 },
    /// More than [`MAX_SETUPS`] probes were being set up for all of [`SETUP_TIMEOUT`].
    #[error("too many probes are being set up at once (at most {MAX_SETUPS}); try again")]
    Busy,
    /// The daemon's task that runs [`spawn`] off the async threads failed.
    #[error("probe spawner failed: {0}")]
    Spawner(String),
}

/// What the daemon sends the helper: the parameters, and the instant
/// (`CLOCK_MONOTONIC`, milliseconds) past which the daemon no longer waits for the
/// answer, so the helper must not set the probe up.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HelperRequest {
    params: ProbeParams,
    deadline_ms: u64,
}

/// Value of [`HELPER_ENV`] that makes the binary the spawner (Linux).
pub const SPAWNER_MODE: &str = "spawner";

/// Entry point of the helper and of the spawner (the binary calls this when
/// [`HELPER_ENV`] is set).
pub fn helper_main() -> ! {
    #[cfg(target_os = "linux")]
    if std::env::var_os(HELPER_ENV).is_some_and(|v| v == SPAWNER_MODE) {
        spawner::spawner_main();
    }
    sys::block_sighup();
    let Some(sock) = sys::take_inherited_fd(3) else {
        sys::exit_now(2);
    };
    helper::serve(sock, None)
}

/// A probe that runs in its jail.
#[derive(Debug)]
pub struct Spawned {
    /// The probe, named by the kernel (its pidfd on Linux; on FreeBSD the pid the
    /// daemon forked, signalled only through its reaper while unreaped).
    pub probe: sys::ProcessRef,
    /// Whether the probe is the helper the caller started (FreeBSD): its exit status
    /// is that child's. Otherwise the probe is an orphan the daemon's reaper adopts.
    pub is_helper: bool,
}

/// Start a probe by executing the helper (`exe`) with argv[0] = title, hand it
/// `params`, and take the probe over. `spawn` starts the command and returns the
/// helper as its reaper tracks it (registered before it can be reaped; a signal
/// through it never reaches the pid once reaped). Blocks at most [`SETUP_TIMEOUT`].
/// Our own binary as a helper (`HELPER_ENV=mode`), named `arg0` with `room` empty
/// arguments after it (space for a title written later), holding nothing of the
/// caller: an empty environment but what the jail layer needs, `/`, /dev/null on 0–2,
/// and `fd` as descriptor 3.
fn helper_command(exe: &Path, arg0: &str, mode: &str, fd: &OwnedFd, room: usize) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(exe);
    cmd.arg0(arg0)
        .args(std::iter::repeat_n("", room))
        .env_clear()
        .env(HELPER_ENV, mode)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Whatever the jail layer needs to find its jails (never named here).
    cmd.envs(crate::jail::child_env());
    sys::command_pass_fd(&mut cmd, fd.as_raw_fd(), 3);
    cmd
}

/// The daemon uses this on FreeBSD; on Linux it goes through the [`Spawner`].
pub fn spawn(
    exe: &Path,
    params: &ProbeParams,
    spawn: impl FnOnce(&mut Command) -> std::io::Result<sys::ProcessRef>,
) -> Result<Spawned, ProbeError> {
    let (mine, theirs) = sys::seqpacket_pair().map_err(ProbeError::Spawn)?;
    let mut cmd = helper_command(exe, &params.title, "1", &theirs, 0);
    let helper = spawn(&mut cmd).map_err(ProbeError::Spawn)?;
    drop(cmd);
    drop(theirs);
    // Through the reaper: a helper that has already exited and been reaped is not
    // signalled (its pid may be someone else's by now).
    let handed = take_over(&mine, params, || {
        let _ = helper.kill();
    })?;
    Ok(match handed {
        Some(probe) => Spawned {
            probe,
            is_helper: false,
        },
        None => Spawned {
            probe: helper,
            is_helper: true,
        },
    })
}

/// The daemon's side of the handoff on `mine`: send `params`, wait at most
/// [`SETUP_TIMEOUT`] for exactly one `Ready` with [`HANDED_OVER_FDS`] descriptors.
/// Returns the probe named by its pidfd (Linux), or `None` when the helper is the
/// probe (FreeBSD). `kill_helper` is called on every failure.
fn take_over(
    mine: &OwnedFd,
    params: &ProbeParams,
    kill_helper: impl Fn(),
) -> Result<Option<sys::ProcessRef>, ProbeError> {
    if let Err(e) = send_params(mine, params) {
        kill_helper();
        return Err(e);
    }
    receive(mine, params, SETUP_TIMEOUT, kill_helper)
}

/// Send the helper its parameters (one datagram; the pair is new, so it never waits),
/// with the deadline: [`SETUP_TIMEOUT`] from now, which is no later than the caller's
/// own (its wait starts after this).
fn send_params(mine: &OwnedFd, params: &ProbeParams) -> Result<(), ProbeError> {
    let request = HelperRequest {
        params: params.clone(),
        deadline_ms: sys::monotonic_ms() + SETUP_TIMEOUT.as_millis() as u64,
    };
    let body = serde_json::to_vec(&request).expect("params serialize");
    sys::send_with_fds(mine, &body, &[]).map_err(|e| ProbeError::Setup {
        jid: params.jid,
        message: format!("sending the parameters: {e}"),
    })
}

/// Wait at most `wait` for the helper's answer on `mine` and check it (see
/// [`take_over`]).
fn receive(
    mine: &OwnedFd,
    params: &ProbeParams,
    wait: Duration,
    kill_helper: impl Fn(),
) -> Result<Option<sys::ProcessRef>, ProbeError> {
    let setup = |message: String| ProbeError::Setup {
        jid: params.jid,
        message,
    };
    let got = sys::recv_with_fds(mine, MAX_MESSAGE, wait);
    let (bytes, fds) = match got {
        Ok(Some(x)) => x,
        Ok(None) => {
            kill_helper();
            return Err(ProbeError::Timeout { jid: params.jid });
        }
        // A helper gone before reading everything it was sent resets the pair.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => (Vec::new(), Vec::new()),
        Err(e) => {
            kill_helper();
            return Err(setup(format!("reading the helper's answer: {e}")));
        }
    };
    let answer = Handoff::decode(&bytes);
    match answer {
        Some(Handoff::Ready) if fds.len() == HANDED_OVER_FDS => handed_over(fds).map_err(|e| {
            kill_helper();
            setup(format!("the probe handed over: {e}"))
        }),
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

/// The probe named by the descriptor a `Ready` came with (Linux: its pidfd); none on
/// FreeBSD, where the helper is the probe.
#[cfg(target_os = "linux")]
fn handed_over(mut fds: Vec<OwnedFd>) -> std::io::Result<Option<sys::ProcessRef>> {
    sys::ProcessRef::from_pidfd(fds.remove(0)).map(Some)
}

#[cfg(not(target_os = "linux"))]
fn handed_over(_fds: Vec<OwnedFd>) -> std::io::Result<Option<sys::ProcessRef>> {
    Ok(None)
}

/// How the daemon starts probes on FreeBSD: the helper is executed for each one
/// (see [`spawn`]). Same interface as the Linux spawner.
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
pub struct Spawner {
    exe: std::path::PathBuf,
    slots: SetupSlots,
}

#[cfg(not(target_os = "linux"))]
impl Spawner {
    pub fn new(exe: std::path::PathBuf) -> Spawner {
        Spawner {
            exe,
            slots: SetupSlots::new(),
        }
    }

    /// A slot for one setup (see [`MAX_SETUPS`]).
    pub async fn admit(&self) -> Result<SetupPermit, ProbeError> {
        self.slots.admit().await
    }

    /// Nothing to start ahead on FreeBSD.
    pub fn start(
        &self,
        _start: impl FnOnce(&mut Command) -> std::io::Result<sys::ProcessRef>,
    ) -> Result<(), ProbeError> {
        Ok(())
    }

    /// Start one probe; `start` starts the helper (see [`spawn`]).
    pub fn spawn(
        &self,
        params: &ProbeParams,
        start: impl FnOnce(&mut Command) -> std::io::Result<sys::ProcessRef>,
    ) -> Result<Spawned, ProbeError> {
        spawn(&self.exe, params, start)
    }

    /// [`Spawner::spawn`], all of it: on FreeBSD there is nothing to wait for apart.
    pub fn begin(
        &self,
        params: &ProbeParams,
        start: impl FnOnce(&mut Command) -> std::io::Result<sys::ProcessRef>,
    ) -> Result<Pending, ProbeError> {
        Ok(Pending {
            done: self.spawn(params, start),
        })
    }

    pub fn pid(&self) -> Option<i32> {
        None
    }

    pub fn stop(&self) {}
}

/// A probe being set up (FreeBSD: already done).
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
pub struct Pending {
    done: Result<Spawned, ProbeError>,
}

#[cfg(not(target_os = "linux"))]
impl Pending {
    pub fn answer_fd(&self) -> Option<std::io::Result<OwnedFd>> {
        None
    }

    pub fn ready(&self) -> bool {
        true
    }

    pub fn timed_out(self) -> ProbeError {
        ProbeError::Spawner("no timeout applies".into())
    }

    pub fn finish(self, _wait: Duration) -> Result<Spawned, ProbeError> {
        self.done
    }
}

#[cfg(target_os = "linux")]
pub use spawner::{Pending, Spawner, SPAWNER_NAME};

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
