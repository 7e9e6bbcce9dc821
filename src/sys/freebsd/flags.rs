//! FreeBSD file flags: what `tar -xpf base.txz` restores (`schg`, `sunlnk`, ...) and
//! what must be cleared before a tree can be removed.

use std::ffi::CString;
use std::io;
use std::os::freebsd::fs::MetadataExt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Every entry of a tree with its flags, links not followed.
fn entries_with_flags(tree: &Path) -> io::Result<Vec<(PathBuf, u32)>> {
    let mut out = Vec::new();
    let mut todo = vec![tree.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = std::fs::symlink_metadata(&p)?;
        if m.file_type().is_dir() {
            for e in std::fs::read_dir(&p)? {
                todo.push(e?.path());
            }
        }
        out.push((p, m.st_flags()));
    }
    Ok(out)
}

/// Clear the flags that stop `tree` from being removed (chflags -R noschg...).
pub fn clear_undeletable_flags(tree: &Path) -> io::Result<()> {
    for (p, flags) in crate::sys::files::flags_to_clear(entries_with_flags(tree)?) {
        let c = CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: lchflags on a NUL-terminated path; it does not follow a final link.
        if unsafe { libc::lchflags(c.as_ptr(), flags as libc::c_ulong) } != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("clearing the flags of {}: {e}", p.display()),
            ));
        }
    }
    Ok(())
}
