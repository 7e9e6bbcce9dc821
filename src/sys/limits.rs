//! Resource limits, the part both OSes share: rules as iocage(8) writes them
//! (`RESOURCE=AMOUNT:ACTION`), what each OS enforces per resource, the record of what
//! was applied (kept in the run state, so that stop removes exactly that), and the
//! pure text of FreeBSD's rctl(8) rules and cpuset(1) arguments.
//!
//! The per-OS application is `sys::os::limits`: cgroups on Linux
//! (`sys/linux/cgroup*.rs`), rctl(8) and cpuset(1) on FreeBSD (`sys/freebsd/rctl.rs`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Every rctl(8) resource a jail property names.
pub const RESOURCES: &[&str] = &[
    "memoryuse",
    "memorylocked",
    "vmemoryuse",
    "maxproc",
    "cputime",
    "pcpu",
    "datasize",
    "stacksize",
    "coredumpsize",
    "openfiles",
    "pseudoterminals",
    "swapuse",
    "nthr",
    "msgqqueued",
    "msgqsize",
    "nmsgq",
    "nsemop",
    "nshm",
    "shmsize",
    "wallclock",
];

/// What rctl(8) does when a rule's amount is exceeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Deny,
    Log,
    Devctl,
    Throttle,
    /// `sigNAME`: the signal sent to the offending process.
    Signal(String),
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "deny" => Action::Deny,
            "log" => Action::Log,
            "devctl" => Action::Devctl,
            s if s.len() > 3
                && s.starts_with("sig")
                && s[3..].chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                Action::Signal(s[3..].to_string())
            }
            _ => return None,
        })
    }

    pub fn as_string(&self) -> String {
        match self {
            Action::Deny => "deny".into(),
            Action::Log => "log".into(),
            Action::Devctl => "devctl".into(),
            Action::Throttle => "throttle".into(),
            Action::Signal(s) => format!("sig{s}"),
        }
    }

    /// Whether the limit is enforced (rather than only reported).
    pub fn enforcing(&self) -> bool {
        matches!(self, Action::Deny | Action::Signal(_) | Action::Throttle)
    }
}

/// One limit of a jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub resource: String,
    pub action: Action,
    /// In the resource's unit: bytes, a count, a percentage of one CPU, seconds.
    pub amount: u64,
    /// The amount as the property gave it (rctl(8) takes it as is).
    pub text: String,
}

impl Rule {
    /// `AMOUNT:ACTION` of property `resource`; `Ok(None)` for `off`.
    pub fn parse(resource: &str, value: &str) -> Result<Option<Rule>, String> {
        let value = value.trim();
        if value == "off" {
            return Ok(None);
        }
        let bad = || {
            format!(
                "{resource}: \"{value}\" is not AMOUNT:ACTION: AMOUNT is {AMOUNT_FORMS}, ACTION deny, log, devctl or sigNAME"
            )
        };
        let (amount, action) = value.split_once(':').ok_or_else(bad)?;
        let action = Action::parse(action).ok_or_else(bad)?;
        let n = parse_amount(amount).ok_or_else(bad)?;
        Ok(Some(Rule {
            resource: resource.to_string(),
            action,
            amount: n,
            text: amount.to_string(),
        }))
    }

    /// `AMOUNT:ACTION`, as the property holds it.
    pub fn value(&self) -> String {
        format!("{}:{}", self.text, self.action.as_string())
    }
}

/// An amount with an optional binary suffix (`K`, `M`, `G`, `T`, `P`; `B` or `KB`
/// forms too), as rctl(8) and iocage write them.
pub fn parse_amount(s: &str) -> Option<u64> {
    let s = s.trim();
    let cut = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(cut);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// The forms of an amount [`parse_amount`] accepts, for error messages.
pub const AMOUNT_FORMS: &str =
    "an integer with an optional K, M, G, T or P suffix (e.g. 512M; no fractions, no B)";

/// The limits to apply to a jail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub rules: Vec<Rule>,
    /// A CPU list (`0,2-3`), or none.
    pub cpuset: Option<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.cpuset.is_none()
    }
}

/// What was applied to a running jail, recorded in its run state: exactly what
/// release removes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Linux: the cgroup directories made for the jail.
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
    /// FreeBSD: the rctl(8) rules added for the jail.
    #[serde(default)]
    pub rules: Vec<String>,
    /// FreeBSD: the jail's CPU set was changed (restored to all CPUs at uncap).
    #[serde(default)]
    pub cpuset: bool,
    /// What each limit became: `(resource, AMOUNT:ACTION, control)`, the control as
    /// the OS names it (`pids.max=5`, `jail:ioc-X:maxproc:deny=5`, `RLIMIT_NOFILE=64`).
    #[serde(default)]
    pub controls: Vec<(String, String, String)>,
    /// Linux: the jails' cgroup folders (`jailctl`) this start made (removed when
    /// empty at release; a folder already there is never removed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub made_parents: Vec<PathBuf>,
    /// Linux v2: controllers enabled in a `cgroup.subtree_control` file:
    /// `(file, controller)`, disabled again when the folder is gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtree: Vec<(PathBuf, String)>,
}

/// How an OS enforces a resource (for `set`, `defaults` and the manual page).
pub fn linux_control(resource: &str) -> Option<&'static str> {
    Some(match resource {
        "memoryuse" => "cgroup memory: deny=memory.max/limit_in_bytes, log=monitored only (inuse)",
        "maxproc" | "nthr" => "cgroup pids.max (processes and threads together)",
        "pcpu" => "cgroup cpu.max/cfs_quota_us (percent of one CPU)",
        "vmemoryuse" => "RLIMIT_AS of each process",
        "memorylocked" => "RLIMIT_MEMLOCK of each process",
        "datasize" => "RLIMIT_DATA of each process",
        "stacksize" => "RLIMIT_STACK of each process",
        "coredumpsize" => "RLIMIT_CORE of each process",
        "openfiles" => "RLIMIT_NOFILE of each process",
        _ => return None,
    })
}

/// Whether `resource` is enforced on Linux.
pub fn linux_enforces(resource: &str) -> bool {
    linux_control(resource).is_some()
}

/// The rctl(8) rule of a jail: `jail:NAME:RESOURCE:ACTION=AMOUNT`.
pub fn rctl_rule(jail: &str, r: &Rule) -> String {
    format!(
        "jail:{jail}:{}:{}={}",
        r.resource,
        r.action.as_string(),
        r.text
    )
}

/// The rctl(8) filter of everything about one jail (`rctl -u` takes it).
pub fn rctl_subject(jail: &str) -> String {
    format!("jail:{jail}")
}

/// cpuset(1) arguments pinning jail `jid` to `list`.
pub fn cpuset_args(list: &str, jid: i32) -> Vec<String> {
    vec!["-l".into(), list.into(), "-j".into(), jid.to_string()]
}

/// `rctl -u` output (`resource=value` lines) as pairs.
pub fn parse_usage(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.trim().split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What applying limits failed with.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("{resource}: not enforced on this OS ({why})")]
    Unsupported { resource: String, why: String },
    #[error("{what}: {source}")]
    Os {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("resource limits need RACCT/RCTL in the kernel: set kern.racct.enable=1 in /boot/loader.conf and reboot")]
    RacctDisabled,
    #[error("{0}")]
    Tool(#[from] crate::sys::tool::ToolError),
}

impl LimitError {
    pub fn os(what: impl Into<String>, source: std::io::Error) -> Self {
        LimitError::Os {
            what: what.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_as_iocage_writes_them() {
        let r = Rule::parse("memoryuse", "64M:deny").unwrap().unwrap();
        assert_eq!(r.amount, 64 << 20);
        assert_eq!(r.action, Action::Deny);
        assert_eq!(r.value(), "64M:deny");
        assert_eq!(Rule::parse("maxproc", "off").unwrap(), None);
        let r = Rule::parse("pcpu", "50:sigterm").unwrap().unwrap();
        assert_eq!(r.action, Action::Signal("term".into()));
        assert_eq!(parse_amount("8G"), Some(8 << 30));
        assert_eq!(parse_amount("3k"), Some(3 << 10));
        // review: malformed amounts are refused, not rounded
        for bad in ["1.5", "1.5K", "5KB", "8GB", "", "K", "-1", "99999999999P"] {
            assert_eq!(parse_amount(bad), None, "{bad}");
        }
        let e = Rule::parse("memoryuse", "5KB:deny").unwrap_err();
        assert!(e.contains("no fractions, no B"), "{e}");
        // throttle: rctl(8) takes it only for I/O rates, which are not properties
        assert!(Rule::parse("maxproc", "5:throttle").is_err());
        assert!(Rule::parse("maxproc", "5").is_err());
        assert!(Rule::parse("maxproc", "5:explode").is_err());
        assert!(Rule::parse("maxproc", "x:deny").is_err());
    }

    #[test]
    fn freebsd_rule_strings_and_cpuset_arguments() {
        let r = Rule::parse("memoryuse", "4G:deny").unwrap().unwrap();
        assert_eq!(rctl_rule("ioc-abc", &r), "jail:ioc-abc:memoryuse:deny=4G");
        let r = Rule::parse("maxproc", "10:sigterm").unwrap().unwrap();
        assert_eq!(rctl_rule("ioc-abc", &r), "jail:ioc-abc:maxproc:sigterm=10");
        assert_eq!(rctl_subject("ioc-abc"), "jail:ioc-abc");
        assert_eq!(cpuset_args("0,2-3", 7), ["-l", "0,2-3", "-j", "7"]);
        assert_eq!(
            parse_usage("cputime=3\nmemoryuse=1048576\n"),
            [
                ("cputime".to_string(), "3".to_string()),
                ("memoryuse".into(), "1048576".into())
            ]
        );
    }

    #[test]
    fn linux_enforcement_table() {
        assert!(linux_enforces("memoryuse"));
        assert!(linux_enforces("maxproc"));
        assert!(linux_enforces("openfiles"));
        assert!(!linux_enforces("wallclock"));
        assert!(!linux_enforces("nshm"));
        for r in RESOURCES {
            let _ = linux_control(r);
        }
    }
}
