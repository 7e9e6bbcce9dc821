//! One task per probe: it owns the probe's spec and runs its state machine.
//!
//! armed --trigger--> command --(`-r`: after it ends; `-R`: at once)--> respawn
//! (after a backoff when the probe fired quickly), re-armed by jail *name* (a jail
//! recreated with a new jid is followed); single-shot probes end with their command.
//! A probe that ends without a trigger (killed, crashed) is lost: no command, no
//! respawn. A jail that does not come back within [`JAIL_RETURN_GRACE`], or three
//! failed respawns in a row, end the probe.
//!
//! The machine ([`run`]) is generic over [`ProbeHost`], what it asks of the world
//! (spawn, wait, kill, command, jail lookup, clock): [`Live`] is the daemon's, and
//! the unit tests use a recording fake.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jaildaemon_proto::{ProbeSpec, Respawn};
use tokio::sync::{mpsc, oneshot, watch};

use super::command::Trigger;
use super::reaper::Reaper;
use super::registry::ProbeRegistry;
use crate::jail;
use crate::probe::{self, ProbeError, ProbeParams, Spawner, TRIGGER_EXIT};
use crate::sys::unix::{ExitStatus, ProcessRef};

/// How long a respawning probe waits for its jail (by name) to come back.
pub const JAIL_RETURN_GRACE: Duration = Duration::from_secs(30);
/// A probe that lived shorter than this before firing counts toward backoff.
pub const SHORT_LIFE: Duration = Duration::from_secs(1);
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Pause between two looks for the jail (or two respawn attempts).
pub const REARM_POLL: Duration = Duration::from_millis(250);
/// Pause between two looks for the jail of a `-w` probe past [`JAIL_RETURN_GRACE`]:
/// polling (one jail lookup a second each) works alike on both systems and costs
/// little next to the setup of a probe.
pub const WAIT_POLL: Duration = Duration::from_secs(1);
/// How long a `-w` probe that ended without a trigger waits to see its jail go away
/// (stopped or removed): if it does, the probe waits for the jail to come back.
pub const JAIL_LEAVE_GRACE: Duration = Duration::from_secs(3);
/// Failed respawns in a row after which the probe is dropped.
pub const RESPAWN_TRIES: u32 = 3;

/// What a probe is armed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arm {
    pub jid: i32,
    pub title: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// A change of a probe's state worth showing in `jaildaemon -l`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The probe fired: its command is (about to be) run.
    Triggered,
    /// A new probe process is armed (in jail `jid`).
    Respawned { jid: i32, pid: i32 },
    /// The jail is not there (yet); the probe waits for it.
    WaitingForJail,
}

/// Why a supervisor ended; the probe is then dropped from the registry.
#[derive(Debug)]
pub enum End {
    /// Removed on request; the sender (if any) is told once the probe is gone.
    Removed(Option<oneshot::Sender<()>>),
    /// The daemon is shutting down.
    Shutdown,
    /// A single-shot probe fired and its command ended.
    Done,
    /// The probe ended without a trigger.
    Lost(ExitStatus),
    /// The jail is gone and did not come back in time.
    JailGone,
    /// Respawning failed [`RESPAWN_TRIES`] times in a row.
    RespawnFailed,
}

/// What the state machine asks of the world.
pub trait ProbeHost: Send + Sync {
    /// A running probe.
    type Probe: Send;
    /// Spawn a probe in jail `arm.jid`.
    fn spawn_probe(
        &self,
        arm: &Arm,
    ) -> impl Future<Output = Result<Self::Probe, ProbeError>> + Send;
    /// The probe's host pid.
    fn probe_pid(&self, probe: &Self::Probe) -> i32;
    /// Whether the probe is held by a pidfd (for the log).
    fn probe_has_pidfd(&self, _probe: &Self::Probe) -> bool {
        false
    }
    /// Wait for the probe to end.
    fn wait_probe(&self, probe: &mut Self::Probe) -> impl Future<Output = ExitStatus> + Send;
    /// Kill the probe and wait (a moment) for it to be gone.
    fn kill_probe(&self, probe: &mut Self::Probe) -> impl Future<Output = ()> + Send;
    /// Hand a trigger to the command runner; the receiver resolves when the command
    /// that serves it has ended (or the trigger was dropped).
    fn run_command(&self, arm: &Arm) -> oneshot::Receiver<()>;
    /// The jid of the live jail named `name`, if there is one.
    fn jail_lookup(&self, name: &str) -> impl Future<Output = Option<i32>> + Send;
    fn now(&self) -> Instant;
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send;
    /// Record a state change.
    fn note(&self, note: Note);
}

/// A probe's supervisor: its identity and its own copy of the spec.
#[derive(Debug, Clone)]
pub struct Supervisor {
    pub id: u64,
    pub spec: ProbeSpec,
    /// The jail's name, as found at registration: a respawn looks it up again.
    pub jail: String,
    pub arm: Arm,
    /// `-w`: a missing jail is waited for without limit, and a probe killed with its
    /// jail is re-armed when the jail returns.
    pub wait: bool,
    /// The first arming (of a probe registered waiting: `-w`, declared, restored, or
    /// retried after a failed setup) waits for the jail without limit and retries
    /// failed setups; after it, [`Self::wait`] alone rules.
    pub wait_first: bool,
}

/// How the daemon talks to a supervisor.
pub struct Control {
    pub cancel: mpsc::Receiver<oneshot::Sender<()>>,
    pub shutdown: watch::Receiver<bool>,
}

/// The backoff before respawning a probe that lived `lived`, after `previous`.
pub fn next_backoff(previous: Duration, lived: Duration) -> Duration {
    if lived < SHORT_LIFE {
        (previous * 2).clamp(BACKOFF_MIN, BACKOFF_MAX)
    } else {
        Duration::ZERO
    }
}

/// Run the state machine of one probe (armed as `probe`, or waiting for its jail)
/// until it ends.
pub async fn run<H: ProbeHost>(
    host: &H,
    mut sup: Supervisor,
    probe: Option<H::Probe>,
    ctl: &mut Control,
) -> End {
    let id = sup.id;
    let mut probe = match probe {
        Some(p) => p,
        None => {
            host.note(Note::WaitingForJail);
            let wait = sup.wait;
            sup.wait |= sup.wait_first;
            let armed = tokio::select! {
                r = rearm(host, &mut sup, Duration::ZERO) => r,
                ack = ctl.cancel.recv() => return End::Removed(ack),
                _ = ctl.shutdown.changed() => return End::Shutdown,
            };
            sup.wait = wait;
            match armed {
                Ok(p) => p,
                Err(end) => return end,
            }
        }
    };
    sup.wait_first = false;
    let mut armed_at = host.now();
    let mut backoff = Duration::ZERO;
    loop {
        let status = tokio::select! {
            st = host.wait_probe(&mut probe) => st,
            ack = ctl.cancel.recv() => {
                host.kill_probe(&mut probe).await;
                return End::Removed(ack);
            }
            _ = ctl.shutdown.changed() => {
                host.kill_probe(&mut probe).await;
                return End::Shutdown;
            }
        };
        if status != ExitStatus::Code(TRIGGER_EXIT) && sup.wait && jail_left(host, &sup).await {
            tracing::info!(probe = id, jail = %sup.jail, %status, "the probe ended with its jail; waiting for the jail to come back");
            let rearmed = tokio::select! {
                r = rearm(host, &mut sup, Duration::ZERO) => r,
                ack = ctl.cancel.recv() => return End::Removed(ack),
                _ = ctl.shutdown.changed() => return End::Shutdown,
            };
            match rearmed {
                Ok(p) => {
                    probe = p;
                    armed_at = host.now();
                    continue;
                }
                Err(end) => return end,
            }
        }
        if status != ExitStatus::Code(TRIGGER_EXIT) {
            tracing::warn!(probe = id, pid = host.probe_pid(&probe), %status, jail = %sup.spec.jail, "probe lost (not a trigger): no command runs, no respawn");
            return End::Lost(status);
        }
        let lived = host.now().saturating_duration_since(armed_at);
        host.note(Note::Triggered);
        tracing::info!(probe = id, jid = sup.arm.jid, title = %sup.arm.title, "probe triggered");
        let done = host.run_command(&sup.arm);
        match sup.spec.respawn {
            Respawn::Never => {
                let _ = done.await;
                return End::Done;
            }
            Respawn::AfterCommand => {
                tokio::select! {
                    _ = done => {}
                    ack = ctl.cancel.recv() => return End::Removed(ack),
                    _ = ctl.shutdown.changed() => return End::Shutdown,
                }
            }
            Respawn::Immediately => {}
        }
        backoff = next_backoff(backoff, lived);
        if !backoff.is_zero() {
            tracing::info!(
                probe = id,
                backoff_ms = backoff.as_millis() as u64,
                "probe fired quickly; delaying respawn"
            );
        }
        let rearmed = tokio::select! {
            r = rearm(host, &mut sup, backoff) => r,
            ack = ctl.cancel.recv() => return End::Removed(ack),
            _ = ctl.shutdown.changed() => return End::Shutdown,
        };
        match rearmed {
            Ok(p) => {
                probe = p;
                armed_at = host.now();
            }
            Err(end) => return end,
        }
    }
}

/// Whether the probe's jail is gone (or was replaced), looking for up to
/// [`JAIL_LEAVE_GRACE`].
async fn jail_left<H: ProbeHost>(host: &H, sup: &Supervisor) -> bool {
    let deadline = host.now() + JAIL_LEAVE_GRACE;
    loop {
        if host.jail_lookup(&sup.jail).await != Some(sup.arm.jid) {
            return true;
        }
        if host.now() >= deadline {
            return false;
        }
        host.sleep(REARM_POLL).await;
    }
}

/// Find the jail again by name (it may have been recreated with a new jid) and spawn
/// a new probe in it.
async fn rearm<H: ProbeHost>(
    host: &H,
    sup: &mut Supervisor,
    delay: Duration,
) -> Result<H::Probe, End> {
    host.sleep(delay).await;
    let id = sup.id;
    let name = sup.jail.clone();
    let deadline = host.now() + JAIL_RETURN_GRACE;
    let mut failures = 0;
    loop {
        match host.jail_lookup(&name).await {
            Some(jid) => {
                if jid != sup.arm.jid {
                    tracing::info!(probe = id, jail = %name, old_jid = sup.arm.jid, new_jid = jid, "jail came back with a new jid; re-arming there");
                }
                sup.arm.jid = jid;
                match host.spawn_probe(&sup.arm).await {
                    Ok(probe) => {
                        let pid = host.probe_pid(&probe);
                        host.note(Note::Respawned { jid, pid });
                        tracing::info!(
                            probe = id,
                            pid,
                            pidfd = host.probe_has_pidfd(&probe),
                            jid,
                            mode = sup.spec.respawn.flag(),
                            "probe respawned"
                        );
                        return Ok(probe);
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(probe = id, jail = %name, error = %e, failures, "respawning the probe failed");
                        if failures >= RESPAWN_TRIES && sup.wait_first && sup.wait {
                            // a first arming that waits: retried, not dropped
                            failures = 0;
                            host.sleep(WAIT_POLL).await;
                        } else if failures >= RESPAWN_TRIES {
                            tracing::warn!(probe = id, jail = %name, "probe dropped after 3 failed respawns");
                            return Err(End::RespawnFailed);
                        }
                    }
                }
            }
            None => host.note(Note::WaitingForJail),
        }
        if sup.wait {
            let poll = if host.now() >= deadline {
                WAIT_POLL
            } else {
                REARM_POLL
            };
            host.sleep(poll).await;
            continue;
        }
        if host.now() >= deadline {
            tracing::warn!(probe = id, jail = %name, grace_s = JAIL_RETURN_GRACE.as_secs(), "probe dropped: its jail is gone and did not come back");
            return Err(End::JailGone);
        }
        host.sleep(REARM_POLL).await;
    }
}

/// A live probe: the process and its exit status from the reaper.
pub struct LiveProbe {
    pub process: ProcessRef,
    pub exit: oneshot::Receiver<ExitStatus>,
}

/// Spawn a probe process in jail `arm.jid` through `spawner`, which is (re)started
/// as a child tracked by `reaper` when needed. The request is sent on a blocking
/// thread (at most the spawner's send limit); the answer is awaited on the runtime
/// (at most [`crate::probe::SETUP_TIMEOUT`]), so a probe being set up holds no thread.
/// A slot ([`crate::probe::MAX_SETUPS`]) is held from the request until the answer or
/// the timeout: the spawner is never asked for more than it may serve at once, and
/// setups in flight hold a bounded number of descriptors.
pub async fn spawn_probe(
    reaper: &Arc<Reaper>,
    spawner: &Arc<Spawner>,
    arm: &Arm,
) -> Result<LiveProbe, ProbeError> {
    let _slot = spawner.admit().await?;
    let r2 = reaper.clone();
    let spawner = spawner.clone();
    let params = ProbeParams {
        jid: arm.jid,
        title: arm.title.clone(),
        uid: arm.uid,
        gid: arm.gid,
    };
    let (pending, helper_rx) = tokio::task::spawn_blocking(move || {
        let mut helper_rx = None;
        let pending = spawner.begin(&params, |cmd| {
            let (helper, rx) = r2.spawn_tracked(cmd)?;
            helper_rx = Some(rx);
            Ok(helper)
        })?;
        Ok::<_, ProbeError>((pending, helper_rx))
    })
    .await
    .map_err(|e| ProbeError::Spawner(e.to_string()))??;
    if let Some(fd) = pending.answer_fd() {
        // Readiness only: the reactor watches a duplicate of the pair's end (a
        // SEQPACKET socket, wrapped as a datagram socket, never read through).
        let std_sock = std::os::unix::net::UnixDatagram::from(fd.map_err(ProbeError::Spawn)?);
        std_sock.set_nonblocking(true).map_err(ProbeError::Spawn)?;
        let watch = tokio::net::UnixDatagram::from_std(std_sock).map_err(ProbeError::Spawn)?;
        let answered = tokio::time::timeout(probe::SETUP_TIMEOUT, async {
            // A false readiness is cleared by try_io's WouldBlock.
            while watch.readable().await.is_ok() {
                let ready = watch.try_io(tokio::io::Interest::READABLE, || match pending.ready() {
                    true => Ok(()),
                    false => Err(std::io::ErrorKind::WouldBlock.into()),
                });
                if ready.is_ok() {
                    break;
                }
            }
        })
        .await;
        drop(watch);
        if answered.is_err() {
            return Err(pending.timed_out());
        }
    }
    let spawned = pending.finish(Duration::ZERO)?;
    // Linux: the probe is named by the pidfd the helper handed over, and it is
    // (or is about to become) our child: only our reaper reaps it. FreeBSD: it is
    // the helper we forked, signalled through the reaper (never once reaped).
    let exit = match helper_rx {
        Some(rx) if spawned.is_helper => rx,
        _ => reaper.watch(spawned.probe.pid),
    };
    Ok(LiveProbe {
        process: spawned.probe,
        exit,
    })
}

/// Start the spawner ahead of the first registration (logged, not fatal: the first
/// registration tries again).
pub fn start_spawner(reaper: &Arc<Reaper>, spawner: &Spawner) {
    if let Err(e) = spawner.start(|cmd| reaper.spawn_tracked(cmd).map(|(p, _)| p)) {
        tracing::warn!(error = %e, "could not start the probe spawner; the first registration tries again");
    }
}

/// The daemon's [`ProbeHost`] for probe `id`.
pub struct Live {
    pub id: u64,
    pub registry: Arc<ProbeRegistry>,
    pub reaper: Arc<Reaper>,
    pub spawner: Arc<Spawner>,
    pub commands: mpsc::UnboundedSender<Trigger>,
}

impl ProbeHost for Live {
    type Probe = LiveProbe;

    fn spawn_probe(&self, arm: &Arm) -> impl Future<Output = Result<LiveProbe, ProbeError>> + Send {
        spawn_probe(&self.reaper, &self.spawner, arm)
    }

    fn probe_pid(&self, probe: &LiveProbe) -> i32 {
        probe.process.pid
    }

    fn probe_has_pidfd(&self, probe: &LiveProbe) -> bool {
        probe.process.has_pidfd()
    }

    async fn wait_probe(&self, probe: &mut LiveProbe) -> ExitStatus {
        (&mut probe.exit).await.unwrap_or(ExitStatus::Signal(0))
    }

    async fn kill_probe(&self, probe: &mut LiveProbe) {
        let _ = probe.process.kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut probe.exit).await;
    }

    fn run_command(&self, arm: &Arm) -> oneshot::Receiver<()> {
        let (done_tx, done) = oneshot::channel();
        let _ = self.commands.send(Trigger {
            arm: arm.clone(),
            done: done_tx,
        });
        done
    }

    async fn jail_lookup(&self, name: &str) -> Option<i32> {
        self.registry.jails.jid(name).await
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await
    }

    fn note(&self, note: Note) {
        self.registry.note(self.id, &note);
    }
}

/// Look a jail up off the async threads (the registry lock may be held).
pub async fn lookup(name: &str) -> Result<jail::JailInfo, jail::JailError> {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || jail::lookup(&name, false))
        .await
        .unwrap_or_else(|e| Err(jail::JailError::Invalid(format!("jail lookup failed: {e}"))))
}

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
