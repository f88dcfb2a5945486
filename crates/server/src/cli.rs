//! Command-line interface: subcommands and their dispatch.

use crate::config::{Config, one_line};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// payfac: a self-hosted multi-merchant QR-payment aggregator for CodePay.
#[derive(Debug, Parser)]
#[command(name = "payfac", version, about, propagate_version = true)]
pub struct Cli {
    /// TOML config file (also `PAYFAC_CONFIG`); env vars `PAYFAC_*` override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to run; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// API and background workers in one process (the default, and the embedded mode).
    Serve(ListenArgs),
    /// Only the HTTP API (Kubernetes `api` Deployment).
    Api(ListenArgs),
    /// Only the background workers, with health and metrics endpoints (Kubernetes `worker` Deployment).
    Worker(ListenArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Operator administration from the shell.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the CodePay simulator alone (a sandbox gateway to integrate and test against).
    Sim(SimArgs),
    /// CodePay signature tools: settle "signature mismatch" with the gateway.
    #[command(subcommand)]
    Codepay(CodepayCommand),
}

/// `payfac sim` options; everything not given is generated and printed at start.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to bind.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    pub listen: String,
    /// JSON file that keeps the simulator's keys, apps, merchants and ledger across restarts.
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,
    /// Run the gateway's delays this many times faster (tests, demos).
    #[arg(long, default_value_t = 1)]
    pub time_scale: u32,
    /// The gateway's RSA private key (PEM); generated when absent.
    #[arg(long, value_name = "FILE")]
    pub gateway_private_key: Option<PathBuf>,
    /// Register an app with this id at start (needs --app-public-key).
    #[arg(long, requires = "app_public_key")]
    pub app_id: Option<String>,
    /// The app's RSA public key (PEM) for --app-id.
    #[arg(long, value_name = "FILE", requires = "app_id")]
    pub app_public_key: Option<PathBuf>,
    /// Register this merchant number at start (repeatable).
    #[arg(long = "merchant-no", value_name = "NO")]
    pub merchant_nos: Vec<String>,
    /// CodePay's fee rate, basis points (60 = 0.60 %), of the merchants this simulator registers
    /// without one: at start and later through `POST /sim/merchants`. Merchants kept in the
    /// state file keep their rate.
    #[arg(long, value_name = "N", default_value_t = codepay_sim::DEFAULT_FEE_BPS,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(codepay_sim::MAX_FEE_BPS)))]
    pub fee_bps: u32,
}

/// `payfac codepay …`: each reads one JSON message on stdin.
#[derive(Debug, Subcommand)]
pub enum CodepayCommand {
    /// Print the canonical string CodePay signs for the message.
    Canonical,
    /// Print the message with `sign` added, signed with the app's private key.
    Sign {
        /// The app's RSA private key (PEM PKCS#8/PKCS#1 or bare base64).
        #[arg(long, value_name = "FILE")]
        private_key: PathBuf,
    },
    /// Exit 0 and print `valid` when the message's `sign` verifies, else exit 1 and print `invalid`.
    Verify {
        /// The signer's RSA public key (PEM or bare base64).
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
    },
}

/// `--listen` shared by the serving subcommands.
#[derive(Debug, Args, Default)]
pub struct ListenArgs {
    /// Address to bind (also `PAYFAC_LISTEN`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// `payfac admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an operator API key and print it once (same as `operator-keys create`).
    CreateOperatorKey {
        /// A label to recognise the key by.
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// List, create and revoke operator API keys.
    #[command(subcommand)]
    OperatorKeys(OperatorKeysCommand),
    /// Re-seal every stored secret under the current master key (after rotating it with
    /// `master_key_previous` holding the old one); prints how many were re-sealed.
    RewrapSecrets,
}

/// `payfac admin operator-keys …`
#[derive(Debug, Subcommand)]
pub enum OperatorKeysCommand {
    /// Print every operator key (id, prefix, label, created, last used, revoked); never secrets.
    List,
    /// Create an operator key and print its secret once.
    Create {
        /// A label to recognise the key by.
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// Revoke an operator key by id (`key_…`); it stops working within a second and is never
    /// re-created by `PAYFAC_BOOTSTRAP_OPERATOR_KEY`.
    Revoke {
        /// The key's id.
        id: String,
    },
}

/// `payfac config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration with secrets masked, after validating it.
    Check,
}

/// Parses the command line, runs the subcommand, and turns any error into one line on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("payfac: error: {}", one_line(&format!("{err:#}")));
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    use crate::run::Role;
    let file = cli.config.as_deref();
    match cli.command.unwrap_or(Command::Serve(ListenArgs::default())) {
        // The signature tools and the standalone simulator need no configuration.
        Command::Codepay(cmd) => run_codepay(&cmd),
        Command::Sim(args) => crate::sandbox::run_standalone(args),
        Command::Serve(args) => crate::run::serve(load(file, args)?, Role::All),
        Command::Api(args) => crate::run::serve(load(file, args)?, Role::Api),
        Command::Worker(args) => crate::run::serve(load(file, args)?, Role::Worker),
        Command::Migrate => crate::run::migrate(Config::load(file)?),
        Command::Admin(AdminCommand::CreateOperatorKey { label }) => {
            crate::run::create_operator_key(Config::load(file)?, &label)
        }
        Command::Admin(AdminCommand::OperatorKeys(cmd)) => {
            crate::run::operator_keys(Config::load(file)?, cmd)
        }
        Command::Admin(AdminCommand::RewrapSecrets) => {
            crate::run::rewrap_secrets(Config::load(file)?)
        }
        Command::Config(ConfigCommand::Check) => {
            print!("{}", Config::load(file)?.render_masked());
            println!("# configuration is valid");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The configuration of a serving subcommand, `--listen` overriding `listen`.
fn load(file: Option<&Path>, args: ListenArgs) -> anyhow::Result<Config> {
    let mut config = Config::load(file)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
        config.validate()?;
    }
    Ok(config)
}

fn run_codepay(cmd: &CodepayCommand) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    use std::io::Read;
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("cannot read the message from stdin")?;
    let read_key = |path: &PathBuf| {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read key file {}", path.display()))
    };
    match cmd {
        CodepayCommand::Canonical => println!("{}", gateway_client::cli::canonical(&input)?),
        CodepayCommand::Sign { private_key } => {
            println!(
                "{}",
                gateway_client::cli::sign(&input, &read_key(private_key)?)?
            )
        }
        CodepayCommand::Verify { public_key } => {
            let valid = gateway_client::cli::verify(&input, &read_key(public_key)?)?;
            println!("{}", if valid { "valid" } else { "invalid" });
            return Ok(if valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim_args(args: &[&str]) -> Result<SimArgs, clap::Error> {
        let argv = ["payfac", "sim"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Some(Command::Sim(a)) => Ok(a),
            other => panic!("not `sim`: {other:?}"),
        }
    }

    #[test]
    fn sim_takes_a_default_fee_rate_in_basis_points() {
        let defaults = sim_args(&[]).expect("no args");
        assert_eq!(defaults.fee_bps, codepay_sim::DEFAULT_FEE_BPS);
        assert_eq!(defaults.listen, "127.0.0.1:8090");
        let set = sim_args(&["--fee-bps", "125", "--merchant-no", "M1"]).expect("fee");
        assert_eq!(
            (set.fee_bps, set.merchant_nos),
            (125, vec!["M1".to_owned()])
        );
        assert!(
            sim_args(&["--fee-bps", "10000"]).is_ok(),
            "100 % is the most"
        );
        for bad in ["10001", "-1", "0.6"] {
            assert!(sim_args(&["--fee-bps", bad]).is_err(), "{bad}");
        }
    }
}
