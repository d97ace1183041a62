use lambda_runtime::{Error, run, service_fn};
use sluice_shared::{aws, config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = aws::sdk_config(config::load_or_exit(aws::SdkSettings::from_env)).await;
    let deps = config::load_or_exit(|env| persist::Persist::from_env(env, &aws::Clients::from_env(env, &sdk)?));
    run(service_fn(|event| persist::handle(&deps, event))).await
}
