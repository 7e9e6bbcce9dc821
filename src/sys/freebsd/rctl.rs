//! Resource limits on FreeBSD: rctl(8) rules `jail:NAME:RESOURCE:ACTION=AMOUNT` and
//! the jail's CPU set (cpuset(1) `-l LIST -j JID`), both through the host tools. This
//! is `sys::os::limits` on FreeBSD; Linux's is `sys/linux/cgroup_fs.rs`, with the
//! same functions. The rule texts are pure functions of `sys::limits` (unit-tested
//! on every OS).

use crate::sys::limits::{cpuset_args, parse_usage, rctl_rule, rctl_subject, Applied};
use crate::sys::limits::{LimitError, Plan};
use crate::sys::tool;

/// Whether the kernel accounts resources (RACCT), without which rctl refuses rules.
fn racct_enabled() -> bool {
    tool::run("sysctl", &["-n", "kern.racct.enable"])
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// What [`apply`] will add for jail `name`: recorded in the run state before it does.
pub fn record(name: &str, plan: &Plan) -> Applied {
    Applied {
        rules: plan.rules.iter().map(|r| rctl_rule(name, r)).collect(),
        cpuset: plan.cpuset.is_some(),
        ..Default::default()
    }
}

/// Before the jail is made: nothing (rules and CPU sets are per jail, added by
/// [`apply`]).
pub fn prepare(_name: &str, _rec: &mut Applied) -> Result<(), LimitError> {
    Ok(())
}

/// Add `plan`'s rules for jail `name` and pin jail `jid` to its CPU list, over those
/// of `prev` (what was in force): if anything fails, what was added is removed and
/// `prev`'s rules are added back; after success `prev`'s rules not in `plan` go.
pub fn apply(
    name: &str,
    jid: i32,
    _pids: &[i32],
    plan: &Plan,
    prev: Option<&Applied>,
) -> Result<Applied, LimitError> {
    let mut out = record(name, plan);
    let empty = Applied::default();
    let prev = prev.unwrap_or(&empty);
    if !plan.rules.is_empty() && !racct_enabled() {
        return Err(LimitError::RacctDisabled);
    }
    let mut added: Vec<String> = Vec::new();
    let result = (|| -> Result<(), LimitError> {
        for r in &plan.rules {
            let rule = rctl_rule(name, r);
            tool::run("rctl", &["-a", rule.as_str()])?;
            added.push(rule.clone());
            out.controls.push((r.resource.clone(), r.value(), rule));
        }
        if let Some(list) = &plan.cpuset {
            tool::run("cpuset", &cpuset_args(list, jid))?;
            out.controls.push((
                "cpuset".into(),
                list.clone(),
                format!("cpuset -l {list} -j {jid}"),
            ));
        }
        Ok(())
    })();
    if let Err(e) = result {
        for rule in added.iter().filter(|r| !prev.rules.contains(r)) {
            let _ = tool::run("rctl", &["-r", rule.as_str()]);
        }
        for rule in &prev.rules {
            if let Err(e) = tool::run("rctl", &["-a", rule.as_str()]) {
                tracing::warn!(%rule, error = %e, "restoring a rule failed");
            }
        }
        return Err(e);
    }
    for rule in prev.rules.iter().filter(|r| !out.rules.contains(r)) {
        if let Err(e) = tool::run("rctl", &["-r", rule.as_str()]) {
            tracing::info!(%rule, error = %e, "rctl rule already gone");
        }
    }
    if prev.cpuset && plan.cpuset.is_none() {
        let n: u32 = tool::run("sysctl", &["-n", "hw.ncpu"])?
            .trim()
            .parse()
            .unwrap_or(1);
        tool::run("cpuset", &cpuset_args(&format!("0-{}", n.max(1) - 1), jid))?;
    }
    Ok(out)
}

/// Remove exactly the rules recorded (a rule already gone is no failure).
pub fn release(rec: &Applied) -> Result<(), LimitError> {
    for rule in &rec.rules {
        if let Err(e) = tool::run("rctl", &["-r", rule.as_str()]) {
            tracing::info!(%rule, error = %e, "rctl rule already gone");
        }
    }
    Ok(())
}

/// The limits in force: each recorded rule, or `missing` when rctl no longer has it.
pub fn current(rec: &Applied) -> Vec<(String, String, String)> {
    let listed = tool::run("rctl", &["-l"]).unwrap_or_default();
    rec.controls
        .iter()
        .map(|(res, rule, ctl)| {
            let now = if ctl.starts_with("jail:") && !listed.lines().any(|l| same_rule(l, ctl)) {
                format!("{ctl} (missing)")
            } else {
                ctl.clone()
            };
            (res.clone(), rule.clone(), now)
        })
        .collect()
}

/// Consumption as `rctl -u jail:NAME` reports it.
pub fn usage(name: &str, _rec: Option<&Applied>, _pids: &[i32]) -> Vec<(String, String)> {
    tool::run("rctl", &["-u", rctl_subject(name).as_str()])
        .map(|s| parse_usage(&s))
        .unwrap_or_default()
}

/// Whether two rule texts are the same rule: `rctl -l` prints amounts without
/// suffixes (`4294967296` for our `4G`).
fn same_rule(a: &str, b: &str) -> bool {
    let split = |s: &str| {
        let (head, amount) = s.trim().rsplit_once('=')?;
        Some((head.to_string(), crate::sys::limits::parse_amount(amount)?))
    };
    match (split(a), split(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.trim() == b.trim(),
    }
}
