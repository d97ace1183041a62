//! `POST /uploads` starts a multipart upload and signs its first part URLs;
//! `GET /uploads/{fileId}/parts` signs more on demand; `GET /uploads/{fileId}`
//! tells a client that lost its place which parts are recorded, so it resumes
//! by sending only the missing ones.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use lambda_http::{Body, Error, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_shared::auth::{TokenVerifier, now_secs};
use sluice_shared::aws::{self, Clients, metadata};
use sluice_shared::config::{ConfigError, Env, UploadSettings};
use sluice_shared::domain::status::SessionStage;
use sluice_shared::domain::{FileName, Kind, PartNumber, PartPlan, PlanError};
use sluice_shared::http::{json_body, json_response, query_number, respond, route_key, unknown_route};
use sluice_shared::sessions::{SessionStore, UploadSession, owned_session};
use sluice_shared::time::rfc3339;
use sluice_shared::{ApiError, config};
use uuid::Uuid;

/// URLs returned with `POST /uploads`; the rest come from the parts route.
pub const FIRST_PARTS: u32 = 100;
pub const MAX_PARTS_PER_CALL: u32 = 1000;

pub struct Presign {
    pub s3: aws_sdk_s3::Client,
    pub sessions: SessionStore,
    pub verifier: TokenVerifier,
    pub settings: UploadSettings,
}

impl Presign {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        let settings = UploadSettings::from_env(env)?;
        Ok(Self {
            s3: clients.s3.clone(),
            sessions: SessionStore::new(clients.dynamodb.clone(), &settings.sessions_table),
            verifier: config::token_verifier(env)?,
            settings,
        })
    }
}

pub async fn handle(deps: &Presign, req: Request) -> Result<Response<Body>, Error> {
    let result = match route_key(&req).as_str() {
        "POST /uploads" => start(deps, &req).await,
        "GET /uploads/{fileId}" => session_state(deps, &req).await,
        "GET /uploads/{fileId}/parts" => more_parts(deps, &req).await,
        _ => Err(unknown_route(&req)),
    };
    Ok(respond(result))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartUpload {
    file_name: String,
    size: u64,
    content_type: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartUrl {
    pub part_number: u32,
    pub url: String,
    pub expires_at: String,
}

async fn start(deps: &Presign, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let input: StartUpload = json_body(req)?;
    let name = FileName::parse(&input.file_name).map_err(|e| ApiError::bad_request("invalid_file_name", e.to_string()))?;
    let plan = PartPlan::for_size(input.size, deps.settings.max_file_size).map_err(|e| match e {
        PlanError::TooLarge { .. } => ApiError::new(413, "file_too_large", e.to_string()),
        PlanError::Empty => ApiError::bad_request("invalid_size", e.to_string()),
    })?;
    let declared = input.content_type.trim().to_ascii_lowercase();
    if Kind::of_mime(&declared).is_none() {
        return Err(ApiError::new(
            415,
            "unsupported_type",
            format!("contentType '{declared}' is not an image, video, audio, PDF or office document type"),
        ));
    }

    let file_id = Uuid::new_v4();
    let key = format!("uploads/{}/{file_id}/{}", caller.sub, name.safe());
    let created = deps
        .s3
        .create_multipart_upload()
        .bucket(&deps.settings.bucket)
        .key(&key)
        .metadata(metadata::OWNER, caller.sub.to_string())
        .metadata(metadata::FILE_ID, file_id.to_string())
        .metadata(metadata::DECLARED_TYPE, &declared)
        .send()
        .await
        .map_err(|e| ApiError::unavailable("S3", aws::describe(e)))?;
    let upload_id = created.upload_id.unwrap_or_default();
    let now = now_secs();
    let session = UploadSession {
        file_id,
        owner_id: caller.sub,
        key: key.clone(),
        upload_id: upload_id.clone(),
        file_name: name.original().to_string(),
        declared_type: declared,
        plan,
        stage: SessionStage::Open,
        recorded_count: 0,
        created_at: now,
        expires_at: now + deps.settings.session_ttl_secs,
    };
    if let Err(e) = deps.sessions.create(&session).await {
        // Leave nothing behind in S3 when the session cannot be kept.
        let _ = deps.s3.abort_multipart_upload().bucket(&deps.settings.bucket).key(&key).upload_id(&upload_id).send().await;
        return Err(ApiError::unavailable("the session table", e));
    }
    let parts = sign_parts(deps, &session, 1, FIRST_PARTS).await?;
    Ok(json_response(
        201,
        &json!({
            "fileId": file_id,
            "uploadId": upload_id,
            "key": key,
            "partSize": plan.part_size,
            "partCount": plan.part_count,
            "parts": parts,
            "expiresAt": rfc3339(session.expires_at),
        }),
    ))
}

async fn session_state(deps: &Presign, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let session = owned_session(&deps.sessions, req, caller.sub).await?;
    let recorded = deps.sessions.parts(session.file_id).await.map_err(|e| ApiError::unavailable("the session table", e))?;
    Ok(json_response(
        200,
        &json!({
            "fileId": session.file_id,
            "status": session.stage.file_status().as_str(),
            "stage": session.stage.as_str(),
            "fileName": session.file_name,
            "size": session.plan.size,
            "partSize": session.plan.part_size,
            "partCount": session.plan.part_count,
            "recordedParts": recorded,
            "expiresAt": rfc3339(session.expires_at),
        }),
    ))
}

async fn more_parts(deps: &Presign, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let session = owned_session(&deps.sessions, req, caller.sub).await?;
    session.require_open()?;
    let first = query_number(req, "first", 1, 1, session.plan.part_count)?;
    let count = query_number(req, "count", FIRST_PARTS, 1, MAX_PARTS_PER_CALL)?;
    let parts = sign_parts(deps, &session, first, count).await?;
    Ok(json_response(200, &json!({ "fileId": session.file_id, "partCount": session.plan.part_count, "parts": parts })))
}

/// Presigned UploadPart URLs with the exact part size signed in, so S3
/// itself refuses a body of any other length.
async fn sign_parts(deps: &Presign, session: &UploadSession, first: u32, count: u32) -> Result<Vec<PartUrl>, ApiError> {
    let ttl = deps.settings.url_ttl_secs;
    let presigning = PresigningConfig::expires_in(Duration::from_secs(ttl))
        .map_err(|e| ApiError::unavailable("URL signing", e))?;
    let expires_at = rfc3339(now_secs() + ttl);
    let last = session.plan.part_count.min(first.saturating_add(count - 1));
    let mut urls = Vec::with_capacity((last + 1 - first) as usize);
    for part in (first..=last).filter_map(|n| session.plan.part_number(i64::from(n))) {
        let signed = deps
            .s3
            .upload_part()
            .bucket(&deps.settings.bucket)
            .key(&session.key)
            .upload_id(&session.upload_id)
            .part_number(part.get() as i32)
            .content_length(session.plan.size_of(part) as i64)
            .presigned(presigning.clone())
            .await
            .map_err(|e| ApiError::unavailable("URL signing", aws::describe(e)))?;
        urls.push(PartUrl { part_number: PartNumber::get(part), url: signed.uri().to_string(), expires_at: expires_at.clone() });
    }
    Ok(urls)
}
