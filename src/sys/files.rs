//! File helpers shared by the layers (no OS-specific code).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Write a file atomically: temporary file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a file in a directory"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let res = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Make a directory private (mode 0700) if group or others have any access.
pub fn make_private(p: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let m = fs::metadata(p)?;
    if m.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(p, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// FreeBSD's file flags that stop a file from being removed or its directory from
/// being emptied (chflags(1): `uchg`, `uappnd`, `uunlnk`, `schg`, `sappnd`, `sunlnk`).
/// `tar -xpf base.txz` restores them (`schg` on libc, the kernel, `/var/empty`, ...).
pub const UNDELETABLE_FLAGS: u32 = 0x0000_0002 // UF_IMMUTABLE
    | 0x0000_0004 // UF_APPEND
    | 0x0000_0010 // UF_NOUNLINK
    | 0x0002_0000 // SF_IMMUTABLE
    | 0x0004_0000 // SF_APPEND
    | 0x0010_0000; // SF_NOUNLINK

/// Of a tree's entries with their flags, those whose flags must change before the
/// tree can be removed, with the flags they get (the others kept).
pub fn flags_to_clear(
    entries: impl IntoIterator<Item = (std::path::PathBuf, u32)>,
) -> Vec<(std::path::PathBuf, u32)> {
    entries
        .into_iter()
        .filter(|(_, f)| f & UNDELETABLE_FLAGS != 0)
        .map(|(p, f)| (p, f & !UNDELETABLE_FLAGS))
        .collect()
}

/// Remove a tree the host owns (a jail's directory, a release, a staging area):
/// refused while anything is mounted at or below it (a jail's nullfs of host data
/// must never be recursed into), with FreeBSD's immutable flags cleared first.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    let mounted = super::tool::mounted_below(path)?;
    if !mounted.is_empty() {
        return Err(io::Error::other(format!(
            "{} is still mounted at {}: refusing to remove it",
            path.display(),
            mounted
                .iter()
                .map(|m| m.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    super::os::clear_undeletable_flags(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("{e} (at securelevel 1 or more, schg and sunlnk cannot be cleared)"),
        )
    })?;
    fs::remove_dir_all(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Flags as mtree(8) spells them in the specification of a FreeBSD base.txz.
    fn flag_bits(words: &str) -> u32 {
        words
            .split(',')
            .map(|w| match w {
                "uchg" => 0x2,
                "uappnd" => 0x4,
                "uunlnk" => 0x10,
                "uarch" | "arch" => 0x1_0000,
                "schg" => 0x2_0000,
                "sappnd" => 0x4_0000,
                "sunlnk" => 0x10_0000,
                "none" | "" => 0,
                other => panic!("flag {other}"),
            })
            .fold(0, |a, b| a | b)
    }

    #[test]
    fn the_schg_entries_of_a_base_release_are_cleared() {
        // lines of `mtree -c -k flags` over an extracted FreeBSD 14 base.txz
        let spec = "\
./bin/sh type=file flags=none
./lib/libc.so.7 type=file flags=schg
./libexec/ld-elf.so.1 type=file flags=schg
./usr/bin/chpass type=file flags=schg
./usr/bin/login type=file flags=none
./usr/lib/librt.so.1 type=file flags=schg,uarch
./var/empty type=dir flags=schg
./var/log/messages type=file flags=sappnd,uarch
./etc/passwd type=file flags=uarch";
        let entries: Vec<(PathBuf, u32)> = spec
            .lines()
            .map(|l| {
                let f = l.split(' ').find_map(|w| w.strip_prefix("flags=")).unwrap();
                (PathBuf::from(l.split(' ').next().unwrap()), flag_bits(f))
            })
            .collect();
        let got = flags_to_clear(entries);
        let names: Vec<String> = got.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "./lib/libc.so.7",
                "./libexec/ld-elf.so.1",
                "./usr/bin/chpass",
                "./usr/lib/librt.so.1",
                "./var/empty",
                "./var/log/messages"
            ]
        );
        // only the undeletable bits go; uarch stays
        assert_eq!(got[3].1, 0x1_0000);
        assert!(got.iter().all(|(_, f)| f & UNDELETABLE_FLAGS == 0));
    }

    #[test]
    fn a_mounted_tree_is_not_removed() {
        // `/proc` is mounted on every Linux host; a tree containing a mount point is
        // refused before anything in it is touched.
        let e = remove_tree(Path::new("/proc")).unwrap_err();
        assert!(e.to_string().contains("still mounted"), "{e}");
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        remove_tree(&d.path().join("a")).unwrap();
        assert!(!d.path().join("a").exists());
        remove_tree(&d.path().join("gone")).unwrap();
    }
}
