//! The tag census: which TAG each jail bears, kept in the run directory
//! (`RUN/tags/BACKEND.census`) with each jail's stamp from the backend
//! ([`crate::storage::Backend::census`]), so that `create` and `set tag=` check that a
//! TAG is unique without reading every jail: a jail is read again whenever its stamp
//! changed or it has none (directory backend: its configuration file was replaced or
//! touched, or is less than two seconds old), a new jail is read, a jail gone is
//! dropped. It is used and written with the global lock held only, where every change
//! of tag jailctl makes happens. A full read of the jails (`list`) that finds a tag
//! the census has wrong drops the census (the next use rebuilds it by reading every
//! jail), and so does `reindex`. A backend without a census (none so far) reads every
//! jail each time.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::Result;
use super::{Jail, Manager};

/// More jails than this to read: one read of them all instead of one each.
const BULK: usize = 8;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Census {
    jails: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    tag: String,
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

    fn census_write(&self, c: &Census) {
        let p = self.census_path();
        let res = p.parent().map_or(Ok(()), fs::create_dir_all).and_then(|_| {
            let tmp = p.with_extension(format!("census.{}", std::process::id()));
            fs::write(&tmp, serde_json::to_vec(c).unwrap_or_default())
                .and_then(|_| fs::rename(&tmp, &p))
        });
        if let Err(e) = res {
            tracing::debug!(error = %e, "could not write the tag census");
        }
    }

    /// Forget the census: the next use reads every jail.
    pub(super) fn census_drop(&self) {
        let _ = fs::remove_file(self.census_path());
    }

    /// Every jail's (TAG, UUID), with the global lock held: from the census for a jail
    /// whose stamp has not changed, read from the backend otherwise.
    pub(super) fn tags_in_use(&self) -> Result<Vec<(String, String)>> {
        let Some(present) = self.backend.census()? else {
            return Ok(self
                .jails()?
                .iter()
                .map(|j| (j.tag().to_string(), j.uuid.clone()))
                .collect());
        };
        let old = self.census_read();
        let unknown = present
            .iter()
            .filter(|(u, s)| s.is_none() || old.jails.get(u).map(|e| &e.stamp) != s.as_ref())
            .count();
        // Many to read (a census to build): one read of them all, after the stamps
        // were taken (a change in between leaves a stamp that no longer matches).
        let mut bulk: Option<BTreeMap<String, crate::storage::Record>> = None;
        if unknown > BULK {
            bulk = Some(
                self.backend
                    .list_jails()?
                    .into_iter()
                    .map(|r| (r.uuid.clone(), r))
                    .collect(),
            );
        }
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
                        Some(r) => r.props.get("tag").cloned().unwrap_or_default(),
                        None => continue,
                    }
                }
            };
            if let Some(stamp) = stamp {
                new.jails.insert(
                    uuid.clone(),
                    Entry {
                        tag: tag.clone(),
                        stamp,
                    },
                );
            }
            out.push((tag, uuid));
        }
        if read || new.jails.len() != old.jails.len() {
            self.census_write(&new);
        }
        Ok(out)
    }

    /// Jail `uuid` now bears `tag` (with the global lock held, once the backend has it).
    pub(super) fn census_retag(&self, uuid: &str, tag: &str) {
        let mut c = self.census_read();
        if let Some(e) = c.jails.get_mut(uuid) {
            e.tag = tag.to_string();
            self.census_write(&c);
        }
    }

    /// After a full read: a jail whose tag the census has wrong (changed behind
    /// jailctl's back) drops it.
    pub(super) fn census_check(&self, all: &[Jail]) {
        let c = self.census_read();
        if all
            .iter()
            .any(|j| c.jails.get(&j.uuid).is_some_and(|e| e.tag != j.tag()))
        {
            tracing::info!("a jail's tag changed outside jailctl; the tag census is rebuilt");
            self.census_drop();
        }
    }
}
