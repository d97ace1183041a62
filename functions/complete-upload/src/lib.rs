//! `POST /uploads/{fileId}/complete`: completes the multipart upload from the
//! parts the server recorded (never from a list the client sends), after
//! checking them against what S3 itself holds. `DELETE /uploads/{fileId}`
//! cancels: aborts the multipart upload (S3 frees every part) and sends a
//! FAILED verdict (reason `cancelled`) for persist to record.

use std::collections::HashMap;

use lambda_http::{Body, Error, Request, Response};
use sluice_api::FileStatus;
use sluice_api::companion::{ClientPart, CompleteMultipart, HeldPart, MultipartAborted, MultipartCompleted};
use sluice_api::uploads::{CompleteAccepted, UploadCancelled};
use sluice_shared::adapters::{S3Objects, SqsQueues};
use sluice_shared::auth::TokenVerifier;
use sluice_shared::aws::{Clients, bare_etag};
use sluice_shared::closeout::UploadCloser;
use sluice_shared::config::{ConfigError, Env, UploadSettings};
use sluice_shared::domain::status::SessionStage;
use sluice_shared::error::ErrorCode;
use sluice_shared::http::{UploadRules, json_body, json_response, owned_session, respond, unknown_route};
use sluice_shared::ports::{CompleteError, CompletedPart, Objects, PartInS3, Queues, Quota, Sessions};
use sluice_shared::quota::QuotaLedger;
use sluice_shared::routes::{self, Endpoint};
use sluice_shared::sessions::{RecordedPart, SessionStore, UploadSession};
use sluice_shared::{ApiError, config};

/// The function's dependencies: its ports (AWS adapters by default, fakes
/// in unit tests), the token verifier and the settings.
pub struct CompleteUpload<S = SessionStore, O = S3Objects, Q = SqsQueues, L = QuotaLedger> {
    pub objects: O,
    pub sessions: S,
    pub closer: UploadCloser<O, Q, L>,
    pub quota: L,
    pub verifier: TokenVerifier,
    pub settings: UploadSettings,
}

impl CompleteUpload {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        let settings = UploadSettings::from_env(env)?;
        Ok(Self {
            objects: S3Objects::new(clients.s3()),
            sessions: SessionStore::new(clients.dynamodb(), &settings.sessions_table),
            closer: UploadCloser::from_env(env, clients, &settings)?,
            quota: QuotaLedger::new(clients.dynamodb(), &settings.sessions_table),
            verifier: config::token_verifier(env)?,
            settings,
        })
    }
}

pub async fn handle<S: Sessions, O: Objects, Q: Queues, L: Quota>(
    deps: &CompleteUpload<S, O, Q, L>,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = match routes::endpoint(&req) {
        Some(Endpoint::CompleteUpload) => deps.complete(&req).await,
        Some(Endpoint::CancelUpload) => deps.cancel(&req).await.map(|ended| json_response(200, &ended)),
        Some(Endpoint::CompanionListParts) => deps.companion_list_parts(&req).await,
        Some(Endpoint::CompanionComplete) => deps.companion_complete(&req).await,
        // Companion answers `{}`; Uppy reads only the status.
        Some(Endpoint::CompanionAbort) => deps.cancel(&req).await.map(|_| json_response(200, &MultipartAborted {})),
        _ => Err(unknown_route(&req)),
    };
    Ok(respond(result))
}

/// Part numbers of the plan that are not recorded, or whose recorded ETag,
/// size or SHA-256 differ from what S3 holds.
pub fn missing_parts(session: &UploadSession, recorded: &[RecordedPart], in_s3: &HashMap<u32, PartInS3>) -> Vec<u32> {
    let recorded: HashMap<u32, &RecordedPart> = recorded.iter().map(|p| (p.part_number, p)).collect();
    session
        .plan
        .parts()
        .map(|n| n.get())
        .filter(|n| {
            let Some(part) = recorded.get(n) else { return true };
            match in_s3.get(n) {
                Some(held) => {
                    bare_etag(&held.etag) != bare_etag(&part.etag)
                        || held.size != part.size
                        || (part.checksum_sha256.is_some() && held.checksum_sha256 != part.checksum_sha256)
                }
                None => true,
            }
        })
        .collect()
}

impl<S: Sessions, O: Objects, Q: Queues, L: Quota> CompleteUpload<S, O, Q, L> {
    /// Every part S3 holds for the upload.
    async fn parts_in_s3(&self, session: &UploadSession) -> Result<HashMap<u32, PartInS3>, ApiError> {
        match self.objects.list_parts(&self.settings.bucket, &session.key, &session.upload_id).await {
            Ok(Some(parts)) => Ok(parts),
            Ok(None) => Err(ApiError::unavailable("S3", format!("S3 holds no multipart upload {}", session.upload_id))),
            Err(e) => Err(ApiError::unavailable("S3", e)),
        }
    }

    async fn complete(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let caller = self.verifier.caller(req)?;
        let session = owned_session(&self.sessions, req, caller.sub).await?;
        session.require_multipart()?;
        let accepted = || json_response(202, &CompleteAccepted { file_id: session.file_id, status: FileStatus::Uploading });
        match session.stage {
            // A retried complete: the first one handed the file to S3, unless
            // it could not tell whether S3 completed (then the object says).
            SessionStage::Completing => {
                if self.retried_complete(&session).await? {
                    return Ok(accepted());
                }
            }
            // (An expired session answers 404 before this; the sweeper ended it.)
            SessionStage::Cancelled | SessionStage::Expired => return Err(cancelled_conflict()),
            SessionStage::Open => {}
        }
        let recorded = self.sessions.parts(session.file_id).await?;
        let in_s3 = self.parts_in_s3(&session).await?;
        let missing = missing_parts(&session, &recorded, &in_s3);
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().take(20).map(u32::to_string).collect();
            let more = if missing.len() > 20 { format!(" and {} more", missing.len() - 20) } else { String::new() };
            return Err(ApiError::new(
                ErrorCode::MissingParts,
                format!(
                    "{} of {} parts are missing or differ from what S3 holds: {}{more}",
                    missing.len(),
                    session.plan.part_count,
                    shown.join(", ")
                ),
            )
            .with_missing_parts(missing));
        }
        self.finish(&session, &recorded, &in_s3).await?;
        Ok(accepted())
    }

    /// Hands the parts to S3 to assemble: moves the session to COMPLETING
    /// first (unless a retry finds it there already), so a parallel complete or
    /// cancel loses, and back to OPEN if S3 refuses, so the client can fix what
    /// it refused and try again. A parallel complete that got there first
    /// counts as done.
    async fn finish(&self, session: &UploadSession, parts: &[RecordedPart], in_s3: &HashMap<u32, PartInS3>) -> Result<(), ApiError> {
        let completing = session.stage == SessionStage::Completing;
        if !completing && !self.sessions.set_stage(session.file_id, SessionStage::Open, SessionStage::Completing).await? {
            // Another request moved it first: a parallel complete, or a cancel.
            let now = self.sessions.get(session.file_id).await?.map(|s| s.stage);
            return if now == Some(SessionStage::Completing) { Ok(()) } else { Err(cancelled_conflict()) };
        }
        // S3 keeps each part's SHA-256 (the upload was created with it) and
        // wants it back, as ListParts reported it, to complete.
        let parts: Vec<CompletedPart> = parts
            .iter()
            .map(|p| CompletedPart {
                part_number: p.part_number,
                etag: p.etag.clone(),
                checksum_sha256: in_s3.get(&p.part_number).and_then(|h| h.checksum_sha256.clone()),
            })
            .collect();
        let Err(e) = self.objects.complete_multipart(&self.settings.bucket, &session.key, &session.upload_id, &parts).await else {
            return Ok(());
        };
        let text = e.to_string();
        // An error does not prove S3 did not complete: the answer may have
        // been lost (and the SDK's retry then finds NoSuchUpload). If the
        // object is there, it did; the session stays COMPLETING, so neither
        // a cancel nor the sweeper can fail a stored file.
        match self.object_exists(&session.key).await {
            Some(true) => {
                tracing::info!(key = session.key, error = text, "complete answered an error, but S3 holds the object");
                return Ok(());
            }
            // S3 cannot say: the session stays COMPLETING (a cancel or the
            // sweeper must not fail what may be stored), and a retried
            // complete asks again.
            None => return Err(ApiError::unavailable("S3", text)),
            Some(false) => {}
        }
        let _ = self.sessions.set_stage(session.file_id, SessionStage::Completing, SessionStage::Open).await;
        Err(match e {
            CompleteError::Refused(_) => ApiError::new(ErrorCode::CompleteRefused, format!("S3 refused to complete the upload: {text}")),
            CompleteError::Failed(_) => ApiError::unavailable("S3", text),
        })
    }

    /// Whether S3 still holds the multipart upload (its parts), so a complete
    /// that did not happen can be made again.
    async fn still_open(&self, session: &UploadSession) -> Result<bool, ApiError> {
        self.objects
            .multipart_open(&self.settings.bucket, &session.key, &session.upload_id)
            .await
            .map_err(|e| ApiError::unavailable("S3", e))
    }

    /// Whether a retried complete, finding the session COMPLETING, is done:
    /// yes if S3 holds the object (or no longer holds the upload); no if S3
    /// still holds the parts, as when the first complete never reached it, and
    /// then it is made again, the session staying COMPLETING so that no cancel
    /// can come between; asked again later if S3 cannot say.
    async fn retried_complete(&self, session: &UploadSession) -> Result<bool, ApiError> {
        match self.object_exists(&session.key).await {
            Some(true) => Ok(true),
            None => Err(ApiError::unavailable("S3", "S3 cannot say whether the upload was completed")),
            Some(false) => Ok(!self.still_open(session).await?),
        }
    }

    /// Whether S3 holds an object at `key`; None when S3 cannot say.
    async fn object_exists(&self, key: &str) -> Option<bool> {
        self.objects.exists(&self.settings.bucket, key).await.ok()
    }

    /// Companion's `GET /s3/multipart/{uploadId}`: the parts S3 holds, which
    /// Uppy uses to resume after a reload.
    async fn companion_list_parts(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let caller = self.verifier.caller(req)?;
        let session = owned_session(&self.sessions, req, caller.sub).await?;
        session.require_companion()?;
        session.require_open()?;
        let mut held: Vec<_> = self.parts_in_s3(&session).await?.into_iter().collect();
        held.sort_by_key(|(n, _)| *n);
        let parts: Vec<HeldPart> =
            held.iter().map(|(n, p)| HeldPart { part_number: *n, etag: bare_etag(&p.etag).to_string(), size: p.size }).collect();
        Ok(json_response(200, &parts))
    }

    /// Companion's complete: Uppy never records parts with us, so the parts S3
    /// holds are the truth. The client's list must match them; they are then
    /// recorded (persist writes them as chunks), the size is checked against
    /// the declared one or charged to the quota, and S3 completes the upload.
    async fn companion_complete(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let caller = self.verifier.caller(req)?;
        let input: CompleteMultipart = json_body(req)?;
        let session = owned_session(&self.sessions, req, caller.sub).await?;
        session.require_companion()?;
        let done = || {
            json_response(
                200,
                &MultipartCompleted {
                    location: format!("/files/{}", session.file_id),
                    bucket: self.settings.bucket.clone(),
                    key: session.key.clone(),
                },
            )
        };
        match session.stage {
            SessionStage::Completing => {
                if self.retried_complete(&session).await? {
                    return Ok(done());
                }
            }
            SessionStage::Cancelled | SessionStage::Expired => return Err(cancelled_conflict()),
            SessionStage::Open => {}
        }
        if input.parts.is_empty() {
            return Err(ApiError::new(ErrorCode::InvalidParts, "parts must list at least one part"));
        }
        // S3 wants them so; caught here, it is the client's mistake and not an outage.
        if let Some(pair) = input.parts.windows(2).find(|w| w[0].part_number >= w[1].part_number) {
            return Err(ApiError::new(
                ErrorCode::InvalidParts,
                format!(
                    "parts must be in ascending PartNumber order without repeats; {} is followed by {}",
                    pair[0].part_number, pair[1].part_number
                ),
            ));
        }
        let in_s3 = self.parts_in_s3(&session).await?;
        let parts = client_parts_in_s3(&input.parts, &in_s3).map_err(|wrong| {
            let shown: Vec<String> = wrong.iter().take(20).map(i64::to_string).collect();
            ApiError::new(
                ErrorCode::MissingParts,
                format!("{} of the {} parts listed are not in S3 with that ETag: {}", wrong.len(), input.parts.len(), shown.join(", ")),
            )
            .with_missing_parts(wrong)
        })?;
        let total: u64 = parts.iter().map(|p| p.size).sum();
        let resized = match session.plan.declared_size() {
            Some(declared) if declared != total => {
                return Err(ApiError::new(
                    ErrorCode::SizeMismatch,
                    format!("the parts hold {total} bytes but the upload declared {declared} bytes"),
                ));
            }
            Some(_) => false,
            None => {
                let max = self.settings.max_file_size;
                if total > max {
                    return Err(ApiError::new(
                        ErrorCode::FileTooLarge,
                        format!("the parts hold {total} bytes; the maximum is {max} bytes"),
                    ));
                }
                // Held at the largest file allowed since the start; now what
                // the parts hold. No charge left: a cancel released it.
                if !self.quota.resize(session.owner_id, session.file_id, total, self.settings.user_quota).await? {
                    return Err(cancelled_conflict());
                }
                true
            }
        };
        // The parts Uppy listed (up to 10,000): written concurrently, counted once.
        let completed = match self.sessions.record_parts(session.file_id, &parts, session.expires_at).await {
            Ok(_) => self.finish(&session, &parts, &in_s3).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = completed {
            // S3 refused (or never got) the complete, and the upload is still
            // open to more parts: it holds the largest file allowed again. Not
            // when S3 may hold the object (it then holds exactly these parts),
            // nor when a cancel won the race (its release stands: resize never
            // charges a file that holds nothing).
            let still_open = self.sessions.get(session.file_id).await.ok().flatten().is_some_and(|s| s.stage == SessionStage::Open);
            if resized && still_open && self.object_exists(&session.key).await == Some(false) {
                let max = self.settings.max_file_size;
                if let Err(held) = self.quota.resize(session.owner_id, session.file_id, max, self.settings.user_quota).await {
                    tracing::warn!(file_id = %session.file_id, %held, "the up-front charge not restored; it holds what the parts listed hold");
                }
            }
            return Err(e);
        }
        Ok(done())
    }

    /// Repeatable: a retried cancel aborts and reports again, so a cancel that
    /// failed half-way (S3 or SQS unavailable) is finished by the next one.
    async fn cancel(&self, req: &Request) -> Result<UploadCancelled, ApiError> {
        let caller = self.verifier.caller(req)?;
        let session = owned_session(&self.sessions, req, caller.sub).await?;
        // The stage the upload ends in: cancelled now, or as it already ended.
        let ended = match session.stage {
            SessionStage::Completing => {
                return Err(ApiError::new(
                    ErrorCode::UploadCompleting,
                    "this upload is already being completed; delete the file once it is UPLOADED instead",
                ));
            }
            SessionStage::Open => {
                if !self.sessions.set_stage(session.file_id, SessionStage::Open, SessionStage::Cancelled).await? {
                    return Err(ApiError::new(ErrorCode::UploadCompleting, "this upload started completing first"));
                }
                SessionStage::Cancelled
            }
            already @ (SessionStage::Cancelled | SessionStage::Expired) => already,
        };
        let reason = ended.failure_reason().unwrap_or_default();
        let verdict = self.closer.close(&session, reason).await?;
        Ok(UploadCancelled {
            file_id: session.file_id,
            status: verdict.status,
            reason: verdict.reason.unwrap_or_else(|| reason.to_string()),
        })
    }
}

fn cancelled_conflict() -> ApiError {
    ApiError::new(ErrorCode::UploadCancelled, "this upload was cancelled; start a new one")
}

/// The parts to complete with, as S3 holds them, when every part the
/// client lists is one S3 holds with that ETag; otherwise the part numbers
/// that are not. S3's own rules (ascending order, 5 MiB minimum) are left
/// to S3, which refuses with its reason.
pub fn client_parts_in_s3(client: &[ClientPart], in_s3: &HashMap<u32, PartInS3>) -> Result<Vec<RecordedPart>, Vec<i64>> {
    let mut parts = Vec::with_capacity(client.len());
    let mut wrong = Vec::new();
    for part in client {
        let held = u32::try_from(part.part_number).ok().and_then(|n| in_s3.get(&n).map(|h| (n, h)));
        match held {
            Some((n, held)) if bare_etag(&held.etag) == bare_etag(&part.etag) => parts.push(RecordedPart {
                part_number: n,
                size: held.size,
                etag: bare_etag(&held.etag).to_string(),
                checksum_sha256: held.checksum_sha256.clone(),
            }),
            _ => wrong.push(part.part_number),
        }
    }
    if wrong.is_empty() { Ok(parts) } else { Err(wrong) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(etag: &str, size: u64) -> PartInS3 {
        PartInS3 { etag: format!("\"{etag}\""), size, checksum_sha256: Some(format!("sum-{etag}")) }
    }

    fn listed(n: i64, etag: &str) -> ClientPart {
        ClientPart { part_number: n, etag: etag.into() }
    }

    #[test]
    fn the_clients_parts_are_taken_as_s3_holds_them() {
        let in_s3 = HashMap::from([(1, held("a", 5)), (2, held("b", 3))]);
        let parts = client_parts_in_s3(&[listed(1, "a"), listed(2, "\"b\"")], &in_s3).unwrap();
        assert_eq!(parts.iter().map(|p| (p.part_number, p.size, p.etag.as_str())).collect::<Vec<_>>(), vec![(1, 5, "a"), (2, 3, "b")]);
        assert_eq!(parts[1].checksum_sha256.as_deref(), Some("sum-b"), "S3's checksum goes back to S3 at complete");
    }

    #[test]
    fn parts_s3_does_not_hold_with_that_etag_are_named() {
        let in_s3 = HashMap::from([(1, held("a", 5))]);
        let wrong = client_parts_in_s3(&[listed(1, "x"), listed(2, "a"), listed(-1, "a"), listed(1, "a")], &in_s3).unwrap_err();
        assert_eq!(wrong, vec![1, 2, -1]);
    }
}
