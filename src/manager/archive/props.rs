//! Which of an archive's properties an import keeps. An archive is untrusted bytes
//! (its `.sha256` only detects corruption): a property that acts on the host or
//! loosens the jail's confinement would turn `import` + `start` into host root code
//! execution. So by default only an allow-list of inert properties is taken; the
//! rest get this host's defaults and are reported. `import --trust` keeps them all
//! (for an archive the admin made). The read-only properties are never taken as
//! given, trusted or not: `type` follows the archive's layout, `release` must name
//! a release of this host exactly, `uuid` must be a UUID, the others are rebuilt.

use std::collections::BTreeMap;

use crate::manager::error::{invalid, Result};
use crate::manager::props::{self, Kind, Source};

/// Properties an untrusted archive may set: names, notes and settings that only act
/// inside the jail or only restrict it. (`Rctl` limits are kept too.)
const INERT: &[&str] = &[
    "tag",
    "notes",
    "owner",
    "host_hostname",
    "host_domainname",
    "hostid",
    "resolver",
    "login_flags",
    "exec_start",
    "exec_stop",
    "exec_clean",
    "exec_jail_user",
    "exec_timeout",
    "stop_timeout",
    "istemplate",
    "priority",
    "depends",
    "compression",
    "quota",
    "rlimits",
    "cpuset",
];

/// Never taken from an archive, whatever `--trust` says: rebuilt by the import.
const REBUILT: &[&str] = &[
    "uuid",
    "host_hostuuid",
    "type",
    "release",
    "origin",
    "last_started",
    "jail_zfs",
    "jail_zfs_dataset",
];

/// Is `name` taken from an untrusted archive?
pub fn inert(name: &str) -> bool {
    INERT.contains(&name)
        || props::lookup(name).is_ok_and(|p| p.kind != Kind::ReadOnly && p.source == Source::Rctl)
}

/// What an import takes from an archive.
pub struct Imported {
    /// The properties to store (without `uuid`, `type`, `release`).
    pub props: BTreeMap<String, String>,
    /// The archive's UUID, if it is one.
    pub uuid: Option<String>,
    /// The jail's type, from the layout.
    pub ty: &'static str,
    /// The release (checked), or `none`.
    pub release: String,
    /// `name=value` pairs of the archive that were not imported (reset to default).
    pub dropped: Vec<String>,
}

/// Sort an archive's properties. `thin`: the archive holds an overlay's upper layer
/// over `release`; `releases`: this host's releases; `trust`: keep the host-side
/// properties too.
pub fn filter(
    archived: &BTreeMap<String, String>,
    defaults: &BTreeMap<String, String>,
    thin: bool,
    releases: &[String],
    trust: bool,
) -> Result<Imported> {
    let mut out = BTreeMap::new();
    let mut dropped = Vec::new();
    for (k, v) in archived {
        let prop = props::lookup(k)?;
        if REBUILT.contains(&k.as_str()) || prop.kind == Kind::ReadOnly {
            continue;
        }
        let v = props::validate(k, v)?;
        if trust || inert(k) {
            out.insert(k.clone(), v);
        } else if defaults.get(k.as_str()) != Some(&v) {
            dropped.push(format!("{k}={}", v.escape_debug()));
        }
    }
    let release = archived
        .get("release")
        .map(String::as_str)
        .unwrap_or("none");
    let release = if releases.iter().any(|r| r == release) {
        release.to_string()
    } else if !thin && release == "none" {
        release.to_string()
    } else {
        return Err(invalid(format!(
            "import: the archive's release \"{}\" is not a release of this host ({}): fetch it first",
            release.escape_debug(),
            if releases.is_empty() {
                "none fetched".to_string()
            } else {
                releases.join(", ")
            }
        )));
    };
    let uuid = archived
        .get("uuid")
        .filter(|u| crate::manager::resolve::is_uuid(u))
        .cloned();
    Ok(Imported {
        props: out,
        uuid,
        ty: if thin { "basejail" } else { "thickjail" },
        release,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn host_side_properties_are_dropped_unless_trusted() {
        let a = m(&[
            ("exec_prestart", "/bin/sh -c id"),
            ("boot", "on"),
            ("notes", "hi"),
            ("memoryuse", "1G:deny"),
            ("type", "basejail"),
            ("release", "r1"),
        ]);
        let d = m(&[("boot", "off")]);
        let rel = vec!["r1".to_string()];
        let i = filter(&a, &d, false, &rel, false).unwrap();
        assert_eq!(i.props, m(&[("notes", "hi"), ("memoryuse", "1G:deny")]));
        assert_eq!(i.ty, "thickjail");
        assert!(i.dropped.iter().any(|x| x.starts_with("exec_prestart=")));
        assert!(i.dropped.iter().any(|x| x == "boot=on"));
        let t = filter(&a, &d, true, &rel, true).unwrap();
        assert_eq!(t.props.get("boot").unwrap(), "on");
        assert!(!t.props.contains_key("type"));
        assert_eq!(t.ty, "basejail");
    }

    #[test]
    fn release_must_exist_exactly() {
        let rel = vec!["r1".to_string()];
        for bad in ["../../proc/self", "r1/..", "r1,upperdir=/", "r2", ""] {
            let a = m(&[("release", bad)]);
            assert!(
                filter(&a, &BTreeMap::new(), true, &rel, true).is_err(),
                "{bad}"
            );
        }
        assert!(filter(&m(&[]), &BTreeMap::new(), true, &rel, true).is_err());
        assert_eq!(
            filter(&m(&[]), &BTreeMap::new(), false, &rel, true)
                .unwrap()
                .release,
            "none"
        );
    }
}
