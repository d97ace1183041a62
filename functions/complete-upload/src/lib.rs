//! `POST /uploads/{fileId}/complete`: completes the multipart upload from the
//! parts the server recorded (never from a list the client sends), after
//! checking them against what S3 itself holds. `DELETE /uploads/{fileId}`
//! cancels: aborts the multipart upload (S3 frees every part) and sends a
//! FAILED verdict (reason `cancelled`) for persist to record.

use std::collections::HashMap;

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;
use sluice_shared::auth::TokenVerifier;
use sluice_shared::aws::{self, Clients};
use sluice_shared::config::{ConfigError, Env, UploadSettings};
use sluice_shared::domain::status::SessionStage;
use sluice_shared::http::{json_response, respond, route_key, unknown_route};
use sluice_shared::sessions::{RecordedPart, SessionStore, UploadSession, bare_etag, owned_session, UploadCloser};
use sluice_shared::{ApiError, config};

pub struct CompleteUpload {
    pub s3: aws_sdk_s3::Client,
    pub sessions: SessionStore,
    pub closer: UploadCloser,
    pub verifier: TokenVerifier,
    pub bucket: String,
}

impl CompleteUpload {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        let settings = UploadSettings::from_env(env)?;
        Ok(Self {
            s3: clients.s3.clone(),
            sessions: SessionStore::new(clients.dynamodb.clone(), &settings.sessions_table),
            closer: UploadCloser::from_env(env, clients, &settings)?,
            verifier: config::token_verifier(env)?,
            bucket: settings.bucket,
        })
    }
}

pub async fn handle(deps: &CompleteUpload, req: Request) -> Result<Response<Body>, Error> {
    let result = match route_key(&req).as_str() {
        "POST /uploads/{fileId}/complete" => complete(deps, &req).await,
        "DELETE /uploads/{fileId}" => cancel(deps, &req).await,
        _ => Err(unknown_route(&req)),
    };
    Ok(respond(result))
}

/// A part as S3 holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInS3 {
    pub etag: String,
    pub size: u64,
    pub checksum_sha256: Option<String>,
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

/// Every part S3 holds for the upload, following ListParts past 1,000.
async fn parts_in_s3(deps: &CompleteUpload, session: &UploadSession) -> Result<HashMap<u32, PartInS3>, ApiError> {
    let mut parts = HashMap::new();
    let mut marker: Option<String> = None;
    loop {
        let page = deps
            .s3
            .list_parts()
            .bucket(&deps.bucket)
            .key(&session.key)
            .upload_id(&session.upload_id)
            .set_part_number_marker(marker.clone())
            .send()
            .await
            .map_err(|e| ApiError::unavailable("S3", aws::describe(e)))?;
        for part in page.parts() {
            let (Some(n), Some(size)) = (part.part_number, part.size) else { continue };
            let held = PartInS3 {
                etag: part.e_tag.clone().unwrap_or_default(),
                size: size as u64,
                checksum_sha256: part.checksum_sha256.clone(),
            };
            parts.insert(n as u32, held);
        }
        match (page.is_truncated, page.next_part_number_marker) {
            (Some(true), Some(next)) if Some(&next) != marker.as_ref() => marker = Some(next),
            _ => return Ok(parts),
        }
    }
}

async fn complete(deps: &CompleteUpload, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let session = owned_session(&deps.sessions, req, caller.sub).await?;
    session.require_multipart()?;
    let accepted = || json_response(202, &json!({ "fileId": session.file_id, "status": "UPLOADING" }));
    match session.stage {
        // A retried complete: the first one already handed the file to S3.
        SessionStage::Completing => return Ok(accepted()),
        // (An expired session answers 404 before this; the sweeper ended it.)
        SessionStage::Cancelled | SessionStage::Expired => return Err(cancelled_conflict()),
        SessionStage::Open => {}
    }
    let unavailable = |e| ApiError::unavailable("the session table", e);
    let recorded = deps.sessions.parts(session.file_id).await.map_err(unavailable)?;
    let in_s3 = parts_in_s3(deps, &session).await?;
    let missing = missing_parts(&session, &recorded, &in_s3);
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(20).map(u32::to_string).collect();
        let more = if missing.len() > 20 { format!(" and {} more", missing.len() - 20) } else { String::new() };
        return Err(ApiError::conflict(
            "missing_parts",
            format!(
                "{} of {} parts are missing or differ from what S3 holds: {}{more}",
                missing.len(),
                session.plan.part_count,
                shown.join(", ")
            ),
        )
        .with("missingParts", missing));
    }
    if !deps.sessions.set_stage(session.file_id, SessionStage::Open, SessionStage::Completing).await.map_err(unavailable)? {
        // Another request moved it first: a parallel complete, or a cancel.
        let now = deps.sessions.get(session.file_id).await.map_err(unavailable)?.map(|s| s.stage);
        return if now == Some(SessionStage::Completing) { Ok(accepted()) } else { Err(cancelled_conflict()) };
    }
    // S3 keeps each part's SHA-256 (the upload was created with it) and
    // wants it back, as ListParts reported it, to complete.
    let parts: Vec<CompletedPart> = recorded
        .iter()
        .map(|p| {
            CompletedPart::builder()
                .part_number(p.part_number as i32)
                .e_tag(format!("\"{}\"", bare_etag(&p.etag)))
                .set_checksum_sha256(in_s3.get(&p.part_number).and_then(|h| h.checksum_sha256.clone()))
                .build()
        })
        .collect();
    let result = deps
        .s3
        .complete_multipart_upload()
        .bucket(&deps.bucket)
        .key(&session.key)
        .upload_id(&session.upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await;
    if let Err(e) = result {
        // Let the client fix what S3 refused and try again.
        let _ = deps.sessions.set_stage(session.file_id, SessionStage::Completing, SessionStage::Open).await;
        let text = aws::describe(e);
        return Err(if text.contains("NoSuchUpload") || text.contains("InvalidPart") || text.contains("EntityTooSmall") {
            ApiError::conflict("complete_refused", format!("S3 refused to complete the upload: {text}"))
        } else {
            ApiError::unavailable("S3", text)
        });
    }
    Ok(accepted())
}

fn cancelled_conflict() -> ApiError {
    ApiError::conflict("upload_cancelled", "this upload was cancelled; start a new one")
}

/// Repeatable: a retried cancel aborts and reports again, so a cancel that
/// failed half-way (S3 or SQS unavailable) is finished by the next one.
async fn cancel(deps: &CompleteUpload, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let session = owned_session(&deps.sessions, req, caller.sub).await?;
    let unavailable = |e| ApiError::unavailable("the session table", e);
    // The stage the upload ends in: cancelled now, or as it already ended.
    let ended = match session.stage {
        SessionStage::Completing => {
            return Err(ApiError::conflict(
                "upload_completing",
                "this upload is already being completed; delete the file once it is UPLOADED instead",
            ));
        }
        SessionStage::Open => {
            if !deps.sessions.set_stage(session.file_id, SessionStage::Open, SessionStage::Cancelled).await.map_err(unavailable)? {
                return Err(ApiError::conflict("upload_completing", "this upload started completing first"));
            }
            SessionStage::Cancelled
        }
        already @ (SessionStage::Cancelled | SessionStage::Expired) => already,
    };
    let reason = ended.failure_reason().unwrap_or_default();
    let verdict = deps.closer.close(&session, reason).await?;
    Ok(json_response(200, &json!({ "fileId": session.file_id, "status": verdict.status, "reason": verdict.reason })))
}
