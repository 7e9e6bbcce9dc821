//! The typed report a child sends its parent after setting itself up in a jail (the
//! probe helper to the daemon, the probe to the helper, a jexec child to its caller):
//! one datagram, strict JSON, never a pid (the parent knows its child from the
//! kernel: the pid it forked or a pidfd passed with `SCM_RIGHTS`).

use serde::{Deserialize, Serialize};

/// The one answer of a child that set itself up in a jail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Handoff {
    /// Setup is done (for a probe on Linux, its pidfd is attached).
    Ready,
    /// Setup failed at `step` with `errno` (0 when not a system error).
    Failed { step: String, errno: i32 },
}

impl Handoff {
    /// A failure at `step` from an OS error.
    pub fn failed(step: impl Into<String>, e: &std::io::Error) -> Handoff {
        Handoff::Failed {
            step: format!("{}: {e}", step.into()),
            errno: e.raw_os_error().unwrap_or(0),
        }
    }

    /// Parse one datagram; anything but exactly one handoff is `None`.
    pub fn decode(bytes: &[u8]) -> Option<Handoff> {
        serde_json::from_slice(bytes).ok()
    }
}

/// One datagram of a handoff.
pub fn encode(h: &Handoff) -> Vec<u8> {
    serde_json::to_vec(h).expect("handoff serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handoff_is_typed_and_strict() {
        assert_eq!(
            Handoff::decode(&encode(&Handoff::Ready)),
            Some(Handoff::Ready)
        );
        assert_eq!(Handoff::decode(b"\"pid 1234\""), None);
        assert_eq!(Handoff::decode(br#"{"Ready":{"pid":1}}"#), None);
        let f = Handoff::failed(
            "attach",
            &std::io::Error::from_raw_os_error(nix::errno::Errno::EPERM as i32),
        );
        assert!(
            matches!(f, Handoff::Failed { errno, .. } if errno == nix::errno::Errno::EPERM as i32)
        );
    }
}
