//! The probe spawner (Linux): one small single-threaded process that forks, without
//! exec, a worker per probe; each worker is the helper of [`super::helper`].
//!
//! The daemon starts it by executing its own binary ([`super::HELPER_ENV`] =
//! [`SPAWNER_MODE`], an empty environment but for what the jail layer needs, its
//! request socket on descriptor 3, 0-2 on /dev/null), and again whenever it finds it
//! gone. Being executed, it holds no memory of the daemon; it never sees a probe's
//! parameters (they go from the daemon to the worker directly), so a worker, and
//! the probe it forks, inherit nothing of interest from it: its request socket,
//! which a worker closes as its first act, 0-2, and the spawner's own small state
//! (the pids of its workers). Its argument area is large enough for any title (see
//! [`ARGV_ROOM`]): a worker writes its probe's title there, so the probe shows the
//! title without an exec.
//!
//! Protocol on the `SOCK_SEQPACKET` request socket: the daemon sends [`REQUEST`]
//! with one descriptor attached, the helper's end of a socket pair made for that
//! probe; the spawner forks a worker that serves it and closes its own copy. Nothing
//! is answered on the request socket: the worker talks to the daemon on its pair, and
//! a spawner that dies before forking drops the descriptor, so the daemon reads the
//! end of its pair and the registration fails at once. Anything else on the request
//! socket is dropped. The spawner exits when the daemon's end of the request socket
//! closes.
//!
//! Bounds:
//! - at most [`MAX_WORKERS`] workers at once: past that the spawner stops reading
//!   (and waits for a SIGCHLD). The queue of a connected `SOCK_SEQPACKET` pair is not
//!   limited by `max_dgram_qlen`, so the daemon bounds it itself: it holds one of its
//!   [`super::MAX_SETUPS`] (= `MAX_WORKERS`) slots from the request until the answer
//!   or its timeout. The daemon's send waits at most [`SEND_TIMEOUT`];
//! - a worker ends after [`WORKER_LIMIT`] (its own alarm, and the spawner's kill) and
//!   with the spawner (parent-death SIGKILL), so no worker outlives either;
//! - a request the daemon has given up on is never served: the parameters carry the
//!   daemon's deadline (`CLOCK_MONOTONIC`), and the worker gives up when it is past or
//!   when the daemon's end is closed or shut down, before attaching, before forking
//!   the probe and before handing it over (see [`super::helper`]). The daemon shuts
//!   its end down on timeout, so a handover is either read (and the probe killed) or
//!   refused (and the worker kills it).
//!
//! The spawner is not a subreaper: a probe whose worker exits is reparented to the
//! daemon, which is.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::SPAWNER_MODE;
use super::{
    helper, receive, send_params, ProbeError, ProbeParams, SetupPermit, SetupSlots, Spawned,
    SETUP_TIMEOUT,
};
use crate::sys::unix as sys;

/// The spawner's argv[0].
pub const SPAWNER_NAME: &str = "jaildaemon: probe spawner";
/// Empty arguments after the name: each adds one byte to the argument area, which
/// must hold any title (at most 1,024 bytes), its NUL and a last byte.
pub const ARGV_ROOM: usize = 1100;
/// The one request: fork a worker for the attached descriptor.
const REQUEST: &[u8] = b"S";
/// Largest request read (longer ones are dropped).
const MAX_REQUEST: usize = 16;
/// Workers at once; past that the spawner stops reading requests until one ends.
pub const MAX_WORKERS: usize = super::MAX_SETUPS;
/// A worker alive this long is killed (it gives up by itself after its own limits).
pub const WORKER_LIMIT: Duration = Duration::from_secs(SETUP_TIMEOUT.as_secs() + 1);
/// How long the daemon waits for room on the request socket; a spawner that takes
/// no request for that long is killed and started again.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the spawner looks at its workers when no request comes.
const TICK: Duration = Duration::from_millis(250);

/// The spawner process: serve requests until the daemon closes its end.
pub(super) fn spawner_main() -> ! {
    sys::block_sighup();
    // Out of the daemon's session: a terminal's signals are not for us.
    let _ = sys::setsid();
    let Some(sock) = sys::take_inherited_fd(3) else {
        sys::exit_now(2);
    };
    sys::close_fds_except(&[sock.as_raw_fd()]);
    if sys::make_untraceable().is_err() {
        sys::exit_now(2);
    }
    let Ok(area) = sys::argv_area() else {
        sys::exit_now(2);
    };
    let me = sys::getpid();
    sys::block_sigchld();
    let mut workers: Vec<(i32, Instant)> = Vec::new();
    loop {
        // Only this loop reaps: a pid in `workers` is an unreaped child of ours, so
        // killing it can hit nothing else.
        while let Some((pid, _)) = sys::reap_one() {
            workers.retain(|w| w.0 != pid);
        }
        for (pid, born) in &workers {
            if born.elapsed() > WORKER_LIMIT {
                let _ = sys::kill_now(*pid);
            }
        }
        if workers.len() >= MAX_WORKERS {
            // Until one ends (or the next look at their ages).
            sys::wait_sigchld(TICK);
            continue;
        }
        let (bytes, mut fds) = match sys::recv_with_fds(&sock, MAX_REQUEST, TICK) {
            Ok(Some(x)) => x,
            Ok(None) => continue,
            // Too long: dropped (with whatever came with it).
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => continue,
            Err(_) => sys::exit_now(1),
        };
        if bytes.is_empty() && fds.is_empty() {
            // The daemon is gone.
            sys::exit_now(0);
        }
        if bytes != REQUEST || fds.len() != 1 {
            continue;
        }
        let reply = fds.remove(0);
        match sys::fork() {
            Ok(sys::Forked::Child) => {
                // The worker: nothing of the spawner's but its own pair.
                sys::close_fd(sock.as_raw_fd());
                if !sys::bound_worker(me, WORKER_LIMIT) {
                    sys::exit_now(1);
                }
                helper::serve(reply, Some(area))
            }
            Ok(sys::Forked::Parent(pid)) => workers.push((pid, Instant::now())),
            // The reply end is dropped below: the daemon reads its end and fails.
            Err(_) => {}
        }
        drop(reply);
    }
}

/// The daemon's handle on its spawner: the request socket and the process, started
/// on first use (or ahead with [`Spawner::start`]) and again when found gone.
#[derive(Debug)]
pub struct Spawner {
    exe: PathBuf,
    conn: Mutex<Option<Conn>>,
    slots: SetupSlots,
}

#[derive(Debug)]
struct Conn {
    sock: OwnedFd,
    /// As the daemon's reaper tracks it: never signalled once reaped.
    process: sys::ProcessRef,
}

/// A probe being set up by a worker: the daemon's end of its pair.
#[derive(Debug)]
pub struct Pending {
    mine: OwnedFd,
    params: ProbeParams,
}

impl Pending {
    /// A duplicate of the daemon's end of the pair, readable once the worker has
    /// answered (or is gone): to wait on (an async reactor may own and close it).
    pub fn answer_fd(&self) -> Option<std::io::Result<OwnedFd>> {
        Some(self.mine.try_clone())
    }

    /// Whether the answer is there (a read would not wait).
    pub fn ready(&self) -> bool {
        sys::readable_now(&self.mine)
    }

    /// Give up on a setup that took longer than [`SETUP_TIMEOUT`], and its error.
    /// The pair is shut down first: from then on the worker can hand nothing over
    /// (it kills its probe when the send fails, and gives up before attaching or
    /// forking when it sees the shutdown or its deadline, which is this one). A
    /// handover that came before the shutdown is read here and its probe killed.
    pub fn timed_out(self) -> ProbeError {
        let _ = sys::shutdown_socket(&self.mine);
        if let Ok(Some(probe)) = receive(&self.mine, &self.params, Duration::ZERO, || {}) {
            let _ = probe.kill();
        }
        ProbeError::SetupTimedOut {
            jid: self.params.jid,
        }
    }

    /// Take the worker's answer, waiting at most `wait` for it.
    pub fn finish(self, wait: Duration) -> Result<Spawned, ProbeError> {
        // The worker is the spawner's child, not ours to signal: on any failure it
        // ends by its own limits (or the spawner's), killing the half-made probe.
        let probe =
            receive(&self.mine, &self.params, wait, || {})?.ok_or_else(|| ProbeError::Setup {
                jid: self.params.jid,
                message: "the probe helper handed over no probe".into(),
            })?;
        Ok(Spawned {
            probe,
            is_helper: false,
        })
    }
}

impl Spawner {
    /// A spawner that executes `exe` (the daemon's own binary).
    pub fn new(exe: PathBuf) -> Spawner {
        Spawner {
            exe,
            conn: Mutex::new(None),
            slots: SetupSlots::new(),
        }
    }

    /// Start the spawner now if it is not running. `start` starts the command and
    /// returns the process as the daemon's reaper tracks it.
    pub fn start(
        &self,
        start: impl FnOnce(&mut Command) -> std::io::Result<sys::ProcessRef>,
    ) -> Result<(), ProbeError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if conn.is_none() {
            *conn = Some(self.launch(start)?);
        }
        Ok(())
    }

    /// A slot for one setup, to hold from [`Spawner::begin`] until the answer or the
    /// timeout (see [`SetupSlots`]).
    pub async fn admit(&self) -> Result<SetupPermit, ProbeError> {
        self.slots.admit().await
    }

    /// The pid of the running spawner, if one was started and not found gone.
    pub fn pid(&self) -> Option<i32> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.as_ref().map(|c| c.process.pid)
    }

    fn launch(
        &self,
        start: impl FnOnce(&mut Command) -> std::io::Result<sys::ProcessRef>,
    ) -> Result<Conn, ProbeError> {
        let (mine, theirs) = sys::seqpacket_pair().map_err(ProbeError::Spawn)?;
        let mut cmd =
            super::helper_command(&self.exe, SPAWNER_NAME, SPAWNER_MODE, &theirs, ARGV_ROOM);
        let process = start(&mut cmd).map_err(ProbeError::Spawn)?;
        tracing::debug!(pid = process.pid, "probe spawner started");
        Ok(Conn {
            sock: mine,
            process,
        })
    }

    /// Start a probe: ask the spawner for a worker and send it `params` (see
    /// [`super::spawn`] for what is checked of the answer). `start` starts the spawner
    /// if it is not running (or was found gone). The answer is for
    /// [`Pending::finish`], which the caller may delay until [`Pending::answer_fd`] is
    /// readable (so nothing blocks while the probe is set up), or
    /// [`Pending::timed_out`] after [`SETUP_TIMEOUT`]. The caller holds a slot from
    /// [`Spawner::admit`] throughout. Blocks at most [`SEND_TIMEOUT`].
    pub fn begin(
        &self,
        params: &ProbeParams,
        start: impl FnOnce(&mut Command) -> std::io::Result<sys::ProcessRef>,
    ) -> Result<Pending, ProbeError> {
        let (mine, theirs) = sys::seqpacket_pair().map_err(ProbeError::Spawn)?;
        self.request(theirs.as_raw_fd(), start)?;
        drop(theirs);
        send_params(&mine, params)?;
        Ok(Pending {
            mine,
            params: params.clone(),
        })
    }

    /// Send one request carrying `fd`; a spawner found gone is started again and the
    /// request sent once more.
    fn request(
        &self,
        fd: RawFd,
        start: impl FnOnce(&mut Command) -> std::io::Result<sys::ProcessRef>,
    ) -> Result<(), ProbeError> {
        let mut start = Some(start);
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if conn.is_none() {
                let Some(start) = start.take() else {
                    return Err(ProbeError::Spawner(
                        "the probe spawner ended as soon as it was started".into(),
                    ));
                };
                *conn = Some(self.launch(start)?);
            }
            let c = conn.as_ref().expect("connected");
            match sys::send_with_fds_timeout(&c.sock, REQUEST, &[fd], SEND_TIMEOUT) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    tracing::warn!(pid = c.process.pid, "the probe spawner took no request for {} s; killing it (the next registration starts another)", SEND_TIMEOUT.as_secs());
                    let _ = c.process.kill();
                    *conn = None;
                    return Err(ProbeError::Spawner(format!(
                        "the probe spawner took no request for {} s",
                        SEND_TIMEOUT.as_secs()
                    )));
                }
                Err(e) => {
                    tracing::warn!(pid = c.process.pid, error = %e, "the probe spawner is gone; starting another");
                    let _ = c.process.kill();
                    *conn = None;
                }
            }
        }
    }

    /// Stop the spawner (the daemon is shutting down).
    pub fn stop(&self) {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(c) = conn {
            let _ = c.process.kill();
        }
    }
}
