//! The `caja` binary: a thin shim over the subcommands in [`cli`].

mod cli;
mod commands;
mod settings;
mod telemetry;

/// mimalloc instead of glibc's allocator: a checkout makes a few hundred short-lived
/// allocations, and under callgrind glibc's malloc and free were a quarter of the server's
/// instructions per order (see BENCHMARKS.md, "Cost per order").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
