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
