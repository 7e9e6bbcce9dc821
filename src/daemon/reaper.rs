//! The daemon's only reaper. The daemon is a subreaper, so every descendant that is
//! orphaned (probes, whose helper exits after forking them into the jail, and anything
//! a command leaves behind) becomes its child. One task reaps them all on SIGCHLD with
//! waitpid(-1, WNOHANG) and hands each status to whoever waits for that pid.
//!
//! Identity: a child's pid cannot be reused until its parent reaps it, and only this
//! reaper reaps; so a pid registered here names exactly the process spawned, never a
//! look-alike (probes are never identified by title). A child known by its pid alone
//! ([`Reaper::spawn_tracked`]: every helper, and so FreeBSD's probes) is signalled only
//! through the reaper: under the lock it holds while it calls waitpid, and only while
//! [`Children`] says the pid is not reaped.

use std::collections::{HashMap, VecDeque};
use std::os::raw::c_int;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::children::{Children, SignalAction, Ticket};
use crate::sys::unix::{self as sys, ExitStatus, ProcessRef, ReapGate};

/// How many statuses of pids nobody waits for (yet) are kept, and for how long: only
/// the moment between a helper's exit and the daemon's `watch` of the probe it forked
/// needs them, and a pid may be reused once reaped.
const UNCLAIMED_KEEP: usize = 4096;
const UNCLAIMED_FOR: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Inner {
    waiting: HashMap<i32, oneshot::Sender<ExitStatus>>,
    unclaimed: HashMap<i32, (ExitStatus, Instant)>,
    unclaimed_order: VecDeque<i32>,
    children: Children,
}

#[derive(Default)]
pub struct Reaper {
    inner: Mutex<Inner>,
}

impl Reaper {
    /// Spawn `cmd` and register its pid before any SIGCHLD for it can be handled.
    pub fn spawn(
        &self,
        cmd: &mut Command,
    ) -> std::io::Result<(Child, oneshot::Receiver<ExitStatus>)> {
        let mut inner = self.inner.lock().expect("reaper lock");
        let child = cmd.spawn()?;
        let (tx, rx) = oneshot::channel();
        inner.waiting.insert(child.id() as i32, tx);
        Ok((child, rx))
    }

    /// Spawn `cmd` as [`Reaper::spawn`] does, and return it as a reference whose
    /// signals go through this reaper: none reaches the pid once it has been reaped.
    pub fn spawn_tracked(
        self: &Arc<Self>,
        cmd: &mut Command,
    ) -> std::io::Result<(ProcessRef, oneshot::Receiver<ExitStatus>)> {
        let mut inner = self.lock();
        let child = cmd.spawn()?;
        let pid = child.id() as i32;
        let (tx, rx) = oneshot::channel();
        inner.waiting.insert(pid, tx);
        let ticket = inner.children.spawned(pid);
        drop(inner);
        let gate = Tracked {
            reaper: self.clone(),
            pid,
            ticket,
        };
        Ok((ProcessRef::gated(pid, Box::new(gate)), rx))
    }

    /// Send `sig` to the tracked child `ticket` with `send`, unless it has been
    /// reaped: decided and sent under the reaping lock.
    fn signal_tracked(
        &self,
        pid: i32,
        ticket: Ticket,
        sig: c_int,
        send: impl FnOnce(i32, c_int) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let inner = self.lock();
        match inner.children.signal(pid, ticket) {
            SignalAction::Send => send(pid, sig),
            action => {
                tracing::debug!(pid, sig, ?action, "not signalled: the child was reaped");
                Ok(())
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("reaper lock")
    }

    /// Wait for a descendant that is (or will become) our child.
    pub fn watch(&self, pid: i32) -> oneshot::Receiver<ExitStatus> {
        let mut inner = self.inner.lock().expect("reaper lock");
        let (tx, rx) = oneshot::channel();
        if let Some((st, when)) = inner
            .unclaimed
            .remove(&pid)
            .filter(|(_, when)| when.elapsed() < UNCLAIMED_FOR)
        {
            inner.unclaimed_order.retain(|p| *p != pid);
            tracing::debug!(pid, status = %st, reaped_ms = when.elapsed().as_millis() as u64, "claimed an early exit");
            let _ = tx.send(st);
        } else {
            inner.waiting.insert(pid, tx);
        }
        rx
    }

    /// Reap every child that has ended. The lock is held across waitpid and the
    /// record of the exit, so no tracked child is signalled in between.
    pub fn reap(&self) {
        let mut inner = self.lock();
        while let Some((pid, st)) = sys::reap_one() {
            inner.record(pid, st);
        }
    }
}

impl Inner {
    /// Child `pid` has been reaped with `st` (the caller holds the lock it reaped under).
    fn record(&mut self, pid: i32, st: ExitStatus) {
        let handed_over = match self.waiting.remove(&pid) {
            Some(tx) => tx.send(st).is_ok(),
            None => {
                tracing::debug!(pid, status = %st, "reaped a descendant nobody waits for");
                self.unclaimed.insert(pid, (st, Instant::now()));
                self.unclaimed_order.push_back(pid);
                while self.unclaimed_order.len() > UNCLAIMED_KEEP {
                    if let Some(old) = self.unclaimed_order.pop_front() {
                        self.unclaimed.remove(&old);
                    }
                }
                false
            }
        };
        self.children.reaped(pid, st, handed_over);
    }
}

/// A tracked child's gate: signals go through its reaper; dropping it (with the
/// [`ProcessRef`]) forgets the child.
#[derive(Debug)]
struct Tracked {
    reaper: Arc<Reaper>,
    pid: i32,
    ticket: Ticket,
}

impl ReapGate for Tracked {
    fn signal_unless_reaped(&self, sig: c_int) -> std::io::Result<()> {
        self.reaper
            .signal_tracked(self.pid, self.ticket, sig, sys::signal)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut inner = self
            .reaper
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.children.release(self.pid, self.ticket);
    }
}

impl std::fmt::Debug for Reaper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reaper").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
