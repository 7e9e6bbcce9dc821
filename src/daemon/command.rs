//! A probe's command runner: triggers come in; commands start on the host as the
//! token bucket and the cap on running commands allow; a trigger that cannot start is
//! coalesced into the next run (every waiter of that run is told when it ends).
//! A command is `/bin/sh -c COMMAND`, cwd `/`, stdin /dev/null, output into the log.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jaildaemon_proto::{Rate, DEFAULT_MAX_RUNNING, DEFAULT_RATE};
use tokio::sync::{mpsc, oneshot, watch};

use super::reaper::Reaper;
use super::supervisor::Arm;
use crate::sys::unix::{self as sys, ExitStatus};

/// Longest line of command output kept in one log record.
const MAX_LOG_LINE: usize = 4096;
/// How often a command that cannot be started (no descriptors, no processes) is tried.
const COMMAND_START_TRIES: u32 = 5;
/// How long a command's output is still read after it exited (its background
/// children may hold the pipe forever).
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// One trigger: the arm it fired with, and who to tell when its command has ended.
pub struct Trigger {
    pub arm: Arm,
    pub done: oneshot::Sender<()>,
}

/// What the runner reports about itself (shown by `jaildaemon -l`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandNote {
    /// A trigger was folded into a run that had not started yet.
    Coalesced,
    /// Whether a run is pending, and how many commands run.
    Counts { pending: bool, running: u32 },
}

/// What a probe's commands are run with.
pub struct CommandSpec {
    pub id: u64,
    pub command: String,
    /// The jail's name (`JAILDAEMON_JAIL`).
    pub jail: String,
    pub rate: Option<Rate>,
    pub max_running: Option<u32>,
    /// Soft descriptor limit the daemon was started with, restored for commands.
    pub nofile_soft: u64,
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

/// Start the runner of one probe; it ends once the sender is dropped and every
/// command has ended.
pub fn spawn_runner(
    spec: CommandSpec,
    reaper: Arc<Reaper>,
    note: impl Fn(CommandNote) + Send + 'static,
) -> mpsc::UnboundedSender<Trigger> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Trigger>();
    let rate = spec.rate.unwrap_or(DEFAULT_RATE);
    let max_running = spec.max_running.unwrap_or(DEFAULT_MAX_RUNNING);
    let id = spec.id;
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
                    Some(Trigger { arm, done }) => {
                        if !waiters.is_empty() {
                            note(CommandNote::Coalesced);
                        }
                        waiters.push(done);
                        last_arm = Some(arm);
                    }
                    None => open = false,
                },
                Some(()) = ended_rx.recv() => running -= 1,
                _ = tokio::time::sleep(wait) => {}
            }
            if !waiters.is_empty() && running < max_running && bucket.take() {
                let arm = last_arm.clone().expect("a trigger came with its arm");
                match start_command(&spec, &reaper, &arm) {
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
            note(CommandNote::Counts {
                pending: !waiters.is_empty(),
                running,
            });
            if !open && waiters.is_empty() && running == 0 {
                return;
            }
        }
    });
    tx
}

/// Run the command on the host. Resolves when the command has ended.
fn start_command(
    spec: &CommandSpec,
    reaper: &Reaper,
    arm: &Arm,
) -> std::io::Result<oneshot::Receiver<()>> {
    let id = spec.id;
    let (done_tx, done_rx) = oneshot::channel();
    let pipe = sys::pipe();
    let mut cmd = crate::sys::tool::shell(&spec.command);
    cmd.current_dir("/")
        .stdin(Stdio::null())
        .env("JAILDAEMON_JID", arm.jid.to_string())
        .env("JAILDAEMON_JAIL", &spec.jail)
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
    sys::command_nofile(&mut cmd, spec.nofile_soft);
    let started = Instant::now();
    let spawned = reaper.spawn(&mut cmd);
    drop(cmd);
    let (child, rx) = spawned?;
    tracing::info!(probe = id, pid = child.id(), "command started");
    // The output is read on the async runtime, not a blocking thread, and only until
    // a moment after the command has exited: a background child that keeps the pipe
    // open cannot pin a thread or a descriptor of the daemon.
    let (exited_tx, exited_rx) = watch::channel(false);
    if let Some(r) = reader {
        match tokio::net::unix::pipe::Receiver::from_owned_fd(r) {
            Ok(pipe) => {
                tokio::spawn(log_output(id, pipe, exited_rx));
            }
            Err(e) => tracing::warn!(probe = id, error = %e, "command output not logged"),
        }
    }
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
    });
    Ok(done_rx)
}

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
