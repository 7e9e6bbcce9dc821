//! Which of the daemon's children may still be signalled by pid (issue #11, item 7).
//!
//! A pid names a child only until its parent reaps it; after that the kernel may hand
//! it to any new process. Where a child has no pidfd (FreeBSD's probe, which is the
//! helper the daemon forked; every helper), the reaper tracks it here from the moment
//! it is spawned until the last reference to it is dropped, and a signal is sent only
//! while the table says [`ChildState::Running`]. The reaper updates and consults the
//! table under the same lock as it calls waitpid, so "reaped, then kill requested"
//! never signals, whatever the order of the threads.
//!
//! Pure bookkeeping, no system call: unit-tested as is.

use std::collections::HashMap;

use crate::sys::unix::ExitStatus;

/// Names one tracked child (one spawn), even after its pid has been reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket(u64);

/// The state of a tracked child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildState {
    /// Not reaped (running, or a zombie): its pid names it and nothing else.
    Running,
    /// Reaped; its status was not handed to a waiter (none, or it stopped waiting).
    Exited(ExitStatus),
    /// Reaped, and its status handed to its waiter.
    Gone,
}

/// What a request to signal a tracked child does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    /// Send the signal: the child is not reaped, so the pid is still its own.
    Send,
    /// Send nothing: the child was reaped and its pid may name another process now.
    Reaped,
    /// Send nothing: the ticket names no tracked child (already released, or a later
    /// child got the pid, which means this one was reaped).
    Unknown,
}

impl SignalAction {
    pub fn sends(self) -> bool {
        self == SignalAction::Send
    }
}

/// The tracked children, by pid.
#[derive(Debug, Default)]
pub struct Children {
    next: u64,
    by_pid: HashMap<i32, (Ticket, ChildState)>,
}

impl Children {
    /// Child `pid` was just spawned (it cannot have been reaped yet: the caller holds
    /// the reaper's lock). An entry left for an earlier child with that pid is
    /// replaced: that one was reaped, or its pid could not have been reused.
    pub fn spawned(&mut self, pid: i32) -> Ticket {
        self.next += 1;
        let ticket = Ticket(self.next);
        if let Some((_, old)) = self.by_pid.insert(pid, (ticket, ChildState::Running)) {
            if old == ChildState::Running {
                tracing::warn!(pid, "a pid tracked as running was spawned again");
            }
        }
        ticket
    }

    /// Child `pid` was reaped with `status`; `handed_over` tells whether its waiter
    /// took the status. A pid that is not tracked is left alone.
    pub fn reaped(&mut self, pid: i32, status: ExitStatus, handed_over: bool) {
        if let Some((_, state)) = self.by_pid.get_mut(&pid) {
            *state = if handed_over {
                ChildState::Gone
            } else {
                ChildState::Exited(status)
            };
        }
    }

    /// The state of the child `ticket` names, if it is still tracked.
    pub fn state(&self, pid: i32, ticket: Ticket) -> Option<ChildState> {
        self.by_pid
            .get(&pid)
            .filter(|(t, _)| *t == ticket)
            .map(|(_, s)| *s)
    }

    /// What a signal to the child `ticket` names does now.
    pub fn signal(&self, pid: i32, ticket: Ticket) -> SignalAction {
        match self.state(pid, ticket) {
            Some(ChildState::Running) => SignalAction::Send,
            Some(ChildState::Exited(_) | ChildState::Gone) => SignalAction::Reaped,
            None => SignalAction::Unknown,
        }
    }

    /// The last reference to the child `ticket` names is gone: forget it (a later
    /// child with the same pid keeps its own entry).
    pub fn release(&mut self, pid: i32, ticket: Ticket) {
        if self.state(pid, ticket).is_some() {
            self.by_pid.remove(&pid);
        }
    }

    /// How many children are tracked.
    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ST: ExitStatus = ExitStatus::Code(97);

    #[test]
    fn running_child_is_signalled() {
        let mut c = Children::default();
        let t = c.spawned(100);
        assert_eq!(c.state(100, t), Some(ChildState::Running));
        assert_eq!(c.signal(100, t), SignalAction::Send);
    }

    #[test]
    fn reaped_then_kill_requested_sends_nothing() {
        let mut c = Children::default();
        let t = c.spawned(100);
        c.reaped(100, ST, true);
        assert_eq!(c.state(100, t), Some(ChildState::Gone));
        assert_eq!(c.signal(100, t), SignalAction::Reaped);
        let t2 = c.spawned(101);
        c.reaped(101, ExitStatus::Signal(9), false);
        assert_eq!(
            c.state(101, t2),
            Some(ChildState::Exited(ExitStatus::Signal(9)))
        );
        assert!(!c.signal(101, t2).sends());
    }

    #[test]
    fn kill_then_reaped_then_kill_again() {
        let mut c = Children::default();
        let t = c.spawned(100);
        assert!(c.signal(100, t).sends());
        c.reaped(100, ST, true);
        assert!(!c.signal(100, t).sends());
    }

    #[test]
    fn reused_pid_is_not_signalled_through_the_old_reference() {
        let mut c = Children::default();
        let old = c.spawned(100);
        c.reaped(100, ST, true);
        // The kernel hands pid 100 to a new child of ours before the old reference is
        // dropped (a respawn while the previous probe is still held).
        let new = c.spawned(100);
        assert_eq!(c.signal(100, old), SignalAction::Unknown);
        assert_eq!(c.signal(100, new), SignalAction::Send);
        // Dropping the old reference does not forget the new child.
        c.release(100, old);
        assert_eq!(c.signal(100, new), SignalAction::Send);
        c.release(100, new);
        assert!(c.is_empty());
    }

    #[test]
    fn released_or_untracked_is_unknown() {
        let mut c = Children::default();
        let t = c.spawned(100);
        c.release(100, t);
        assert_eq!(c.signal(100, t), SignalAction::Unknown);
        assert_eq!(c.len(), 0);
        // Reaping a pid nobody tracks (a command, an orphan) changes nothing.
        c.reaped(200, ST, false);
        assert!(c.is_empty());
    }

    #[test]
    fn release_while_running_then_reaped() {
        let mut c = Children::default();
        let t = c.spawned(100);
        c.release(100, t);
        c.reaped(100, ST, false);
        assert!(c.is_empty());
        assert_eq!(c.signal(100, t), SignalAction::Unknown);
    }
}
