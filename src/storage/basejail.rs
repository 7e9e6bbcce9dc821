//! A FreeBSD basejail on the directory backend, the way iocage(8) builds them: the
//! release's base system directories are nullfs-mounted read-only into a writable
//! jail root, which holds its own copy of everything else (`/etc`, `/var`, `/root`,
//! `/usr/local`, ...). (On Linux a thin jail is an overlay of the whole release.)

use std::path::{Path, PathBuf};

use super::{io_err, StorageError};

/// The release directories a basejail shares read-only.
pub const BASE_DIRS: [&str; 14] = [
    "bin",
    "boot",
    "lib",
    "libexec",
    "rescue",
    "sbin",
    "usr/bin",
    "usr/include",
    "usr/lib",
    "usr/lib32",
    "usr/libdata",
    "usr/libexec",
    "usr/sbin",
    "usr/share",
];

/// What making a basejail's root does with one entry of the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Copied into the jail's root (the jail's own, writable).
    Copy(PathBuf),
    /// An empty directory, where the release's is mounted read-only at start.
    MountPoint(PathBuf),
    /// A directory made to hold the entries below it (`usr`).
    Dir(PathBuf),
}

/// The steps for a release whose top-level entries are `top` and whose `usr/`
/// entries are `usr` (relative names).
pub fn plan(top: &[String], usr: &[String]) -> Vec<Step> {
    let mut out = Vec::new();
    for t in top {
        if t == "usr" {
            out.push(Step::Dir("usr".into()));
            for u in usr {
                let rel = format!("usr/{u}");
                out.push(if BASE_DIRS.contains(&rel.as_str()) {
                    Step::MountPoint(rel.into())
                } else {
                    Step::Copy(rel.into())
                });
            }
        } else if BASE_DIRS.contains(&t.as_str()) {
            out.push(Step::MountPoint(t.into()));
        } else {
            out.push(Step::Copy(t.into()));
        }
    }
    out
}

/// The base directories this release has (each is mounted at start).
pub fn shared_dirs(release: &Path) -> Vec<PathBuf> {
    BASE_DIRS
        .iter()
        .map(PathBuf::from)
        .filter(|d| release.join(d).is_dir())
        .collect()
}

fn names(dir: &Path) -> Result<Vec<String>, StorageError> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    Ok(v)
}

/// Make the writable root of a basejail of `release` at `root`.
pub fn make_root(release: &Path, root: &Path) -> Result<(), StorageError> {
    let top = names(release)?;
    let usr = if release.join("usr").is_dir() {
        names(&release.join("usr"))?
    } else {
        vec![]
    };
    std::fs::create_dir_all(root).map_err(io_err(root))?;
    for step in plan(&top, &usr) {
        match step {
            Step::Dir(d) | Step::MountPoint(d) => {
                let p = root.join(&d);
                std::fs::create_dir_all(&p).map_err(io_err(&p))?;
            }
            Step::Copy(rel) => {
                let (from, to) = (release.join(&rel), root.join(&rel));
                if std::fs::symlink_metadata(&from)
                    .map(|m| m.is_dir())
                    .unwrap_or(false)
                {
                    std::fs::create_dir_all(&to).map_err(io_err(&to))?;
                    crate::sys::tool::copy_tree(&from, &to)?;
                } else {
                    crate::sys::tool::copy_entry(&from, &to)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn a_freebsd_release_splits_into_shared_and_own() {
        // `ls /` and `ls /usr` of an extracted FreeBSD 14.1 base.txz
        let top = v("COPYRIGHT bin boot dev etc lib libexec media mnt net proc rescue root sbin tmp usr var");
        let usr = v("bin include lib lib32 libdata libexec local obj sbin share src tests");
        let p = plan(&top, &usr);
        let mounts: Vec<String> = p
            .iter()
            .filter_map(|s| match s {
                Step::MountPoint(d) => Some(d.display().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            mounts,
            v("bin boot lib libexec rescue sbin usr/bin usr/include usr/lib usr/lib32 usr/libdata usr/libexec usr/sbin usr/share")
        );
        let copies: Vec<String> = p
            .iter()
            .filter_map(|s| match s {
                Step::Copy(d) => Some(d.display().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            copies,
            v("COPYRIGHT dev etc media mnt net proc root tmp usr/local usr/obj usr/src usr/tests var")
        );
        assert!(p.contains(&Step::Dir("usr".into())));
    }

    #[test]
    fn a_root_is_made_from_a_release_tree() {
        let d = tempfile::tempdir().unwrap();
        let rel = d.path().join("rel");
        for p in ["bin", "etc", "usr/bin", "usr/local/etc"] {
            std::fs::create_dir_all(rel.join(p)).unwrap();
        }
        std::fs::write(rel.join("etc/rc.conf"), "x").unwrap();
        std::fs::write(rel.join("bin/sh"), "sh").unwrap();
        std::fs::write(rel.join("COPYRIGHT"), "c").unwrap();
        let root = d.path().join("root");
        make_root(&rel, &root).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("etc/rc.conf")).unwrap(),
            "x"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("COPYRIGHT")).unwrap(),
            "c"
        );
        assert!(root.join("usr/local/etc").is_dir());
        // shared directories are empty mount points
        assert!(root.join("bin").is_dir() && !root.join("bin/sh").exists());
        assert!(root.join("usr/bin").is_dir());
        assert_eq!(
            shared_dirs(&rel),
            [PathBuf::from("bin"), PathBuf::from("usr/bin")]
        );
    }
}
