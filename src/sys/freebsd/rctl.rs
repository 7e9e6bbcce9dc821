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

/// Add `plan`'s rules for jail `name` and pin jail `jid` to its CPU list.
pub fn apply(name: &str, jid: i32, _pids: &[i32], plan: &Plan) -> Result<Applied, LimitError> {
    let mut out = record(name, plan);
    if !plan.rules.is_empty() && !racct_enabled() {
        return Err(LimitError::RacctDisabled);
    }
    for r in &plan.rules {
        let rule = rctl_rule(name, r);
        tool::run("rctl", &["-a", rule.as_str()])?;
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
    Ok(out)
}

/// `uncap`: remove the rules added and give the jail every CPU again.
pub fn reset(_name: &str, jid: i32, rec: &Applied) -> Result<(), LimitError> {
    release(rec)?;
    if rec.cpuset {
        let n: u32 = tool::run("sysctl", &["-n", "hw.ncpu"])?
            .trim()
            .parse()
            .unwrap_or(1);
        tool::run("cpuset", &cpuset_args(&format!("0-{}", n.max(1) - 1), jid))?;
    }
    Ok(())
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
            let now = if ctl.starts_with("jail:") && !listed.lines().any(|l| l.trim() == ctl) {
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
