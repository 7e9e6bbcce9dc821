//! Durable registrations: the registry's side of the state file ([`super::state`])
//! and of the configuration file ([`super::config`]).
//!
//! - every change marks the state dirty; one writer task saves it (atomically), at
//!   most once per [`SAVE_GAP`] and always once after the last change; at SIGTERM a
//!   final write (after any write in flight) and nothing after it;
//! - registrations not restored yet (or whose restore failed) are kept in every
//!   write as the file had them, so a crash during a restore loses nothing;
//! - at start, the probes of the previous instance are killed (only a process that is
//!   in the jail it was armed in and has the start time recorded: never a reused pid)
//!   and their registrations armed again under the same ids, counts kept; a jail that
//!   is not running is waited for;
//! - the configuration's probes are applied at start and on SIGHUP: new ones added
//!   first, then changed ones replaced (the old one removed just before its
//!   successor, which has its title), then deleted ones removed; unchanged ones are
//!   left armed (same pid). A probe that cannot be armed now waits and retries.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jaildaemon_proto::ProbeSpec;
use tokio::sync::Notify;

use super::registry::{Origin, ProbeRegistry, RegistryError};
use super::state::{SavedProbe, SavedProcess, SavedState, StateFile, STATE_VERSION};
use crate::sys::unix as sys;

/// Least time between two writes (changes in it are written together).
pub const SAVE_GAP: Duration = Duration::from_millis(200);

/// The registry's persistence.
#[derive(Default)]
pub struct Persist {
    file: Mutex<Option<Arc<StateFile>>>,
    dirty: Arc<Notify>,
    /// Set at shutdown once the final state is written: nothing is written after.
    frozen: AtomicBool,
    /// Saved registrations not (yet) made again: written as they were.
    pending: Mutex<BTreeMap<u64, SavedProbe>>,
}

impl ProbeRegistry {
    /// Something worth saving changed.
    pub(super) fn changed(&self) {
        self.persist.dirty.notify_one();
    }

    /// What the state file holds now (`with_processes`: the live probes' identities).
    pub fn snapshot(&self, with_processes: bool) -> SavedState {
        let probes = self.probes.lock().expect("probes lock");
        let mut out: Vec<SavedProbe> = probes
            .values()
            .map(|e| SavedProbe {
                id: e.info.id,
                // a client's probe is kept by its jail's name (a jid does not
                // survive the jail's restart); a declared one as declared
                spec: match e.declared {
                    true => e.spec.clone(),
                    false => ProbeSpec {
                        jail: e.info.jail.clone(),
                        ..e.spec.clone()
                    },
                },
                declared: e.declared,
                triggers: e.info.triggers,
                last_trigger: e.info.last_trigger,
                coalesced: e.info.coalesced,
                process: match (with_processes, e.info.pid, e.start) {
                    (true, Some(pid), Some(start)) => Some(SavedProcess {
                        pid,
                        start,
                        jid: e.info.jid,
                    }),
                    _ => None,
                },
            })
            .collect();
        let pending = self.persist.pending.lock().expect("pending lock");
        out.extend(
            pending
                .values()
                .filter(|p| !probes.contains_key(&p.id))
                .cloned(),
        );
        out.sort_by_key(|p| p.id);
        SavedState {
            version: STATE_VERSION,
            boot: None,
            probes: out,
        }
    }

    /// Use `file` from now on and start its (only) writer.
    pub fn persist_to(self: &Arc<Self>, file: Arc<StateFile>) {
        *self.persist.file.lock().expect("state lock") = Some(file.clone());
        let me = Arc::downgrade(self);
        let dirty = self.persist.dirty.clone();
        tokio::spawn(async move {
            loop {
                dirty.notified().await;
                let Some(reg) = me.upgrade() else { return };
                if reg.persist.frozen.load(Ordering::SeqCst) {
                    return;
                }
                let snap = reg.snapshot(true);
                drop(reg);
                let f = file.clone();
                let res = tokio::task::spawn_blocking(move || f.save(&snap)).await;
                if let Ok(Err(e)) = res {
                    tracing::error!(state = %file.path().display(), error = %e, "could not write the state file");
                }
                // changes meanwhile left a permit: one more write after the gap
                tokio::time::sleep(SAVE_GAP).await;
            }
        });
    }

    /// At shutdown: every registration, no process (they are about to be killed);
    /// after a write in flight, and the last one.
    pub(super) fn save_final(&self) {
        if self.persist.frozen.swap(true, Ordering::SeqCst) {
            return;
        }
        let file = self.persist.file.lock().expect("state lock").clone();
        if let Some(f) = file {
            if let Err(e) = f.save_last(&self.snapshot(false)) {
                tracing::error!(state = %f.path().display(), error = %e, "could not write the state file");
            }
        }
    }

    /// Arm again what a previous instance left in the state file: its probes still
    /// alive are killed first (identity checked), then each registration is made again
    /// with its id and counts; `declared` ones only if the configuration still has them.
    /// Until a registration is made again, the state file keeps it as it was; one that
    /// cannot be armed now waits for its jail and retries.
    pub async fn restore(self: &Arc<Self>, saved: SavedState, declared: &[ProbeSpec]) {
        let procs: Vec<SavedProcess> = saved
            .probes
            .iter()
            .filter_map(|p| p.process.clone())
            .collect();
        let mut todo = Vec::new();
        for p in saved.probes {
            if p.declared && !declared.contains(&p.spec) {
                tracing::info!(probe = p.id, jail = %p.spec.jail, "a declared probe no longer in the configuration is dropped");
                continue;
            }
            if p.spec.respawn == jaildaemon_proto::Respawn::Never && p.triggers > 0 {
                // a single shot that fired (its command ran when the daemon died)
                tracing::info!(probe = p.id, jail = %p.spec.jail, "a single-shot probe that already fired is not armed again");
                continue;
            }
            todo.push(p);
        }
        *self.persist.pending.lock().expect("pending lock") =
            todo.iter().map(|p| (p.id, p.clone())).collect();
        let killed =
            tokio::task::spawn_blocking(move || procs.iter().filter(|p| kill_previous(p)).count())
                .await
                .unwrap_or(0);
        if killed > 0 {
            tracing::info!(killed, "killed the probes of the previous instance");
        }
        let mut tasks = Vec::new();
        for p in todo {
            let me = self.clone();
            tasks.push(tokio::spawn(async move {
                let origin = Origin {
                    id: Some(p.id),
                    declared: p.declared,
                    restored: true,
                    triggers: p.triggers,
                    last_trigger: p.last_trigger,
                    coalesced: p.coalesced,
                    defer: false,
                };
                if me.register_or_defer(p.spec.clone(), origin).await {
                    me.persist
                        .pending
                        .lock()
                        .expect("pending lock")
                        .remove(&p.id);
                    me.changed();
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Register; when the probe cannot be armed now (setup failed, timed out, the
    /// spawner busy, the jail unreadable), register it as waiting for its jail, to be
    /// armed by its supervisor later. Whether it is registered.
    async fn register_or_defer(self: &Arc<Self>, spec: ProbeSpec, origin: Origin) -> bool {
        let e = match self.register_as(spec.clone(), origin.clone()).await {
            Ok(_) => return true,
            Err(e) => e,
        };
        match e {
            RegistryError::Probe(_) | RegistryError::Jail { .. } | RegistryError::NoSuchJail(_) => {
                tracing::warn!(probe = ?origin.id, jail = %spec.jail, title = ?spec.title, error = %e, "a probe could not be armed now; it waits and retries");
                let deferred = Origin {
                    defer: true,
                    ..origin.clone()
                };
                match self.register_as(spec.clone(), deferred).await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::error!(probe = ?origin.id, jail = %spec.jail, title = ?spec.title, error = %e, "a registration could not be made");
                        false
                    }
                }
            }
            e => {
                tracing::error!(probe = ?origin.id, jail = %spec.jail, title = ?spec.title, error = %e, "a registration could not be made");
                false
            }
        }
    }

    /// The configuration declares `declared`: add the new ones, replace the changed
    /// ones (same jail and title), remove those gone, keep the others as they are.
    pub async fn apply_config(self: &Arc<Self>, declared: Vec<ProbeSpec>) {
        let current: Vec<(u64, ProbeSpec)> = self
            .probes
            .lock()
            .expect("probes lock")
            .values()
            .filter(|e| e.declared)
            .map(|e| (e.info.id, e.spec.clone()))
            .collect();
        let kept = current.iter().filter(|(_, s)| declared.contains(s)).count();
        let gone: Vec<(u64, ProbeSpec)> = current
            .iter()
            .filter(|(_, s)| !declared.contains(s))
            .cloned()
            .collect();
        let new: Vec<ProbeSpec> = declared
            .into_iter()
            .filter(|s| !current.iter().any(|(_, c)| c == s))
            .collect();
        let same_key = |a: &ProbeSpec, b: &ProbeSpec| a.jail == b.jail && a.title == b.title;
        let origin = Origin {
            declared: true,
            ..Origin::default()
        };
        // new ones first (at once), then each changed one replaced, then the rest gone
        let mut tasks = Vec::new();
        let mut replaced = Vec::new();
        for spec in new {
            match gone.iter().find(|(_, g)| same_key(g, &spec)) {
                Some((old, _)) => replaced.push((*old, spec)),
                None => {
                    let me = self.clone();
                    let o = origin.clone();
                    tasks.push(tokio::spawn(
                        async move { me.register_or_defer(spec, o).await },
                    ));
                }
            }
        }
        for (old, spec) in replaced.iter().cloned() {
            let me = self.clone();
            let o = origin.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = me.remove(old).await {
                    tracing::warn!(probe = old, error = %e, "could not remove a changed probe");
                }
                me.register_or_defer(spec, o).await
            }));
        }
        let mut added = 0;
        for t in tasks {
            if let Ok(true) = t.await {
                added += 1;
            }
        }
        let mut removed = replaced.len();
        for (id, _) in gone
            .iter()
            .filter(|(id, _)| !replaced.iter().any(|(o, _)| o == id))
        {
            match self.remove(*id).await {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(probe = id, error = %e, "could not remove a probe no longer declared")
                }
            }
        }
        match self.shutting_down() {
            true => tracing::info!(
                kept,
                removed,
                added,
                "configuration not applied in full: shutting down"
            ),
            false => tracing::info!(kept, removed, added, "configuration applied"),
        }
    }
}

/// Kill a previous instance's probe if it is still that process: in the jail it was
/// armed in, with the start time recorded. Returns whether it was killed.
fn kill_previous(p: &SavedProcess) -> bool {
    let in_jail = crate::jail::processes(&p.jid.to_string())
        .map(|m| m.contains(&p.pid))
        .unwrap_or(false);
    if !in_jail {
        tracing::debug!(
            pid = p.pid,
            jid = p.jid,
            "a previous probe is not in its jail any more: not signalled"
        );
        return false;
    }
    match sys::kill_if_started_at(p.pid, p.start) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(pid = p.pid, error = %e, "could not kill a probe of the previous instance");
            false
        }
    }
}
