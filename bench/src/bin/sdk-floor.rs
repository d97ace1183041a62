//! The SDK floor of the cold-start benchmark: a lambda_runtime function that
//! starts as Sluice's functions do (tracing, the SDK configuration, the
//! shared HTTPS client) and builds the SDK clients one of them builds
//! (`SDK_FLOOR_CLIENTS`: `s3`, `sqs`, `dynamodb`, comma-separated), with the
//! same features and profile, and nothing else. What a function spends at
//! start-up beyond this is its own work.
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use sluice_shared::{aws, config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = aws::sdk_config(config::load_or_exit(aws::SdkSettings::from_env)).await;
    let clients = config::load_or_exit(|env| aws::Clients::from_env(env, &sdk));
    let wanted = std::env::var("SDK_FLOOR_CLIENTS").unwrap_or_default();
    for client in wanted.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        match client {
            "s3" => drop(clients.s3()),
            "sqs" => drop(clients.sqs()),
            "dynamodb" => drop(clients.dynamodb()),
            other => return Err(format!("SDK_FLOOR_CLIENTS: unknown client '{other}'").into()),
        }
    }
    run(service_fn(|event: LambdaEvent<Value>| async move { Ok::<Value, Error>(event.payload) })).await
}
