use lambda_http::{Error, service_fn};
use sluice_shared::{config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let auth = config::load_or_exit(auth::Auth::from_env);
    lambda_http::run(service_fn(|req| auth::handle(&auth, req))).await
}
