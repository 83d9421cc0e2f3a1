//! The `caja` binary: a thin shim over the subcommands in [`cli`].

mod cli;
mod commands;
mod settings;
mod telemetry;

fn main() -> std::process::ExitCode {
    cli::main()
}
