use lambda_http::{Error, service_fn};
use sluice_shared::{aws, config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = aws::sdk_config(config::load_or_exit(aws::SdkSettings::from_env)).await;
    let auth = config::load_or_exit(|env| auth::Auth::from_env(env, &aws::Clients::from_env(env, &sdk)?));
    lambda_http::run(service_fn(|req| auth::handle(&auth, req))).await
}
