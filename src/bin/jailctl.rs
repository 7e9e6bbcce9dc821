//! `jailctl`: see `jaildaemon::cli::jailctl`.
fn main() -> std::process::ExitCode {
    jaildaemon::cli::init_logging();
    jaildaemon::cli::jailctl::main()
}
