//! Resource limits of jails, as iocage(8) has them: the rctl(8) properties
//! (`RESOURCE=AMOUNT:ACTION`, applied when `rlimits=on`) and `cpuset`. Applied at
//! start (one step, recorded in the run state before anything is made, so that
//! stop and a failed or killed start remove exactly that), and on a running jail by
//! `cap` (again, idempotent) and `uncap` (lifted); `limits` shows them, `inuse` what
//! the jail consumes. The OS side is `sys::os::limits`: cgroups on Linux, rctl(8)
//! and cpuset(1) on FreeBSD.

use crate::manager::error::{ManagerError, Result};
use crate::manager::runstate::RunState;
use crate::manager::{Jail, Manager};
use crate::sys::limits::{LimitError, Plan, Rule, RESOURCES};
use crate::sys::os::limits as os;

/// One row of `limits`: a limit of a running jail, as set and as in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRow {
    pub uuid: String,
    pub tag: String,
    pub resource: String,
    /// `AMOUNT:ACTION` (a CPU list for `cpuset`), as the property holds it.
    pub configured: String,
    /// What the OS has: `pids.max=5`, `jail:ioc-X:maxproc:deny=5`, `RLIMIT_NOFILE=64`.
    pub applied: String,
}

/// What a running jail consumes: `(resource, amount)` pairs.
#[derive(Debug, Clone)]
pub struct Usage {
    pub uuid: String,
    pub tag: String,
    pub values: Vec<(String, String)>,
}

/// The limits a jail's properties ask for: the rctl properties when `rlimits=on`,
/// and `cpuset` unless `off`.
pub fn plan_of(props: &std::collections::BTreeMap<String, String>) -> Result<Plan> {
    let get = |k: &str| props.get(k).map(String::as_str).unwrap_or("off");
    let mut plan = Plan::default();
    if get("rlimits") == "on" {
        for r in RESOURCES {
            if let Some(rule) = Rule::parse(r, get(r)).map_err(ManagerError::Invalid)? {
                plan.rules.push(rule);
            }
        }
    }
    if get("cpuset") != "off" {
        plan.cpuset = Some(get("cpuset").to_string());
    }
    Ok(plan)
}

fn limit_err(j: &Jail, step: &str, e: LimitError) -> ManagerError {
    ManagerError::Step {
        jail: j.label(),
        step: step.to_string(),
        msg: e.to_string(),
    }
}

impl Manager {
    /// The start step, before the jail is made: its cgroups (Linux), recorded in the
    /// run state first, made whether or not it has limits, so that its init joins
    /// them before it makes its namespaces and every jail process is in them from
    /// the start (`cap` and `uncap` then only write limits).
    pub(crate) fn prepare_limits(&self, j: &Jail, st: &mut RunState) -> Result<()> {
        let plan = plan_of(&j.props())?;
        let mut rec = os::record(&j.kname(), &plan);
        rec.rules.clear();
        rec.cpuset = false;
        st.limits = Some(rec.clone());
        self.write_state(&j.uuid, st)?;
        let r = self.jail_ops.limits_prepare(&j.kname(), &mut rec);
        st.limits = Some(rec);
        self.write_state(&j.uuid, st)?;
        r.map_err(|e| limit_err(j, "resource limits", e))
    }

    /// The start step, once the jail `jid` is made: its limits.
    pub(crate) fn apply_limits(&self, j: &Jail, jid: i32, st: &mut RunState) -> Result<()> {
        let plan = plan_of(&j.props())?;
        if plan.is_empty() {
            // its cgroups were made without limits
            return Ok(());
        }
        self.apply_plan(j, jid, &plan, st, "resource limits")
    }

    /// Apply `plan` over what `st` records as in force; recorded before (FreeBSD's
    /// rules to add) and after (what is in force).
    fn apply_plan(
        &self,
        j: &Jail,
        jid: i32,
        plan: &Plan,
        st: &mut RunState,
        step: &str,
    ) -> Result<()> {
        let kname = j.kname();
        let prev = st.limits.clone().unwrap_or_default();
        let mut rec = prev.clone();
        for r in os::record(&kname, plan).rules {
            if !rec.rules.contains(&r) {
                rec.rules.push(r);
            }
        }
        rec.cpuset |= plan.cpuset.is_some();
        st.limits = Some(rec);
        self.write_state(&j.uuid, st)?;
        match self.jail_ops.limits_apply(&kname, jid, plan, Some(&prev)) {
            Ok(mut applied) => {
                applied.cgroups = prev.cgroups;
                applied.made_parents = prev.made_parents;
                applied.subtree = prev.subtree;
                st.limits = Some(applied);
                self.write_state(&j.uuid, st)
            }
            Err(e) => {
                st.limits = Some(prev);
                self.write_state(&j.uuid, st)?;
                Err(limit_err(j, step, e))
            }
        }
    }

    /// Remove the limits recorded for a jail (its cgroups, its rctl rules): at stop,
    /// after a failed start, and for what an interrupted command left.
    pub(crate) fn release_limits(&self, uuid: &str) -> Result<()> {
        let mut st = self.read_state(uuid);
        let Some(rec) = st.limits.take() else {
            return Ok(());
        };
        self.jail_ops
            .limits_release(&rec)
            .map_err(|e| ManagerError::Step {
                jail: uuid.to_string(),
                step: "remove the resource limits".into(),
                msg: e.to_string(),
            })?;
        self.write_state(uuid, &st)
    }

    fn running_jail(&self, key: &str) -> Result<(Jail, i32)> {
        let j = self.resolve(key)?;
        match self.is_running(&j) {
            Some(jid) => Ok((j, jid)),
            None => Err(ManagerError::NotRunning(j.label())),
        }
    }

    /// `cap` and `uncap`: under the jail's lock, the jail read again and checked to
    /// be running, then `plan` (of its properties, or none) written over what is in
    /// force; on failure what was in force stays.
    fn set_limits(&self, key: &str, lift: bool) -> Result<Jail> {
        let j = self.resolve(key)?;
        let _l = self.lock_jail(&j.uuid)?;
        let j = self.reread(&j)?;
        let jid = self
            .is_running(&j)
            .ok_or_else(|| ManagerError::NotRunning(j.label()))?;
        let mut st = self.read_state(&j.uuid);
        if st.jid != Some(jid) || st.limits.is_none() {
            return Err(ManagerError::Step {
                jail: j.label(),
                step: if lift { "uncap" } else { "cap" }.into(),
                msg: "the jail was started without its limit cgroups (by an older jailctl?): restart it".into(),
            });
        }
        let plan = if lift {
            Plan::default()
        } else {
            plan_of(&j.props())?
        };
        self.apply_plan(&j, jid, &plan, &mut st, if lift { "uncap" } else { "cap" })?;
        Ok(j)
    }

    /// `cap`: apply the jail's limits while it runs (again: repeating it changes
    /// nothing). Returns notes for the user.
    pub fn cap(&self, key: &str) -> Result<Vec<String>> {
        let j = self.set_limits(key, false)?;
        let mut notes = Vec::new();
        if plan_of(&j.props())?.is_empty() {
            notes.push(format!(
                "jail {} has no limits to apply (rlimits=off, cpuset=off)",
                j.tag()
            ));
        }
        Ok(notes)
    }

    /// `uncap`: lift every limit of the running jail (its cgroups stay, without
    /// limits, until it stops; lowered resource limits of processes stay).
    pub fn uncap(&self, key: &str) -> Result<()> {
        self.set_limits(key, true).map(|_| ())
    }

    fn targets(&self, key: Option<&str>) -> Result<Vec<(Jail, i32)>> {
        match key {
            Some(k) => Ok(vec![self.running_jail(k)?]),
            None => self.running(),
        }
    }

    /// `limits [UUID|TAG]`: the limits in force on one or every running jail.
    pub fn limits(&self, key: Option<&str>) -> Result<Vec<LimitRow>> {
        let mut out = Vec::new();
        for (j, _) in self.targets(key)? {
            let Some(rec) = self.read_state(&j.uuid).limits else {
                continue;
            };
            for (resource, configured, applied) in os::current(&rec) {
                out.push(LimitRow {
                    uuid: j.uuid.clone(),
                    tag: j.tag().to_string(),
                    resource,
                    configured,
                    applied,
                });
            }
        }
        Ok(out)
    }

    /// `inuse [UUID|TAG]`: what one or every running jail consumes.
    pub fn inuse(&self, key: Option<&str>) -> Result<Vec<Usage>> {
        let mut out = Vec::new();
        for (j, _) in self.targets(key)? {
            let kname = j.kname();
            let pids = crate::jail::all_processes(&kname).unwrap_or_default();
            let rec = self.read_state(&j.uuid).limits;
            out.push(Usage {
                uuid: j.uuid.clone(),
                tag: j.tag().to_string(),
                values: os::usage(&kname, rec.as_ref(), &pids),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_follows_rlimits_and_cpuset() {
        let mut p = crate::manager::props::schema_defaults();
        assert!(
            plan_of(&p).unwrap().is_empty(),
            "defaults: rlimits=off, cpuset=off"
        );
        p.insert("rlimits".into(), "on".into());
        p.insert("maxproc".into(), "5:deny".into());
        p.insert("cpuset".into(), "0".into());
        let plan = plan_of(&p).unwrap();
        let names: Vec<&str> = plan.rules.iter().map(|r| r.resource.as_str()).collect();
        // memoryuse=8G:log is a default
        assert_eq!(names, ["memoryuse", "maxproc"]);
        assert_eq!(plan.cpuset.as_deref(), Some("0"));
        p.insert("rlimits".into(), "off".into());
        assert!(plan_of(&p).unwrap().rules.is_empty());
    }
}
