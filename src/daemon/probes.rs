//! The registered probes: spawning them, watching them, running their commands and
//! respawning them (`-r` / `-R`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jaildaemon_proto::{ProbeInfo, ProbeSpec, ProbeState, Respawn, Response};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::reaper::Reaper;
use crate::jail;
use crate::probe::{self, ProbeParams, TRIGGER_EXIT};
use crate::sys::unix::{self as sys, ExitStatus, ProcessRef};

/// How long a respawning probe waits for its jail (by name) to come back.
pub const JAIL_RETURN_GRACE: Duration = Duration::from_secs(30);
/// A probe that lived shorter than this before firing or dying counts toward backoff.
const SHORT_LIFE: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Longest line of command output kept in one log record.
const MAX_LOG_LINE: usize = 4096;

struct Entry {
    info: ProbeInfo,
    spec: ProbeSpec,
    cancel: mpsc::Sender<oneshot::Sender<()>>,
}

pub struct Manager {
    reaper: Arc<Reaper>,
    exe: PathBuf,
    registry: Option<String>,
    probes: Mutex<BTreeMap<u64, Entry>>,
    next_id: AtomicU64,
    shutdown_tx: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a probe is armed with.
#[derive(Clone)]
struct Arm {
    jid: i32,
    title: String,
    uid: Option<u32>,
    gid: Option<u32>,
}

impl Manager {
    pub fn new(reaper: Arc<Reaper>, exe: PathBuf, registry: Option<String>) -> Arc<Manager> {
        let (shutdown_tx, _) = watch::channel(false);
        Arc::new(Manager {
            reaper,
            exe,
            registry,
            probes: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            shutdown_tx,
            tasks: Mutex::new(Vec::new()),
        })
    }

    pub fn list(&self) -> Vec<ProbeInfo> {
        self.probes
            .lock()
            .expect("probes lock")
            .values()
            .map(|e| e.info.clone())
            .collect()
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut ProbeInfo)) {
        if let Some(e) = self.probes.lock().expect("probes lock").get_mut(&id) {
            f(&mut e.info);
        }
    }

    /// A probe removed on request (its process, if any, is already gone).
    fn removed(&self, id: u64, ack: Option<oneshot::Sender<()>>) {
        self.drop_probe(id);
        tracing::info!(probe = id, "probe removed");
        if let Some(a) = ack {
            let _ = a.send(());
        }
    }

    fn drop_probe(&self, id: u64) {
        self.probes.lock().expect("probes lock").remove(&id);
    }

    /// Spawn a probe process in jail `arm.jid`; returns its pid and exit receiver.
    async fn spawn_probe(
        &self,
        arm: &Arm,
    ) -> Result<(ProcessRef, oneshot::Receiver<ExitStatus>), String> {
        let reaper = self.reaper.clone();
        let exe = self.exe.clone();
        let params = ProbeParams {
            jid: arm.jid,
            title: arm.title.clone(),
            uid: arm.uid,
            gid: arm.gid,
            registry: self.registry.clone(),
        };
        tokio::task::spawn_blocking(move || {
            let mut helper_rx = None;
            let spawned = probe::spawn(&exe, &params, |cmd| {
                let (child, rx) = reaper.spawn(cmd)?;
                helper_rx = Some(rx);
                Ok(child)
            })
            .map_err(|e| e.to_string())?;
            // The probe cannot have been reaped by anyone but our reaper, which keeps
            // its pid unused until the status is claimed: the pidfd names it exactly.
            let proc_ref = ProcessRef::new(spawned.pid);
            let rx = if spawned.pid == spawned.helper_pid {
                helper_rx.expect("helper watched")
            } else {
                reaper.watch(spawned.pid)
            };
            Ok((proc_ref, rx))
        })
        .await
        .map_err(|e| format!("probe spawner failed: {e}"))?
    }

    /// Register a probe: it runs in its jail when this returns Ok.
    pub async fn register(self: &Arc<Self>, spec: ProbeSpec) -> Response {
        if let Err(e) = spec.validate() {
            return Response::Error { message: e };
        }
        if *self.shutdown_tx.borrow() {
            return Response::Error {
                message: "jaildaemon is shutting down".into(),
            };
        }
        let j = match jail::lookup(&spec.jail, false) {
            Ok(j) => j,
            Err(jail::JailError::NotFound { .. }) => {
                return Response::Error {
                    message: format!("jail {} does not exist", spec.jail),
                }
            }
            Err(e) => {
                return Response::Error {
                    message: format!("jail {}: {e}", spec.jail),
                }
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let title = spec
            .title
            .clone()
            .unwrap_or_else(|| format!("jaildaemon-probe-{id}"));
        let arm = Arm {
            jid: j.jid,
            title: title.clone(),
            uid: spec.uid,
            gid: spec.gid,
        };
        let (probe, exit_rx) = match self.spawn_probe(&arm).await {
            Ok(x) => x,
            Err(message) => {
                tracing::warn!(jail = %spec.jail, %message, "probe registration failed");
                return Response::Error { message };
            }
        };
        let pid = probe.pid;
        let (cancel_tx, cancel_rx) = mpsc::channel(1);
        let info = ProbeInfo {
            id,
            jail: j.name.clone(),
            jid: j.jid,
            title: title.clone(),
            uid: spec.uid.unwrap_or(0),
            gid: spec.gid.unwrap_or(0),
            respawn: spec.respawn,
            command: spec.command.clone(),
            state: ProbeState::Armed,
            pid: Some(pid),
            triggers: 0,
            last_trigger: None,
            running_commands: 0,
        };
        self.probes.lock().expect("probes lock").insert(
            id,
            Entry {
                info,
                spec: spec.clone(),
                cancel: cancel_tx,
            },
        );
        tracing::info!(probe = id, jail = %j.name, jid = j.jid, pid, pidfd = probe.has_pidfd(), %title, mode = spec.respawn.flag(), uid = spec.uid.unwrap_or(0), "probe registered");
        let me = self.clone();
        let task =
            tokio::spawn(async move { me.supervise(id, arm, probe, exit_rx, cancel_rx).await });
        let mut tasks = self.tasks.lock().expect("tasks lock");
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        Response::Registered {
            id,
            jid: j.jid,
            jail: j.name,
            pid,
            title,
        }
    }

    /// Remove a probe; answers once its process is gone.
    pub async fn remove(&self, id: u64) -> Response {
        let cancel = self
            .probes
            .lock()
            .expect("probes lock")
            .get(&id)
            .map(|e| e.cancel.clone());
        let Some(cancel) = cancel else {
            return Response::Error {
                message: format!("no probe with id {id}"),
            };
        };
        let (tx, rx) = oneshot::channel();
        if cancel.send(tx).await.is_err() {
            return Response::Error {
                message: format!("probe {id} is already going away"),
            };
        }
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(_) => Response::Removed { id },
            Err(_) => Response::Error {
                message: format!("probe {id}: removal timed out"),
            },
        }
    }

    /// Kill every probe and wait for the supervisors to finish.
    pub async fn shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }

    async fn kill_and_wait(probe: &ProcessRef, exit_rx: &mut oneshot::Receiver<ExitStatus>) {
        let _ = probe.signal(libc::SIGKILL);
        let _ = tokio::time::timeout(Duration::from_secs(5), exit_rx).await;
    }

    async fn supervise(
        self: Arc<Self>,
        id: u64,
        mut arm: Arm,
        mut probe: ProcessRef,
        mut exit_rx: oneshot::Receiver<ExitStatus>,
        mut cancel_rx: mpsc::Receiver<oneshot::Sender<()>>,
    ) {
        let mut shutdown = self.shutdown_tx.subscribe();
        let mut armed_at = Instant::now();
        let mut backoff = Duration::ZERO;
        let spec = match self.probes.lock().expect("probes lock").get(&id) {
            Some(e) => e.spec.clone(),
            None => return,
        };
        loop {
            let status = tokio::select! {
                st = &mut exit_rx => st.unwrap_or(ExitStatus::Signal(0)),
                ack = cancel_rx.recv() => {
                    Self::kill_and_wait(&probe, &mut exit_rx).await;
                    return self.removed(id, ack);
                }
                _ = shutdown.changed() => {
                    Self::kill_and_wait(&probe, &mut exit_rx).await;
                    self.drop_probe(id);
                    return;
                }
            };
            if status != ExitStatus::Code(TRIGGER_EXIT) {
                tracing::warn!(probe = id, pid = probe.pid, %status, jail = %spec.jail, "probe lost (not a trigger): no command runs, no respawn");
                self.drop_probe(id);
                return;
            }
            let lived = armed_at.elapsed();
            self.update(id, |i| {
                i.triggers += 1;
                i.last_trigger = Some(now_unix());
                i.state = ProbeState::Running;
                i.pid = None;
            });
            tracing::info!(probe = id, jid = arm.jid, title = %arm.title, "probe triggered");
            let done = self.start_command(id, &spec, &arm);
            match spec.respawn {
                Respawn::Never => {
                    let _ = done.await;
                    self.drop_probe(id);
                    return;
                }
                Respawn::AfterCommand => {
                    tokio::select! {
                        _ = done => {}
                        ack = cancel_rx.recv() => return self.removed(id, ack),
                        _ = shutdown.changed() => { self.drop_probe(id); return; }
                    }
                }
                Respawn::Immediately => {}
            }
            backoff = if lived < SHORT_LIFE {
                (backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX)
            } else {
                Duration::ZERO
            };
            if !backoff.is_zero() {
                tracing::info!(
                    probe = id,
                    backoff_ms = backoff.as_millis() as u64,
                    "probe fired quickly; delaying respawn"
                );
            }
            let rearmed = tokio::select! {
                r = self.rearm(id, &spec, &mut arm, backoff) => r,
                ack = cancel_rx.recv() => return self.removed(id, ack),
                _ = shutdown.changed() => { self.drop_probe(id); return; }
            };
            match rearmed {
                Some((p, rx)) => {
                    probe = p;
                    exit_rx = rx;
                    armed_at = Instant::now();
                }
                None => {
                    self.drop_probe(id);
                    return;
                }
            }
        }
    }

    /// Find the jail again by name (it may have been restarted with a new jid) and
    /// spawn a new probe in it.
    async fn rearm(
        &self,
        id: u64,
        spec: &ProbeSpec,
        arm: &mut Arm,
        delay: Duration,
    ) -> Option<(ProcessRef, oneshot::Receiver<ExitStatus>)> {
        tokio::time::sleep(delay).await;
        let name = self
            .probes
            .lock()
            .expect("probes lock")
            .get(&id)
            .map(|e| e.info.jail.clone())?;
        let deadline = Instant::now() + JAIL_RETURN_GRACE;
        let mut failures = 0;
        loop {
            match jail::lookup(&name, false) {
                Ok(j) => {
                    if j.jid != arm.jid {
                        tracing::info!(probe = id, jail = %name, old_jid = arm.jid, new_jid = j.jid, "jail came back with a new jid; re-arming there");
                    }
                    arm.jid = j.jid;
                    match self.spawn_probe(arm).await {
                        Ok((probe, rx)) => {
                            self.update(id, |i| {
                                i.jid = arm.jid;
                                i.pid = Some(probe.pid);
                                i.state = ProbeState::Armed;
                            });
                            tracing::info!(
                                probe = id,
                                pid = probe.pid,
                                pidfd = probe.has_pidfd(),
                                jid = arm.jid,
                                mode = spec.respawn.flag(),
                                "probe respawned"
                            );
                            return Some((probe, rx));
                        }
                        Err(e) => {
                            failures += 1;
                            tracing::warn!(probe = id, jail = %name, error = %e, failures, "respawning the probe failed");
                            if failures >= 3 {
                                tracing::warn!(probe = id, jail = %name, "probe dropped after 3 failed respawns");
                                return None;
                            }
                        }
                    }
                }
                Err(_) => {
                    self.update(id, |i| {
                        i.state = ProbeState::WaitingForJail;
                        i.pid = None;
                    });
                }
            }
            if Instant::now() >= deadline {
                tracing::warn!(probe = id, jail = %name, grace_s = JAIL_RETURN_GRACE.as_secs(), "probe dropped: its jail is gone and did not come back");
                return None;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Run the command on the host: `/bin/sh -c COMMAND`, cwd `/`, stdin /dev/null,
    /// output into the log. Resolves when the command has ended.
    fn start_command(
        self: &Arc<Self>,
        id: u64,
        spec: &ProbeSpec,
        arm: &Arm,
    ) -> oneshot::Receiver<()> {
        let (done_tx, done_rx) = oneshot::channel();
        let jail_name = self
            .probes
            .lock()
            .expect("probes lock")
            .get(&id)
            .map(|e| e.info.jail.clone())
            .unwrap_or_default();
        let pipe = sys::pipe();
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(&spec.command)
            .current_dir("/")
            .stdin(Stdio::null())
            .env("JAILDAEMON_JID", arm.jid.to_string())
            .env("JAILDAEMON_JAIL", &jail_name)
            .env("JAILDAEMON_TITLE", &arm.title)
            .env("JAILDAEMON_PROBE_ID", id.to_string());
        let reader = match pipe {
            Ok((r, w)) => {
                match w.try_clone() {
                    Ok(w2) => {
                        cmd.stdout(Stdio::from(w)).stderr(Stdio::from(w2));
                    }
                    Err(_) => {
                        cmd.stdout(Stdio::null()).stderr(Stdio::null());
                    }
                }
                Some(r)
            }
            Err(_) => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
                None
            }
        };
        let started = Instant::now();
        let spawned = self.reaper.spawn(&mut cmd);
        drop(cmd);
        let rx = match spawned {
            Ok((child, rx)) => {
                tracing::info!(probe = id, pid = child.id(), "command started");
                rx
            }
            Err(e) => {
                tracing::error!(probe = id, error = %e, "command could not be started");
                let _ = done_tx.send(());
                return done_rx;
            }
        };
        self.update(id, |i| i.running_commands += 1);
        if let Some(r) = reader {
            tokio::task::spawn_blocking(move || {
                let mut br = BufReader::new(std::fs::File::from(r));
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match br
                        .by_ref()
                        .take(MAX_LOG_LINE as u64)
                        .read_until(b'\n', &mut line)
                    {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let text = String::from_utf8_lossy(&line);
                            tracing::info!(probe = id, "command output: {}", text.trim_end());
                        }
                    }
                }
            });
        }
        let me = self.clone();
        tokio::spawn(async move {
            let st = rx.await.unwrap_or(ExitStatus::Signal(0));
            let ms = started.elapsed().as_millis() as u64;
            if st == ExitStatus::Code(0) {
                tracing::info!(probe = id, status = %st, duration_ms = ms, "command finished");
            } else {
                tracing::warn!(probe = id, status = %st, duration_ms = ms, "command failed");
            }
            me.update(id, |i| {
                i.running_commands = i.running_commands.saturating_sub(1)
            });
            let _ = done_tx.send(());
        });
        done_rx
    }
}
