//! Sluice's common library: the domain (plain Rust, no AWS types), the HTTP
//! conventions every API function follows, configuration, and the adapters
//! to DynamoDB, S3, SQS and Postgres that the functions share.

pub mod adapters;
pub mod auth;
pub mod aws;
pub mod closeout;
pub mod config;
pub mod db;
pub mod domain;
pub mod dynamo;
pub mod error;
#[cfg(feature = "test-support")]
pub mod fakes;
pub mod http;
pub mod inspection;
pub mod messages;
pub mod ports;
pub mod quota;
pub mod routes;
pub mod sample_events;
pub mod sessions;
pub mod signin_failures;
pub mod telemetry;
pub mod time;

pub use error::ApiError;
