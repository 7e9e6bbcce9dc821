//! `jailctl`: the jail manager's command line: the `jail` subcommand (the
//! jail(8)/jls(8)/jexec(8) of the project, [`super::jail`]) and the iocage-style
//! commands ([`super::manage`]).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use super::jail::JailCmd;
use super::manage::ManageCmd;

#[derive(Debug, Parser)]
#[command(
    name = "jailctl",
    version,
    about = "Jail manager: jails, their parameters and their processes"
)]
pub struct Cli {
    /// Use the directory backend rooted at DIR (also JAILCTL_ROOT).
    #[arg(long, value_name = "DIR", global = false)]
    pub root: Option<std::path::PathBuf>,
    /// Use the ZFS backend on POOL (also JAILCTL_POOL); default: the active pool.
    #[arg(long, value_name = "POOL", global = false)]
    pub pool: Option<String>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Kernel-level jails: create, set, get, remove, list, exec (jail(8), jls(8), jexec(8)).
    #[command(subcommand)]
    Jail(JailCmd),
    #[command(flatten)]
    Manage(ManageCmd),
}

/// Entry point used by the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jailctl: {e}");
            ExitCode::from(1)
        }
    }
}

/// What a `jailctl` command failed with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Jail(#[from] crate::jail::JailError),
    #[error(transparent)]
    Manager(#[from] crate::manager::ManagerError),
}

pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.cmd {
        Cmd::Jail(c) => Ok(super::jail::run(c)?),
        Cmd::Manage(c) => {
            let sel = crate::manager::Selection {
                root: cli.root,
                pool: cli.pool,
            };
            Ok(super::manage::run(&sel, c)?)
        }
    }
}
