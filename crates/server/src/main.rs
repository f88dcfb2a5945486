//! `payfac`: the self-hosted multi-merchant QR-payment aggregator.

use std::process::ExitCode;

fn main() -> ExitCode {
    server::cli::main()
}
