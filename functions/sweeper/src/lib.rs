//! On a schedule, two jobs that leave no upload without a known end:
//! - **Expiry.** Uploads nobody finished before their session expired: each
//!   one's multipart upload is aborted (S3 frees the parts at once, not a
//!   day later by the lifecycle rule) and its file ends FAILED, `expired`.
//!   A single PUT whose bytes did land (its S3 event lost) is judged instead.
//! - **Reconciliation.** Uploads that left `OPEN` more than
//!   `RECONCILE_AFTER_SECONDS` ago and whose verdict Postgres still does not
//!   hold (persist notes each one it stores): the verdict was lost on its
//!   way (a Postgres outage that outlived the queue's retries, a dropped S3
//!   event, a crash between steps). The verdict is sent again: the one
//!   inspect kept with the session, or a fresh one from the object S3
//!   holds, or the FAILED one of a cancelled or expired upload. Each is
//!   looked at again only after another full wait, so an outage is retried
//!   at that pace, not flooded.

use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use sluice_api::messages::SweepReport;
use sluice_shared::adapters::{S3Objects, SqsQueues};
use sluice_shared::auth::now_secs;
use sluice_shared::aws::Clients;
use sluice_shared::closeout::UploadCloser;
use sluice_shared::config::{ConfigError, Env, UploadSettings};
use sluice_shared::domain::UploadMode;
use sluice_shared::domain::status::SessionStage;
use sluice_shared::ports::{Objects, Queues, Quota, Sessions};
use sluice_shared::quota::QuotaLedger;
use sluice_shared::sessions::{SessionStore, UploadSession};

/// The function's dependencies: its ports (AWS adapters by default, fakes
/// in unit tests) and the settings.
pub struct Sweeper<S = SessionStore, O = S3Objects, Q = SqsQueues, L = QuotaLedger> {
    pub sessions: S,
    pub closer: UploadCloser<O, Q, L>,
    /// Judges an object whose S3 event never reached inspect.
    pub inspect: inspect::Inspect<S, O, Q, L>,
    pub bucket: String,
    pub reconcile_after_secs: u64,
}

impl Sweeper {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        let settings = UploadSettings::from_env(env)?;
        let reconcile_after_secs = env.parsed("RECONCILE_AFTER_SECONDS", 900)?;
        if reconcile_after_secs == 0 {
            return Err(env.invalid("RECONCILE_AFTER_SECONDS", "must be at least 1"));
        }
        Ok(Self {
            sessions: SessionStore::new(clients.dynamodb(), &settings.sessions_table),
            closer: UploadCloser::from_env(env, clients, &settings)?,
            inspect: inspect::Inspect::from_env(env, clients)?,
            bucket: settings.bucket,
            reconcile_after_secs,
        })
    }
}

/// Answers `{swept, failed, redriven}`. One upload that cannot be dealt with
/// now does not stop the rest; the next run retries it.
pub async fn handle<S: Sessions, O: Objects, Q: Queues, L: Quota>(
    deps: &Sweeper<S, O, Q, L>,
    _event: LambdaEvent<Value>,
) -> Result<SweepReport, Error> {
    let now = now_secs();
    let SweepReport { swept, mut failed, mut redriven } = deps.sweep_expired(now).await?;
    for session in deps.sessions.unsettled(now.saturating_sub(deps.reconcile_after_secs)).await? {
        match deps.redrive(&session, now).await {
            Ok(Some(action)) => {
                tracing::info!(file_id = %session.file_id, stage = session.stage.as_str(), action, "verdict re-driven");
                redriven += 1;
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(file_id = %session.file_id, %err, "verdict not re-driven; retried next run");
                failed += 1;
            }
        }
    }
    if swept + failed + redriven > 0 {
        tracing::info!(swept, failed, redriven, "sweep done");
    }
    Ok(SweepReport { swept, failed, redriven })
}

impl<S: Sessions, O: Objects, Q: Queues, L: Quota> Sweeper<S, O, Q, L> {
    async fn sweep_expired(&self, now: u64) -> Result<SweepReport, Error> {
        let mut counts = SweepReport::default();
        for session in self.sessions.expired_open(now).await? {
            // A single PUT whose bytes landed but whose S3 event never reached
            // inspect (or whose inspections all failed) is still OPEN: it is
            // judged now rather than failed with its bytes left in S3.
            if session.mode == UploadMode::Single {
                match self.object_exists(&session).await {
                    Ok(true) => {
                        match self.inspect.inspect_key(&self.bucket, &session.key, None).await {
                            Ok(()) => counts.redriven += 1,
                            Err(err) => {
                                tracing::warn!(file_id = %session.file_id, %err, "landed single PUT not judged; retried next run");
                                counts.failed += 1;
                            }
                        }
                        continue;
                    }
                    Ok(false) => {}
                    Err(err) => {
                        tracing::warn!(file_id = %session.file_id, %err, "cannot tell whether the PUT landed; retried next run");
                        counts.failed += 1;
                        continue;
                    }
                }
            }
            // Claim it first, so a client's last-second complete and the sweep cannot both win.
            if !self.sessions.set_stage(session.file_id, SessionStage::Open, SessionStage::Expired).await? {
                continue;
            }
            match self.closer.close(&session, expired_reason()).await {
                Ok(_) => counts.swept += 1,
                Err(e) => {
                    // Back to open-and-expired, for the next run.
                    let _ = self.sessions.set_stage(session.file_id, SessionStage::Expired, SessionStage::Open).await;
                    tracing::warn!(file_id = %session.file_id, error = %e, "expired upload not ended; retried next run");
                    counts.failed += 1;
                }
            }
        }
        Ok(counts)
    }

    /// Sends the upload's verdict again, by the surest means there is; answers
    /// what it did, or None when there is nothing to do yet.
    async fn redrive(&self, session: &UploadSession, now: u64) -> Result<Option<&'static str>, Error> {
        let action = match session.stage {
            SessionStage::Open => return Ok(None),
            SessionStage::Cancelled | SessionStage::Expired => {
                let reason = session.stage.failure_reason().unwrap_or_default();
                self.closer.close(session, reason).await?;
                "closed again"
            }
            SessionStage::Completing => match &session.judged {
                Some(judged) => {
                    self.inspect.queues.send(&self.inspect.settings.queue_url, &judged.verdict).await?;
                    "kept verdict re-sent"
                }
                None if self.object_exists(session).await? => {
                    self.inspect.inspect_key(&self.bucket, &session.key, None).await?;
                    "object judged"
                }
                // No object: S3 never completed it (an answer lost before the
                // complete, a client that gave up). The client may still
                // complete it while the session lives; after that it expires.
                None if session.is_expired(now) => {
                    if !self.sessions.set_stage(session.file_id, SessionStage::Completing, SessionStage::Expired).await? {
                        return Ok(None);
                    }
                    self.closer.close(session, expired_reason()).await?;
                    "expired"
                }
                None => return Ok(None),
            },
        };
        self.sessions.touch(session.file_id).await?;
        Ok(Some(action))
    }

    async fn object_exists(&self, session: &UploadSession) -> Result<bool, Error> {
        Ok(self.inspect.objects.exists(&self.bucket, &session.key).await?)
    }
}

fn expired_reason() -> &'static str {
    SessionStage::Expired.failure_reason().unwrap_or_default()
}
