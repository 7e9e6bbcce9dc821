//! Finding jails: every jail in one read of the backend, one jail by UUID, unique
//! UUID prefix or TAG, and which of them run.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::error::{ManagerError, Result};
use super::{props, Jail, Manager};
use crate::storage::Record;

impl Manager {
    /// Schema defaults overlaid with the host defaults.
    pub fn defaults(&self) -> Result<BTreeMap<String, String>> {
        let mut d = props::schema_defaults();
        d.extend(self.backend.defaults()?);
        Ok(d)
    }

    /// Every jail, one read of the backend. Leftovers of interrupted creates whose
    /// creator is gone are removed on the way.
    pub fn jails(&self) -> Result<Vec<Jail>> {
        let records = self.backend.list_jails()?;
        let defaults = Arc::new(self.defaults()?);
        let mut out = Vec::new();
        for r in records {
            if r.incomplete {
                self.clean_incomplete(&r);
                continue;
            }
            out.push(to_jail(r, &defaults));
        }
        out.sort_by(|a, b| a.tag().cmp(b.tag()).then(a.uuid.cmp(&b.uuid)));
        self.sync_index(&out);
        Ok(out)
    }

    pub(super) fn clean_incomplete(&self, r: &Record) {
        if let Some(_l) = self.try_lock_jail(&r.uuid) {
            match self.backend.destroy_jail(&r.uuid) {
                Ok(()) => eprintln!(
                    "jailctl: removed jail {} left incomplete by an interrupted create or destroy",
                    r.uuid
                ),
                Err(e) => eprintln!("jailctl: could not remove incomplete jail {}: {e}", r.uuid),
            }
        }
    }

    /// UUID, TAG, or unique UUID prefix. A full UUID or an indexed TAG reads that jail
    /// alone (the entry checked against the jail's own tag); anything else (a UUID
    /// prefix, a TAG the index lacks or has wrong) is settled by a full scan, which
    /// also repairs the index.
    pub fn resolve(&self, key: &str) -> Result<Jail> {
        let one = |uuid: &str| -> Result<Option<Jail>> {
            Ok(match self.backend.read_jail(uuid)? {
                Some(r) if !r.incomplete => Some(to_jail(r, &Arc::new(self.defaults()?))),
                _ => None,
            })
        };
        if is_uuid(key) {
            if let Some(j) = one(key)? {
                return Ok(j);
            }
        } else if let Some(uuid) = self.index_get(key) {
            match one(&uuid)?.filter(|j| j.tag() == key) {
                Some(j) => return Ok(j),
                None => self.index_drop(key),
            }
        }
        resolve_in(self.jails()?, key)
    }

    /// The jail as stored now (call with its lock held, before a read-modify-write).
    pub(super) fn reread(&self, j: &Jail) -> Result<Jail> {
        match self.backend.read_jail(&j.uuid)? {
            Some(r) => Ok(to_jail(r, &Arc::new(self.defaults()?))),
            None => Err(ManagerError::NotFound(j.uuid.clone())),
        }
    }

    /// `ALL` (the usable jails) or one jail.
    pub fn resolve_many(&self, key: &str) -> Result<Vec<Jail>> {
        if key == "ALL" {
            return Ok(self
                .jails()?
                .into_iter()
                .filter(|j| j.problem.is_none())
                .collect());
        }
        Ok(vec![self.resolve(key)?])
    }

    /// The jails that are running, with their jid: one read of the jail layer.
    pub fn running(&self) -> Result<Vec<(Jail, i32)>> {
        let kernel: BTreeMap<String, i32> = self
            .jail_ops
            .list()?
            .into_iter()
            .filter(|i| !i.dying)
            .map(|i| (i.name, i.jid))
            .collect();
        Ok(self
            .jails()?
            .into_iter()
            .filter_map(|j| kernel.get(&j.kname()).map(|&jid| (j, jid)))
            .collect())
    }

    pub fn is_running(&self, j: &Jail) -> Option<i32> {
        self.jail_ops.jid(&j.kname())
    }
}

/// A stored record as a jail, its stored values checked against the schema.
fn to_jail(r: Record, defaults: &Arc<BTreeMap<String, String>>) -> Jail {
    let mut problem = r.problem;
    if problem.is_none() {
        for (k, v) in &r.props {
            if let Err(e) = props::lookup(k).and_then(|p| {
                if p.kind == props::Kind::ReadOnly {
                    Ok(String::new())
                } else {
                    props::validate(k, v)
                }
            }) {
                problem = Some(format!("stored property {k}={v}: {e}"));
                break;
            }
        }
    }
    Jail {
        uuid: r.uuid,
        stored: r.props,
        defaults: defaults.clone(),
        problem,
    }
}

pub(super) fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Resolve a key among jails: exact UUID, exact TAG, then unique UUID prefix.
pub fn resolve_in(all: Vec<Jail>, key: &str) -> Result<Jail> {
    if key.is_empty() {
        return Err(ManagerError::NotFound(key.into()));
    }
    if let Some(j) = all.iter().find(|j| j.uuid == key) {
        return Ok(j.clone());
    }
    let by_tag: Vec<&Jail> = all.iter().filter(|j| j.tag() == key).collect();
    if by_tag.len() == 1 {
        return Ok(by_tag[0].clone());
    }
    let by_prefix: Vec<&Jail> = all.iter().filter(|j| j.uuid.starts_with(key)).collect();
    match (by_tag.len(), by_prefix.len()) {
        (0, 1) => Ok(by_prefix[0].clone()),
        (0, 0) => Err(ManagerError::NotFound(key.into())),
        _ => Err(ManagerError::Ambiguous {
            key: key.into(),
            matches: by_tag
                .iter()
                .chain(by_prefix.iter())
                .map(|j| format!("{} ({})", j.uuid, j.tag()))
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(uuid: &str, tag: &str) -> Jail {
        let mut props = BTreeMap::new();
        props.insert("tag".to_string(), tag.to_string());
        Jail {
            uuid: uuid.into(),
            stored: props,
            defaults: Arc::new(BTreeMap::new()),
            problem: None,
        }
    }

    #[test]
    fn identity_resolution() {
        let all = vec![
            j("1234abcd-0000", "web"),
            j("1299ffff-0000", "db"),
            j("5555aaaa-0000", "5555"),
        ];
        assert_eq!(
            resolve_in(all.clone(), "web").unwrap().uuid,
            "1234abcd-0000"
        );
        assert_eq!(resolve_in(all.clone(), "1234").unwrap().tag(), "web");
        assert_eq!(
            resolve_in(all.clone(), "1299ffff-0000").unwrap().tag(),
            "db"
        );
        let e = resolve_in(all.clone(), "12").unwrap_err().to_string();
        assert!(
            e.contains("1234abcd-0000") && e.contains("1299ffff-0000"),
            "{e}"
        );
        assert!(matches!(
            resolve_in(all.clone(), "nope"),
            Err(ManagerError::NotFound(_))
        ));
        // a tag that is also a prefix of its own uuid names that one jail
        assert_eq!(resolve_in(all, "5555").unwrap().uuid, "5555aaaa-0000");
    }
}
