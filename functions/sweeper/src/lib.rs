//! On a schedule: ends uploads nobody finished before their session expired.
//! Each one's multipart upload is aborted (S3 frees the parts at once, not a
//! day later by the lifecycle rule) and its file ends FAILED, reason `expired`.

use lambda_runtime::{Error, LambdaEvent};
use serde_json::{Value, json};
use sluice_shared::auth::now_secs;
use sluice_shared::aws::Clients;
use sluice_shared::config::{ConfigError, Env, UploadSettings};
use sluice_shared::domain::status::SessionStage;
use sluice_shared::sessions::{SessionStore, UploadCloser};

pub struct Sweeper {
    pub sessions: SessionStore,
    pub closer: UploadCloser,
}

impl Sweeper {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        let settings = UploadSettings::from_env(env)?;
        Ok(Self {
            sessions: SessionStore::new(clients.dynamodb(), &settings.sessions_table),
            closer: UploadCloser::from_env(env, clients, &settings)?,
        })
    }
}

/// Answers `{swept, failed}`. One upload that cannot be ended now does not
/// stop the rest; it is still open and expired, so the next run retries it.
pub async fn handle(deps: &Sweeper, _event: LambdaEvent<Value>) -> Result<Value, Error> {
    let expired = deps.sessions.expired_open(now_secs()).await?;
    let (mut swept, mut failed) = (0u32, 0u32);
    for session in expired {
        // Claim it first, so a client's last-second complete and the sweep cannot both win.
        if !deps.sessions.set_stage(session.file_id, SessionStage::Open, SessionStage::Expired).await? {
            continue;
        }
        let reason = SessionStage::Expired.failure_reason().unwrap_or_default();
        match deps.closer.close(&session, reason).await {
            Ok(_) => swept += 1,
            Err(e) => {
                // Back to open-and-expired, for the next run.
                let _ = deps.sessions.set_stage(session.file_id, SessionStage::Expired, SessionStage::Open).await;
                tracing::warn!(file_id = %session.file_id, error = %e.message, "expired upload not ended; retried next run");
                failed += 1;
            }
        }
    }
    if swept + failed > 0 {
        tracing::info!(swept, failed, "sweep done");
    }
    Ok(json!({ "swept": swept, "failed": failed }))
}
