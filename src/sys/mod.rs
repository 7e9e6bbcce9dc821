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

pub mod unix;
