//! `POST /uploads/{fileId}/chunks`: records parts the client PUT to S3,
//! a batch per call so a client records a window of parts at once.

use sluice_shared::error::ErrorCode;
use std::collections::BTreeSet;

use lambda_http::{Body, Error, Request, Response};
use sluice_api::uploads::{ChunksRecorded, RecordChunks, RecordedChunk};
use sluice_shared::auth::TokenVerifier;
use sluice_shared::aws::Clients;
use sluice_shared::aws::bare_etag;
use sluice_shared::config::{ConfigError, Env, UploadSettings};
use sluice_shared::domain::Sha256Checksum;
use sluice_shared::http::{UploadRules, json_body, json_response, owned_session, require_parts_per_call, respond, unknown_route};
use sluice_shared::ports::Sessions;
use sluice_shared::routes::{self, Endpoint};
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
    let result = match routes::endpoint(&req) {
        Some(Endpoint::RecordChunk) => record(deps, &req).await,
        _ => Err(unknown_route(&req)),
    };
    Ok(respond(result))
}

/// Records a batch of parts. Every part is checked before any is written,
/// so a refused batch records nothing.
async fn record(deps: &RecordChunk, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    // `{parts: [...]}`, or one part as the route first took it
    // (`{partNumber, etag, size}`), which clients written then still send.
    let chunks = RecordChunks::from_value(json_body(req)?)
        .map_err(|e| ApiError::new(ErrorCode::InvalidBody, format!("the JSON body is not valid: {e}")))?;
    let one = chunks.is_one();
    let chunks = chunks.into_parts();
    let session = owned_session(&deps.sessions, req, caller.sub).await?;
    session.require_parts_open()?;
    require_parts_per_call(chunks.len())?;
    let mut seen = BTreeSet::new();
    let parts = chunks
        .into_iter()
        .map(|chunk| {
            let part = checked_part(&session, chunk)?;
            if !seen.insert(part.part_number) {
                return Err(ApiError::new(
                    ErrorCode::DuplicatePart,
                    format!("part {} is listed more than once; list each part once per call", part.part_number),
                ));
            }
            Ok(part)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let count = deps.sessions.record_parts(session.file_id, &parts, session.expires_at).await?;
    let answer = ChunksRecorded {
        // The single-part answer as it was, beside the batch's fields.
        part_number: if one { seen.first().copied() } else { None },
        part_numbers: seen.into_iter().collect(),
        recorded_parts: count,
        part_count: session.plan.part_count,
    };
    Ok(json_response(200, &answer))
}

/// A chunk as the session will keep it, or 400 naming what is wrong with it.
fn checked_part(session: &UploadSession, chunk: RecordedChunk) -> Result<RecordedPart, ApiError> {
    let part = session.part(chunk.part_number)?;
    let expected = session.plan.size_of(part);
    if chunk.size != expected {
        return Err(ApiError::new(
            ErrorCode::PartSizeMismatch,
            format!("part {} must be {expected} bytes; got {}", part.get(), chunk.size),
        ));
    }
    let etag = bare_etag(&chunk.etag).to_string();
    if etag.is_empty() || etag.len() > 128 || !etag.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::new(
            ErrorCode::InvalidEtag,
            format!("part {}: etag must be the ETag header S3 answered the part's PUT with", part.get()),
        ));
    }
    let checksum_sha256 = chunk.checksum_sha256.as_deref().map(Sha256Checksum::parse).transpose()?.map(Sha256Checksum::into_string);
    Ok(RecordedPart { part_number: part.get(), size: chunk.size, etag, checksum_sha256 })
}
