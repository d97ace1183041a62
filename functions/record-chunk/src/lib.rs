//! `POST /uploads/{fileId}/chunks`: records parts the client PUT to S3,
//! a batch per call so a client records a window of parts at once.

use std::collections::BTreeSet;

use lambda_http::{Body, Error, Request, Response};
use serde::Deserialize;
use serde_json::json;
use sluice_shared::auth::TokenVerifier;
use sluice_shared::aws::Clients;
use sluice_shared::aws::bare_etag;
use sluice_shared::config::{ConfigError, Env, UploadSettings};
use sluice_shared::domain::Sha256Checksum;
use sluice_shared::http::{
    UploadRules, json_body, json_response, owned_session, require_parts_per_call, respond, route_key, unknown_route,
};
use sluice_shared::sessions::{RecordedPart, SessionStore, UploadSession};
use sluice_shared::{ApiError, config};

pub struct RecordChunk {
    pub sessions: SessionStore,
    pub verifier: TokenVerifier,
}

impl RecordChunk {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        let settings = UploadSettings::from_env(env)?;
        Ok(Self { sessions: SessionStore::new(clients.dynamodb(), &settings.sessions_table), verifier: config::token_verifier(env)? })
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
struct Chunks {
    parts: Vec<Chunk>,
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

/// Records a batch of parts. Every part is checked before any is written,
/// so a refused batch records nothing.
async fn record(deps: &RecordChunk, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    // `{parts: [...]}`, or one part as the route first took it
    // (`{partNumber, etag, size}`), which clients written then still send.
    let body: serde_json::Value = json_body(req)?;
    let one = body.get("parts").is_none() && body.get("partNumber").is_some();
    let invalid = |e: serde_json::Error| ApiError::bad_request("invalid_body", format!("the JSON body is not valid: {e}"));
    let chunks = if one {
        vec![serde_json::from_value::<Chunk>(body).map_err(invalid)?]
    } else {
        serde_json::from_value::<Chunks>(body).map_err(invalid)?.parts
    };
    let session = owned_session(&deps.sessions, req, caller.sub).await?;
    session.require_parts_open()?;
    require_parts_per_call(chunks.len())?;
    let mut seen = BTreeSet::new();
    let parts = chunks
        .into_iter()
        .map(|chunk| {
            let part = checked_part(&session, chunk)?;
            if !seen.insert(part.part_number) {
                return Err(ApiError::bad_request(
                    "duplicate_part",
                    format!("part {} is listed more than once; list each part once per call", part.part_number),
                ));
            }
            Ok(part)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let count = deps.sessions.record_parts(session.file_id, &parts, session.expires_at).await?;
    let mut answer = json!({ "partNumbers": seen, "recordedParts": count, "partCount": session.plan.part_count });
    if one {
        // The single-part answer as it was, beside the batch's fields.
        answer["partNumber"] = json!(seen.first());
    }
    Ok(json_response(200, &answer))
}

/// A chunk as the session will keep it, or 400 naming what is wrong with it.
fn checked_part(session: &UploadSession, chunk: Chunk) -> Result<RecordedPart, ApiError> {
    let part = session.part(chunk.part_number)?;
    let expected = session.plan.size_of(part);
    if chunk.size != expected {
        return Err(ApiError::bad_request(
            "part_size_mismatch",
            format!("part {} must be {expected} bytes; got {}", part.get(), chunk.size),
        ));
    }
    let etag = bare_etag(&chunk.etag).to_string();
    if etag.is_empty() || etag.len() > 128 || !etag.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_etag",
            format!("part {}: etag must be the ETag header S3 answered the part's PUT with", part.get()),
        ));
    }
    let checksum_sha256 = chunk.checksum_sha256.as_deref().map(Sha256Checksum::parse).transpose()?.map(Sha256Checksum::into_string);
    Ok(RecordedPart { part_number: part.get(), size: chunk.size, etag, checksum_sha256 })
}
