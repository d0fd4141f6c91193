#![forbid(unsafe_code)]

use clap::Parser;

/// mimalloc rather than the system's allocator: a panel page allocates
/// thousands of small values across the runtime's threads (GraphQL values,
/// rows, HTML), and the C library's malloc, free and memmove were 12% of
/// the machine's samples under the client home with many visitors at once.
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
