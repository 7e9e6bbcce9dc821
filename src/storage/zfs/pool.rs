//! The `zfs` and `zpool` commands, and the pools: which is active, activating one.

#[allow(unused_imports)]
use super::*;

pub fn zfs(args: &[&str]) -> Result<String, StorageError> {
    Ok(tool::run("zfs", args)?)
}

pub(super) fn zpool(args: &[&str]) -> Result<String, StorageError> {
    Ok(tool::run("zpool", args)?)
}

/// `activate POOL`: mark it the pool jailctl uses (no other may be) and lay it out.
pub fn activate(pool: &str) -> Result<(), StorageError> {
    zpool(&["list", "-H", "-o", "name", pool])
        .map_err(|e| StorageError::Invalid(format!("pool {pool}: {e}")))?;
    let others: Vec<String> = active_pools()?.into_iter().filter(|p| p != pool).collect();
    if !others.is_empty() {
        return Err(StorageError::Invalid(format!(
            "pool {} is already active; deactivate it first",
            others.join(", ")
        )));
    }
    zfs(&["set", &format!("{ACTIVE_PROP}=yes"), pool])?;
    ZfsBackend::new(pool).ensure_layout()
}

/// `deactivate POOL`.
pub fn deactivate(pool: &str) -> Result<(), StorageError> {
    zfs(&["inherit", ACTIVE_PROP, pool]).map(|_| ())
}

/// `zfs destroy -r`, retried for a few seconds while the dataset is busy: the mount
/// namespace of a jail that has just gone is torn down asynchronously.
pub(super) fn destroy_retry(ds: &str, extra: &[&str]) -> Result<(), StorageError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut args = vec!["destroy", "-r"];
    args.extend_from_slice(extra);
    args.push(ds);
    loop {
        match zfs(&args) {
            Ok(_) => return Ok(()),
            Err(StorageError::Command { msg, .. })
                if msg.contains("busy") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Rename `from` (and its children) to `to`. The datasets are unmounted first and
/// mounted again after: zfs-fuse refuses to rename a mounted dataset ("busy").
pub(super) fn rename_ds(from: &str, to: &str) -> Result<(), StorageError> {
    let list = zfs(&["list", "-H", "-r", "-t", "filesystem", "-o", "name", from])?;
    let names: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    for n in names.iter().rev() {
        let _ = zfs(&["unmount", n]);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let renamed = loop {
        match zfs(&["rename", from, to]) {
            Err(StorageError::Command { msg, .. })
                if msg.contains("busy") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            r => break r,
        }
    };
    let base = if renamed.is_ok() { to } else { from };
    for n in &names {
        let now = format!("{base}{}", &n[from.len()..]);
        let _ = zfs(&["mount", &now]);
    }
    renamed.map(|_| ())
}

/// Pools with `org.freebsd.ioc:active=yes` on their root dataset.
pub fn active_pools() -> Result<Vec<String>, StorageError> {
    let pools = match zpool(&["list", "-H", "-o", "name"]) {
        Ok(p) => p,
        Err(StorageError::Command { msg, .. })
            if msg.contains("No such file") || msg.contains("not found") =>
        {
            return Ok(vec![])
        }
        Err(e) => return Err(e),
    };
    let mut active = Vec::new();
    for p in pools.lines().map(str::trim).filter(|p| !p.is_empty()) {
        let v = zfs(&["get", "-H", "-o", "value", ACTIVE_PROP, p])?;
        if v.trim() == "yes" {
            active.push(p.to_string());
        }
    }
    Ok(active)
}
