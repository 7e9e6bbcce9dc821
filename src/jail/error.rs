//! Errors of the jail layer. Their text follows libjail's `jail_errmsg`: which jail,
//! which parameter, what failed.

use std::io;

/// A parameter that is unknown or whose value does not convert.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ParamError {
    #[error("unknown parameter: {name} (`jailctl jail params` lists the known ones)")]
    Unknown { name: String },
    #[error("{name}: cannot convert \"{value}\": expected {expected}")]
    BadValue {
        name: String,
        value: String,
        expected: String,
    },
    #[error("{name}: a value is required ({expected})")]
    MissingValue { name: String, expected: String },
}

#[derive(Debug, thiserror::Error)]
pub enum JailError {
    #[error("jail \"{jail}\" not found")]
    NotFound { jail: String },
    #[error("jail \"{jail}\" already exists")]
    Exists { jail: String },
    #[error("jail \"{jail}\" is dying (use the DYING flag to act on it)")]
    Dying { jail: String },
    #[error("jail name \"{name}\" is already used by jail {jid}")]
    NameInUse { name: String, jid: i32 },
    #[error(transparent)]
    Param(#[from] ParamError),
    #[error("{name}: {why}")]
    Unsupported { name: String, why: String },
    #[error("{name}: parameter is read-only")]
    ReadOnly { name: String },
    #[error("jail \"{jail}\": {name} cannot be changed on an existing jail")]
    CreateOnly { jail: String, name: String },
    #[error("path \"{path}\": {why}")]
    BadPath { path: String, why: String },
    #[error("{what}: neither CREATE nor UPDATE given; nothing to do")]
    NoAction { what: String },
    #[error("{what}: {source}")]
    Os {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("jail registry {path}: {source}")]
    Registry {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("jail registry entry {path} is corrupt: {why}")]
    CorruptEntry { path: String, why: String },
    #[error("{0}")]
    Invalid(String),
}

impl JailError {
    pub fn os(what: impl Into<String>, source: io::Error) -> Self {
        JailError::Os {
            what: what.into(),
            source,
        }
    }
}

/// A failed libjail call that looked a jail up (`jail_getid`, `jail_getname`,
/// `jailparam_get`): ENOENT, and only ENOENT, means there is no such jail; any other
/// errno (EPERM, EFAULT, ...) is reported as the OS error it is, with libjail's text.
/// Without an errno the call failed before the kernel was asked (a NUL in the name).
pub fn lookup_error(jail: &str, errno: Option<i32>, message: &str) -> JailError {
    match errno {
        Some(e) if io::Error::from_raw_os_error(e).kind() == io::ErrorKind::NotFound => {
            JailError::NotFound {
                jail: jail.to_string(),
            }
        }
        _ => kernel_error(&format!("jail \"{jail}\""), errno, message),
    }
}

/// A failed libjail call as an OS error: `what`, then libjail's text unless it is
/// only libjail's own `jail_get: <strerror>` fallback (the errno says the same), with
/// the errno kept as the source so callers can still read it.
pub fn kernel_error(what: &str, errno: Option<i32>, message: &str) -> JailError {
    let generic = ["jail_get: ", "jail_set: "]
        .iter()
        .any(|p| message.starts_with(p));
    match errno {
        Some(e) if e != 0 => JailError::Os {
            what: if message.is_empty() || generic {
                what.to_string()
            } else {
                format!("{what}: {message}")
            },
            source: io::Error::from_raw_os_error(e),
        },
        // Failed before the kernel: the message is all there is.
        _ => JailError::Os {
            what: what.to_string(),
            source: io::Error::other(message.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // errno values are the same on FreeBSD and Linux for these: ENOENT 2, EPERM 1,
    // EINVAL 22.

    #[test]
    fn only_enoent_is_not_found() {
        // jail_getid("web") on FreeBSD: the kernel's "jail \"web\" not found", ENOENT.
        let e = lookup_error("web", Some(2), "jail \"web\" not found");
        assert!(
            matches!(e, JailError::NotFound { ref jail } if jail == "web"),
            "{e}"
        );
        assert_eq!(e.to_string(), "jail \"web\" not found");
    }

    #[test]
    fn eperm_keeps_its_errno_and_text() {
        let e = lookup_error("web", Some(1), "jail_get: Operation not permitted");
        match &e {
            JailError::Os { what, source } => {
                assert_eq!(what, "jail \"web\"");
                assert_eq!(source.raw_os_error(), Some(1));
                assert_eq!(source.kind(), io::ErrorKind::PermissionDenied);
            }
            other => panic!("{other:?}"),
        }
        // A kernel-written message is kept beside the errno.
        let e = lookup_error("7", Some(22), "jid 7: bad parameter");
        assert!(
            e.to_string()
                .starts_with("jail \"7\": jid 7: bad parameter: "),
            "{e}"
        );
        assert!(matches!(&e, JailError::Os { source, .. } if source.raw_os_error() == Some(22)));
    }

    #[test]
    fn no_errno_is_not_a_missing_jail() {
        let e = lookup_error("a\0b", None, "NUL in jail name");
        assert!(!matches!(e, JailError::NotFound { .. }));
        assert_eq!(e.to_string(), "jail \"a\0b\": NUL in jail name");
    }

    #[test]
    fn set_errors_keep_the_kernel_text() {
        let e = kernel_error(
            "jail \"web\"",
            Some(2),
            "path \"/jails/web\": No such file or directory",
        );
        assert!(
            e.to_string()
                .starts_with("jail \"web\": path \"/jails/web\": No such file or directory"),
            "{e}"
        );
        assert!(matches!(&e, JailError::Os { source, .. } if source.raw_os_error() == Some(2)));
    }
}
