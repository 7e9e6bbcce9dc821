//! User and group lookup for jexec(8) `-u` / `-U`: the passwd and group databases of
//! the host, of the jail the caller is attached to, or of a jail's root seen from the
//! host.
//!
//! A jail's databases are written by the jail, so they are read as untrusted input:
//! a path is resolved inside the jail's root (after [`crate::jail::attach`] the
//! caller's root *is* the jail's; from the host through `RootDir`, which keeps a
//! symlink such as `/etc/passwd -> /host/file` inside the root), the open never
//! blocks (a FIFO or a device in place of the file is refused), and the size is
//! capped.

use std::path::{Path, PathBuf};

use crate::sys::unix as sys;

/// The passwd database, relative to a root.
pub const PASSWD: &str = "/etc/passwd";
/// The group database, relative to a root.
pub const GROUP: &str = "/etc/group";
/// The largest database read (bytes).
pub const MAX_DB: u64 = 16 << 20;

/// A resolved user: uid, primary gid and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The primary gid first, then every group that lists the user as a member.
    pub groups: Vec<u32>,
    pub home: String,
    pub shell: String,
}

/// Why a user could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown user \"{name}\" (not in {path})")]
    Unknown { name: String, path: String },
}

/// Look `name` (or a numeric uid) up in the caller's root: the host's databases, or
/// the jail's once the caller is attached to it.
pub fn lookup(name: &str) -> Result<User, UserError> {
    lookup_with(name, PASSWD.to_string(), |p| {
        sys::read_regular_file(Path::new(p), MAX_DB)
    })
}

/// Look `name` up in the host's databases (jexec `-U`). Must be called before
/// attaching to a jail.
pub fn lookup_host(name: &str) -> Result<User, UserError> {
    lookup(name)
}

/// Look `name` up in the databases under a jail's root `root`, from the host: every
/// path is resolved inside the root.
pub fn lookup_in_root(root: &Path, name: &str) -> Result<User, UserError> {
    let shown = root.join(PASSWD.trim_start_matches('/'));
    let dir = crate::sys::os::RootDir::open(root).map_err(|source| UserError::Read {
        path: shown.display().to_string(),
        source,
    })?;
    lookup_with(name, shown.display().to_string(), |p| {
        sys::read_regular_file_in(&dir, &PathBuf::from(p), MAX_DB)
    })
}

/// The lookup with a given reader of `PASSWD` / `GROUP`; `shown` names the passwd
/// database in messages. A missing or unreadable group database means no
/// supplementary groups.
fn lookup_with(
    name: &str,
    shown: String,
    read: impl Fn(&str) -> std::io::Result<Vec<u8>>,
) -> Result<User, UserError> {
    let passwd = read(PASSWD).map_err(|source| UserError::Read {
        path: shown.clone(),
        source,
    })?;
    let group = read(GROUP).unwrap_or_default();
    parse(
        &String::from_utf8_lossy(&passwd),
        &String::from_utf8_lossy(&group),
        name,
    )
    .ok_or_else(|| UserError::Unknown {
        name: name.to_string(),
        path: shown,
    })
}

/// The pure part of the lookups: `name` is a user name or, when numeric, also a uid
/// (the first line that matches either wins). Lines with fewer than seven fields or a
/// non-numeric uid/gid are skipped.
pub fn parse(passwd: &str, group: &str, name: &str) -> Option<User> {
    let by_uid = name.parse::<u32>().ok();
    let line = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| {
            f.len() >= 7
                && (f[0] == name || (by_uid.is_some() && f[2].parse::<u32>().ok() == by_uid))
        })?;
    let uid = line[2].parse().ok()?;
    let gid = line[3].parse().ok()?;
    let mut groups = vec![gid];
    for g in group.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
        if g.len() >= 4 && g[3].split(',').any(|m| m == line[0]) {
            if let Ok(id) = g[2].parse::<u32>() {
                if !groups.contains(&id) {
                    groups.push(id);
                }
            }
        }
    }
    Some(User {
        name: line[0].to_string(),
        uid,
        gid,
        groups,
        home: line[5].to_string(),
        shell: line[6].to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:80:80:web:/var/www:/bin/false\n";
    const GR: &str = "wheel:x:0:root\nwww:x:80:\nlog:x:90:www,root\n";

    #[test]
    fn finds_user_and_groups() {
        let u = parse(PW, GR, "www").unwrap();
        assert_eq!((u.uid, u.gid, u.groups.clone()), (80, 80, vec![80, 90]));
        assert_eq!(
            (u.home.as_str(), u.shell.as_str()),
            ("/var/www", "/bin/false")
        );
        assert_eq!(parse(PW, GR, "80").unwrap().name, "www");
        assert!(parse(PW, GR, "nobody").is_none());
        // root: primary 0, member of log (wheel's 0 is not repeated)
        assert_eq!(parse(PW, GR, "root").unwrap().groups, vec![0, 90]);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let pw = "short:x:1\nbad:x:uid:1:::/bin/sh\nok:x:5:6:::/bin/sh\n";
        assert!(parse(pw, "", "short").is_none());
        assert!(parse(pw, "", "bad").is_none());
        let u = parse(pw, "g:x:notanumber:ok\n", "ok").unwrap();
        assert_eq!((u.uid, u.groups.clone()), (5, vec![6]));
        // a name is matched before a numeric uid only by line order
        let pw = "5:x:7:7:::/bin/sh\nfive:x:5:5:::/bin/sh\n";
        assert_eq!(parse(pw, "", "5").unwrap().uid, 7);
    }

    #[test]
    fn lookup_in_a_root_stays_inside_it() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir(root.join("etc")).unwrap();
        // /etc/passwd -> /etc/host-passwd: resolved inside the root, not on the host
        std::fs::write(root.join("etc/host-passwd"), "inside:x:7:7:::/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/etc/host-passwd", root.join("etc/passwd")).unwrap();
        assert_eq!(lookup_in_root(root, "inside").unwrap().uid, 7);
        let e = lookup_in_root(root, "root").unwrap_err();
        assert!(matches!(e, UserError::Unknown { .. }), "{e}");
        // a symlink out of the root does not read the host's file
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/passwd", root.join("etc/passwd"))
            .unwrap();
        assert!(lookup_in_root(root, "root").is_err());
        // a directory (or FIFO) in place of the file is refused, not waited on
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        std::fs::create_dir(root.join("etc/passwd")).unwrap();
        let e = lookup_in_root(root, "root").unwrap_err();
        assert!(matches!(e, UserError::Read { .. }), "{e}");
    }
}
