//! `POST /uploads/{fileId}/complete`: completes the multipart upload from the
//! parts the server recorded (never from a list the client sends), after
//! checking them against what S3 itself holds. `DELETE /uploads/{fileId}`
//! cancels: aborts the multipart upload (S3 frees every part) and sends a
//! FAILED verdict (reason `cancelled`) for persist to record.

use std::collections::HashMap;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use lambda_http::{Body, Error, Request, Response};
use serde::Deserialize;
use serde_json::json;
use sluice_shared::auth::TokenVerifier;
use sluice_shared::aws::bare_etag;
use sluice_shared::aws::{self, Clients};
use sluice_shared::closeout::UploadCloser;
use sluice_shared::config::{ConfigError, Env, UploadSettings};
use sluice_shared::domain::status::SessionStage;
use sluice_shared::http::{UploadRules, json_body, json_response, owned_session, respond, route_key, unknown_route};
use sluice_shared::quota::QuotaLedger;
use sluice_shared::sessions::{RecordedPart, SessionStore, UploadSession};
use sluice_shared::{ApiError, config};

pub struct CompleteUpload {
    pub s3: aws_sdk_s3::Client,
    pub sessions: SessionStore,
    pub closer: UploadCloser,
    pub quota: QuotaLedger,
    pub verifier: TokenVerifier,
    pub settings: UploadSettings,
}

impl CompleteUpload {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        let settings = UploadSettings::from_env(env)?;
        Ok(Self {
            s3: clients.s3(),
            sessions: SessionStore::new(clients.dynamodb(), &settings.sessions_table),
            closer: UploadCloser::from_env(env, clients, &settings)?,
            quota: QuotaLedger::new(clients.dynamodb(), &settings.sessions_table),
            verifier: config::token_verifier(env)?,
            settings,
        })
    }
}

pub async fn handle(deps: &CompleteUpload, req: Request) -> Result<Response<Body>, Error> {
    let result = match route_key(&req).as_str() {
        "POST /uploads/{fileId}/complete" => complete(deps, &req).await,
        "DELETE /uploads/{fileId}" => cancel(deps, &req).await.map(|ended| json_response(200, &ended)),
        "GET /s3/multipart/{uploadId}" => companion_list_parts(deps, &req).await,
        "POST /s3/multipart/{uploadId}/complete" => companion_complete(deps, &req).await,
        // Companion answers `{}`; Uppy reads only the status.
        "DELETE /s3/multipart/{uploadId}" => cancel(deps, &req).await.map(|_| json_response(200, &json!({}))),
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
            .bucket(&deps.settings.bucket)
            .key(&session.key)
            .upload_id(&session.upload_id)
            .set_part_number_marker(marker.clone())
            .send()
            .await
            .map_err(|e| ApiError::unavailable("S3", aws::describe(e)))?;
        for part in page.parts() {
            let (Some(n), Some(size)) = (part.part_number, part.size) else { continue };
            let held =
                PartInS3 { etag: part.e_tag.clone().unwrap_or_default(), size: size as u64, checksum_sha256: part.checksum_sha256.clone() };
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
        // A retried complete: the first one handed the file to S3, unless
        // it could not tell whether S3 completed (then the object says).
        SessionStage::Completing => {
            if retried_complete(deps, &session).await? {
                return Ok(accepted());
            }
        }
        // (An expired session answers 404 before this; the sweeper ended it.)
        SessionStage::Cancelled | SessionStage::Expired => return Err(cancelled_conflict()),
        SessionStage::Open => {}
    }
    let recorded = deps.sessions.parts(session.file_id).await?;
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
    finish(deps, &session, &recorded, &in_s3).await?;
    Ok(accepted())
}

/// Hands the parts to S3 to assemble: moves the session to COMPLETING
/// first (unless a retry finds it there already), so a parallel complete or
/// cancel loses, and back to OPEN if S3 refuses, so the client can fix what
/// it refused and try again. A parallel complete that got there first
/// counts as done.
async fn finish(
    deps: &CompleteUpload,
    session: &UploadSession,
    parts: &[RecordedPart],
    in_s3: &HashMap<u32, PartInS3>,
) -> Result<(), ApiError> {
    let completing = session.stage == SessionStage::Completing;
    if !completing && !deps.sessions.set_stage(session.file_id, SessionStage::Open, SessionStage::Completing).await? {
        // Another request moved it first: a parallel complete, or a cancel.
        let now = deps.sessions.get(session.file_id).await?.map(|s| s.stage);
        return if now == Some(SessionStage::Completing) { Ok(()) } else { Err(cancelled_conflict()) };
    }
    // S3 keeps each part's SHA-256 (the upload was created with it) and
    // wants it back, as ListParts reported it, to complete.
    let parts: Vec<CompletedPart> = parts
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
        .bucket(&deps.settings.bucket)
        .key(&session.key)
        .upload_id(&session.upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await;
    if let Err(e) = result {
        let refused = matches!(e.code(), Some("NoSuchUpload" | "InvalidPart" | "InvalidPartOrder" | "EntityTooSmall"));
        let text = aws::describe(e);
        // An error does not prove S3 did not complete: the answer may have
        // been lost (and the SDK's retry then finds NoSuchUpload). If the
        // object is there, it did; the session stays COMPLETING, so neither
        // a cancel nor the sweeper can fail a stored file.
        match object_exists(deps, &session.key).await {
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
        let _ = deps.sessions.set_stage(session.file_id, SessionStage::Completing, SessionStage::Open).await;
        return Err(if refused {
            ApiError::conflict("complete_refused", format!("S3 refused to complete the upload: {text}"))
        } else {
            ApiError::unavailable("S3", text)
        });
    }
    Ok(())
}

/// Whether S3 still holds the multipart upload (its parts), so a complete
/// that did not happen can be made again.
async fn still_open(deps: &CompleteUpload, session: &UploadSession) -> Result<bool, ApiError> {
    let listed =
        deps.s3.list_parts().bucket(&deps.settings.bucket).key(&session.key).upload_id(&session.upload_id).max_parts(1).send().await;
    match listed {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("NoSuchUpload") => Ok(false),
        Err(e) => Err(ApiError::unavailable("S3", aws::describe(e))),
    }
}

/// Whether a retried complete, finding the session COMPLETING, is done:
/// yes if S3 holds the object (or no longer holds the upload); no if S3
/// still holds the parts, as when the first complete never reached it, and
/// then it is made again, the session staying COMPLETING so that no cancel
/// can come between; asked again later if S3 cannot say.
async fn retried_complete(deps: &CompleteUpload, session: &UploadSession) -> Result<bool, ApiError> {
    match object_exists(deps, &session.key).await {
        Some(true) => Ok(true),
        None => Err(ApiError::unavailable("S3", "S3 cannot say whether the upload was completed")),
        Some(false) => Ok(!still_open(deps, session).await?),
    }
}

/// Whether S3 holds an object at `key`; None when S3 cannot say.
/// None when S3 cannot say.
async fn object_exists(deps: &CompleteUpload, key: &str) -> Option<bool> {
    aws::object_exists(&deps.s3, &deps.settings.bucket, key).await.ok()
}

fn cancelled_conflict() -> ApiError {
    ApiError::conflict("upload_cancelled", "this upload was cancelled; start a new one")
}

/// Companion's `GET /s3/multipart/{uploadId}`: the parts S3 holds, which
/// Uppy uses to resume after a reload.
async fn companion_list_parts(deps: &CompleteUpload, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let session = owned_session(&deps.sessions, req, caller.sub).await?;
    session.require_companion()?;
    session.require_open()?;
    let mut held: Vec<_> = parts_in_s3(deps, &session).await?.into_iter().collect();
    held.sort_by_key(|(n, _)| *n);
    let parts: Vec<_> = held.iter().map(|(n, p)| json!({ "PartNumber": n, "ETag": bare_etag(&p.etag), "Size": p.size })).collect();
    Ok(json_response(200, &parts))
}

/// A part in Companion's complete body.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientPart {
    #[serde(rename = "PartNumber")]
    pub part_number: i64,
    #[serde(rename = "ETag")]
    pub etag: String,
}

#[derive(Deserialize)]
struct CompanionComplete {
    parts: Vec<ClientPart>,
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

/// Companion's complete: Uppy never records parts with us, so the parts S3
/// holds are the truth. The client's list must match them; they are then
/// recorded (persist writes them as chunks), the size is checked against
/// the declared one or charged to the quota, and S3 completes the upload.
async fn companion_complete(deps: &CompleteUpload, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let input: CompanionComplete = json_body(req)?;
    let session = owned_session(&deps.sessions, req, caller.sub).await?;
    session.require_companion()?;
    let done = || {
        json_response(
            200,
            &json!({
                "location": format!("/files/{}", session.file_id),
                "bucket": deps.settings.bucket,
                "key": session.key,
            }),
        )
    };
    match session.stage {
        SessionStage::Completing => {
            if retried_complete(deps, &session).await? {
                return Ok(done());
            }
        }
        SessionStage::Cancelled | SessionStage::Expired => return Err(cancelled_conflict()),
        SessionStage::Open => {}
    }
    if input.parts.is_empty() {
        return Err(ApiError::bad_request("invalid_parts", "parts must list at least one part"));
    }
    // S3 wants them so; caught here, it is the client's mistake and not an outage.
    if let Some(pair) = input.parts.windows(2).find(|w| w[0].part_number >= w[1].part_number) {
        return Err(ApiError::bad_request(
            "invalid_parts",
            format!(
                "parts must be in ascending PartNumber order without repeats; {} is followed by {}",
                pair[0].part_number, pair[1].part_number
            ),
        ));
    }
    let in_s3 = parts_in_s3(deps, &session).await?;
    let parts = client_parts_in_s3(&input.parts, &in_s3).map_err(|wrong| {
        let shown: Vec<String> = wrong.iter().take(20).map(i64::to_string).collect();
        ApiError::conflict(
            "missing_parts",
            format!("{} of the {} parts listed are not in S3 with that ETag: {}", wrong.len(), input.parts.len(), shown.join(", ")),
        )
        .with("missingParts", wrong)
    })?;
    let total: u64 = parts.iter().map(|p| p.size).sum();
    let resized = match session.plan.declared_size() {
        Some(declared) if declared != total => {
            return Err(ApiError::conflict(
                "size_mismatch",
                format!("the parts hold {total} bytes but the upload declared {declared} bytes"),
            ));
        }
        Some(_) => false,
        None => {
            let max = deps.settings.max_file_size;
            if total > max {
                return Err(ApiError::new(413, "file_too_large", format!("the parts hold {total} bytes; the maximum is {max} bytes")));
            }
            // Held at the largest file allowed since the start; now what
            // the parts hold. No charge left: a cancel released it.
            if !deps.quota.resize(session.owner_id, session.file_id, total, deps.settings.user_quota).await? {
                return Err(cancelled_conflict());
            }
            true
        }
    };
    // The parts Uppy listed (up to 10,000): written concurrently, counted once.
    let completed = match deps.sessions.record_parts(session.file_id, &parts, session.expires_at).await {
        Ok(_) => finish(deps, &session, &parts, &in_s3).await,
        Err(e) => Err(e.into()),
    };
    if let Err(e) = completed {
        // S3 refused (or never got) the complete, and the upload is still
        // open to more parts: it holds the largest file allowed again. Not
        // when S3 may hold the object (it then holds exactly these parts),
        // nor when a cancel won the race (its release stands: resize never
        // charges a file that holds nothing).
        let still_open = deps.sessions.get(session.file_id).await.ok().flatten().is_some_and(|s| s.stage == SessionStage::Open);
        if resized && still_open && object_exists(deps, &session.key).await == Some(false) {
            let max = deps.settings.max_file_size;
            if let Err(held) = deps.quota.resize(session.owner_id, session.file_id, max, deps.settings.user_quota).await {
                tracing::warn!(file_id = %session.file_id, %held, "the up-front charge not restored; it holds what the parts listed hold");
            }
        }
        return Err(e);
    }
    Ok(done())
}

/// Repeatable: a retried cancel aborts and reports again, so a cancel that
/// failed half-way (S3 or SQS unavailable) is finished by the next one.
async fn cancel(deps: &CompleteUpload, req: &Request) -> Result<serde_json::Value, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let session = owned_session(&deps.sessions, req, caller.sub).await?;
    // The stage the upload ends in: cancelled now, or as it already ended.
    let ended = match session.stage {
        SessionStage::Completing => {
            return Err(ApiError::conflict(
                "upload_completing",
                "this upload is already being completed; delete the file once it is UPLOADED instead",
            ));
        }
        SessionStage::Open => {
            if !deps.sessions.set_stage(session.file_id, SessionStage::Open, SessionStage::Cancelled).await? {
                return Err(ApiError::conflict("upload_completing", "this upload started completing first"));
            }
            SessionStage::Cancelled
        }
        already @ (SessionStage::Cancelled | SessionStage::Expired) => already,
    };
    let reason = ended.failure_reason().unwrap_or_default();
    let verdict = deps.closer.close(&session, reason).await?;
    Ok(json!({ "fileId": session.file_id, "status": verdict.status, "reason": verdict.reason }))
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
