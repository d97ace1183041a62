//! The one error shape every API function answers with:
//! `{"error":{"code":"snake_case","message":"..."}}` and the right status.

use lambda_http::{Body, Response};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Extra fields beside code and message (e.g. `missingParts`).
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), extra: Map::new() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }

    /// Also what another user's resource answers: its existence is not told.
    pub fn not_found(what: &str) -> Self {
        Self::new(404, "not_found", format!("{what} does not exist"))
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    /// A dependency (S3, DynamoDB, SQS, Postgres) failed; the request may be retried.
    pub fn unavailable(what: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(dependency = what, error = %err, "dependency failed");
        Self::new(503, "service_unavailable", format!("{what} is unavailable right now; retry shortly"))
    }

    pub fn with(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(field.to_string(), value.into());
        self
    }

    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        error.extend(self.extra.clone());
        json!({ "error": error })
    }

    pub fn into_response(self) -> Response<Body> {
        crate::http::json_response(self.status, &self.body())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<crate::domain::checksum::ChecksumError> for ApiError {
    fn from(e: crate::domain::checksum::ChecksumError) -> Self {
        Self::bad_request("invalid_checksum", e.to_string())
    }
}

impl From<crate::quota::QuotaError> for ApiError {
    fn from(e: crate::quota::QuotaError) -> Self {
        match e {
            crate::quota::QuotaError::Exceeded { .. } => Self::new(413, "quota_exceeded", e.to_string()),
            crate::quota::QuotaError::Store(_) => Self::unavailable("the quota ledger", e),
        }
    }
}

/// The stores an API function depends on: unreachable or failing, each is a
/// 503 naming it, so a handler writes `?` rather than a mapping.
impl From<crate::sessions::StoreError> for ApiError {
    fn from(e: crate::sessions::StoreError) -> Self {
        Self::unavailable("the session table", e)
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        Self::unavailable("the database", e)
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::from(crate::db::DbError::from(e))
    }
}

impl From<crate::signin_failures::SigninStoreError> for ApiError {
    fn from(e: crate::signin_failures::SigninStoreError) -> Self {
        Self::unavailable("the sign-in counter", e)
    }
}
