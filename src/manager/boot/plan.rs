//! The boot planner: which jails `rcboot` starts (`rcshutdown` stops), in what order,
//! and which of them may run at the same time. Pure: no jails, no processes.
//!
//! Rules:
//! - the plan holds every jail with `boot=on` and, as iocage does, every jail such a
//!   jail `depends` on (directly or not), even one whose `boot` is off;
//! - a jail starts only after every jail it depends on has started; a dependency is
//!   pulled forward into the earliest priority of the jails that need it (its
//!   *wave*), so it never waits behind them;
//! - every jail of wave p starts before any of wave p+1; inside a wave, jails whose
//!   dependencies are met start in parallel;
//! - the serial order (`-j 1`) is by wave, then priority, then tag, dependencies
//!   first: without `depends`, priority then tag, as before `depends` existed;
//! - shutdown is the exact mirror: waves in reverse, a jail stops only after every
//!   jail that depends on it has stopped;
//! - a cycle, or a `depends` naming no startable jail, makes the whole plan an error
//!   (naming the cycle, or the tag) before anything starts. Jails outside the plan
//!   are not looked at.

use std::collections::{BTreeMap, BTreeSet};

/// One jail as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootNode {
    pub tag: String,
    pub uuid: String,
    pub priority: u8,
    /// `boot=on`.
    pub boot: bool,
    /// The tags of `depends`.
    pub depends: Vec<String>,
}

/// Why there is no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("depends: a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("depends: jail {jail} depends on \"{tag}\", which is not a jail that can start (no such tag, a template, or corrupt)")]
    Unknown { jail: String, tag: String },
}

/// One jail of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Index into the nodes given to [`plan`].
    pub node: usize,
    /// The priority this jail runs with: its own, or an earlier one it was pulled
    /// into by a jail depending on it. Steps of one wave are contiguous.
    pub wave: u8,
    /// Nodes that must be done (started; at shutdown: stopped) before this one.
    pub after: Vec<usize>,
}

/// The steps in serial order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
}

/// The tags of a `depends` value: separated by spaces or commas; empty or `none`:
/// no dependency.
pub fn parse_depends(v: &str) -> Vec<String> {
    let v = v.trim();
    if v.is_empty() || v == "none" {
        return vec![];
    }
    let mut seen = BTreeSet::new();
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .filter(|t| seen.insert(*t))
        .map(String::from)
        .collect()
}

/// Plan a boot (`shutdown == false`) or a shutdown of `nodes`.
pub fn plan(nodes: &[BootNode], shutdown: bool) -> Result<Plan, PlanError> {
    let by_tag: BTreeMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.tag.as_str(), i))
        .collect();
    // boot jails first in (priority, tag) order, so that errors are deterministic
    let mut roots: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].boot).collect();
    roots.sort_by(|&a, &b| key(nodes, a).cmp(&key(nodes, b)));
    let mut deps: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut state = vec![Mark::New; nodes.len()];
    for r in roots {
        visit(nodes, &by_tag, r, &mut state, &mut vec![], &mut deps)?;
    }
    // waves: a dependency runs in the earliest wave of the jails needing it
    let mut wave: BTreeMap<usize, u8> = deps.keys().map(|&i| (i, nodes[i].priority)).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for (&i, ds) in &deps {
            let w = wave[&i];
            for d in ds {
                if wave[d] > w {
                    wave.insert(*d, w);
                    changed = true;
                }
            }
        }
    }
    // serial order: Kahn's algorithm, taking the least (wave, priority, tag) ready
    let mut left: BTreeMap<usize, usize> = deps.iter().map(|(&i, d)| (i, d.len())).collect();
    let mut dependants: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (&i, ds) in &deps {
        for &d in ds {
            dependants.entry(d).or_default().push(i);
        }
    }
    let sort_key = |i: usize| (wave[&i], key(nodes, i));
    let mut ready: BTreeSet<(u8, (u8, &str, &str), usize)> = left
        .iter()
        .filter(|(_, &n)| n == 0)
        .map(|(&i, _)| {
            let (w, k) = sort_key(i);
            (w, k, i)
        })
        .collect();
    let mut order = Vec::with_capacity(deps.len());
    while let Some(first) = ready.pop_first() {
        let i = first.2;
        order.push(i);
        for &d in dependants.get(&i).map(Vec::as_slice).unwrap_or(&[]) {
            let n = left.get_mut(&d).expect("a planned jail");
            *n -= 1;
            if *n == 0 {
                let (w, k) = sort_key(d);
                ready.insert((w, k, d));
            }
        }
    }
    debug_assert_eq!(order.len(), deps.len(), "no cycle is left");
    let mut steps: Vec<Step> = order
        .into_iter()
        .map(|i| Step {
            node: i,
            wave: wave[&i],
            after: if shutdown {
                dependants.remove(&i).unwrap_or_default()
            } else {
                deps[&i].clone()
            },
        })
        .collect();
    if shutdown {
        steps.reverse();
    }
    Ok(Plan { steps })
}

/// The serial order of jails without dependencies: priority, then tag.
fn key(nodes: &[BootNode], i: usize) -> (u8, &str, &str) {
    (nodes[i].priority, &nodes[i].tag, &nodes[i].uuid)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    New,
    OnPath,
    Done,
}

/// Depth-first walk from `i`, recording each reached node's dependencies in `deps`;
/// `path` is the chain being walked (for naming a cycle).
fn visit(
    nodes: &[BootNode],
    by_tag: &BTreeMap<&str, usize>,
    i: usize,
    state: &mut [Mark],
    path: &mut Vec<usize>,
    deps: &mut BTreeMap<usize, Vec<usize>>,
) -> Result<(), PlanError> {
    match state[i] {
        Mark::Done => return Ok(()),
        Mark::OnPath => {
            let from = path.iter().position(|&p| p == i).expect("on the path");
            let mut cycle: Vec<String> =
                path[from..].iter().map(|&p| nodes[p].tag.clone()).collect();
            cycle.push(nodes[i].tag.clone());
            return Err(PlanError::Cycle(cycle));
        }
        Mark::New => {}
    }
    state[i] = Mark::OnPath;
    path.push(i);
    let mut mine = Vec::new();
    for t in &nodes[i].depends {
        let d = *by_tag.get(t.as_str()).ok_or_else(|| PlanError::Unknown {
            jail: nodes[i].tag.clone(),
            tag: t.clone(),
        })?;
        visit(nodes, by_tag, d, state, path, deps)?;
        if !mine.contains(&d) {
            mine.push(d);
        }
    }
    path.pop();
    state[i] = Mark::Done;
    deps.insert(i, mine);
    Ok(())
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Ok,
    Failed,
    /// Not run: a step it waits for did not succeed.
    Skipped,
}

/// Runs a plan with at most `jobs` steps at once: asks for the next step to launch,
/// hears when one is done, and decides which steps are skipped.
#[derive(Debug)]
pub struct Scheduler {
    steps: Vec<Step>,
    jobs: usize,
    /// Index into `steps` of the first step not launched or skipped yet.
    next: usize,
    launched: BTreeSet<usize>,
    running: usize,
    /// Per node: how it ended.
    done: BTreeMap<usize, Done>,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Launch this node.
    Launch(usize),
    /// This node will not run: `because` (a node it waits for) did not succeed.
    Skip { node: usize, because: usize },
    /// Wait for a running step to finish.
    Wait,
    /// Everything is done.
    Finished,
}

impl Scheduler {
    pub fn new(plan: Plan, jobs: usize) -> Scheduler {
        Scheduler {
            steps: plan.steps,
            jobs: jobs.max(1),
            next: 0,
            launched: BTreeSet::new(),
            running: 0,
            done: BTreeMap::new(),
        }
    }

    /// The next thing to do. Steps are taken in serial order: the first one not
    /// taken yet whose wave has come (every earlier wave is done) and whose
    /// `after` are done.
    pub fn next(&mut self) -> Next {
        while self.next < self.steps.len() && self.is_taken(self.next) {
            self.next += 1;
        }
        if self.next == self.steps.len() {
            return if self.running == 0 {
                Next::Finished
            } else {
                Next::Wait
            };
        }
        let wave = self.steps[self.next].wave;
        // every step before `next` is taken; those of an earlier wave must be done
        if self.steps[..self.next]
            .iter()
            .any(|s| s.wave != wave && !self.done.contains_key(&s.node))
        {
            return Next::Wait;
        }
        for k in self.next..self.steps.len() {
            let s = &self.steps[k];
            if s.wave != wave {
                break;
            }
            if self.is_taken(k) {
                continue;
            }
            if let Some(&bad) = s
                .after
                .iter()
                .find(|a| matches!(self.done.get(a), Some(Done::Failed | Done::Skipped)))
            {
                let node = s.node;
                self.done.insert(node, Done::Skipped);
                return Next::Skip { node, because: bad };
            }
            if self.running < self.jobs
                && s.after.iter().all(|a| self.done.get(a) == Some(&Done::Ok))
            {
                let node = s.node;
                self.launched.insert(node);
                self.running += 1;
                return Next::Launch(node);
            }
        }
        Next::Wait
    }

    /// A launched node is done.
    pub fn finish(&mut self, node: usize, ok: bool) {
        if self.launched.remove(&node) {
            self.running -= 1;
        }
        self.done
            .insert(node, if ok { Done::Ok } else { Done::Failed });
    }

    fn is_taken(&self, k: usize) -> bool {
        let n = self.steps[k].node;
        self.launched.contains(&n) || self.done.contains_key(&n)
    }
}
