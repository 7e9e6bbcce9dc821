//! `set` and `reset`: read-modify-write of a jail's properties under its lock.

use super::create::check_tag;
use super::error::{invalid, ManagerError, Result};
use super::{props, Manager};
use crate::sys::{Os, OS};

/// Properties that identify a jail and survive `reset`.
const KEEP_ON_RESET: &[&str] = &[
    "uuid",
    "tag",
    "host_hostuuid",
    "release",
    "type",
    "last_started",
    "istemplate",
    "jail_zfs_dataset",
    "hostid",
];

impl Manager {
    /// `set prop=value ... UUID|TAG|default`. Returns notes for the user.
    pub fn set(&self, assignments: &[(String, String)], key: &str) -> Result<Vec<String>> {
        if key == "default" {
            let old = self.backend.defaults()?;
            let mut new = old.clone();
            for (k, v) in assignments {
                if k == "tag" {
                    return Err(invalid("tag: every jail has its own; it has no default"));
                }
                new.insert(k.clone(), v.clone());
            }
            self.backend.write_defaults(&old, &new)?;
            return Ok(vec![]);
        }
        let _g = if assignments.iter().any(|(k, _)| k == "tag") {
            Some(self.lock_global()?)
        } else {
            None
        };
        let j = self.resolve(key)?;
        if let Some(why) = &j.problem {
            return Err(ManagerError::Corrupt {
                uuid: j.uuid.clone(),
                why: why.clone(),
            });
        }
        let _l = self.lock_jail(&j.uuid)?;
        // Read-modify-write under the jail's lock: what was read before it may be stale.
        let j = self.reread(&j)?;
        let new_tag = assignments
            .iter()
            .rev()
            .find(|(k, _)| k == "tag")
            .map(|(_, t)| t.clone());
        if let Some(t) = &new_tag {
            check_tag(t)?;
            if let Some((_, uuid)) = self
                .tags_in_use()?
                .into_iter()
                .find(|(tag, uuid)| tag == t && *uuid != j.uuid)
            {
                return Err(ManagerError::TagInUse {
                    tag: t.clone(),
                    uuid,
                });
            }
        }
        let mut new = j.stored.clone();
        let running = self.is_running(&j).is_some();
        let mut notes = Vec::new();
        for (k, v) in assignments {
            new.insert(k.clone(), v.clone());
            let p = props::lookup(k)?;
            if running && p.restart {
                notes.push(format!(
                    "{k}: takes effect when jail {} is restarted",
                    j.tag()
                ));
            }
            let limit = matches!(p.source, props::Source::Rctl | props::Source::Cpuset);
            if running && (limit || k == "rlimits") {
                notes.push(format!(
                    "{k}: jail {} is running; `jailctl cap {}` applies it now",
                    j.tag(),
                    j.tag()
                ));
            }
            if props::effect(p, OS) == props::Effect::StoredOnly {
                let os = match OS {
                    Os::Linux => "Linux",
                    Os::FreeBsd => "FreeBSD (yet)",
                };
                notes.push(format!("{k}: stored; it has no effect on {os}"));
            }
        }
        // The index learns the new TAG before the jail has it, and forgets the old one
        // after (the global lock is held for a change of tag).
        if let Some(t) = &new_tag {
            self.index_put(t, &j.uuid)?;
            self.census_unsettle(&j.uuid)?;
        }
        self.backend.write_props(&j.uuid, &j.stored, &new)?;
        if let Some(t) = &new_tag {
            self.census_note(&j.uuid, t);
            if j.tag() != t {
                self.index_forget(j.tag(), &j.uuid);
            }
        }
        Ok(notes)
    }

    /// `reset UUID|TAG|ALL`: back to the defaults, identity kept.
    pub fn reset(&self, key: &str) -> Result<Vec<String>> {
        let defaults = self.defaults()?;
        let mut done = Vec::new();
        for j in self.resolve_many(key)? {
            let _l = self.lock_jail(&j.uuid)?;
            let j = self.reread(&j)?;
            let mut new = defaults.clone();
            for k in KEEP_ON_RESET {
                if let Some(v) = j.stored.get(*k) {
                    new.insert(k.to_string(), v.clone());
                }
            }
            new.insert("host_hostname".into(), j.uuid.clone());
            new.retain(|_, v| !v.is_empty());
            self.backend.write_props(&j.uuid, &j.stored, &new)?;
            done.push(j.uuid);
        }
        Ok(done)
    }

    /// Record when the jail was last started (under its lock).
    pub(super) fn mark_started(&self, uuid: &str) -> Result<()> {
        self.backend
            .set_prop(uuid, "last_started", &super::timestamp())?;
        Ok(())
    }
}
