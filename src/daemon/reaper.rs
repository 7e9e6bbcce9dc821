//! The daemon's only reaper. The daemon is a subreaper, so every descendant that is
//! orphaned (probes, whose helper exits after forking them into the jail, and anything
//! a command leaves behind) becomes its child. One task reaps them all on SIGCHLD with
//! waitpid(-1, WNOHANG) and hands each status to whoever waits for that pid.
//!
//! Identity: a child's pid cannot be reused until its parent reaps it, and only this
//! reaper reaps; so a pid registered here names exactly the process spawned, never a
//! look-alike (probes are never identified by title).

use std::collections::{HashMap, VecDeque};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::sys::unix::{self as sys, ExitStatus};

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

    /// Reap every child that has ended.
    pub fn reap(&self) {
        let mut inner = self.inner.lock().expect("reaper lock");
        while let Some((pid, st)) = sys::reap_one() {
            match inner.waiting.remove(&pid) {
                Some(tx) => {
                    let _ = tx.send(st);
                }
                None => {
                    tracing::debug!(pid, status = %st, "reaped a descendant nobody waits for");
                    inner.unclaimed.insert(pid, (st, Instant::now()));
                    inner.unclaimed_order.push_back(pid);
                    while inner.unclaimed_order.len() > UNCLAIMED_KEEP {
                        if let Some(old) = inner.unclaimed_order.pop_front() {
                            inner.unclaimed.remove(&old);
                        }
                    }
                }
            }
        }
    }
}
