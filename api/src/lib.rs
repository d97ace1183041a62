//! Sluice's wire contract: the request and response bodies of the HTTP API
//! and of the Uppy Companion routes, the error codes and the error body, the
//! limits a client plans with, and the messages between functions. Serde
//! only, no AWS types: the functions serialize these types, and the CLI, the
//! end-to-end tests and the bench deserialize them, so a renamed field fails
//! to compile rather than in production.
//!
//! `openapi.yaml` is the published document; `tests/openapi.rs` checks each
//! type here against its schema there, field by field.

pub mod auth;
pub mod companion;
pub mod error;
pub mod files;
pub mod limits;
pub mod messages;
pub mod status;
pub mod uploads;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use status::{FileStatus, Kind, SessionStage, UploadMode};
