//! `rcboot` and `rcshutdown`: the jails with `boot=on` (and the jails they `depend`
//! on), started by priority and dependencies, stopped in the mirror order; a failing
//! jail does not stop the others, only the jails depending on it.
//!
//! [`plan`] decides the order; [`Manager::boot_run`] runs it, one jail at a time in
//! this process, or with up to `jobs` jails at once, each in a child process (a start
//! forks the jail's processes, which a multi-threaded process must not do, so the
//! parallel starts are processes, not threads).

mod plan;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{Read, Seek};
use std::process::{Child, Stdio};
use std::time::Duration;

pub use plan::{parse_depends, plan, BootNode, Next, Plan, Scheduler};

use super::error::{invalid, io_at, ManagerError, Result};
use super::{Jail, Manager};

/// What happened to one jail of a boot or shutdown sequence.
pub struct BootResult {
    pub jail: Jail,
    /// `started (jid N)` or `stopped`, or why not.
    pub outcome: std::result::Result<String, ManagerError>,
}

/// Starts (`shutdown == false`) or stops one jail in a child process whose stderr is
/// the one given; its exit status tells how it went.
pub type SpawnJail<'a> = &'a dyn Fn(&Jail, bool, Stdio) -> std::io::Result<Child>;

/// How often running children are polled.
const POLL: Duration = Duration::from_millis(2);

impl Manager {
    /// Jails with boot=on in start order (priority ascending, then tag); templates
    /// and corrupt jails are left out.
    pub fn boot_order(&self) -> Result<Vec<Jail>> {
        let mut v: Vec<(u8, Jail)> = self
            .jails()?
            .into_iter()
            .filter(|j| j.problem.is_none())
            .filter_map(|j| {
                let c = j.config().ok()?;
                (c.boot && !c.template).then_some((c.priority, j))
            })
            .collect();
        v.sort_by(|(pa, a), (pb, b)| pa.cmp(pb).then_with(|| a.tag().cmp(b.tag())));
        Ok(v.into_iter().map(|(_, j)| j).collect())
    }

    /// The jails that can start (not templates, not corrupt), and the plan of a boot
    /// or a shutdown over them; a cycle or an unknown dependency is an error.
    pub fn boot_plan(&self, shutdown: bool) -> Result<(Vec<Jail>, Plan)> {
        let mut jails = Vec::new();
        let mut nodes = Vec::new();
        for j in self.jails()? {
            if j.problem.is_some() {
                continue;
            }
            let Ok(c) = j.config() else { continue };
            if c.template {
                continue;
            }
            nodes.push(BootNode {
                tag: c.tag.clone(),
                uuid: j.uuid.clone(),
                priority: c.priority,
                boot: c.boot,
                depends: parse_depends(j.get("depends")),
            });
            jails.push(j);
        }
        let p = plan(&nodes, shutdown).map_err(|e| invalid(e.to_string()))?;
        Ok((jails, p))
    }

    /// [`Manager::boot_run`] one jail at a time, in this process.
    pub fn boot_sequence(&self, shutdown: bool, report: impl FnMut(&BootResult)) -> Result<usize> {
        self.boot_run(shutdown, 1, None, report)
    }

    /// Start the planned jails that are down (`shutdown`: stop those that run), at
    /// most `jobs` at once: with `jobs > 1` and a `spawn`, each in a child process,
    /// else one after the other in this process. Jails already in the wanted state
    /// count as done. `report` hears of each jail as soon as it is done, and of each
    /// jail skipped because one it waits for failed. Returns how many failed or were
    /// skipped.
    pub fn boot_run(
        &self,
        shutdown: bool,
        jobs: usize,
        spawn: Option<SpawnJail>,
        mut report: impl FnMut(&BootResult),
    ) -> Result<usize> {
        if !shutdown {
            for uuid in self.sweep_stale_states() {
                tracing::info!(%uuid, "removed a run state of an earlier boot");
            }
        }
        let (jails, plan) = self.boot_plan(shutdown)?;
        let spawn = spawn.filter(|_| jobs > 1);
        let mut sched = Scheduler::new(plan, jobs);
        let mut children: Vec<(usize, Child, File)> = Vec::new();
        let mut failed = 0;
        loop {
            match sched.next() {
                Next::Finished => break,
                Next::Launch(i) => {
                    let j = &jails[i];
                    if self.is_running(j).is_some() != shutdown {
                        sched.finish(i, true);
                        continue;
                    }
                    let launched = match spawn {
                        Some(sp) => self.spawn_one(sp, j, shutdown, i),
                        None => Err(self.run_here(j, shutdown)),
                    };
                    match launched {
                        Ok((child, err)) => children.push((i, child, err)),
                        Err(outcome) => {
                            sched.finish(i, outcome.is_ok());
                            failed += usize::from(outcome.is_err());
                            report(&BootResult {
                                jail: j.clone(),
                                outcome,
                            });
                        }
                    }
                }
                Next::Skip { node, because } => {
                    let (j, d) = (&jails[node], &jails[because]);
                    let why = if shutdown {
                        format!("{} depends on it and did not stop", d.label())
                    } else {
                        format!("it depends on {}, which did not start", d.label())
                    };
                    failed += 1;
                    report(&BootResult {
                        jail: j.clone(),
                        outcome: Err(invalid(format!(
                            "{}: not {}: {why}",
                            j.label(),
                            if shutdown { "stopped" } else { "started" }
                        ))),
                    });
                }
                Next::Wait => {
                    let (i, outcome) = self.reap_one(&mut children, &jails, shutdown)?;
                    sched.finish(i, outcome.is_ok());
                    failed += usize::from(outcome.is_err());
                    report(&BootResult {
                        jail: jails[i].clone(),
                        outcome,
                    });
                }
            }
        }
        Ok(failed)
    }

    /// Start or stop `j` in this process.
    fn run_here(&self, j: &Jail, shutdown: bool) -> std::result::Result<String, ManagerError> {
        if shutdown {
            self.stop(&j.uuid).map(|_| "stopped".to_string())
        } else {
            self.start(&j.uuid, false)
                .map(|jid| format!("started (jid {jid})"))
        }
    }

    /// Launch the child starting or stopping `j`, its stderr going to an unlinked
    /// file in the run directory (read once it exits: a pipe could fill up).
    fn spawn_one(
        &self,
        spawn: SpawnJail,
        j: &Jail,
        shutdown: bool,
        i: usize,
    ) -> std::result::Result<(Child, File), std::result::Result<String, ManagerError>> {
        let path = self
            .run
            .join(format!("rcboot-{}-{i}.stderr", std::process::id()));
        let file = (|| {
            std::fs::create_dir_all(&self.run)?;
            let f = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)?;
            std::fs::remove_file(&path)?;
            Ok::<_, std::io::Error>(f)
        })()
        .map_err(|e| Err(io_at(path.display())(e)))?;
        let for_child = file
            .try_clone()
            .map_err(|e| Err(io_at(path.display())(e)))?;
        match spawn(j, shutdown, Stdio::from(for_child)) {
            Ok(c) => Ok((c, file)),
            Err(e) => Err(Err(invalid(format!(
                "{}: cannot run jailctl {}: {e}",
                j.label(),
                if shutdown { "stop" } else { "start" }
            )))),
        }
    }

    /// Wait for one of `children` to exit; its node and outcome. What it wrote to
    /// stderr is the error, or, when it succeeded, passed on.
    fn reap_one(
        &self,
        children: &mut Vec<(usize, Child, File)>,
        jails: &[Jail],
        shutdown: bool,
    ) -> Result<(usize, std::result::Result<String, ManagerError>)> {
        if children.is_empty() {
            return Err(invalid(
                "rcboot: waiting, but no jail is starting or stopping",
            ));
        }
        loop {
            for k in 0..children.len() {
                let status = children[k]
                    .1
                    .try_wait()
                    .map_err(|e| invalid(format!("waiting for a jailctl child: {e}")))?;
                let Some(status) = status else { continue };
                let (i, _, mut err) = children.swap_remove(k);
                let mut text = String::new();
                let _ = err.rewind();
                let _ = err.read_to_string(&mut text);
                let text = text.trim_end();
                let j = &jails[i];
                let outcome = if status.success() {
                    if !text.is_empty() {
                        eprintln!("{text}");
                    }
                    Ok(if shutdown {
                        "stopped".to_string()
                    } else {
                        match self.is_running(j) {
                            Some(jid) => format!("started (jid {jid})"),
                            None => "started".to_string(),
                        }
                    })
                } else if text.is_empty() {
                    Err(invalid(format!(
                        "{}: jailctl {} exited with {status}",
                        j.label(),
                        if shutdown { "stop" } else { "start" }
                    )))
                } else {
                    Err(invalid(text.strip_prefix("jailctl: ").unwrap_or(text)))
                };
                return Ok((i, outcome));
            }
            std::thread::sleep(POLL);
        }
    }
}
