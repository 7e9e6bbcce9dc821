//! The jail layer: jail(3) and jail(3lua) in Rust.
//!
//! * [`getid`] / [`getname`]: `jail_getid` / `jail_getname`.
//! * [`params`]: the typed parameter table (`jailparam_*`); on FreeBSD completed by
//!   the kernel's own list ([`kernel_params`]).
//! * [`set`] with [`Flags`] (`CREATE`, `UPDATE`, `ATTACH`, `DYING`), [`get`], [`remove`],
//!   [`attach`], [`list`]: `jail_set(2)`, `jail_get(2)`, `jail_remove(2)`, `jail_attach(2)`.
//! * [`lua`]: the Lua-shaped surface of jail(3lua) as thin functions over the same code;
//!   the loadable Lua module (`lua/`, `require('jail')`) binds exactly these.
//!
//! On FreeBSD the calls go to the kernel through libjail. On Linux a jail is a set of
//! namespaces around a root directory held by a small init; see [`linux`].

pub mod confine;
pub mod error;
pub mod exec;
pub mod handoff;
pub mod kernel_params;
pub mod params;
pub mod users;

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "linux")]
pub mod linux;

use std::collections::BTreeMap;
use std::ops::BitOr;

pub use error::{JailError, ParamError};
pub use params::{JailParam, Value};

/// Flags of `jail_set(2)`/`jail_get(2)`, with the kernel's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u32);

impl Flags {
    pub const NONE: Flags = Flags(0);
    /// Create a jail; fails if it exists, unless UPDATE is also given.
    pub const CREATE: Flags = Flags(0x01);
    /// Modify an existing jail; fails if it does not exist, unless CREATE is also given.
    pub const UPDATE: Flags = Flags(0x02);
    /// Attach the calling process to the jail after creating or updating it.
    pub const ATTACH: Flags = Flags(0x04);
    /// Allow acting on a dying jail.
    pub const DYING: Flags = Flags(0x08);

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

/// What `set` does given the state of the named jail and the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetAction {
    Create,
    Update,
}

/// The state of an existing jail as seen by [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Alive,
    Dying,
}

/// The flag semantics of `jail_set(2)`, as a pure function so it is unit-tested:
/// a dying jail counts as absent unless DYING is given.
pub fn decide(
    jail: &str,
    existing: Option<Existing>,
    flags: Flags,
) -> Result<SetAction, JailError> {
    let present = match existing {
        Some(Existing::Alive) => true,
        Some(Existing::Dying) => flags.contains(Flags::DYING),
        None => false,
    };
    let create = flags.contains(Flags::CREATE);
    let update = flags.contains(Flags::UPDATE);
    match (present, create, update) {
        (true, _, true) => Ok(SetAction::Update),
        (true, true, false) => Err(JailError::Exists {
            jail: jail.to_string(),
        }),
        (false, true, _) => Ok(SetAction::Create),
        (false, false, true) if existing == Some(Existing::Dying) => Err(JailError::Dying {
            jail: jail.to_string(),
        }),
        (false, false, true) => Err(JailError::NotFound {
            jail: jail.to_string(),
        }),
        (_, false, false) => {
            if flags.contains(Flags::ATTACH) && present {
                // jail_set(2) with only JAIL_ATTACH attaches to an existing jail.
                Ok(SetAction::Update)
            } else {
                Err(JailError::NoAction {
                    what: format!("jail \"{jail}\""),
                })
            }
        }
    }
}

/// A jail as listed by [`list`]: its identity and every parameter in string form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JailInfo {
    pub jid: i32,
    pub name: String,
    pub dying: bool,
    /// Every known parameter that has a value, in exported string form.
    pub params: BTreeMap<String, String>,
}

impl JailInfo {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// A jail reference as users give it: a numeric string is a jid, anything else a name.
pub fn parse_key(s: &str) -> Key<'_> {
    match s.parse::<i32>() {
        Ok(jid) if jid > 0 => Key::Jid(jid),
        _ => Key::Name(s),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    Jid(i32),
    Name(&'a str),
}

impl std::fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Jid(j) => write!(f, "{j}"),
            Key::Name(n) => f.write_str(n),
        }
    }
}

#[cfg(target_os = "freebsd")]
use freebsd as os;
#[cfg(target_os = "linux")]
use linux as os;

/// `jail_getid`: a numeric string is a jid (checked to exist), otherwise a name.
pub fn getid(name_or_jid: &str) -> Result<i32, JailError> {
    os::getid(parse_key(name_or_jid))
}

/// `jail_getname`.
pub fn getname(jid: i32) -> Result<String, JailError> {
    os::getname(jid)
}

/// `jail_set(2)`: create or update a jail from typed parameters; returns the jid.
/// The jail is identified by `jid` or `name` among `params`.
pub fn set(params: &[JailParam], flags: Flags) -> Result<i32, JailError> {
    for p in params {
        if p.value.is_none() {
            return Err(ParamError::MissingValue {
                name: p.name().into(),
                expected: p.spec.ty.to_string(),
            }
            .into());
        }
    }
    os::set(params, flags)
}

/// `jail_get(2)`: read the named parameters of a jail (all of them when `names` is
/// empty). Without DYING, a dying jail is not found.
pub fn get(jail: &str, names: &[&str], flags: Flags) -> Result<Vec<JailParam>, JailError> {
    get_with_jid(jail, names, flags).map(|(_, ps)| ps)
}

/// [`get`], with the jid of the jail found (one lookup).
fn get_with_jid(
    jail: &str,
    names: &[&str],
    flags: Flags,
) -> Result<(i32, Vec<JailParam>), JailError> {
    let wanted = wanted_specs(names)?;
    let info = os::lookup(parse_key(jail), flags.contains(Flags::DYING))?;
    Ok((info.jid, typed(&info, &wanted, !names.is_empty())?))
}

/// The specs `names` asks for: all known ones when it is empty.
fn wanted_specs(names: &[&str]) -> Result<Vec<&'static params::ParamSpec>, JailError> {
    if names.is_empty() {
        Ok(params::known().iter().collect())
    } else {
        Ok(names
            .iter()
            .map(|n| params::spec(n))
            .collect::<Result<_, _>>()?)
    }
}

/// The `wanted` parameters of a jail, typed; one the jail has no value for is kept
/// without a value when it was asked for `explicit`ly, left out otherwise.
fn typed(
    info: &JailInfo,
    wanted: &[&'static params::ParamSpec],
    explicit: bool,
) -> Result<Vec<JailParam>, JailError> {
    let mut out = Vec::new();
    for &spec in wanted {
        if let Some(v) = info.params.get(spec.name) {
            let mut p = JailParam { spec, value: None };
            p.import(v)?;
            out.push(p);
        } else if explicit {
            out.push(JailParam { spec, value: None });
        }
    }
    Ok(out)
}

/// `jail_remove(2)`: kill every process in the jail and remove it.
pub fn remove(jail: &str) -> Result<(), JailError> {
    let jid = getid(jail)?;
    os::remove(jid)
}

/// `jail_attach(2)`: move the calling process into the jail. On Linux the calling
/// process must be single-threaded, and membership of the jail's process namespace
/// applies to the children it forks afterwards (see [`linux`]).
pub fn attach(jail: &str) -> Result<(), JailError> {
    os::attach(parse_key(jail))
}

/// A live jail's network stack, by a kernel handle (Linux: its init's network
/// namespace; FreeBSD: its jid), for configuring its interfaces from the host.
pub fn net_handle(jail: &str) -> Result<crate::sys::os::net::NetHandle, JailError> {
    os::net_handle(parse_key(jail))
}

/// Host pids of the processes in a jail (its init excluded on Linux).
pub fn processes(jail: &str) -> Result<Vec<i32>, JailError> {
    os::processes(parse_key(jail))
}

/// Host pids of every process of a jail, its Linux init included: what the cgroups
/// of its resource limits must hold.
pub fn all_processes(jail: &str) -> Result<Vec<i32>, JailError> {
    os::all_processes(parse_key(jail))
}

/// Send `sig` to every process of a jail; returns how many were signalled. On Linux
/// each is named by a pidfd checked to be in the jail (never a reused pid).
pub fn signal_processes(jail: &str, sig: i32) -> Result<usize, JailError> {
    os::signal_processes(parse_key(jail), sig)
}

/// SIGTERM to every process of the jail: the polite end of a stop.
pub fn terminate_all(jail: &str) -> Result<usize, JailError> {
    signal_processes(jail, nix::sys::signal::Signal::SIGTERM as i32)
}

/// What a child process needs in its environment to find the jail layer's state
/// (Linux: the registry override, when set; FreeBSD: nothing). A caller that clears a
/// child's environment passes these on without knowing what they are.
pub fn child_env() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    os::child_env()
}

/// Every jail, in jid order, dying ones included and flagged (stale Linux registry
/// entries are cleaned on the way).
pub fn list() -> Result<Vec<JailInfo>, JailError> {
    os::list()
}

/// Look a jail up by jid or name, with all its parameters.
pub fn lookup(jail: &str, dying: bool) -> Result<JailInfo, JailError> {
    os::lookup(parse_key(jail), dying)
}

/// `jailparam_all`: every known parameter, without values.
pub fn allparams() -> Vec<JailParam> {
    params::known()
        .iter()
        .map(|spec| JailParam { spec, value: None })
        .collect()
}

/// Parse `name=value` arguments into typed parameters.
pub fn parse_assignments<S: AsRef<str>>(args: &[S]) -> Result<Vec<JailParam>, JailError> {
    args.iter()
        .map(|a| params::parse_assignment(a.as_ref()).map_err(JailError::from))
        .collect()
}

/// The jail(3lua) surface: `getid`, `getname`, `allparams`, `getparams`, `setparams`,
/// and the later `list`, `attach`, `remove`, with string tables in and out; the Lua
/// module of the `lua/` crate is a binding over these functions and nothing else.
pub mod lua {
    use super::*;

    pub const CREATE: Flags = Flags::CREATE;
    pub const UPDATE: Flags = Flags::UPDATE;
    pub const ATTACH: Flags = Flags::ATTACH;
    pub const DYING: Flags = Flags::DYING;

    pub fn getid(name: &str) -> Result<i32, JailError> {
        super::getid(name)
    }

    pub fn getname(jid: i32) -> Result<String, JailError> {
        super::getname(jid)
    }

    /// `jail.allparams()`: the names of every known parameter.
    pub fn allparams() -> Vec<&'static str> {
        params::known().iter().map(|p| p.name).collect()
    }

    /// `jail.getparams(jid|name, {names}, flags)`: returns the jid and a name->value table.
    pub fn getparams(
        jail: &str,
        names: &[&str],
        flags: Flags,
    ) -> Result<(i32, BTreeMap<String, String>), JailError> {
        let (jid, ps) = super::get_with_jid(jail, names, flags)?;
        Ok((
            jid,
            ps.into_iter()
                .map(|p| (p.name().to_string(), p.export()))
                .collect(),
        ))
    }

    /// `jail.list([names], [flags])`: every jail (dying ones only with DYING), in jid
    /// order, with its jid and a name->value table of `names` (every parameter when
    /// empty); `jid` and `name` are always in the table.
    #[allow(clippy::type_complexity)]
    pub fn list(
        names: &[&str],
        flags: Flags,
    ) -> Result<Vec<(i32, BTreeMap<String, String>)>, JailError> {
        let wanted = wanted_specs(names)?;
        let mut out = Vec::new();
        for info in super::list()? {
            if info.dying && !flags.contains(Flags::DYING) {
                continue;
            }
            let mut t: BTreeMap<String, String> = typed(&info, &wanted, !names.is_empty())?
                .into_iter()
                .map(|p| (p.name().to_string(), p.export()))
                .collect();
            t.insert("jid".into(), info.jid.to_string());
            t.insert("name".into(), info.name.clone());
            out.push((info.jid, t));
        }
        Ok(out)
    }

    /// `jail.attach(jid|name)`: see [`super::attach`].
    pub fn attach(jail: &str) -> Result<(), JailError> {
        super::attach(jail)
    }

    /// `jail.remove(jid|name)`: see [`super::remove`].
    pub fn remove(jail: &str) -> Result<(), JailError> {
        super::remove(jail)
    }

    /// `jail.setparams(jid|name, {name=value}, flags)`: returns the jid.
    pub fn setparams(
        jail: &str,
        values: &BTreeMap<String, String>,
        flags: Flags,
    ) -> Result<i32, JailError> {
        let mut ps = Vec::new();
        match parse_key(jail) {
            Key::Jid(j) => ps.push(params::parse_assignment(&format!("jid={j}"))?),
            Key::Name(n) => ps.push(params::parse_assignment(&format!("name={n}"))?),
        }
        for (k, v) in values {
            let mut p = JailParam::new(k)?;
            p.import(v)?;
            ps.push(p);
        }
        super::set(&ps, flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_and_update_semantics() {
        use Existing::*;
        let c = Flags::CREATE;
        let u = Flags::UPDATE;
        let d = Flags::DYING;
        assert_eq!(decide("j", None, c).unwrap(), SetAction::Create);
        assert!(matches!(
            decide("j", Some(Alive), c),
            Err(JailError::Exists { .. })
        ));
        assert_eq!(decide("j", Some(Alive), c | u).unwrap(), SetAction::Update);
        assert_eq!(decide("j", None, c | u).unwrap(), SetAction::Create);
        assert!(matches!(
            decide("j", None, u),
            Err(JailError::NotFound { .. })
        ));
        assert_eq!(decide("j", Some(Alive), u).unwrap(), SetAction::Update);
        // A dying jail is absent without DYING...
        assert!(matches!(
            decide("j", Some(Dying), u),
            Err(JailError::Dying { .. })
        ));
        assert_eq!(decide("j", Some(Dying), c).unwrap(), SetAction::Create);
        // ...and present with it.
        assert_eq!(decide("j", Some(Dying), u | d).unwrap(), SetAction::Update);
        assert!(matches!(
            decide("j", Some(Dying), c | d),
            Err(JailError::Exists { .. })
        ));
        assert!(matches!(
            decide("j", Some(Alive), Flags::NONE),
            Err(JailError::NoAction { .. })
        ));
        assert_eq!(
            decide("j", Some(Alive), Flags::ATTACH).unwrap(),
            SetAction::Update
        );
    }

    #[test]
    fn keys() {
        assert_eq!(parse_key("23"), Key::Jid(23));
        assert_eq!(parse_key("www01"), Key::Name("www01"));
        assert_eq!(parse_key("0"), Key::Name("0"));
    }

    #[test]
    fn lua_allparams_lists_table() {
        let all = lua::allparams();
        assert!(all.contains(&"host.hostname") && all.contains(&"persist"));
        assert_eq!(all.len(), allparams().len());
    }
}
