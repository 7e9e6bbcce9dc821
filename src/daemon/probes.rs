//! The registered probes: spawning them, watching them, running their commands and
//! respawning them (`-r` / `-R`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jaildaemon_proto::{
    ProbeInfo, ProbeSpec, ProbeState, Rate, Respawn, Response, DEFAULT_MAX_RUNNING, DEFAULT_RATE,
};
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
/// How often a command that cannot be started (no descriptors, no processes) is tried.
const COMMAND_START_TRIES: u32 = 5;

/// How long a command's output is still read after it exited (its background
/// children may hold the pipe forever).
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// Log a command's output line by line (at most [`MAX_LOG_LINE`] bytes a line) until
/// EOF, or [`OUTPUT_GRACE`] after the command exited.
async fn log_output(
    id: u64,
    pipe: tokio::net::unix::pipe::Receiver,
    mut exited: watch::Receiver<bool>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut r = tokio::io::BufReader::new(pipe);
    let mut line = Vec::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        line.clear();
        let read = async {
            let mut limited = AsyncReadExt::take(&mut r, MAX_LOG_LINE as u64);
            limited.read_until(b'\n', &mut line).await
        };
        let got = tokio::select! {
            g = read => g,
            _ = exited.changed(), if deadline.is_none() => {
                deadline = Some(tokio::time::Instant::now() + OUTPUT_GRACE);
                continue;
            }
            _ = async { tokio::time::sleep_until(deadline.expect("set")).await }, if deadline.is_some() => {
                tracing::debug!(probe = id, "command exited; its output pipe is closed (a background child may still hold it)");
                return;
            }
        };
        match got {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                tracing::info!(probe = id, "command output: {}", text.trim_end());
            }
        }
    }
}

/// A token bucket of `rate.count` commands refilled over `rate.secs` seconds.
struct TokenBucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(rate: Rate) -> TokenBucket {
        TokenBucket {
            rate,
            tokens: rate.count as f64,
            at: Instant::now(),
        }
    }

    fn per_sec(&self) -> f64 {
        self.rate.count as f64 / self.rate.secs as f64
    }

    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.per_sec())
            .min(self.rate.count as f64);
        self.at = now;
    }

    fn take(&mut self) -> bool {
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn give_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.rate.count as f64);
    }

    /// Time until the next token.
    fn wait(&mut self) -> Duration {
        self.refill();
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec()) + Duration::from_millis(1)
        }
    }
}

struct Entry {
    info: ProbeInfo,
    spec: ProbeSpec,
    cancel: mpsc::Sender<oneshot::Sender<()>>,
}

pub struct Manager {
    reaper: Arc<Reaper>,
    exe: PathBuf,
    /// Most probes held at once (each holds one descriptor: its pidfd).
    capacity: usize,
    /// Soft descriptor limit the daemon was started with, restored for commands.
    nofile_soft: u64,
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
    pub fn new(
        reaper: Arc<Reaper>,
        exe: PathBuf,
        capacity: usize,
        nofile_soft: u64,
    ) -> Arc<Manager> {
        let (shutdown_tx, _) = watch::channel(false);
        Arc::new(Manager {
            reaper,
            exe,
            capacity,
            nofile_soft,
            probes: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            shutdown_tx,
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// The probes with ids above `after`, as many as fit in one frame (`budget` bytes
    /// of JSON), and the `after` of the next page if there are more.
    pub fn list_page(&self, after: u64, budget: usize) -> (Vec<ProbeInfo>, Option<u64>) {
        let probes = self.probes.lock().expect("probes lock");
        let mut out = Vec::new();
        let mut used = 0;
        for (id, e) in probes.range(after.saturating_add(1)..) {
            let size = serde_json::to_vec(&e.info)
                .map(|v| v.len() + 1)
                .unwrap_or(0);
            if !out.is_empty() && used + size > budget {
                return (out, Some(*id - 1));
            }
            used += size;
            out.push(e.info.clone());
        }
        (out, None)
    }

    pub fn count(&self) -> usize {
        self.probes.lock().expect("probes lock").len()
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

    /// Spawn a probe process in jail `arm.jid`; returns it and its exit receiver.
    /// Runs on a blocking thread: at most `probe::SETUP_TIMEOUT`.
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
        };
        tokio::task::spawn_blocking(move || {
            let mut helper_rx = None;
            let spawned = probe::spawn(&exe, &params, |cmd| {
                let (child, rx) = reaper.spawn(cmd)?;
                helper_rx = Some(rx);
                Ok(child)
            })
            .map_err(|e| e.to_string())?;
            // Linux: the probe is named by the pidfd the helper handed over, and it is
            // (or is about to become) our child: only our reaper reaps it. FreeBSD: it
            // is the helper we forked.
            let rx = if spawned.probe.pid == spawned.helper_pid {
                helper_rx.expect("helper watched")
            } else {
                reaper.watch(spawned.probe.pid)
            };
            Ok((spawned.probe, rx))
        })
        .await
        .map_err(|e| format!("probe spawner failed: {e}"))?
    }

    /// Look a jail up off the async threads (the registry lock may be held).
    async fn lookup(name: &str) -> Result<jail::JailInfo, jail::JailError> {
        let name = name.to_string();
        tokio::task::spawn_blocking(move || jail::lookup(&name, false))
            .await
            .unwrap_or_else(|e| Err(jail::JailError::Invalid(format!("jail lookup failed: {e}"))))
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
        if self.count() >= self.capacity {
            return Response::Error {
                message: format!(
                    "jaildaemon holds {} probes, its capacity (one descriptor each; raise the daemon's descriptor limit, e.g. LimitNOFILE)",
                    self.capacity
                ),
            };
        }
        let j = match Self::lookup(&spec.jail).await {
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
            coalesced: 0,
            pending: false,
            rate_count: spec.rate.unwrap_or(DEFAULT_RATE).count,
            rate_secs: spec.rate.unwrap_or(DEFAULT_RATE).secs,
            max_running: spec.max_running.unwrap_or(DEFAULT_MAX_RUNNING),
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
        let triggers = self.clone().dispatcher(id, spec.clone());
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
            let (done_tx, done) = oneshot::channel();
            let _ = triggers.send((arm.clone(), done_tx));
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
            match Self::lookup(&name).await {
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

    /// The probe's command runner: triggers come in; commands start as the token
    /// bucket and the cap on running commands allow; a trigger that cannot start is
    /// coalesced into the next run (every waiter of that run is told when it ends).
    fn dispatcher(
        self: Arc<Self>,
        id: u64,
        spec: ProbeSpec,
    ) -> mpsc::UnboundedSender<(Arm, oneshot::Sender<()>)> {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Arm, oneshot::Sender<()>)>();
        let rate = spec.rate.unwrap_or(DEFAULT_RATE);
        let max_running = spec.max_running.unwrap_or(DEFAULT_MAX_RUNNING);
        tokio::spawn(async move {
            let mut bucket = TokenBucket::new(rate);
            let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<()>();
            let mut running = 0u32;
            let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
            let mut last_arm: Option<Arm> = None;
            let mut failures = 0u32;
            let mut open = true;
            loop {
                let wait = if waiters.is_empty() || running >= max_running {
                    Duration::from_secs(3600)
                } else if failures > 0 {
                    Duration::from_secs(1)
                } else {
                    bucket.wait()
                };
                tokio::select! {
                    m = rx.recv(), if open => match m {
                        Some((arm, w)) => {
                            if !waiters.is_empty() {
                                self.update(id, |i| i.coalesced += 1);
                            }
                            waiters.push(w);
                            last_arm = Some(arm);
                        }
                        None => open = false,
                    },
                    Some(()) = ended_rx.recv() => running -= 1,
                    _ = tokio::time::sleep(wait) => {}
                }
                if !waiters.is_empty() && running < max_running && bucket.take() {
                    let arm = last_arm.clone().expect("a trigger came with its arm");
                    match self.start_command(id, &spec, &arm) {
                        Ok(done) => {
                            failures = 0;
                            running += 1;
                            let run_waiters = std::mem::take(&mut waiters);
                            let ended = ended_tx.clone();
                            tokio::spawn(async move {
                                let _ = done.await;
                                let _ = ended.send(());
                                for w in run_waiters {
                                    let _ = w.send(());
                                }
                            });
                        }
                        Err(e) => {
                            bucket.give_back();
                            failures += 1;
                            if failures >= COMMAND_START_TRIES {
                                tracing::error!(probe = id, error = %e, tries = failures, "the command could not be started; this trigger is dropped");
                                failures = 0;
                                waiters.clear();
                            } else {
                                tracing::warn!(probe = id, error = %e, tries = failures, "the command could not be started; retrying in 1 s");
                            }
                        }
                    }
                }
                let pending = !waiters.is_empty();
                let r = running;
                self.update(id, |i| {
                    i.pending = pending;
                    i.running_commands = r;
                });
                if !open && waiters.is_empty() && running == 0 {
                    return;
                }
            }
        });
        tx
    }

    /// Run the command on the host: `/bin/sh -c COMMAND`, cwd `/`, stdin /dev/null,
    /// output into the log. Resolves when the command has ended.
    fn start_command(
        self: &Arc<Self>,
        id: u64,
        spec: &ProbeSpec,
        arm: &Arm,
    ) -> std::io::Result<oneshot::Receiver<()>> {
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
        sys::command_nofile(&mut cmd, self.nofile_soft);
        let started = Instant::now();
        let spawned = self.reaper.spawn(&mut cmd);
        drop(cmd);
        let rx = match spawned {
            Ok((child, rx)) => {
                tracing::info!(probe = id, pid = child.id(), "command started");
                rx
            }
            Err(e) => return Err(e),
        };
        // The output is read on the async runtime, not a blocking thread, and only
        // until a moment after the command has exited: a background child that keeps
        // the pipe open cannot pin a thread or a descriptor of the daemon.
        let (exited_tx, exited_rx) = watch::channel(false);
        if let Some(r) = reader {
            match tokio::net::unix::pipe::Receiver::from_owned_fd(r) {
                Ok(pipe) => {
                    tokio::spawn(log_output(id, pipe, exited_rx));
                }
                Err(e) => tracing::warn!(probe = id, error = %e, "command output not logged"),
            }
        }
        let me = self.clone();
        tokio::spawn(async move {
            let st = rx.await.unwrap_or(ExitStatus::Signal(0));
            let _ = exited_tx.send(true);
            let ms = started.elapsed().as_millis() as u64;
            if st == ExitStatus::Code(0) {
                tracing::info!(probe = id, status = %st, duration_ms = ms, "command finished");
            } else {
                tracing::warn!(probe = id, status = %st, duration_ms = ms, "command failed");
            }
            let _ = done_tx.send(());
            drop(me);
        });
        Ok(done_rx)
    }
}
