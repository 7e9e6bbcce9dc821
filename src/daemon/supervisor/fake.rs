//! A recording fake [`ProbeHost`] for the supervisor's tests: a virtual clock,
//! scripted probe lives, scripted jail lookups and spawn failures, commands that end
//! at once or when the test says so. No root, no jail, no process.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

/// What the fake saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ev {
    /// A probe spawned in jail `jid`.
    Spawn(i32),
    SpawnFailed(i32),
    /// A trigger handed to the command runner, from a probe in jail `jid`.
    Command(i32),
    CommandEnded,
    Kill,
    Sleep(Duration),
    Note(Note),
}

/// How a probe ends.
#[derive(Debug, Clone, Copy)]
pub(super) enum Life {
    /// SIGHUP from its jail after this long.
    Trigger(Duration),
    /// Ends with this status (not a trigger) after this long.
    Dies(Duration, ExitStatus),
    Forever,
}

pub(super) struct FakeProbe {
    pid: i32,
    life: Life,
}

#[derive(Default)]
pub(super) struct Script {
    /// The lives of the probes spawned, in order (then `Forever`).
    pub(super) lives: VecDeque<Life>,
    /// Whether each spawn attempt fails, in order (then success).
    pub(super) spawn_fails: VecDeque<bool>,
    /// Lookup answers, in order (then `jail`).
    pub(super) lookups: VecDeque<Option<i32>>,
    /// The jail's jid once the scripted lookups are used up.
    pub(super) jail: Option<i32>,
    /// Commands end as soon as they are run.
    pub(super) commands_end_at_once: bool,
}

pub(super) struct Fake {
    base: Instant,
    clock: Mutex<Duration>,
    log: Mutex<Vec<Ev>>,
    script: Mutex<Script>,
    running: Mutex<Vec<oneshot::Sender<()>>>,
    next_pid: AtomicI32,
}

impl Fake {
    pub(super) fn new(script: Script) -> Arc<Fake> {
        Arc::new(Fake {
            base: Instant::now(),
            clock: Mutex::new(Duration::ZERO),
            log: Mutex::new(Vec::new()),
            script: Mutex::new(script),
            running: Mutex::new(Vec::new()),
            next_pid: AtomicI32::new(100),
        })
    }

    pub(super) fn record(&self, ev: Ev) {
        self.log.lock().unwrap().push(ev);
    }

    pub(super) fn log(&self) -> Vec<Ev> {
        self.log.lock().unwrap().clone()
    }

    pub(super) fn advance(&self, d: Duration) {
        *self.clock.lock().unwrap() += d;
    }

    pub(super) fn elapsed(&self) -> Duration {
        *self.clock.lock().unwrap()
    }

    pub(super) fn probe(&self, life: Life) -> FakeProbe {
        FakeProbe {
            pid: self.next_pid.fetch_add(1, Ordering::Relaxed),
            life,
        }
    }

    /// End every command running.
    pub(super) fn finish_commands(&self) {
        for tx in self.running.lock().unwrap().drain(..) {
            self.record(Ev::CommandEnded);
            let _ = tx.send(());
        }
    }

    pub(super) fn sleeps(&self) -> Vec<Duration> {
        self.log()
            .into_iter()
            .filter_map(|e| match e {
                Ev::Sleep(d) => Some(d),
                _ => None,
            })
            .collect()
    }
}

impl ProbeHost for Arc<Fake> {
    type Probe = FakeProbe;

    async fn spawn_probe(&self, arm: &Arm) -> Result<FakeProbe, ProbeError> {
        let (fails, life) = {
            let mut s = self.script.lock().unwrap();
            let fails = s.spawn_fails.pop_front().unwrap_or(false);
            let life = if fails {
                Life::Forever
            } else {
                s.lives.pop_front().unwrap_or(Life::Forever)
            };
            (fails, life)
        };
        if fails {
            self.record(Ev::SpawnFailed(arm.jid));
            return Err(ProbeError::Setup {
                jid: arm.jid,
                message: "injected failure".into(),
            });
        }
        self.record(Ev::Spawn(arm.jid));
        Ok(self.probe(life))
    }

    fn probe_pid(&self, probe: &FakeProbe) -> i32 {
        probe.pid
    }

    async fn wait_probe(&self, probe: &mut FakeProbe) -> ExitStatus {
        match probe.life {
            Life::Trigger(after) => {
                self.advance(after);
                ExitStatus::Code(TRIGGER_EXIT)
            }
            Life::Dies(after, st) => {
                self.advance(after);
                st
            }
            Life::Forever => std::future::pending().await,
        }
    }

    async fn kill_probe(&self, _probe: &mut FakeProbe) {
        self.record(Ev::Kill);
    }

    fn run_command(&self, arm: &Arm) -> oneshot::Receiver<()> {
        self.record(Ev::Command(arm.jid));
        let (tx, rx) = oneshot::channel();
        self.running.lock().unwrap().push(tx);
        if self.script.lock().unwrap().commands_end_at_once {
            self.finish_commands();
        }
        rx
    }

    async fn jail_lookup(&self, _name: &str) -> Option<i32> {
        let mut s = self.script.lock().unwrap();
        s.lookups.pop_front().unwrap_or(s.jail)
    }

    fn now(&self) -> Instant {
        self.base + self.elapsed()
    }

    async fn sleep(&self, d: Duration) {
        self.record(Ev::Sleep(d));
        self.advance(d);
    }

    fn note(&self, note: Note) {
        self.record(Ev::Note(note));
    }
}
