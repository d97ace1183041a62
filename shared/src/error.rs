//! The one error shape every API function answers with:
//! `{"error":{"code":"snake_case","message":"..."}}` and the right status.

use lambda_http::{Body, Response};
pub use sluice_api::ErrorCode;
use sluice_api::{ErrorBody, ErrorDetail};

/// An error answer: its code (which owns the status), the message with the
/// numbers, and the fields some codes carry beside them.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// With `missing_parts`.
    pub missing_parts: Option<Vec<i64>>,
    /// With `too_many_attempts`: seconds, as in Retry-After.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), missing_parts: None, retry_after: None }
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// Also what another user's resource answers: its existence is not told.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} does not exist"))
    }

    /// A dependency (S3, DynamoDB, SQS, Postgres) failed; the request may be retried.
    pub fn unavailable(what: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(dependency = what, error = %err, "dependency failed");
        Self::new(ErrorCode::ServiceUnavailable, format!("{what} is unavailable right now; retry shortly"))
    }

    pub fn with_missing_parts<N: Into<i64>>(mut self, parts: impl IntoIterator<Item = N>) -> Self {
        self.missing_parts = Some(parts.into_iter().map(Into::into).collect());
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_string(),
                message: self.message.clone(),
                missing_parts: self.missing_parts.clone(),
                retry_after: self.retry_after,
            },
        }
    }

    pub fn into_response(self) -> Response<Body> {
        crate::http::json_response(self.status(), &self.body())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<crate::domain::checksum::ChecksumError> for ApiError {
    fn from(e: crate::domain::checksum::ChecksumError) -> Self {
        Self::new(ErrorCode::InvalidChecksum, e.to_string())
    }
}

impl From<crate::quota::QuotaError> for ApiError {
    fn from(e: crate::quota::QuotaError) -> Self {
        match e {
            crate::quota::QuotaError::Exceeded { .. } => Self::new(ErrorCode::QuotaExceeded, e.to_string()),
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
