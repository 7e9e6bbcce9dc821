//! Operating-system calls. All `unsafe` code of the project lives in these files, one
//! per OS (plus `unix.rs` for the POSIX calls both share), each block with its `// SAFETY:` justification.

#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(target_os = "linux")]
pub use linux as os;

#[cfg(target_os = "freebsd")]
pub mod freebsd;
#[cfg(target_os = "freebsd")]
pub use freebsd as os;

pub mod files;
pub mod limits;
pub mod snapio;
pub mod tool;
pub mod unix;

/// The operating system of this build: layers above `sys` branch on this value (in
/// pure functions they take it as an argument, so both sides are unit-tested here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    FreeBsd,
    Linux,
}

#[cfg(target_os = "linux")]
pub const OS: Os = Os::Linux;
#[cfg(target_os = "freebsd")]
pub const OS: Os = Os::FreeBsd;
