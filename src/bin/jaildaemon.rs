//! `jaildaemon`: see `jaildaemon::cli::jaildaemon`.
fn main() -> std::process::ExitCode {
    jaildaemon::cli::jaildaemon::main()
}
