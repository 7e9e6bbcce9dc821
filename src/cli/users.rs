//! User and group lookup in a passwd/group database under a root directory (the host's
//! `/`, or a jail's root once attached), as jexec(8) `-u` / `-U` need.

use std::path::Path;

/// A resolved user: uid, primary gid and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
    pub shell: String,
}

/// Look `name` (or a numeric uid) up in `root/etc/passwd` and `root/etc/group`.
pub fn lookup(root: &Path, name: &str) -> Result<User, String> {
    let pw_path = root.join("etc/passwd");
    let passwd =
        std::fs::read_to_string(&pw_path).map_err(|e| format!("{}: {e}", pw_path.display()))?;
    let groups = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
    parse(&passwd, &groups, name)
        .ok_or_else(|| format!("unknown user \"{name}\" (not in {})", pw_path.display()))
}

/// The pure part of [`lookup`].
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

    #[test]
    fn finds_user_and_groups() {
        let pw = "root:x:0:0:root:/root:/bin/sh\nwww:x:80:80:web:/var/www:/bin/false\n";
        let gr = "wheel:x:0:root\nwww:x:80:\nlog:x:90:www,root\n";
        let u = parse(pw, gr, "www").unwrap();
        assert_eq!((u.uid, u.gid, u.groups.clone()), (80, 80, vec![80, 90]));
        assert_eq!(parse(pw, gr, "80").unwrap().name, "www");
        assert!(parse(pw, gr, "nobody").is_none());
    }
}
