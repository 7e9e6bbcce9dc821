//! The registered probes: registration, listing, removal and shutdown. Each probe is
//! run by its own supervisor task ([`super::supervisor`]), which owns its spec; the
//! registry keeps what `jaildaemon -l` shows and the way to cancel each probe.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jaildaemon_proto::{ProbeInfo, ProbeSpec, ProbeState, DEFAULT_MAX_RUNNING, DEFAULT_RATE};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::command::{self, CommandNote, CommandSpec};
use super::reaper::Reaper;
use super::supervisor::{self, Arm, Control, End, Live, Note, Supervisor};
use crate::jail;
use crate::probe::Spawner;
use crate::sys::unix as sys;

mod error;
pub use error::RegistryError;

/// A probe that runs in its jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub id: u64,
    pub jid: i32,
    pub jail: String,
    pub pid: i32,
    pub title: String,
}

pub(super) struct Entry {
    pub(super) info: ProbeInfo,
    pub(super) spec: ProbeSpec,
    /// Declared in the configuration file (reloaded with it).
    pub(super) declared: bool,
    /// The live probe's start time ([`sys::process_start`]), with `info.pid`.
    pub(super) start: Option<u64>,
    cancel: mpsc::Sender<oneshot::Sender<()>>,
}

/// Where a registration comes from, and what it carries over.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The id to keep (a registration restored from the state file).
    pub id: Option<u64>,
    /// Declared in the configuration file.
    pub declared: bool,
    /// Restored: a missing jail is waited for, as with `-w`.
    pub restored: bool,
    pub triggers: u64,
    pub last_trigger: Option<u64>,
    pub coalesced: u64,
    /// Registered waiting, without trying to arm it now (a retry after a failed
    /// setup): its supervisor arms it when it can.
    pub defer: bool,
}

/// Whether `jail` is a jid: a waiting registration names its jail (jids are reused).
pub fn is_jid(jail: &str) -> bool {
    !jail.is_empty() && jail.bytes().all(|b| b.is_ascii_digit())
}

pub struct ProbeRegistry {
    reaper: Arc<Reaper>,
    /// Sets probes up (on Linux a process of its own, started on first use).
    spawner: Arc<Spawner>,
    /// Most probes held at once (each holds one descriptor: its pidfd).
    capacity: usize,
    /// Soft descriptor limit the daemon was started with, restored for commands.
    nofile_soft: u64,
    pub(super) probes: Mutex<BTreeMap<u64, Entry>>,
    next_id: AtomicU64,
    /// The state file and its writer ([`super::durable`]).
    pub(super) persist: super::durable::Persist,
    shutdown_tx: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The shared look at the jails for waiting probes.
    pub(super) jails: super::jailwatch::JailWatch,
    /// Registrations in progress (shutdown waits for them: one that ends after the
    /// shutdown began kills its own probe).
    registering: Arc<AtomicUsize>,
}

/// Counts a registration in progress while alive.
struct InProgress(Arc<AtomicUsize>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl ProbeRegistry {
    pub fn new(
        reaper: Arc<Reaper>,
        exe: PathBuf,
        capacity: usize,
        nofile_soft: u64,
    ) -> Arc<ProbeRegistry> {
        let (shutdown_tx, _) = watch::channel(false);
        Arc::new(ProbeRegistry {
            reaper,
            spawner: Arc::new(Spawner::new(exe)),
            capacity,
            nofile_soft,
            probes: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            persist: super::durable::Persist::default(),
            shutdown_tx,
            tasks: Mutex::new(Vec::new()),
            jails: super::jailwatch::JailWatch::default(),
            registering: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The probes with ids above `after`, as many as fit in `budget` bytes of JSON,
    /// and the `after` of the next page if there are more.
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
        self.update_entry(id, |e| f(&mut e.info));
    }

    fn update_entry(&self, id: u64, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.probes.lock().expect("probes lock").get_mut(&id) {
            f(e);
        }
    }

    /// Record a supervisor's state change.
    pub fn note(&self, id: u64, note: &Note) {
        match *note {
            Note::Triggered => self.update_entry(id, |e| {
                e.info.triggers += 1;
                e.info.last_trigger = Some(now_unix());
                e.info.state = ProbeState::Running;
                e.info.pid = None;
                e.start = None;
            }),
            Note::Respawned { jid, pid } => {
                // our own child, alive: its start time names it across a restart
                let start = sys::process_start(pid).ok().flatten();
                self.update_entry(id, |e| {
                    e.info.jid = jid;
                    e.info.pid = Some(pid);
                    e.info.state = ProbeState::Armed;
                    e.start = start;
                })
            }
            Note::WaitingForJail => {
                let mut changed = false;
                self.update_entry(id, |e| {
                    changed = e.info.state != ProbeState::WaitingForJail;
                    e.info.state = ProbeState::WaitingForJail;
                    e.info.pid = None;
                    e.start = None;
                });
                if !changed {
                    return;
                }
            }
        }
        self.changed();
    }

    fn command_note(&self, id: u64, note: CommandNote) {
        match note {
            CommandNote::Coalesced => self.update(id, |i| i.coalesced += 1),
            CommandNote::Counts { pending, running } => self.update(id, |i| {
                i.pending = pending;
                i.running_commands = running;
            }),
        }
    }

    fn drop_probe(&self, id: u64) {
        self.probes.lock().expect("probes lock").remove(&id);
        self.changed();
    }

    /// A supervisor ended: the probe leaves the registry.
    fn ended(&self, id: u64, end: End) {
        self.drop_probe(id);
        if let End::Removed(ack) = end {
            tracing::info!(probe = id, "probe removed");
            if let Some(a) = ack {
                let _ = a.send(());
            }
        }
    }

    /// Register a probe: it runs in its jail when this returns Ok (or, with `-w` and
    /// no such jail yet, it waits for the jail).
    pub async fn register(self: &Arc<Self>, spec: ProbeSpec) -> Result<Registered, RegistryError> {
        self.register_as(spec, Origin::default()).await
    }

    /// The id of a probe titled `title` in jail `jail`, if there is one.
    fn title_taken(&self, jail: &str, title: &str) -> Option<u64> {
        self.probes
            .lock()
            .expect("probes lock")
            .values()
            .find(|e| e.info.title == title && (e.info.jail == jail || e.spec.jail == jail))
            .map(|e| e.info.id)
    }

    /// Register a probe from `origin` (a client, the configuration file, the state file).
    pub async fn register_as(
        self: &Arc<Self>,
        spec: ProbeSpec,
        origin: Origin,
    ) -> Result<Registered, RegistryError> {
        spec.validate().map_err(RegistryError::Invalid)?;
        self.registering.fetch_add(1, Ordering::SeqCst);
        let _in_progress = InProgress(self.registering.clone());
        if *self.shutdown_tx.borrow() {
            return Err(RegistryError::ShuttingDown);
        }
        if self.count() >= self.capacity {
            return Err(RegistryError::Full(self.capacity));
        }
        if (spec.wait || origin.declared) && is_jid(&spec.jail) {
            return Err(RegistryError::Invalid(format!(
                "jail {}: a probe that waits for its jail names it by name, not by jid (jids are reused)",
                spec.jail
            )));
        }
        // restored, declared or deferred: a missing jail is waited for (at first)
        let wait_first = spec.wait || origin.restored || origin.declared || origin.defer;
        let looked = match origin.defer {
            true => Err(jail::JailError::NotFound {
                jail: spec.jail.clone(),
            }),
            false => supervisor::lookup(&spec.jail).await,
        };
        let found = match looked {
            Ok(j) => Some(j),
            Err(jail::JailError::NotFound { .. }) if wait_first => None,
            Err(jail::JailError::NotFound { .. }) => {
                return Err(RegistryError::NoSuchJail(spec.jail.clone()))
            }
            Err(source) => {
                return Err(RegistryError::Jail {
                    jail: spec.jail.clone(),
                    source,
                })
            }
        };
        let (jid, jail_name) = match &found {
            Some(j) => (j.jid, j.name.clone()),
            None => (0, spec.jail.clone()),
        };
        let dup = |title: &str| match self.title_taken(&jail_name, title) {
            Some(id) => Err(RegistryError::DuplicateTitle {
                jail: jail_name.clone(),
                title: title.to_string(),
                id,
            }),
            None => Ok(()),
        };
        if let Some(t) = &spec.title {
            dup(t)?;
        }
        let id = match origin.id {
            Some(id) => {
                self.next_id.fetch_max(id + 1, Ordering::Relaxed);
                id
            }
            None => self.next_id.fetch_add(1, Ordering::Relaxed),
        };
        let title = spec
            .title
            .clone()
            .unwrap_or_else(|| format!("jaildaemon-probe-{id}"));
        let arm = Arm {
            jid,
            title: title.clone(),
            uid: spec.uid,
            gid: spec.gid,
        };
        let probe = match found {
            None => None,
            Some(_) => match supervisor::spawn_probe(&self.reaper, &self.spawner, &arm).await {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(jail = %spec.jail, message = %e, "probe registration failed");
                    return Err(e.into());
                }
            },
        };
        let pid = probe.as_ref().map(|p| p.process.pid);
        let (cancel_tx, cancel_rx) = mpsc::channel(1);
        let rate = spec.rate.unwrap_or(DEFAULT_RATE);
        let info = ProbeInfo {
            id,
            jail: jail_name.clone(),
            jid,
            title: title.clone(),
            uid: spec.uid.unwrap_or(0),
            gid: spec.gid.unwrap_or(0),
            respawn: spec.respawn,
            command: spec.command.clone(),
            state: match pid {
                Some(_) => ProbeState::Armed,
                None => ProbeState::WaitingForJail,
            },
            pid,
            triggers: origin.triggers,
            last_trigger: origin.last_trigger,
            running_commands: 0,
            coalesced: origin.coalesced,
            pending: false,
            rate_count: rate.count,
            rate_secs: rate.secs,
            max_running: spec.max_running.unwrap_or(DEFAULT_MAX_RUNNING),
        };
        // checked again with the insert: a registration of the same title that raced
        // this one wins, and this probe goes
        let raced = {
            let mut probes = self.probes.lock().expect("probes lock");
            let other = probes
                .values()
                .find(|e| {
                    e.info.title == title && (e.info.jail == jail_name || e.spec.jail == jail_name)
                })
                .map(|e| e.info.id);
            let late = *self.shutdown_tx.borrow();
            if other.is_none() && !late {
                probes.insert(
                    id,
                    Entry {
                        info,
                        spec: spec.clone(),
                        declared: origin.declared,
                        start: pid.and_then(|p| sys::process_start(p).ok().flatten()),
                        cancel: cancel_tx,
                    },
                );
            }
            match late {
                true => Some(None),
                false => other.map(Some),
            }
        };
        if let Some(other) = raced {
            if let Some(mut p) = probe {
                let _ = p.process.kill();
                let _ = tokio::time::timeout(Duration::from_secs(5), &mut p.exit).await;
            }
            let Some(other) = other else {
                return Err(RegistryError::ShuttingDown);
            };
            return Err(RegistryError::DuplicateTitle {
                jail: jail_name,
                title,
                id: other,
            });
        }
        self.changed();
        match &probe {
            Some(p) => {
                tracing::info!(probe = id, jail = %jail_name, jid, pid, pidfd = p.process.has_pidfd(), %title, mode = spec.respawn.flag(), uid = spec.uid.unwrap_or(0), declared = origin.declared, restored = origin.restored, "probe registered")
            }
            None => {
                tracing::info!(probe = id, jail = %jail_name, %title, mode = spec.respawn.flag(), declared = origin.declared, restored = origin.restored, "probe registered; waiting for its jail")
            }
        }
        let me = self.clone();
        let commands = command::spawn_runner(
            CommandSpec {
                id,
                command: spec.command.clone(),
                jail: jail_name.clone(),
                rate: spec.rate,
                max_running: spec.max_running,
                nofile_soft: self.nofile_soft,
            },
            self.reaper.clone(),
            move |n| me.command_note(id, n),
        );
        let host = Live {
            id,
            registry: self.clone(),
            reaper: self.reaper.clone(),
            spawner: self.spawner.clone(),
            commands,
        };
        let wait = spec.wait;
        let sup = Supervisor {
            id,
            spec,
            jail: jail_name.clone(),
            arm,
            wait,
            wait_first,
        };
        let mut ctl = Control {
            cancel: cancel_rx,
            shutdown: self.shutdown_tx.subscribe(),
        };
        let task = tokio::spawn(async move {
            let end = supervisor::run(&host, sup, probe, &mut ctl).await;
            host.registry.ended(id, end);
        });
        let mut tasks = self.tasks.lock().expect("tasks lock");
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        Ok(Registered {
            id,
            jid,
            jail: jail_name,
            pid: pid.unwrap_or(0),
            title,
        })
    }

    /// Remove a probe; returns once its process is gone.
    pub async fn remove(&self, id: u64) -> Result<(), RegistryError> {
        let cancel = self
            .probes
            .lock()
            .expect("probes lock")
            .get(&id)
            .map(|e| e.cancel.clone())
            .ok_or(RegistryError::NoSuchProbe(id))?;
        let (tx, rx) = oneshot::channel();
        if cancel.send(tx).await.is_err() {
            return Err(RegistryError::GoingAway(id));
        }
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(_) => Ok(()),
            Err(_) => Err(RegistryError::RemoveTimeout(id)),
        }
    }

    /// Whether the shutdown began.
    pub fn shutting_down(&self) -> bool {
        *self.shutdown_tx.borrow()
    }

    /// Start the probe spawner ahead of the first registration.
    pub fn start_spawner(&self) {
        supervisor::start_spawner(&self.reaper, &self.spawner);
    }

    /// The probe spawner's pid, while one runs (Linux).
    pub fn spawner_pid(&self) -> Option<i32> {
        self.spawner.pid()
    }

    /// Kill every probe and wait for the supervisors to finish. The state file keeps
    /// every registration (without processes) for the next start.
    pub async fn shutdown(&self) {
        self.save_final();
        let _ = self.shutdown_tx.send(true);
        // registrations under way (a reload's) end now: each kills its own probe
        let _ = tokio::time::timeout(Duration::from_secs(15), async {
            while self.registering.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        self.spawner.stop();
    }
}
