//! `POST /uploads/{fileId}/chunks`: records a part the client PUT to S3.

use lambda_http::{Body, Error, Request, Response};
use serde::Deserialize;
use serde_json::json;
use sluice_shared::auth::TokenVerifier;
use sluice_shared::aws::Clients;
use sluice_shared::config::{ConfigError, Env, UploadSettings};
use sluice_shared::domain::Sha256Checksum;
use sluice_shared::http::{json_body, json_response, respond, route_key, unknown_route};
use sluice_shared::sessions::{RecordedPart, SessionStore, bare_etag, owned_session};
use sluice_shared::{ApiError, config};

pub struct RecordChunk {
    pub sessions: SessionStore,
    pub verifier: TokenVerifier,
}

impl RecordChunk {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        let settings = UploadSettings::from_env(env)?;
        Ok(Self {
            sessions: SessionStore::new(clients.dynamodb(), &settings.sessions_table),
            verifier: config::token_verifier(env)?,
        })
    }
}

pub async fn handle(deps: &RecordChunk, req: Request) -> Result<Response<Body>, Error> {
    let result = match route_key(&req).as_str() {
        "POST /uploads/{fileId}/chunks" => record(deps, &req).await,
        _ => Err(unknown_route(&req)),
    };
    Ok(respond(result))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk {
    part_number: i64,
    etag: String,
    size: u64,
    /// The part's SHA-256 (base64); complete checks it against S3's.
    #[serde(default)]
    checksum_sha256: Option<String>,
}

async fn record(deps: &RecordChunk, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let chunk: Chunk = json_body(req)?;
    let session = owned_session(&deps.sessions, req, caller.sub).await?;
    session.require_parts_open()?;
    let plan = session.plan;
    let part = session.part(chunk.part_number)?;
    let expected = plan.size_of(part);
    if chunk.size != expected {
        return Err(ApiError::bad_request(
            "part_size_mismatch",
            format!("part {} must be {expected} bytes; got {}", part.get(), chunk.size),
        ));
    }
    let etag = bare_etag(&chunk.etag).to_string();
    if etag.is_empty() || etag.len() > 128 || !etag.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::bad_request("invalid_etag", "etag must be the ETag header S3 answered the part's PUT with"));
    }
    let checksum_sha256 = chunk.checksum_sha256.as_deref().map(Sha256Checksum::parse).transpose()?.map(Sha256Checksum::into_string);
    let recorded = RecordedPart { part_number: part.get(), size: chunk.size, etag, checksum_sha256 };
    let count = deps
        .sessions
        .record_part(session.file_id, &recorded, session.expires_at)
        .await
        .map_err(|e| ApiError::unavailable("the session table", e))?;
    Ok(json_response(
        200,
        &json!({ "partNumber": part.get(), "recordedParts": count, "partCount": plan.part_count }),
    ))
}
