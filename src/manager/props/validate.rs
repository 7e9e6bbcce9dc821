//! Checking a property value against its type.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::schema::RCTL_ACTIONS;
use super::{lookup, Kind, PropError};
use Kind::*;

/// Longest value of any property: what a ZFS user property can hold (8192 bytes with
/// its terminating NUL).
pub const MAX_VALUE: usize = 8191;
/// Longest host name (MAXHOSTNAMELEN - 1), and of one of its labels.
pub const MAX_HOSTNAME: usize = 255;
const MAX_LABEL: usize = 63;

/// A host or domain name: labels of letters, digits and '-', 1 to 63 bytes each, not
/// starting or ending with '-', at most 255 bytes in all.
pub fn hostname_ok(h: &str) -> bool {
    h.len() <= MAX_HOSTNAME
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= MAX_LABEL
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A value shown in an error: long ones cut, with their length.
fn shown(v: &str) -> String {
    if v.len() <= 64 {
        v.to_string()
    } else {
        let mut end = 48;
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &v[..end], v.len())
    }
}

fn expected(k: Kind) -> String {
    match k {
        OnOff => "on or off".into(),
        OneZero => "1 or 0".into(),
        YesNo => "yes or no".into(),
        Int { min, max } => format!("an integer from {min} to {max}"),
        Str => "a string".into(),
        Word(ws) => format!("one of {}", ws.join(", ")),
        Ip4List => "none or [interface|]IPv4[/prefix] or interface|DHCP,...".into(),
        Ip6List => "none or [interface|]IPv6[/prefix],...".into(),
        Ip4OrNone => "none or an IPv4 address".into(),
        Ip6OrNone => "none or an IPv6 address".into(),
        Size => "none or a size such as 512M, 15G".into(),
        Kind::Rctl => format!(
            "off or AMOUNT:ACTION, AMOUNT {}, ACTION {} or sigNAME (not throttle: rctl(8) allows it only for I/O rates)",
            crate::sys::limits::AMOUNT_FORMS,
            RCTL_ACTIONS.join(", ")
        ),
        Kind::Cpuset => "off or a CPU list such as 0,2-3".into(),
        Resolver => "none or resolv.conf lines separated by ';'".into(),
        PathOrNone => "none or a file path".into(),
        TagList => {
            "none or jail tags separated by spaces or commas (not ALL, default, nor with '/')"
                .into()
        }
        ReadOnly => "nothing: it is read-only".into(),
    }
}

fn ip_entry<T: std::str::FromStr>(s: &str, max_prefix: u32) -> bool {
    let s = s.trim();
    let addr_part = match s.split_once('|') {
        Some((iface, rest)) => {
            if iface.is_empty()
                || !iface
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            {
                return false;
            }
            if rest.is_empty() {
                return true; // "vnet0|": an interface without address (vnet jails)
            }
            rest
        }
        None => s,
    };
    let (a, prefix) = match addr_part.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (addr_part, None),
    };
    if a == "AUTOIP4" && max_prefix == 32 {
        return true;
    }
    if a.eq_ignore_ascii_case("DHCP") && max_prefix == 32 && prefix.is_none() {
        return true; // iocage's "vnet0|DHCP": a lease at start
    }
    a.parse::<T>().is_ok()
        && prefix
            .map(|p| {
                p.parse::<u32>().map(|n| n <= max_prefix).unwrap_or(false)
                    || p.parse::<Ipv4Addr>().is_ok()
            })
            .unwrap_or(true)
}

fn size_ok(s: &str) -> bool {
    let s = s.trim();
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    !num.is_empty()
        && num.parse::<f64>().is_ok()
        && matches!(
            unit.to_ascii_uppercase().as_str(),
            "" | "B" | "K" | "M" | "G" | "T" | "P" | "KB" | "MB" | "GB" | "TB" | "PB"
        )
}

fn rctl_ok(s: &str) -> bool {
    let Some((limit, action)) = s.split_once(':') else {
        return false;
    };
    crate::sys::limits::parse_amount(limit).is_some()
        && (RCTL_ACTIONS.contains(&action)
            || (action.starts_with("sig")
                && action.len() > 3
                && action[3..].chars().all(|c| c.is_ascii_alphanumeric())))
}

fn cpuset_ok(s: &str) -> bool {
    s.split(',').all(|part| match part.split_once('-') {
        Some((a, b)) => matches!((a.parse::<u32>(), b.parse::<u32>()), (Ok(x), Ok(y)) if x <= y),
        None => part.parse::<u32>().is_ok(),
    })
}

/// Tags as `depends` lists them: each one a valid tag.
fn tag_list_ok(v: &str) -> bool {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .all(|t| {
            t.len() <= crate::manager::MAX_TAG
                && !matches!(t, "ALL" | "default")
                && !t.contains('/')
        })
}

/// Validate `value` for property `name` and return it normalised.
pub fn validate(name: &str, value: &str) -> Result<String, PropError> {
    let p = lookup(name)?;
    let bad = || PropError::Invalid {
        name: name.into(),
        value: shown(value),
        expected: expected(p.kind),
    };
    if value.len() > MAX_VALUE {
        return Err(PropError::TooLong {
            name: name.into(),
            len: value.len(),
            limit: MAX_VALUE,
        });
    }
    let v = value.trim();
    if matches!(name, "host_hostname" | "host_domainname") && !matches!(v, "" | "none") {
        if v.len() > MAX_HOSTNAME {
            return Err(PropError::TooLong {
                name: name.into(),
                len: v.len(),
                limit: MAX_HOSTNAME,
            });
        }
        if !hostname_ok(v) {
            return Err(PropError::Invalid {
                name: name.into(),
                value: shown(value),
                expected: "a host name: labels of letters, digits and '-' (1 to 63 bytes, not starting or ending with '-') joined by '.'".into(),
            });
        }
    }
    let ok = match p.kind {
        ReadOnly => return Err(PropError::ReadOnly(name.into())),
        OnOff => matches!(v, "on" | "off"),
        OneZero => matches!(v, "1" | "0"),
        YesNo => matches!(v, "yes" | "no"),
        Int { min, max } => v
            .parse::<i64>()
            .map(|n| n >= min && n <= max)
            .unwrap_or(false),
        Str => !value.contains('\0') && !value.contains('\n'),
        Word(ws) => ws.contains(&v),
        Ip4List => v == "none" || v.split(',').all(|e| ip_entry::<Ipv4Addr>(e, 32)),
        Ip6List => v == "none" || v.split(',').all(|e| ip_entry::<Ipv6Addr>(e, 128)),
        Ip4OrNone => v == "none" || v.parse::<Ipv4Addr>().is_ok(),
        Ip6OrNone => v == "none" || v.parse::<Ipv6Addr>().is_ok(),
        Size => v == "none" || size_ok(v),
        Kind::Rctl => v == "off" || rctl_ok(v),
        Kind::Cpuset => v == "off" || cpuset_ok(v),
        Resolver => !value.contains('\0') && !value.contains('\n'),
        PathOrNone => v == "none" || v.starts_with('/'),
        TagList => v == "none" || tag_list_ok(v),
    };
    if !ok {
        return Err(bad());
    }
    Ok(if matches!(p.kind, Str | Resolver) {
        value.to_string()
    } else {
        v.to_string()
    })
}
