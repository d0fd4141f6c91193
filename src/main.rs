#![forbid(unsafe_code)]

use clap::Parser;

/// mimalloc rather than the system's allocator: a panel page allocates
/// thousands of small values across the runtime's threads (GraphQL values,
/// rows, HTML), and glibc's malloc and free were a tenth of the machine's
/// time under many visitors at once.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = switchboard::cli::Cli::parse();
    match switchboard::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
