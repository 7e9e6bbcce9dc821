//! jaildaemon: FreeBSD's jaildaemon(1) reimplemented, over a jail(3) layer and a jail
//! manager core.
//!
//! * [`jail`]: the jail layer (jail(3)/jail(3lua)): FreeBSD kernel jails, or real Linux
//!   jails built from namespaces.
//! * [`sys`]: the operating-system calls; all `unsafe` code lives there.
//! * [`daemon`]: the jaildaemon daemon, its socket, probes and commands.
//! * [`probe`]: the probe helper that runs in a jail and waits for SIGHUP.
//! * [`manager`]: the jail manager core (`jailctl`), iocage(8)-style.
//! * [`storage`]: its ZFS and directory backends.
//! * [`cli`]: the command-line front ends behind the thin binaries.

pub mod cli;
pub mod daemon;
pub mod jail;
pub mod logging;
pub mod manager;
pub mod probe;
pub mod storage;
pub mod sys;
