use lambda_http::{Error, service_fn};
use sluice_shared::{aws, config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = aws::sdk_config(config::load_or_exit(aws::SdkSettings::from_env)).await;
    let deps = config::load_or_exit(|env| record_chunk::RecordChunk::from_env(env, &aws::Clients::from_env(env, &sdk)?));
    lambda_http::run(service_fn(|req| record_chunk::handle(&deps, req))).await
}
