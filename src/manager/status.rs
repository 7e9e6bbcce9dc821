//! What state a jail is in, and what that allows.

use super::error::{invalid, ManagerError, Result};

/// A jail's state as the manager sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Stopped, usable.
    Down,
    /// Running with this jid.
    Up(i32),
    /// A stopped template (`istemplate=yes`): started only with `start -f`.
    Template,
    /// Its stored configuration cannot be used.
    Corrupt(String),
}

impl Status {
    /// Whether `start` may go on (`force_template`: `start -f`).
    pub fn can_start(&self, label: &str, uuid: &str, force_template: bool) -> Result<()> {
        match self {
            Status::Down => Ok(()),
            Status::Template if force_template => Ok(()),
            Status::Template => Err(invalid(format!(
                "{label} is a template; use start -f to start it for editing"
            ))),
            Status::Up(jid) => Err(invalid(format!(
                "jail {label} is already running (jid {jid})"
            ))),
            Status::Corrupt(why) => Err(ManagerError::Corrupt {
                uuid: uuid.to_string(),
                why: why.clone(),
            }),
        }
    }

    pub fn jid(&self) -> Option<i32> {
        match self {
            Status::Up(jid) => Some(*jid),
            _ => None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.jid().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_start_accepts() {
        assert!(Status::Down.can_start("t", "u", false).is_ok());
        assert!(Status::Template.can_start("t", "u", true).is_ok());
        let e = Status::Template.can_start("t", "u", false).unwrap_err();
        assert!(e.to_string().contains("start -f"), "{e}");
        let e = Status::Up(7).can_start("t", "u", true).unwrap_err();
        assert!(e.to_string().contains("jid 7"), "{e}");
        assert!(matches!(
            Status::Corrupt("x".into()).can_start("t", "u", true),
            Err(ManagerError::Corrupt { .. })
        ));
    }
}
