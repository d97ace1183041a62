//! The close-out of an upload that will never complete (cancelled or
//! expired): S3 frees its parts, persist is told it FAILED, its quota
//! charge goes back.

use crate::ApiError;
use crate::messages::VerdictMessage;
use crate::quota::{QuotaError, QuotaLedger};
use crate::sessions::UploadSession;

/// Which step of a close-out failed; the close-out is repeatable, so the
/// caller retries it whole.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    #[error("S3 did not abort the multipart upload: {0}")]
    Abort(String),
    #[error("the verdict queue did not take the FAILED verdict: {0}")]
    Queue(String),
    #[error("the quota charge was not released: {0}")]
    Quota(#[from] QuotaError),
}

impl From<CloseError> for ApiError {
    fn from(e: CloseError) -> Self {
        match e {
            CloseError::Abort(why) => ApiError::unavailable("S3", why),
            CloseError::Queue(why) => ApiError::unavailable("the verdict queue", why),
            CloseError::Quota(why) => ApiError::unavailable("the quota ledger", why),
        }
    }
}

/// Ends uploads that will never complete (cancelled or expired): aborts the
/// multipart upload, so S3 frees every part, and sends the FAILED verdict for
/// persist to record. Repeatable: an upload already aborted is fine.
pub struct UploadCloser {
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    quota: QuotaLedger,
    bucket: String,
    verdict_queue_url: String,
}

impl UploadCloser {
    pub fn from_env(
        env: &crate::config::Env,
        clients: &crate::aws::Clients,
        settings: &crate::config::UploadSettings,
    ) -> Result<Self, crate::config::ConfigError> {
        Ok(Self {
            s3: clients.s3(),
            sqs: clients.sqs(),
            quota: QuotaLedger::new(clients.dynamodb(), &settings.sessions_table),
            bucket: settings.bucket.clone(),
            verdict_queue_url: env.required("VERDICT_QUEUE_URL")?,
        })
    }

    /// A single-PUT upload has nothing to abort: a PUT that lands after the
    /// stage changed is removed by inspect.
    pub async fn close(&self, session: &UploadSession, reason: &str) -> Result<VerdictMessage, CloseError> {
        if session.has_multipart_upload() {
            let aborted =
                self.s3.abort_multipart_upload().bucket(&self.bucket).key(&session.key).upload_id(&session.upload_id).send().await;
            match aborted {
                // Already aborted (or completed): nothing left to free.
                Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_upload()) => {}
                Err(e) => return Err(CloseError::Abort(crate::aws::describe(e))),
                Ok(_) => {}
            }
        }
        let verdict = VerdictMessage::closed(session, &self.bucket, reason);
        let body = serde_json::to_string(&verdict).map_err(|e| CloseError::Queue(e.to_string()))?;
        self.sqs
            .send_message()
            .queue_url(&self.verdict_queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| CloseError::Queue(crate::aws::describe(e)))?;
        // Last: a close that fails before this is retried and releases then.
        self.quota.release(session.owner_id, session.file_id).await?;
        Ok(verdict)
    }
}
