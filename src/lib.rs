//! jaildaemon: FreeBSD's jaildaemon(1) reimplemented, over a jail(3) layer and a jail
//! manager core.
//!
//! * [`jail`]: the jail layer (jail(3)/jail(3lua)): FreeBSD kernel jails, or real Linux
//!   jails built from namespaces.
//! * [`sys`]: the operating-system calls; all `unsafe` code lives there.
//! * [`cli`]: the command-line front ends behind the thin binaries.

pub mod cli;
pub mod jail;
pub mod sys;
