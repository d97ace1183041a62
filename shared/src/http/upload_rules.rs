//! The HTTP rules over an upload session: which routes it answers, as
//! 4xx errors, and finding the caller's own session (404 for anyone else's).

use crate::error::ErrorCode;
use uuid::Uuid;

use crate::ApiError;
use crate::domain::UploadMode;
use crate::domain::status::SessionStage;
use crate::ports::Sessions;
use crate::sessions::{MAX_PARTS_PER_CALL, UploadSession};

/// 400 `invalid_parts` unless a call names 1 to [`MAX_PARTS_PER_CALL`] parts.
pub fn require_parts_per_call(count: usize) -> Result<(), ApiError> {
    if count == 0 || count > MAX_PARTS_PER_CALL as usize {
        return Err(ApiError::new(ErrorCode::InvalidParts, format!("send 1 to {MAX_PARTS_PER_CALL} parts per call; got {count}")));
    }
    Ok(())
}

/// The caller's open session, or 404 (also for another user's or an expired one).
pub async fn owned_session(sessions: &impl Sessions, req: &lambda_http::Request, owner: Uuid) -> Result<UploadSession, ApiError> {
    let file_id = super::file_id(req)?;
    let session = sessions.get(file_id).await?;
    session.filter(|s| s.owner_id == owner && !s.is_expired(crate::auth::now_secs())).ok_or_else(|| ApiError::not_found("this upload"))
}

/// What each route asks of a session before it acts.
pub trait UploadRules {
    /// 409 unless parts may still be sent and recorded.
    fn require_open(&self) -> Result<(), ApiError>;
    /// 409 unless this is a multipart upload still taking parts.
    fn require_parts_open(&self) -> Result<(), ApiError>;
    /// Part `n` of the plan, or 400 naming the range.
    fn part(&self, n: i64) -> Result<crate::domain::PartNumber, ApiError>;
    /// 409 for the part routes unless we planned the parts.
    fn require_multipart(&self) -> Result<(), ApiError>;
    /// 409 for the /s3/multipart routes unless they started this upload.
    fn require_companion(&self) -> Result<(), ApiError>;
}

impl UploadRules for UploadSession {
    fn require_open(&self) -> Result<(), ApiError> {
        let why = match self.stage {
            SessionStage::Open => return Ok(()),
            SessionStage::Completing => "this upload is being completed; no more parts can be sent",
            SessionStage::Cancelled => "this upload was cancelled; no more parts can be sent",
            SessionStage::Expired => "this upload expired; start a new one",
        };
        Err(ApiError::new(ErrorCode::UploadNotOpen, why))
    }

    fn require_parts_open(&self) -> Result<(), ApiError> {
        self.require_multipart()?;
        self.require_open()
    }

    fn part(&self, n: i64) -> Result<crate::domain::PartNumber, ApiError> {
        self.plan.part_number(n).ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidPartNumber, format!("partNumber {n} is outside the plan (1 to {})", self.plan.part_count))
        })
    }

    fn require_multipart(&self) -> Result<(), ApiError> {
        match self.mode {
            UploadMode::Multipart => Ok(()),
            UploadMode::Single => Err(ApiError::new(
                ErrorCode::NotMultipart,
                "this upload is one presigned PUT: it has no parts and completes when the PUT succeeds",
            )),
            UploadMode::Companion => Err(companion_conflict()),
        }
    }

    fn require_companion(&self) -> Result<(), ApiError> {
        match self.mode {
            UploadMode::Companion => Ok(()),
            UploadMode::Single | UploadMode::Multipart => {
                Err(ApiError::new(ErrorCode::NotCompanion, "this upload was started by POST /uploads; use the /uploads routes for it"))
            }
        }
    }
}

fn companion_conflict() -> ApiError {
    ApiError::new(
        ErrorCode::NotMultipart,
        "this upload was started by POST /s3/multipart (Uppy): its parts are signed, listed and completed through the /s3/multipart routes",
    )
}
