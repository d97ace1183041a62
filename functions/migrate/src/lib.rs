//! The CloudFormation custom resource that applies the Postgres migrations
//! on every `sam deploy`, so a deployment never runs against an old schema.
//! Create and Update migrate (idempotent: each migration runs once, under an
//! advisory lock); Delete leaves the database alone, since tearing down the
//! stack must not destroy users' data.

use std::time::Duration;

use aws_lambda_events::cloudformation::{
    CloudFormationCustomResourceRequest as Request, CloudFormationCustomResourceResponse as Response,
    CloudFormationCustomResourceResponseStatus as Status,
};
use lambda_runtime::{Error, LambdaEvent};
use sluice_shared::config::{self, ConfigError, Env};
use sluice_shared::db;

/// Stable across updates: CloudFormation replaces (and deletes) a resource
/// whose physical id changes.
pub const PHYSICAL_ID: &str = "sluice-postgres-migrations";

/// Well inside the function's timeout, so CloudFormation always gets an
/// answer instead of waiting an hour for one that never comes.
const MIGRATION_DEADLINE: Duration = Duration::from_secs(45);

pub struct Migrate {
    pub database: sluice_shared::db::DbConfig,
    pub http: reqwest::Client,
}

impl Migrate {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| env.invalid("(https client)", e.to_string()))?;
        Ok(Self { database: config::database_url(env)?, http })
    }
}

/// What CloudFormation is told; the migrations applied go in `Data.Applied`.
pub async fn outcome(deps: &Migrate, request: &Request) -> Result<Vec<String>, String> {
    match request {
        Request::Delete(_) => Ok(Vec::new()),
        Request::Create(_) | Request::Update(_) => {
            let run = async {
                let mut client = db::connect_with(&deps.database).await?;
                db::migrate(&mut client).await
            };
            match tokio::time::timeout(MIGRATION_DEADLINE, run).await {
                Ok(Ok(applied)) => Ok(applied),
                Ok(Err(e)) => Err(format!("migrations failed: {e}")),
                Err(_) => Err(format!(
                    "migrations did not finish within {} s (is the database reachable from the function's subnets?)",
                    MIGRATION_DEADLINE.as_secs()
                )),
            }
        }
        _ => Err("unknown request type".to_string()),
    }
}

pub async fn handle(deps: &Migrate, event: LambdaEvent<Request>) -> Result<(), Error> {
    let request = &event.payload;
    let result = outcome(deps, request).await;
    let Some((response_url, mut response)) = response_to(request) else {
        return Err("a custom resource request without a known RequestType".into());
    };
    match &result {
        Ok(applied) => {
            tracing::info!(?applied, "migrations up to date");
            response.status = Status::Success;
            response.data.insert("Applied".into(), applied.join(","));
        }
        Err(reason) => {
            tracing::error!(%reason, "migration failed");
            response.status = Status::Failed;
            response.reason = Some(reason.clone());
        }
    }
    // An error here makes Lambda retry the event; migrating again is harmless.
    deps.http.put(response_url).body(serde_json::to_vec(&response)?).send().await?.error_for_status()?;
    Ok(())
}

fn response_to(request: &Request) -> Option<(&str, Response)> {
    let (url, stack_id, request_id, logical_id, physical_id) = match request {
        Request::Create(r) => (&r.response_url, &r.stack_id, &r.request_id, &r.logical_resource_id, PHYSICAL_ID),
        Request::Update(r) => (&r.response_url, &r.stack_id, &r.request_id, &r.logical_resource_id, r.physical_resource_id.as_str()),
        Request::Delete(r) => (&r.response_url, &r.stack_id, &r.request_id, &r.logical_resource_id, r.physical_resource_id.as_str()),
        _ => return None,
    };
    let mut response = Response::default();
    response.stack_id = stack_id.clone();
    response.request_id = request_id.clone();
    response.logical_resource_id = logical_id.clone();
    response.physical_resource_id = physical_id.to_string();
    Some((url, response))
}
