//! The jexec child's report of a failed step, and the caller's reading of it.

use super::{not_started_code, ExecStatus};
use crate::jail::handoff::Handoff;
use crate::jail::JailError;

/// What the caller makes of a failed step reported by the jexec child.
#[derive(Debug)]
pub enum Failure {
    /// Setup failed (attach, user, stdio): the jail's or the user's problem.
    Setup(JailError),
    /// The command could not be started.
    NotStarted(ExecStatus),
}

/// Step names of the handoff: `STEP: detail`.
pub(super) const STEP_EXEC: &str = "exec";

/// A failed step as the child sends it: `step: what` and the errno when the error is
/// a system error (its text is then rebuilt from the errno by [`failure`]).
pub(super) fn failed(step: &str, what: String, e: Option<&std::io::Error>) -> Handoff {
    match e.and_then(std::io::Error::raw_os_error) {
        Some(errno) => Handoff::Failed {
            step: format!("{step}: {what}"),
            errno,
        },
        None => Handoff::Failed {
            step: format!(
                "{step}: {what}{}",
                e.map(|e| format!(": {e}")).unwrap_or_default()
            ),
            errno: 0,
        },
    }
}

pub(super) fn failed_jail(step: &str, e: &JailError) -> Handoff {
    match e {
        JailError::Os { what, source } if source.raw_os_error().is_some() => {
            failed(step, what.clone(), Some(source))
        }
        e => failed(step, e.to_string(), None),
    }
}

/// The caller's reading of a `Failed { step, errno }` handoff.
pub fn failure(step: &str, errno: i32) -> Failure {
    let (name, what) = step.split_once(": ").unwrap_or((step, ""));
    let source = (errno != 0).then(|| std::io::Error::from_raw_os_error(errno));
    if name == STEP_EXEC {
        let (code, message) = match &source {
            Some(e) => (not_started_code(e), format!("{what}: {e}")),
            None => (126, what.to_string()),
        };
        return Failure::NotStarted(ExecStatus::NotStarted { code, message });
    }
    Failure::Setup(match source {
        Some(source) => JailError::Os {
            what: what.to_string(),
            source,
        },
        None if what.is_empty() => JailError::Invalid(format!("jexec: {name} failed")),
        None => JailError::Invalid(what.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jail::{handoff, users};

    /// Round trip of each step through the typed handoff, as child and parent do.
    fn through(h: Handoff) -> Failure {
        match Handoff::decode(&handoff::encode(&h)).unwrap() {
            Handoff::Failed { step, errno } => failure(&step, errno),
            Handoff::Ready => panic!("not a failure"),
        }
    }

    #[test]
    fn a_failed_attach_is_an_error_naming_the_step() {
        let eperm = std::io::Error::from_raw_os_error(1);
        let e = JailError::os("jail 3: attach", eperm);
        let want = e.to_string();
        match through(failed_jail("attach", &e)) {
            Failure::Setup(got @ JailError::Os { .. }) => assert_eq!(got.to_string(), want),
            f => panic!("{f:?}"),
        }
        // an error without errno keeps its text
        let e = JailError::NotFound {
            jail: "ghost".into(),
        };
        match through(failed_jail("attach", &e)) {
            Failure::Setup(got) => assert_eq!(got.to_string(), "jail \"ghost\" not found"),
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn an_unknown_user_is_a_clear_error() {
        let e = users::UserError::Unknown {
            name: "nosuchuser".into(),
            path: users::PASSWD.into(),
        };
        match through(failed("user", format!("in jail ex1: {e}"), None)) {
            Failure::Setup(JailError::Invalid(m)) => assert_eq!(
                m,
                "in jail ex1: unknown user \"nosuchuser\" (not in /etc/passwd)"
            ),
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn a_command_that_cannot_start_is_126_or_127() {
        let enoent = std::io::Error::from_raw_os_error(2);
        match through(failed(STEP_EXEC, "/bin/nope".into(), Some(&enoent))) {
            Failure::NotStarted(ExecStatus::NotStarted { code, message }) => {
                assert_eq!(code, 127);
                assert_eq!(message, format!("/bin/nope: {enoent}"));
            }
            f => panic!("{f:?}"),
        }
        let eacces = std::io::Error::from_raw_os_error(13);
        match through(failed(STEP_EXEC, "/etc/passwd".into(), Some(&eacces))) {
            Failure::NotStarted(st) => assert_eq!(st.code(), 126),
            f => panic!("{f:?}"),
        }
        let odd = std::io::Error::new(std::io::ErrorKind::InvalidInput, "nul byte");
        match through(failed(STEP_EXEC, "a\u{0}b".into(), Some(&odd))) {
            Failure::NotStarted(ExecStatus::NotStarted { code, message }) => {
                assert_eq!(code, 126);
                assert!(message.ends_with("nul byte"), "{message}");
            }
            f => panic!("{f:?}"),
        }
    }
}
