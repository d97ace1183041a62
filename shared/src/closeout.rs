//! The close-out of an upload that will never complete (cancelled or
//! expired): S3 frees its parts, persist is told it FAILED, its quota
//! charge goes back.

use crate::ApiError;
use crate::adapters::{S3Objects, SqsQueues};
use crate::messages::VerdictMessage;
use crate::ports::{ObjectError, Objects, QueueError, Queues, Quota};
use crate::quota::{QuotaError, QuotaLedger};
use crate::sessions::UploadSession;

/// Which step of a close-out failed; the close-out is repeatable, so the
/// caller retries it whole.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    #[error("S3 did not abort the multipart upload: {0}")]
    Abort(ObjectError),
    #[error("the verdict queue did not take the FAILED verdict: {0}")]
    Queue(QueueError),
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
pub struct UploadCloser<O = S3Objects, Q = SqsQueues, L = QuotaLedger> {
    pub objects: O,
    pub queues: Q,
    pub quota: L,
    pub bucket: String,
    pub verdict_queue_url: String,
}

impl UploadCloser {
    pub fn from_env(
        env: &crate::config::Env,
        clients: &crate::aws::Clients,
        settings: &crate::config::UploadSettings,
    ) -> Result<Self, crate::config::ConfigError> {
        Ok(Self {
            objects: S3Objects::new(clients.s3()),
            queues: SqsQueues::new(clients.sqs()),
            quota: QuotaLedger::new(clients.dynamodb(), &settings.sessions_table),
            bucket: settings.bucket.clone(),
            verdict_queue_url: env.required("VERDICT_QUEUE_URL")?,
        })
    }
}

impl<O: Objects, Q: Queues, L: Quota> UploadCloser<O, Q, L> {
    /// A single-PUT upload has nothing to abort: a PUT that lands after the
    /// stage changed is removed by inspect.
    pub async fn close(&self, session: &UploadSession, reason: &str) -> Result<VerdictMessage, CloseError> {
        if session.has_multipart_upload() {
            self.objects.abort_multipart(&self.bucket, &session.key, &session.upload_id).await.map_err(CloseError::Abort)?;
        }
        let verdict = crate::messages::closed_verdict(session, &self.bucket, reason);
        let body = serde_json::to_string(&verdict).map_err(|e| CloseError::Queue(QueueError(e.to_string())))?;
        self.queues.send(&self.verdict_queue_url, &body).await.map_err(CloseError::Queue)?;
        // Last: a close that fails before this is retried and releases then.
        self.quota.release(session.owner_id, session.file_id).await?;
        Ok(verdict)
    }
}
