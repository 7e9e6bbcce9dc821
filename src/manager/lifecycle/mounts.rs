//! The mounts of a running jail: its root (a thin jail's release), the fstab lines,
//! FreeBSD's devfs, fdescfs and procfs. What to mount is worked out by pure functions;
//! [`Manager::unmount_recorded`] undoes exactly what the run state recorded.

use std::path::{Path, PathBuf};

use crate::manager::config::JailConfig;
use crate::manager::error::{invalid, ManagerError, Result};
use crate::manager::host::MountSpec;
use crate::manager::Manager;
use crate::storage::RootLayout;
use crate::sys::Os;

/// The mounts that build a jail's root: a thin jail is an overlay of the release with
/// its own upper layer on Linux; on FreeBSD its own writable root with the release's
/// base directories nullfs-mounted read-only into it (resolved inside the root, which
/// the jail can change), as iocage does.
pub fn root_mounts(layout: &RootLayout, os: Os) -> Vec<MountSpec> {
    match layout {
        RootLayout::InPlace => vec![],
        RootLayout::Thin {
            release,
            lower,
            upper,
            work,
            target,
            shared,
        } => {
            let what = format!("release {release}");
            if os == Os::FreeBsd {
                return shared
                    .iter()
                    .map(|d| MountSpec::InRoot {
                        root: target.clone(),
                        fstype: "nullfs".into(),
                        source: lower.join(d),
                        rel: d.clone(),
                        opts: "ro".into(),
                        mkdir: true,
                        on_mount: None,
                        what: format!("{what} /{}", d.display()),
                    })
                    .collect();
            }
            vec![MountSpec::Host {
                fstype: "overlay".into(),
                source: PathBuf::from("overlay"),
                target: target.clone(),
                opts: format!(
                    "lowerdir={},upperdir={},workdir={}",
                    lower.display(),
                    upper.display(),
                    work.display()
                ),
                what,
            }]
        }
    }
}

/// The jail's fstab (`source target type [options]`, targets inside the jail) as
/// mounts inside its root; the target of a directory source is made when it is
/// mounted. A malformed line fails the whole file, before any mount.
pub fn fstab_mounts(text: &str, fstab: &Path, root: &Path) -> Result<Vec<MountSpec>> {
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 {
            return Err(invalid(format!(
                "{}:{n}: expected \"source target type [options]\"",
                fstab.display()
            )));
        }
        // The target is inside the jail: resolved by the kernel inside its root, so
        // a symlink the jail planted cannot send the mount elsewhere.
        let rel = match Path::new(f[1]).strip_prefix(root) {
            Ok(r) => r.to_path_buf(),
            Err(_) => PathBuf::from(f[1].trim_start_matches('/')),
        };
        out.push(MountSpec::InRoot {
            root: root.to_path_buf(),
            fstype: f[2].to_string(),
            source: PathBuf::from(f[0]),
            rel,
            opts: f.get(3).copied().unwrap_or("rw").to_string(),
            mkdir: true,
            on_mount: None,
            what: format!("fstab line {n}"),
        });
    }
    Ok(out)
}

/// FreeBSD's devfs (with the jail's ruleset), fdescfs and procfs, as the jail's
/// `mount_*` properties ask; a Linux jail has its own /proc and /dev already.
pub fn filesystem_mounts(c: &JailConfig, root: &Path, os: Os) -> Vec<MountSpec> {
    if os != Os::FreeBsd {
        return vec![];
    }
    let ruleset = format!("ruleset={}", c.devfs_ruleset);
    [
        (
            c.mount_devfs,
            "mount_devfs",
            "devfs",
            "dev",
            ruleset.as_str(),
        ),
        (c.mount_fdescfs, "mount_fdescfs", "fdescfs", "dev/fd", "rw"),
        (c.mount_procfs, "mount_procfs", "procfs", "proc", "rw"),
    ]
    .into_iter()
    .filter(|(on, ..)| *on)
    .map(|(_, prop, fstype, dir, opts)| MountSpec::InRoot {
        root: root.to_path_buf(),
        fstype: fstype.into(),
        source: PathBuf::from(fstype),
        rel: PathBuf::from(dir),
        opts: opts.into(),
        mkdir: false,
        on_mount: None,
        what: prop.into(),
    })
    .collect()
}

impl Manager {
    /// Undo the mounts the run state records, last first, forgetting each once it
    /// is gone; the first failure stops (and stays recorded). The state goes at the
    /// end, unless network objects are still recorded in it ([`Manager::undo_network`]
    /// failed): they stay for the next stop, start or destroy.
    pub(crate) fn unmount_recorded(&self, uuid: &str) -> Result<()> {
        self.release_limits(uuid)?;
        let mut st = self.read_state(uuid);
        while let Some(m) = st.mounts.pop() {
            if let Err(e) = self.host.unmount(&m) {
                let err = ManagerError::Step {
                    jail: uuid.to_string(),
                    step: format!("unmount {} ({})", m.target.display(), m.what),
                    msg: e.to_string(),
                };
                st.mounts.push(m);
                self.write_state(uuid, &st)?;
                return Err(err);
            }
            self.write_state(uuid, &st)?;
        }
        if st.net.is_empty() {
            self.forget_state(uuid);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::props;

    #[test]
    fn a_thin_root_per_os() {
        let l = RootLayout::Thin {
            release: "14.1-RELEASE".into(),
            lower: "/rel/root".into(),
            upper: "/j/upper".into(),
            work: "/j/work".into(),
            target: "/j/root".into(),
            shared: vec!["bin".into(), "usr/lib".into()],
        };
        let MountSpec::Host {
            fstype,
            opts,
            source,
            ..
        } = &root_mounts(&l, Os::Linux)[0]
        else {
            panic!()
        };
        assert_eq!(fstype, "overlay");
        assert_eq!(source, Path::new("overlay"));
        assert_eq!(opts, "lowerdir=/rel/root,upperdir=/j/upper,workdir=/j/work");
        // FreeBSD: each shared base directory, read-only, inside the jail's own root
        let m = root_mounts(&l, Os::FreeBsd);
        let got: Vec<(String, String, String, String)> = m
            .iter()
            .map(|s| match s {
                MountSpec::InRoot {
                    root,
                    fstype,
                    source,
                    rel,
                    opts,
                    ..
                } => {
                    assert_eq!(root, Path::new("/j/root"));
                    assert_eq!(fstype, "nullfs");
                    (
                        source.display().to_string(),
                        rel.display().to_string(),
                        opts.clone(),
                        s.what().to_string(),
                    )
                }
                _ => panic!("{s:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/rel/root/bin".to_string(),
                    "bin".to_string(),
                    "ro".to_string(),
                    "release 14.1-RELEASE /bin".to_string()
                ),
                (
                    "/rel/root/usr/lib".into(),
                    "usr/lib".into(),
                    "ro".into(),
                    "release 14.1-RELEASE /usr/lib".into()
                )
            ]
        );
        assert!(root_mounts(&RootLayout::InPlace, Os::FreeBsd).is_empty());
    }

    #[test]
    fn fstab_lines_are_mounts_inside_the_root() {
        let text = "# comment\n\n/data /mnt/data nullfs ro 0 0\n/tmp/x /j/root/opt tmpfs\n";
        let m = fstab_mounts(text, Path::new("/j/fstab"), Path::new("/j/root")).unwrap();
        assert_eq!(m.len(), 2);
        let MountSpec::InRoot {
            rel,
            opts,
            mkdir,
            what,
            fstype,
            ..
        } = &m[0]
        else {
            panic!()
        };
        assert_eq!(rel, Path::new("mnt/data"));
        assert_eq!(
            (opts.as_str(), *mkdir, fstype.as_str()),
            ("ro", true, "nullfs")
        );
        assert_eq!(what, "fstab line 3");
        // a target given with the root's path is taken relative to it; options default
        let MountSpec::InRoot { rel, opts, .. } = &m[1] else {
            panic!()
        };
        assert_eq!((rel.as_path(), opts.as_str()), (Path::new("opt"), "rw"));
        let e = fstab_mounts("/a /b\n", Path::new("/j/fstab"), Path::new("/j/root"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/j/fstab:1") && e.contains("source target type"),
            "{e}"
        );
    }

    #[test]
    fn freebsd_file_systems() {
        let mut p = props::schema_defaults();
        p.insert("mount_devfs".into(), "1".into());
        p.insert("mount_procfs".into(), "1".into());
        p.insert("mount_fdescfs".into(), "0".into());
        p.insert("devfs_ruleset".into(), "5".into());
        let c = JailConfig::parse("u", &p).unwrap();
        let m = filesystem_mounts(&c, Path::new("/j/root"), Os::FreeBsd);
        let got: Vec<(String, String, String)> = m
            .iter()
            .map(|s| match s {
                MountSpec::InRoot {
                    fstype, rel, opts, ..
                } => (fstype.clone(), rel.display().to_string(), opts.clone()),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("devfs".into(), "dev".into(), "ruleset=5".into()),
                ("procfs".into(), "proc".into(), "rw".into())
            ]
        );
        assert!(filesystem_mounts(&c, Path::new("/j/root"), Os::Linux).is_empty());
    }
}
