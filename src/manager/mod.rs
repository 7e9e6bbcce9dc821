//! The jail manager core, following iocage(8): UUID/TAG identity, typed properties
//! stored with the jail (ZFS user properties, or a file), releases, and the jail
//! lifecycle over the jail layer.
//!
//! One verb or concern per file: [`resolve`] (finding jails), [`locks`],
//! [`runstate`], [`create`], [`destroy`], [`properties`], [`releases`], [`boot`],
//! and [`lifecycle`] (start, stop, hooks, mounts, jail parameters). What the manager
//! asks of the host and of the jail layer goes through the traits of [`host`], so
//! the lifecycle's undo logic is unit-tested with a recording fake.
//!
//! Reliability: `create` is transactional (a jail is incomplete until its last step;
//! an interrupted create is rolled back, or cleaned by the next command once no live
//! process holds the jail's lock); a per-jail lock serialises lifecycle commands; a
//! global lock makes concurrent creates of one TAG let exactly one win; one corrupt
//! jail never breaks the others.

mod archive;
mod boot;
mod census;
mod clones;
pub mod config;
mod create;
mod destroy;
pub mod error;
pub mod fetch;
pub mod host;
mod index;
pub mod lifecycle;
mod locks;
mod properties;
pub mod props;
mod releases;
mod resolve;
pub mod runstate;
mod snapshots;
pub mod status;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::storage::{self, dir::DirBackend, zfs::ZfsBackend, Backend};

pub use archive::{ImportOpts, ImportReport};
pub use boot::BootResult;
pub use config::JailConfig;
pub use create::{new_uuid, timestamp, CreateOpts, MAX_TAG};
pub use error::{ManagerError, Result};
pub use locks::Lock;
pub use resolve::resolve_in;
pub use status::Status;

use error::invalid;
use host::{Host, JailOps, RealHost, RealJails};

/// Default root of the directory backend.
pub const DEFAULT_ROOT: &str = "/var/db/jailctl";
/// Default directory of locks and runtime state: on a file system that does not
/// outlive a boot where the OS has one (`/run` on Linux); FreeBSD's `/var/run` is on
/// the root file system, so run states also carry the boot they were made in.
pub const DEFAULT_RUN: &str = crate::sys::os::RUN_DIR;

/// Which backend to use (global options `--root` / `--pool`).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub root: Option<PathBuf>,
    pub pool: Option<String>,
}

/// A jail as the manager sees it.
#[derive(Debug, Clone)]
pub struct Jail {
    pub uuid: String,
    /// What is stored on the jail itself.
    pub stored: BTreeMap<String, String>,
    /// Schema defaults overlaid with the host defaults, shared by all jails.
    pub defaults: Arc<BTreeMap<String, String>>,
    pub problem: Option<String>,
}

impl Jail {
    pub fn tag(&self) -> &str {
        self.get("tag")
    }

    /// An effective property as text (for display): the jail's own value, else the
    /// default. The lifecycle reads [`Jail::config`] instead.
    pub fn get(&self, k: &str) -> &str {
        self.stored
            .get(k)
            .or_else(|| self.defaults.get(k))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Every effective property.
    pub fn props(&self) -> BTreeMap<String, String> {
        let mut p = (*self.defaults).clone();
        p.extend(self.stored.clone());
        p
    }

    /// The typed configuration.
    pub fn config(&self) -> Result<JailConfig> {
        JailConfig::parse(&self.uuid, &self.props())
    }

    /// Kernel jail name.
    pub fn kname(&self) -> String {
        kernel_name(&self.uuid)
    }

    fn label(&self) -> String {
        format!("{} ({})", self.tag(), self.uuid)
    }
}

pub fn kernel_name(uuid: &str) -> String {
    format!("ioc-{uuid}")
}

pub struct Manager {
    pub backend: Box<dyn Backend>,
    run: PathBuf,
    host: Box<dyn Host>,
    jail_ops: Box<dyn JailOps>,
}

impl Manager {
    /// Pick the backend: `--root`/`JAILCTL_ROOT` (directory), `--pool`/`JAILCTL_POOL`
    /// (ZFS), the active pool, or the directory default.
    pub fn open(sel: &Selection) -> Result<Manager> {
        let root = sel
            .root
            .clone()
            .or_else(|| std::env::var_os("JAILCTL_ROOT").map(PathBuf::from));
        let pool = sel
            .pool
            .clone()
            .or_else(|| std::env::var("JAILCTL_POOL").ok());
        let backend: Box<dyn Backend> = match (root, pool) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "give either a directory (--root) or a pool (--pool), not both",
                ))
            }
            (Some(r), None) => Box::new(DirBackend::new(r)),
            (None, Some(p)) => Box::new(ZfsBackend::new(p)),
            (None, None) => {
                let active = storage::zfs::active_pools().unwrap_or_default();
                match active.len() {
                    0 => Box::new(DirBackend::new(DEFAULT_ROOT)),
                    1 => Box::new(ZfsBackend::new(active[0].clone())),
                    _ => {
                        return Err(invalid(format!(
                            "more than one pool is active: {}; deactivate all but one",
                            active.join(", ")
                        )))
                    }
                }
            }
        };
        let run = std::env::var_os("JAILCTL_RUN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN));
        Ok(Manager::with(
            backend,
            run,
            Box::new(RealHost),
            Box::new(RealJails),
        ))
    }

    /// A manager over the parts given (tests give fakes of the host and jail layer).
    pub fn with(
        backend: Box<dyn Backend>,
        run: PathBuf,
        host: Box<dyn Host>,
        jail_ops: Box<dyn JailOps>,
    ) -> Manager {
        Manager {
            backend,
            run,
            host,
            jail_ops,
        }
    }
}
