//! Files the daemon trusts with root's commands (the state file, the configuration
//! file): opened once without following a symbolic link, checked on the opened
//! descriptor (never by path, so nothing can be swapped between check and read), and
//! read from that same descriptor. Their directories must be root's (or the daemon's
//! user's) and writable by nobody else.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::sys::unix as sys;

/// What a trusted file must be, beyond a regular file.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Owned by the daemon's user itself (not only by root).
    pub own: bool,
    /// Mode bits that must be clear.
    pub clear: u32,
    /// At most one link (no hard link elsewhere).
    pub one_link: bool,
}

/// The state file: the daemon's own, 0600-ish, one link.
pub const STATE: Rules = Rules {
    own: true,
    clear: 0o077,
    one_link: true,
};

/// The configuration file: root's (or the daemon's user's), not writable by others.
pub const CONFIG: Rules = Rules {
    own: false,
    clear: 0o022,
    one_link: false,
};

fn owner_ok(uid: u32, own: bool) -> bool {
    let me = sys::geteuid();
    uid == me || (!own && uid == 0)
}

/// Why directory `dir` may not hold a trusted file: it must be owned by root (or
/// the daemon's user) and not writable by group or others (no sticky exception).
pub fn strict_dir(dir: &Path) -> Option<String> {
    let m = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e) => return Some(format!("directory {}: {e}", dir.display())),
    };
    if !m.is_dir() {
        return Some(format!("{} is not a directory", dir.display()));
    }
    if !owner_ok(m.uid(), false) {
        return Some(format!(
            "directory {} is owned by uid {}, not by root",
            dir.display(),
            m.uid()
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Some(format!(
            "directory {} is writable by group or others (mode {:o}); it must be writable by root only",
            dir.display(),
            m.mode() & 0o7777
        ));
    }
    None
}

/// Why an ancestor directory may not lead to a trusted file: owned by root (or the
/// daemon's user), and not writable by others unless sticky (where others cannot
/// rename or remove root's entries).
fn ancestor_dir(dir: &Path) -> Option<String> {
    let m = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e) => return Some(format!("directory {}: {e}", dir.display())),
    };
    if !owner_ok(m.uid(), false) {
        return Some(format!(
            "directory {} is owned by uid {}, not by root",
            dir.display(),
            m.uid()
        ));
    }
    if m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0 {
        return Some(format!(
            "directory {} is writable by others (mode {:o}) and not sticky",
            dir.display(),
            m.mode() & 0o7777
        ));
    }
    None
}

/// The directory of `path` ("." for a bare name).
pub fn parent(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// Check the directory of `path` strictly and, with `ancestors`, every directory
/// above it.
pub fn check_dirs(path: &Path, ancestors: bool) -> Result<(), String> {
    let dir = parent(path);
    if let Some(why) = strict_dir(&dir) {
        return Err(why);
    }
    if ancestors {
        let abs = std::path::absolute(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if abs.components().any(|c| c == Component::ParentDir) {
            return Err(format!(
                "{}: \"..\" in the path is not accepted",
                dir.display()
            ));
        }
        for a in abs.ancestors().skip(1) {
            if let Some(why) = ancestor_dir(a) {
                return Err(why);
            }
        }
    }
    Ok(())
}

/// Open `path` (never through a symbolic link), check the opened file against
/// `rules`, and read at most `max` bytes from it. `Ok(None)`: no such file.
pub fn read(path: &Path, rules: Rules, max: u64) -> Result<Option<Vec<u8>>, String> {
    match open(path, rules)? {
        Some(f) => read_all(path, f, max).map(Some),
        None => Ok(None),
    }
}

/// Open `path` (never through a symbolic link) and check the opened file against
/// `rules`. `Ok(None)`: no such file.
pub fn open(path: &Path, rules: Rules) -> Result<Option<fs::File>, String> {
    let name = path.display();
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e)
            if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::EMLINK) =>
        {
            return Err(format!(
                "{name} is a symbolic link; it must be a regular file"
            ))
        }
        Err(e) => return Err(format!("{name}: {e}")),
    };
    let m = file.metadata().map_err(|e| format!("{name}: {e}"))?;
    if !m.file_type().is_file() {
        return Err(format!("{name} is not a regular file"));
    }
    if !owner_ok(m.uid(), rules.own) {
        return Err(format!(
            "{name} is owned by uid {}, not by {}",
            m.uid(),
            if rules.own {
                "the daemon's user"
            } else {
                "root"
            }
        ));
    }
    if m.mode() & rules.clear != 0 {
        let what = match rules.clear & 0o044 {
            0 => "is writable by others",
            _ => "is open to group or others",
        };
        return Err(format!(
            "{name} {what} (mode {:o}; none of {:o} may be set)",
            m.mode() & 0o7777,
            rules.clear
        ));
    }
    if rules.one_link && m.nlink() != 1 {
        return Err(format!(
            "{name} has {} links; it must have exactly one",
            m.nlink()
        ));
    }
    Ok(Some(file))
}

/// Read at most `max` bytes from `file` (opened from `path`).
pub fn read_all(path: &Path, file: fs::File, max: u64) -> Result<Vec<u8>, String> {
    let name = path.display();
    let mut data = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("{name}: {e}"))?;
    if data.len() as u64 > max {
        return Err(format!("{name} is larger than {max} bytes"));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn symlink_mode_and_links_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        fs::write(&f, b"x").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read(&f, STATE, 10).unwrap().unwrap(), b"x");
        assert!(read(&d.path().join("none"), STATE, 10).unwrap().is_none());
        let l = d.path().join("l");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        assert!(read(&l, STATE, 10).unwrap_err().contains("symbolic link"));
        fs::hard_link(&f, d.path().join("h")).unwrap();
        assert!(read(&f, STATE, 10).unwrap_err().contains("2 links"));
        fs::remove_file(d.path().join("h")).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(read(&f, STATE, 10).unwrap_err().contains("mode 640"));
        assert!(read(&f, CONFIG, 10).is_ok());
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(check_dirs(&f, false)
            .unwrap_err()
            .contains("writable by group or others"));
    }
}
