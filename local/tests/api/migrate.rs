//! The deploy-time migration custom resource, called with events/migrate.json
//! against a fresh database on the local Postgres; CloudFormation's response
//! URL is a local server that keeps what it is sent.

use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper::service::service_fn;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use tokio::sync::mpsc;

/// A stand-in for CloudFormation's presigned response URL: answers 200 and
/// hands over each body it receives.
async fn response_catcher() -> (String, mpsc::UnboundedReceiver<Value>) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let url = format!("http://{}/cfn-response?X-Amz-Signature=abc", listener.local_addr().unwrap());
    let (sent, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let sent = sent.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let sent = sent.clone();
                    async move {
                        assert_eq!(req.method(), hyper::Method::PUT);
                        let body = req.into_body().collect().await?.to_bytes();
                        sent.send(serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
                        Ok::<_, hyper::Error>(hyper::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    (url, received)
}

async fn fresh_database() -> String {
    let port = std::env::var("SLUICE_PG_PORT").expect("run with `make test`");
    let name = format!("migrate_{}", uuid::Uuid::new_v4().simple());
    let admin = sluice_shared::db::connect(&format!("postgres://postgres@127.0.0.1:{port}/postgres")).await.unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    format!("postgres://postgres@127.0.0.1:{port}/{name}")
}

fn request(kind: &str, response_url: &str) -> LambdaEvent<aws_lambda_events::cloudformation::CloudFormationCustomResourceRequest> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/migrate.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["RequestType"] = kind.into();
    event["ResponseURL"] = response_url.into();
    if kind != "Create" {
        event["PhysicalResourceId"] = migrate::PHYSICAL_ID.into();
        event["OldResourceProperties"] = event["ResourceProperties"].clone();
    }
    LambdaEvent::new(serde_json::from_value(event).unwrap(), Context::default())
}

fn deps(database_url: &str) -> migrate::Migrate {
    let env = sluice_shared::config::Env::from_pairs([("DATABASE_URL", database_url)]);
    migrate::Migrate::from_env(&env).unwrap()
}

async fn tables(database_url: &str) -> Vec<String> {
    let client = sluice_shared::db::connect(database_url).await.unwrap();
    let rows =
        client.query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1", &[]).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn create_applies_the_migrations_and_tells_cloudformation() {
    let (url, mut responses) = response_catcher().await;
    let database_url = fresh_database().await;
    assert!(tables(&database_url).await.is_empty());

    migrate::handle(&deps(&database_url), request("Create", &url)).await.unwrap();
    let response = responses.recv().await.unwrap();
    assert_eq!(response["Status"], "SUCCESS", "{response}");
    assert_eq!(response["PhysicalResourceId"], migrate::PHYSICAL_ID);
    assert_eq!(response["RequestId"], "8d3f1c2e-2b7a-4c1d-9e8f-7a6b5c4d3e2f");
    assert_eq!(response["LogicalResourceId"], "Migrations");
    let every: Vec<&str> = sluice_shared::db::MIGRATIONS.iter().map(|(version, _)| *version).collect();
    assert_eq!(response["Data"]["Applied"], every.join(","));
    let created = tables(&database_url).await;
    for table in ["users", "files", "chunks", "schema_migrations"] {
        assert!(created.contains(&table.to_string()), "{table} missing from {created:?}");
    }

    // An update (a new deploy) applies nothing twice and keeps the physical id.
    migrate::handle(&deps(&database_url), request("Update", &url)).await.unwrap();
    let response = responses.recv().await.unwrap();
    assert_eq!((response["Status"].as_str(), response["Data"]["Applied"].as_str()), (Some("SUCCESS"), Some("")));
    assert_eq!(response["PhysicalResourceId"], migrate::PHYSICAL_ID);
}

#[tokio::test]
async fn an_unreachable_database_fails_the_deploy_with_the_reason() {
    let (url, mut responses) = response_catcher().await;
    let port = std::env::var("SLUICE_PG_PORT").expect("run with `make test`");
    let missing = format!("postgres://postgres@127.0.0.1:{port}/no_such_database");

    migrate::handle(&deps(&missing), request("Create", &url)).await.unwrap();
    let response = responses.recv().await.unwrap();
    assert_eq!(response["Status"], "FAILED", "{response}");
    let reason = response["Reason"].as_str().unwrap();
    assert!(reason.contains("no_such_database"), "{reason}");
}

#[tokio::test]
async fn delete_keeps_the_data_and_never_blocks_teardown() {
    let (url, mut responses) = response_catcher().await;
    let database_url = fresh_database().await;
    migrate::handle(&deps(&database_url), request("Create", &url)).await.unwrap();
    assert_eq!(responses.recv().await.unwrap()["Status"], "SUCCESS");

    migrate::handle(&deps(&database_url), request("Delete", &url)).await.unwrap();
    assert_eq!(responses.recv().await.unwrap()["Status"], "SUCCESS");
    assert!(tables(&database_url).await.contains(&"files".to_string()), "deleting the stack dropped the schema");

    // An unreachable database does not hold the stack's deletion hostage.
    migrate::handle(&deps("postgres://postgres@127.0.0.1:9/gone"), request("Delete", &url)).await.unwrap();
    assert_eq!(responses.recv().await.unwrap()["Status"], "SUCCESS");
}
