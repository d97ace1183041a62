//! Sluice's local stack: the real handlers behind a local API Gateway
//! (HTTP API v2 events), a signature-checking local S3 that notifies the
//! inspect handler, and an SQS poller feeding the persist handler.

pub mod events;
pub mod router;
pub mod s3;
pub mod stack;
pub mod versions;

pub use stack::{Stack, StackOptions};
