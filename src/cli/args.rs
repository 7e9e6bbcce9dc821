//! Argument structures shared by several `jailctl` subcommands.

/// `exec [-u user | -U user] JAIL command [args ...]`, shared by `jail exec` and the
/// manager's `exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Run as this user of the jail's own passwd database.
    #[arg(short = 'u', conflicts_with = "host_user")]
    pub user: Option<String>,
    /// Run as this user of the host's passwd database.
    #[arg(short = 'U')]
    pub host_user: Option<String>,
    pub jail: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}
