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

/// One jail as `list` shows it.
pub struct Listed {
    pub jail: super::Jail,
    pub jid: Option<i32>,
    /// `up`, `down`, `starting`, `stopping(interrupted)`, `CORRUPT`, `DUPTAG`, `up,DUPTAG`.
    pub state: String,
    /// What the user should hear about this jail (corrupt, a duplicate TAG).
    pub warning: Option<String>,
}

impl super::Manager {
    /// The jails (`templates`: the templates) with their state, in one read of the
    /// backend and one of the jail layer. Corrupt jails are listed with the jails.
    pub fn listing(&self, templates: bool) -> Result<Vec<Listed>> {
        let running: std::collections::BTreeMap<String, i32> = self
            .jail_ops
            .list()
            .unwrap_or_default()
            .into_iter()
            .filter(|i| !i.dying)
            .map(|i| (i.name, i.jid))
            .collect();
        let jails = self.jails()?;
        // A TAG borne by several jails (made by hand) is shown on each; they stay
        // reachable by UUID.
        let mut tag_count: std::collections::BTreeMap<String, usize> = Default::default();
        for j in jails.iter().filter(|j| !j.tag().is_empty()) {
            *tag_count.entry(j.tag().to_string()).or_default() += 1;
        }
        let mut out = Vec::new();
        for j in jails {
            let template = j.config().map(|c| c.template).unwrap_or(false);
            if !(template == templates || j.problem.is_some() && !templates) {
                continue;
            }
            let jid = running.get(&j.kname()).copied();
            let dups = tag_count.get(j.tag()).copied().unwrap_or(0);
            let (state, warning) = if let Some(p) = &j.problem {
                (
                    "CORRUPT".to_string(),
                    Some(format!("jail {} is CORRUPT: {p}", j.uuid)),
                )
            } else if dups > 1 {
                (
                    if jid.is_some() { "up,DUPTAG" } else { "DUPTAG" }.to_string(),
                    Some(format!(
                        "tag {} is borne by {dups} jails; use their UUIDs (jail {})",
                        j.tag(),
                        j.uuid
                    )),
                )
            } else if let Some((phase, interrupted)) = self.phase(&j.uuid) {
                (
                    if interrupted {
                        format!("{phase}(interrupted)")
                    } else {
                        phase
                    },
                    None,
                )
            } else if jid.is_some() {
                ("up".to_string(), None)
            } else {
                ("down".to_string(), None)
            };
            out.push(Listed {
                jail: j,
                jid,
                state,
                warning,
            });
        }
        Ok(out)
    }
}
