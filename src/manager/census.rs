//! The tag census: which TAG each jail bears, kept in the run directory
//! (`RUN/tags/BACKEND.census`) with each jail's stamp from the backend
//! ([`crate::storage::Backend::census`]), so that `create` and `set tag=` check that a
//! TAG is unique without reading every jail.
//!
//! - A jail is read again whenever its stamp changed or it has none (directory
//!   backend: its configuration file was replaced or touched, or is less than two
//!   seconds old); a jail the backend's census shows for the first time is read.
//! - A jail the census knows but the backend's census does not show (a ZFS dataset
//!   not mounted, or mounted twice) is read, never taken as gone; it is dropped only
//!   when the backend says it does not exist.
//! - Built (no census, or many jails to read) from one full read, which also shows
//!   the jails the backend's census cannot (a dataset never mounted).
//! - `set tag=` marks the jail's entry unsettled before it writes the tag, and
//!   settles it after: an interrupted change is read again, never taken for the old
//!   tag. A census that cannot be written is removed, never left wrong.
//! - Used and written with the global lock held only, where every change of tag
//!   jailctl makes happens. A full read (`list`) that finds a tag the census has wrong,
//!   or a jail it lacks (changed behind jailctl's back: on ZFS, which keeps no change
//!   time for a property, a `zfs set` of a tag is only seen this way), drops it, and so
//!   does `reindex`.
//! - A backend without a census (none so far) reads every jail each time.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{io_at, Result};
use super::{Jail, Manager};
use crate::storage::Record;

/// More jails than this to read: one read of them all instead of one each.
const BULK: usize = 8;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Census {
    jails: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    tag: String,
    /// Empty: unsettled (read it again).
    stamp: String,
}

impl Manager {
    fn census_path(&self) -> PathBuf {
        self.run
            .join("tags")
            .join(format!("{}.census", self.backend_key()))
    }

    fn census_read(&self) -> Census {
        fs::read(self.census_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn census_write(&self, c: &Census) -> std::io::Result<()> {
        let p = self.census_path();
        p.parent().map_or(Ok(()), fs::create_dir_all)?;
        let tmp = p.with_extension(format!("census.{}", std::process::id()));
        fs::write(&tmp, serde_json::to_vec(c).unwrap_or_default())?;
        fs::rename(&tmp, &p)
    }

    /// Write the census; one that cannot be written is removed (the next use reads
    /// every jail), never left wrong.
    fn census_store(&self, c: &Census) {
        if let Err(e) = self.census_write(c) {
            tracing::warn!(error = %e, "could not write the tag census; it is rebuilt on next use");
            self.census_drop();
        }
    }

    /// Forget the census: the next use reads every jail.
    pub(super) fn census_drop(&self) {
        let _ = fs::remove_file(self.census_path());
    }

    /// Every jail's (TAG, UUID), with the global lock held: from the census for a jail
    /// whose stamp has not changed, read from the backend otherwise.
    pub(super) fn tags_in_use(&self) -> Result<Vec<(String, String)>> {
        let Some(mut present) = self.backend.census()? else {
            return Ok(self
                .jails()?
                .iter()
                .map(|j| (j.tag().to_string(), j.uuid.clone()))
                .collect());
        };
        let old = self.census_read();
        for u in old.jails.keys() {
            if !present.iter().any(|(p, _)| p == u) {
                present.push((u.clone(), None));
            }
        }
        let unsettled = |u: &String, s: &Option<String>| {
            s.is_none() || old.jails.get(u).map(|e| &e.stamp) != s.as_ref()
        };
        let unknown = present.iter().filter(|(u, s)| unsettled(u, s)).count();
        // Many to read, or a census to build: one read of them all, after the stamps
        // were taken (a change in between leaves a stamp that no longer matches).
        let mut bulk: Option<BTreeMap<String, Record>> = None;
        if unknown > BULK || old.jails.is_empty() {
            let all: BTreeMap<String, Record> = self
                .backend
                .list_jails()?
                .into_iter()
                .map(|r| (r.uuid.clone(), r))
                .collect();
            for u in all.keys() {
                if !present.iter().any(|(p, _)| p == u) {
                    present.push((u.clone(), None));
                }
            }
            bulk = Some(all);
        }
        let default_tag = self.defaults()?.get("tag").cloned().unwrap_or_default();
        let mut new = Census::default();
        let mut out = Vec::new();
        let mut read = false;
        for (uuid, stamp) in present {
            let known = stamp
                .as_ref()
                .and_then(|s| old.jails.get(&uuid).filter(|e| &e.stamp == s));
            let tag = match known {
                Some(e) => e.tag.clone(),
                None => {
                    read = true;
                    let r = match &mut bulk {
                        Some(all) => all.remove(&uuid),
                        None => self.backend.read_jail(&uuid)?,
                    };
                    match r {
                        Some(r) if r.incomplete => {
                            self.clean_incomplete(&r);
                            continue;
                        }
                        Some(r) => r.props.get("tag").cloned().unwrap_or(default_tag.clone()),
                        None => continue,
                    }
                }
            };
            new.jails.insert(
                uuid.clone(),
                Entry {
                    tag: tag.clone(),
                    stamp: stamp.unwrap_or_default(),
                },
            );
            out.push((tag, uuid));
        }
        if read || new.jails.len() != old.jails.len() {
            self.census_store(&new);
        }
        Ok(out)
    }

    /// Before jail `uuid`'s tag is changed (with the global lock held): its entry is
    /// marked unsettled, so a change interrupted before [`Manager::census_note`] is
    /// read again, never taken for the old tag. An error stops the change.
    pub(super) fn census_unsettle(&self, uuid: &str) -> Result<()> {
        let mut c = self.census_read();
        if let Some(e) = c.jails.get_mut(uuid) {
            e.stamp.clear();
            self.census_write(&c)
                .map_err(io_at(self.census_path().display()))?;
        }
        Ok(())
    }

    /// Jail `uuid` now bears `tag` (with the global lock held, once the backend has
    /// it: a jail just made, or a change of tag): its entry is settled with the stamp
    /// the backend gives now (without one it is unsettled, and read next time).
    pub(super) fn census_note(&self, uuid: &str, tag: &str) {
        let mut c = self.census_read();
        if c.jails.is_empty() {
            // no census yet: the next use builds one from a full read
            return;
        }
        let stamp = self.backend.census_stamp(uuid).unwrap_or_default();
        c.jails.insert(
            uuid.to_string(),
            Entry {
                tag: tag.to_string(),
                stamp,
            },
        );
        self.census_store(&c);
    }

    /// Jail `uuid` is gone (destroyed): its entry goes if the global lock is free at
    /// once (otherwise the next use finds it gone).
    pub(super) fn census_forget(&self, uuid: &str) {
        let Some(_g) = self.try_lock_global() else {
            return;
        };
        let mut c = self.census_read();
        if c.jails.remove(uuid).is_some() {
            self.census_store(&c);
        }
    }

    /// After a full read: a jail whose tag the census has wrong, or that it lacks
    /// (changed or made behind jailctl's back), drops it.
    pub(super) fn census_check(&self, all: &[Jail]) {
        let c = self.census_read();
        if c.jails.is_empty() {
            return;
        }
        let wrong = all.iter().any(|j| match c.jails.get(&j.uuid) {
            None => true,
            Some(e) => !e.stamp.is_empty() && e.tag != j.tag(),
        });
        if wrong {
            tracing::info!("jails changed outside jailctl; the tag census is rebuilt");
            self.census_drop();
        }
    }
}
