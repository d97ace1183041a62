use lambda_runtime::{Error, run, service_fn};
use sluice_shared::{config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let deps = config::load_or_exit(migrate::Migrate::from_env);
    run(service_fn(|event| migrate::handle(&deps, event))).await
}
