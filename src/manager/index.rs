//! The TAG index: `RUN/tags/BACKEND/HEX(TAG)` holds the UUID of the jail with that TAG, so
//! that naming a jail by TAG reads that jail alone.
//!
//! It is a positive cache that cannot mislead: an entry only ever says "this jail
//! bore this TAG", and every use checks it against the jail's own `tag` (a wrong
//! entry is dropped). Whatever it cannot answer (a TAG it lacks, a UUID prefix, a
//! name found nowhere) is answered by a full scan. The uniqueness of tags at `create`
//! and `set tag=` is checked under the global lock against the tag census
//! ([`super::census`]), which re-reads every jail whose stamp changed.
//! Entries are written by `create` and `set tag=` (under the global lock), and added
//! after a full scan only while nobody holds that lock, each checked again against the
//! jail as stored. A TAG borne by several jails (given by hand) has no entry once a
//! scan has seen it. Entries are renamed into place without fsync: the index is in the
//! run directory, rebuilt after a reboot, and checked on use.

use std::fs;
use std::path::PathBuf;

use super::error::{io_at, Result};
use super::{Jail, Manager};

const DIR: &str = "tags";

fn file_name(tag: &str) -> String {
    tag.bytes().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
fn tag_of(file: &str) -> Option<String> {
    if file.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..file.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(file.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

impl Manager {
    /// In the run directory, one per backend: a cache, built again after a reboot.
    fn index_dir(&self) -> Result<PathBuf> {
        Ok(self.run.join(DIR).join(self.backend_key()))
    }

    /// The UUID the index gives for `tag`.
    pub(super) fn index_get(&self, tag: &str) -> Option<String> {
        let p = self.index_dir().ok()?.join(file_name(tag));
        let uuid = fs::read_to_string(p).ok()?;
        let uuid = uuid.trim();
        super::resolve::is_uuid(uuid).then(|| uuid.to_string())
    }

    /// Record that `tag` names `uuid` (call with the global lock held).
    pub(super) fn index_put(&self, tag: &str, uuid: &str) -> Result<()> {
        let dir = self.index_dir()?;
        fs::create_dir_all(&dir).map_err(io_at(dir.display()))?;
        let p = dir.join(file_name(tag));
        let tmp = dir.join(format!(".{}.{}", file_name(tag), std::process::id()));
        fs::write(&tmp, uuid)
            .and_then(|_| fs::rename(&tmp, &p))
            .map_err(io_at(p.display()))
    }

    /// Forget `tag` if it still names `uuid` (call with the global lock held).
    pub(super) fn index_forget(&self, tag: &str, uuid: &str) {
        if self.index_get(tag).as_deref() == Some(uuid) {
            if let Ok(d) = self.index_dir() {
                let _ = fs::remove_file(d.join(file_name(tag)));
            }
        }
    }

    /// Forget `tag` whatever it names (a TAG found on several jails).
    pub(super) fn index_drop(&self, tag: &str) {
        if let Ok(d) = self.index_dir() {
            let _ = fs::remove_file(d.join(file_name(tag)));
        }
    }

    /// After a full scan (`all`, sorted by tag): a TAG borne by several jails (given by
    /// hand) is dropped, and a unique TAG the index lacks is added. Done only when the
    /// global lock is free at once (a create or `set tag=` under way may change tags
    /// after the scan), and each change checked again against the jail as stored now.
    pub(super) fn sync_index(&self, all: &[Jail]) {
        let Some(_g) = self.try_lock_global() else {
            return;
        };
        self.census_check(all);
        let Ok(dir) = self.index_dir() else {
            return;
        };
        let present: std::collections::BTreeSet<String> = match fs::read_dir(&dir) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Default::default(),
        };
        for (i, j) in all.iter().enumerate() {
            let t = j.tag();
            if t.is_empty() {
                continue;
            }
            let dup =
                all.get(i + 1).is_some_and(|n| n.tag() == t) || i > 0 && all[i - 1].tag() == t;
            if dup {
                self.index_drop(t);
            } else if !present.contains(&file_name(t)) && self.still_tagged(&j.uuid, t) {
                if let Err(e) = self.index_put(t, &j.uuid) {
                    tracing::debug!(error = %e, tag = t, "could not write a tag index entry");
                }
            }
        }
    }

    /// Does jail `uuid`, as stored now, bear `tag`?
    fn still_tagged(&self, uuid: &str, tag: &str) -> bool {
        matches!(self.backend.read_jail(uuid), Ok(Some(r))
            if !r.incomplete && r.props.get("tag").map(String::as_str) == Some(tag))
    }

    /// `reindex`: rebuild the TAG index from a full scan, under the global lock: an
    /// entry for every unique TAG, nothing else.
    pub fn reindex(&self) -> Result<usize> {
        let _g = self.lock_global()?;
        self.census_drop();
        let all = self.jails()?;
        self.tags_in_use()?;
        let dir = self.index_dir()?;
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        let mut count: std::collections::BTreeMap<&str, usize> = Default::default();
        for j in all.iter().filter(|j| !j.tag().is_empty()) {
            *count.entry(j.tag()).or_default() += 1;
        }
        for j in &all {
            if count.get(j.tag()) == Some(&1) {
                if let Err(e) = self.index_put(j.tag(), &j.uuid) {
                    tracing::warn!(error = %e, tag = j.tag(), "could not write a tag index entry");
                }
            }
        }
        Ok(all.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_through_file_names() {
        for t in ["web", "2026-11-23@01:02:03", ".", "..", "é"] {
            let f = file_name(t);
            assert!(f.chars().all(|c| c.is_ascii_hexdigit()), "{f}");
            assert_eq!(tag_of(&f).as_deref(), Some(t));
        }
        assert_eq!(tag_of(".x.123"), None);
    }
}
