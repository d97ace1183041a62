//! `sluice-local dev` runs Sluice on the local stack until Ctrl-C;
//! `sluice-local migrate` applies the migrations to `DATABASE_URL` (RDS too).

use clap::{Parser, Subcommand};
use sluice_local::{Stack, StackOptions};

#[derive(Parser)]
#[command(version, about = "Sluice's local stack")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API, local S3, event delivery and the SQS poller (needs scripts/stack.sh's environment).
    Dev {
        #[arg(long, env = "SLUICE_API_PORT", default_value_t = 8787)]
        api_port: u16,
        #[arg(long, env = "SLUICE_S3_PORT", default_value_t = 8788)]
        s3_port: u16,
    },
    /// Apply pending migrations to the database at DATABASE_URL.
    Migrate {
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
}

#[tokio::main]
async fn main() -> Result<(), sluice_local::stack::BoxError> {
    sluice_shared::telemetry::init();
    match Cli::parse().command {
        Command::Migrate { database_url } => {
            let mut client = sluice_shared::db::connect(&database_url).await?;
            let applied = sluice_shared::db::migrate(&mut client).await?;
            println!("applied {} migration(s): {}", applied.len(), applied.join(", "));
        }
        Command::Dev { api_port, s3_port } => {
            let mut opts = StackOptions::from_process_env("sluice_dev")?;
            opts.api_addr = ([127, 0, 0, 1], api_port).into();
            opts.s3_addr = ([127, 0, 0, 1], s3_port).into();
            let stack = Stack::start(opts).await?;
            println!("\nSluice is running.\n  API:  {}\n  S3:   {}\n", stack.api_url, stack.s3_url);
            // The same settings, for running the Lambda binaries under `cargo lambda watch`.
            let env_file = std::path::Path::new(&std::env::var("SLUICE_STATE_DIR")?).join("lambda.env");
            let lines: String = stack.env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            std::fs::write(&env_file, lines)?;
            println!("Settings for `cargo lambda watch --env-file {}` (see README).", env_file.display());
            println!("\nCtrl-C stops everything.");
            tokio::signal::ctrl_c().await?;
        }
    }
    Ok(())
}
