//! `clone`, `promote` and the clone graph: a jail made from another's snapshot
//! records it in its read-only `origin` property (`UUID@SNAPSHOT`); `destroy` of a
//! jail others were cloned from is refused with their names (or, `-R`, destroys them
//! first); destroying a clone removes the snapshot `clone` took for it once no other
//! jail uses it.

use std::collections::BTreeMap;

use super::create::{check_tag, initial_props, new_uuid};
use super::error::{invalid, ManagerError, Result};
use super::snapshots::{split_at, AUTO_PREFIX};
use super::{Jail, Manager};
use crate::storage::Base;

impl Manager {
    /// The jails cloned from any snapshot of `uuid`.
    pub fn dependants(&self, uuid: &str) -> Result<Vec<Jail>> {
        let prefix = format!("{uuid}@");
        Ok(self
            .jails()?
            .into_iter()
            .filter(|j| {
                j.stored
                    .get("origin")
                    .is_some_and(|o| o.starts_with(&prefix))
            })
            .collect())
    }

    /// Refuse to destroy a jail that others were cloned from.
    pub(super) fn refuse_if_dependants(&self, j: &Jail) -> Result<()> {
        let d = self.dependants(&j.uuid)?;
        if d.is_empty() {
            return Ok(());
        }
        Err(invalid(format!(
            "{} was cloned to {}: destroy them first, promote them, or destroy -R",
            j.label(),
            d.iter().map(Jail::label).collect::<Vec<_>>().join(", ")
        )))
    }

    /// After a clone is destroyed: the snapshot `clone` took for it goes once no
    /// other jail uses it (an origin the user named stays).
    pub(super) fn drop_origin(&self, origin: &str) {
        let Some((src, snap)) = origin.split_once('@') else {
            return;
        };
        if !snap.starts_with(AUTO_PREFIX) {
            return;
        }
        let Ok(others) = self.clones_of_snapshot(src, snap) else {
            return;
        };
        if others.is_empty() && self.backend.read_jail(src).ok().flatten().is_some() {
            let _l = self.lock_jail(src);
            if let Err(e) = self.backend.remove_snapshot(src, snap) {
                tracing::warn!(%origin, error = %e, "origin snapshot not removed");
            }
        }
    }

    /// `destroy -R`: the jails cloned from `key` (and theirs), then `key`; the UUIDs
    /// destroyed, in order.
    pub fn destroy_tree(&self, key: &str) -> Result<Vec<String>> {
        let j = self.resolve(key)?;
        let mut order = Vec::new();
        self.collect_tree(&j.uuid, &mut order, 0)?;
        let mut done = Vec::new();
        for u in order {
            done.push(self.destroy(&u)?);
        }
        Ok(done)
    }

    /// `uuid`'s dependants (deepest first), then `uuid`.
    fn collect_tree(&self, uuid: &str, order: &mut Vec<String>, depth: usize) -> Result<()> {
        if depth > 64 {
            return Err(invalid("the clone graph is deeper than 64: a cycle?"));
        }
        for d in self.dependants(uuid)? {
            self.collect_tree(&d.uuid, order, depth + 1)?;
        }
        if !order.iter().any(|u| u == uuid) {
            order.push(uuid.to_string());
        }
        Ok(())
    }

    /// `clone UUID|TAG[@SNAPSHOT] [property=value ...]`: a new jail from the
    /// snapshot (or from the current state, through a snapshot taken for it), with
    /// a new UUID and the default properties but those given. Its UUID.
    pub fn clone_jail(&self, arg: &str, given: &[(String, String)]) -> Result<String> {
        let (key, snap) = split_at(arg);
        let src = self.resolve(key)?;
        if let Some(why) = &src.problem {
            return Err(ManagerError::Corrupt {
                uuid: src.uuid.clone(),
                why: why.clone(),
            });
        }
        let given: BTreeMap<String, String> = given.iter().cloned().collect();
        let uuid = new_uuid();
        let snap = match snap {
            Some(s) => {
                if !self
                    .backend
                    .snapshots(&src.uuid)?
                    .iter()
                    .any(|x| x.name == s)
                {
                    return Err(invalid(format!("{} has no snapshot {s}", src.label())));
                }
                s.to_string()
            }
            None => {
                let name = format!("{AUTO_PREFIX}{uuid}");
                self.snapshot(&format!("{}@{name}", src.uuid), false)?;
                name
            }
        };
        let made = self.clone_from(&src, &snap, &uuid, &given);
        if made.is_err() && snap.starts_with(AUTO_PREFIX) {
            let _ = self.backend.remove_snapshot(&src.uuid, &snap);
        }
        made
    }

    fn clone_from(
        &self,
        src: &Jail,
        snap: &str,
        uuid: &str,
        given: &BTreeMap<String, String>,
    ) -> Result<String> {
        let thin = src.get("type") == "basejail";
        let base = Base::Clone {
            uuid: src.uuid.clone(),
            snap: snap.to_string(),
            thin,
        };
        let defaults = self.defaults()?;
        let _g = self.lock_global()?;
        let tag = given.get("tag").cloned().unwrap_or_else(super::timestamp);
        check_tag(&tag)?;
        if let Some(other) = self.jails()?.iter().find(|j| j.tag() == tag) {
            return Err(ManagerError::TagInUse {
                tag,
                uuid: other.uuid.clone(),
            });
        }
        let mut p = initial_props(&defaults, given, uuid, &tag, &base, 0, 1);
        p.insert("type".into(), src.get("type").to_string());
        p.insert("release".into(), src.get("release").to_string());
        p.insert("origin".into(), format!("{}@{snap}", src.uuid));
        p.remove("istemplate");
        if let Some(t) = given.get("istemplate") {
            p.insert("istemplate".into(), t.clone());
        }
        let _l = self.lock_jail(uuid)?;
        let res = self
            .index_put(&tag, uuid)
            .and_then(|_| Ok(self.backend.create_jail(uuid, &p, &base)?))
            .and_then(|_| Ok(self.backend.finish_jail(uuid)?));
        if let Err(e) = res {
            let mut cleanup = Vec::new();
            if let Err(c) = self.backend.destroy_jail(uuid) {
                cleanup.push(c.into());
            }
            self.index_forget(&tag, uuid);
            return Err(e.with_cleanup(cleanup));
        }
        Ok(uuid.to_string())
    }

    /// `promote UUID|TAG`: the clone no longer depends on its origin; the origin
    /// snapshot moves to it and the former source depends on it instead (ZFS
    /// promote; the directory backend's clone is a copy already).
    pub fn promote(&self, key: &str) -> Result<String> {
        let j = self.resolve(key)?;
        let Some(origin) = j.stored.get("origin").cloned() else {
            return Err(invalid(format!(
                "{} is no clone: nothing to promote",
                j.label()
            )));
        };
        let (src, snap) = origin.split_once('@').ok_or_else(|| {
            invalid(format!(
                "{}: origin \"{origin}\" is not UUID@SNAPSHOT",
                j.label()
            ))
        })?;
        let _l = self.lock_jail(&j.uuid)?;
        let j = self.reread(&j)?;
        let source = self.backend.read_jail(src)?;
        let _ls = source.as_ref().map(|_| self.lock_jail(src)).transpose()?;
        self.backend.promote(&j.uuid, src, snap)?;
        let mut new = j.stored.clone();
        new.remove("origin");
        self.backend.write_props(&j.uuid, &j.stored, &new)?;
        // the other clones of that snapshot, and the former source, now come from it
        let moved = format!("{}@{snap}", j.uuid);
        for other in self.clones_of_snapshot(src, snap)? {
            let mut p = other.stored.clone();
            p.insert("origin".into(), moved.clone());
            self.backend.write_props(&other.uuid, &other.stored, &p)?;
        }
        if let Some(s) = source {
            if !s.incomplete && s.props.get("origin").is_none() {
                let mut p = s.props.clone();
                p.insert("origin".into(), moved);
                self.backend.write_props(src, &s.props, &p)?;
            }
        }
        Ok(j.uuid)
    }
}
