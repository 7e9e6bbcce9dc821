//! Durable registrations: the registry's side of the state file ([`super::state`])
//! and of the configuration file ([`super::config`]).
//!
//! - every change marks the state dirty; a writer task saves it (atomically) a moment
//!   later, so a burst of changes costs one write;
//! - at start, the probes of the previous instance are killed (only a process that is
//!   in the jail it was armed in and has the start time recorded: never a reused pid)
//!   and their registrations armed again under the same ids, counts kept; a jail that
//!   is not running is waited for;
//! - the configuration's probes are applied at start and on SIGHUP: new ones added,
//!   deleted or changed ones removed, unchanged ones left armed (same pid).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jaildaemon_proto::ProbeSpec;
use tokio::sync::Notify;

use super::registry::{Origin, ProbeRegistry};
use super::state::{SavedProbe, SavedProcess, SavedState, StateFile, STATE_VERSION};
use crate::sys::unix as sys;

/// Pause between a change and its write (changes in it are written together).
const SAVE_DELAY: Duration = Duration::from_millis(20);

/// The registry's persistence.
#[derive(Default)]
pub struct Persist {
    file: Mutex<Option<Arc<StateFile>>>,
    dirty: Arc<Notify>,
    /// Set at shutdown once the final state is written: nothing is written after.
    frozen: AtomicBool,
}

impl ProbeRegistry {
    /// Something worth saving changed.
    pub(super) fn changed(&self) {
        self.persist.dirty.notify_one();
    }

    /// What the state file holds now (`with_processes`: the live probes' identities).
    pub fn snapshot(&self, with_processes: bool) -> SavedState {
        let probes = self.probes.lock().expect("probes lock");
        SavedState {
            version: STATE_VERSION,
            probes: probes
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
                .collect(),
        }
    }

    /// Use `file` from now on and start its writer.
    pub fn persist_to(self: &Arc<Self>, file: Arc<StateFile>) {
        *self.persist.file.lock().expect("state lock") = Some(file.clone());
        let me = Arc::downgrade(self);
        let dirty = self.persist.dirty.clone();
        tokio::spawn(async move {
            loop {
                dirty.notified().await;
                tokio::time::sleep(SAVE_DELAY).await;
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
            }
        });
    }

    /// At shutdown: every registration, no process (they are about to be killed).
    pub(super) fn save_final(&self) {
        if self.persist.frozen.swap(true, Ordering::SeqCst) {
            return;
        }
        let file = self.persist.file.lock().expect("state lock").clone();
        if let Some(f) = file {
            if let Err(e) = f.save(&self.snapshot(false)) {
                tracing::error!(state = %f.path().display(), error = %e, "could not write the state file");
            }
        }
    }

    /// Arm again what a previous instance left in the state file: its probes still
    /// alive are killed first (identity checked), then each registration is made again
    /// with its id and counts; `declared` ones only if the configuration still has them.
    pub async fn restore(self: &Arc<Self>, saved: SavedState, declared: &[ProbeSpec]) {
        let procs: Vec<SavedProcess> = saved
            .probes
            .iter()
            .filter_map(|p| p.process.clone())
            .collect();
        let killed =
            tokio::task::spawn_blocking(move || procs.iter().filter(|p| kill_previous(p)).count())
                .await
                .unwrap_or(0);
        if killed > 0 {
            tracing::info!(killed, "killed the probes of the previous instance");
        }
        let mut tasks = Vec::new();
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
            let me = self.clone();
            tasks.push(tokio::spawn(async move {
                let origin = Origin {
                    id: Some(p.id),
                    declared: p.declared,
                    restored: true,
                    triggers: p.triggers,
                    last_trigger: p.last_trigger,
                    coalesced: p.coalesced,
                };
                if let Err(e) = me.register_as(p.spec.clone(), origin).await {
                    tracing::error!(probe = p.id, jail = %p.spec.jail, error = %e, "could not restore a registration");
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// The configuration declares `declared`: add the new, remove those gone or
    /// changed, keep the others as they are.
    pub async fn apply_config(self: &Arc<Self>, declared: Vec<ProbeSpec>) {
        let current: Vec<(u64, ProbeSpec)> = self
            .probes
            .lock()
            .expect("probes lock")
            .values()
            .filter(|e| e.declared)
            .map(|e| (e.info.id, e.spec.clone()))
            .collect();
        let (mut kept, mut removed, mut added) = (0, 0, 0);
        for (id, spec) in &current {
            if declared.contains(spec) {
                kept += 1;
                continue;
            }
            match self.remove(*id).await {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(probe = id, error = %e, "could not remove a probe no longer declared")
                }
            }
        }
        for spec in declared {
            if current.iter().any(|(_, s)| *s == spec) {
                continue;
            }
            let origin = Origin {
                declared: true,
                ..Origin::default()
            };
            match self.register_as(spec.clone(), origin).await {
                Ok(_) => added += 1,
                Err(e) => {
                    tracing::error!(jail = %spec.jail, title = ?spec.title, error = %e, "a declared probe could not be registered")
                }
            }
        }
        tracing::info!(kept, removed, added, "configuration applied");
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
