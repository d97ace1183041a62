//! `GET /files/{fileId}`: a file's state at every stage. Final states come
//! from Postgres; until the verdict lands, the upload session says UPLOADING.
//! `GET /files` lists the caller's files, newest first; `POST
//! /files/{fileId}/download-url` signs a short-lived GET for an UPLOADED one;
//! `DELETE /files/{fileId}` removes the object, gives its bytes back to the
//! owner's quota and hides the row.

use lambda_http::{Body, Error, Request, RequestExt, Response};
use sluice_api::files::{DownloadUrl, File, FileDeleted, FileList, FileStage, FileSummary};
use sluice_api::limits::{DEFAULT_PAGE, MAX_PAGE};
use sluice_api::{FileStatus, Kind};
use sluice_shared::auth::{TokenVerifier, now_secs};
use sluice_shared::aws::Clients;
use sluice_shared::config::{ConfigError, Env, UploadSettings};
use sluice_shared::db::Db;
use sluice_shared::error::ErrorCode;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sluice_shared::aws;
use sluice_shared::domain::file_name::content_disposition;
use sluice_shared::http::{file_id, json_response, query_number, respond, unknown_route};
use sluice_shared::ports::{Quota, Sessions};
use sluice_shared::quota::QuotaLedger;
use sluice_shared::routes::{self, Endpoint};
use sluice_shared::sessions::SessionStore;
use sluice_shared::time::rfc3339;
use sluice_shared::{ApiError, config};
use uuid::Uuid;

pub struct Files {
    pub db: Db,
    pub s3: aws_sdk_s3::Client,
    pub sessions: SessionStore,
    pub quota: QuotaLedger,
    pub verifier: TokenVerifier,
    /// How long a download URL stays valid.
    pub download_ttl_secs: u64,
}

impl Files {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        let settings = UploadSettings::from_env(env)?;
        let download_ttl_secs = env.parsed("DOWNLOAD_TTL_SECONDS", 300)?;
        if !(1..=604_800).contains(&download_ttl_secs) {
            return Err(env.invalid("DOWNLOAD_TTL_SECONDS", "must be from 1 to 604800 seconds"));
        }
        Ok(Self {
            db: Db::new(config::database_url(env)?),
            s3: clients.s3(),
            sessions: SessionStore::new(clients.dynamodb(), &settings.sessions_table),
            quota: QuotaLedger::new(clients.dynamodb(), &settings.sessions_table),
            verifier: config::token_verifier(env)?,
            download_ttl_secs,
        })
    }
}

pub async fn handle(deps: &Files, req: Request) -> Result<Response<Body>, Error> {
    let result = match routes::endpoint(&req) {
        Some(Endpoint::GetFile) => get_file(deps, &req).await,
        Some(Endpoint::ListFiles) => list_files(deps, &req).await,
        Some(Endpoint::DownloadUrl) => download_url(deps, &req).await,
        Some(Endpoint::DeleteFile) => delete_file(deps, &req).await,
        _ => Err(unknown_route(&req)),
    };
    Ok(respond(result))
}

async fn get_file(deps: &Files, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let id = file_id(req)?;
    let db = deps.db.client().await?;
    let row = db
        .query_opt(
            "SELECT f.file_name, f.status, f.size, f.etag, f.declared_type, f.detected_type, f.kind, f.reason,
                    extract(epoch FROM f.created_at)::bigint, extract(epoch FROM f.updated_at)::bigint,
                    (SELECT count(*) FROM chunks c WHERE c.file_id = f.id), f.deleted_at IS NOT NULL, f.sha256,
                    f.width, f.height, f.duration_ms
             FROM files f WHERE f.id = $1 AND f.owner_id = $2",
            &[&id, &caller.sub],
        )
        .await?;
    if let Some(row) = row {
        // Deleted: gone, even though its upload session may still be readable.
        if row.get::<_, bool>(11) {
            return Err(ApiError::not_found("this file"));
        }
        let body = File {
            file_id: id,
            file_name: row.get(0),
            status: status_column(&row, 1)?,
            size: row.get::<_, i64>(2) as u64,
            declared_type: row.get(4),
            reason: row.get(7),
            created_at: rfc3339(row.get::<_, i64>(8) as u64),
            part_count: row.get::<_, i64>(10) as u32,
            stage: FileStage::Judged {
                etag: row.get(3),
                detected_type: row.get(5),
                kind: kind_column(&row, 6),
                sha256: row.get(12),
                updated_at: rfc3339(row.get::<_, i64>(9) as u64),
                width: row.get::<_, Option<i32>>(13).map(|n| n as u32),
                height: row.get::<_, Option<i32>>(14).map(|n| n as u32),
                duration_ms: row.get::<_, Option<i64>>(15).map(|n| n as u64),
            },
        };
        return Ok(json_response(200, &body));
    }
    let session = deps.sessions.get(id).await?;
    let session =
        session.filter(|s| s.owner_id == caller.sub && !s.is_expired(now_secs())).ok_or_else(|| ApiError::not_found("this file"))?;
    Ok(json_response(
        200,
        &File {
            file_id: id,
            file_name: session.file_name,
            status: session.stage.file_status(),
            reason: session.stage.failure_reason().map(String::from),
            size: session.plan.size,
            declared_type: session.declared_type,
            part_count: session.plan.part_count,
            created_at: rfc3339(session.created_at),
            stage: FileStage::InFlight { recorded_parts: session.recorded_count, expires_at: rfc3339(session.expires_at) },
        },
    ))
}

/// A file's status as Postgres keeps it; the column's CHECK allows only
/// these, so any other text is a database fault, not a client's.
fn status_column(row: &tokio_postgres::Row, index: usize) -> Result<FileStatus, ApiError> {
    let text: String = row.get(index);
    FileStatus::parse(&text).ok_or_else(|| ApiError::unavailable("the database", format!("files.status is '{text}'")))
}

fn kind_column(row: &tokio_postgres::Row, index: usize) -> Option<Kind> {
    row.get::<_, Option<String>>(index).as_deref().and_then(Kind::parse)
}

/// The position after the last file of a page: its creation time (ISO 8601
/// in UTC to the microsecond, whatever the server's DateStyle) and id. Rows
/// are ordered by both, so files added meanwhile never shift a page.
fn encode_cursor(created_at: &str, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_at}|{id}"))
}

fn decode_cursor(raw: &str) -> Result<(String, Uuid), ApiError> {
    let invalid = || ApiError::new(ErrorCode::InvalidCursor, "cursor must be the nextCursor of a previous page");
    let text = URL_SAFE_NO_PAD.decode(raw).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(invalid)?;
    let (created_at, id) = text.split_once('|').ok_or_else(invalid)?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    if created_at.is_empty() || created_at.len() > 40 || !created_at.chars().all(|c| c.is_ascii_digit() || "-:.TZ".contains(c)) {
        return Err(invalid());
    }
    Ok((created_at.to_string(), id))
}

async fn list_files(deps: &Files, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let limit = query_number(req, "limit", DEFAULT_PAGE, 1, MAX_PAGE)?;
    let after = match req.query_string_parameters_ref().and_then(|q| q.first("cursor")) {
        Some(raw) => Some(decode_cursor(raw)?),
        None => None,
    };
    let (after_time, after_id) = after.unzip();
    let db = deps.db.client().await?;
    let rows = db
        .query(
            r#"SELECT id, file_name, status, size, declared_type, detected_type, kind, reason,
                    extract(epoch FROM created_at)::bigint,
                    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                    width, height, duration_ms
             FROM files
             WHERE owner_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR (created_at, id) < ($2::text::timestamptz, $3))
             ORDER BY created_at DESC, id DESC
             LIMIT $4"#,
            &[&caller.sub, &after_time, &after_id, &(i64::from(limit) + 1)],
        )
        .await?;
    let more = rows.len() > limit as usize;
    let page = &rows[..rows.len().min(limit as usize)];
    let files = page
        .iter()
        .map(|row| {
            Ok(FileSummary {
                file_id: row.get(0),
                file_name: row.get(1),
                status: status_column(row, 2)?,
                size: row.get::<_, i64>(3) as u64,
                declared_type: row.get(4),
                detected_type: row.get(5),
                kind: kind_column(row, 6),
                reason: row.get(7),
                created_at: rfc3339(row.get::<_, i64>(8) as u64),
                width: row.get::<_, Option<i32>>(10).map(|n| n as u32),
                height: row.get::<_, Option<i32>>(11).map(|n| n as u32),
                duration_ms: row.get::<_, Option<i64>>(12).map(|n| n as u64),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let next = page.last().filter(|_| more).map(|row| encode_cursor(&row.get::<_, String>(9), row.get(0)));
    Ok(json_response(200, &FileList { files, next_cursor: next }))
}

/// The caller's file named by the path, unless deleted; 404 otherwise.
struct LiveFile {
    id: Uuid,
    owner: Uuid,
    file_name: String,
    status: String,
    bucket: String,
    key: String,
    /// What inspection found the bytes to be.
    detected_type: Option<String>,
    /// The object version inspection judged (NULL before versions were kept).
    version_id: Option<String>,
}

async fn live_file(deps: &Files, req: &Request) -> Result<LiveFile, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let id = file_id(req)?;
    let db = deps.db.client().await?;
    let row = db
        .query_opt(
            "SELECT file_name, status, bucket, s3_key, detected_type, version_id FROM files
             WHERE id = $1 AND owner_id = $2 AND deleted_at IS NULL",
            &[&id, &caller.sub],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("this file"))?;
    Ok(LiveFile {
        id,
        owner: caller.sub,
        file_name: row.get(0),
        status: row.get(1),
        bucket: row.get(2),
        key: row.get(3),
        detected_type: row.get(4),
        version_id: row.get(5),
    })
}

async fn download_url(deps: &Files, req: &Request) -> Result<Response<Body>, ApiError> {
    let file = live_file(deps, req).await?;
    let status = file.status;
    if status != FileStatus::Uploaded.as_str() {
        return Err(ApiError::new(ErrorCode::NotDownloadable, format!("only UPLOADED files can be downloaded; this one is {status}")));
    }
    let presigning =
        PresigningConfig::expires_in(Duration::from_secs(deps.download_ttl_secs)).map_err(|e| ApiError::unavailable("URL signing", e))?;
    let signed = deps
        .s3
        .get_object()
        .bucket(file.bucket)
        .key(file.key)
        // The judged bytes, even if a later PUT made another version current.
        .set_version_id(file.version_id)
        .response_content_disposition(content_disposition(&file.file_name))
        // Served as what inspection found, never as what the uploader's PUT said.
        .set_response_content_type(file.detected_type)
        .presigned(presigning)
        .await
        .map_err(|e| ApiError::unavailable("URL signing", aws::describe(e)))?;
    Ok(json_response(200, &DownloadUrl { url: signed.uri().to_string(), expires_at: rfc3339(now_secs() + deps.download_ttl_secs) }))
}

/// Removes the object first, then gives back its quota, then hides the row:
/// if any step fails the file is still listed, so a retried DELETE finishes
/// the job (deleting an object or releasing its quota twice is harmless) and
/// nothing is hidden while its bytes or its charge remain.
///
/// In the versioned bucket the judged version is deleted by its id (which
/// frees its bytes), then the key itself, so no other version stays current;
/// the lifecycle rule expires what is left noncurrent.
async fn delete_file(deps: &Files, req: &Request) -> Result<Response<Body>, ApiError> {
    let file = live_file(deps, req).await?;
    let versions = file.version_id.iter().map(|v| Some(v.clone())).chain([None]);
    for version_id in versions {
        deps.s3
            .delete_object()
            .bucket(&file.bucket)
            .key(&file.key)
            .set_version_id(version_id)
            .send()
            .await
            .map_err(|e| ApiError::unavailable("S3", aws::describe(e)))?;
    }
    deps.quota.release(file.owner, file.id).await.map_err(|e| ApiError::unavailable("the quota ledger", e))?;
    let db = deps.db.client().await?;
    db.execute("UPDATE files SET deleted_at = now(), updated_at = now() WHERE id = $1", &[&file.id]).await?;
    Ok(json_response(200, &FileDeleted { file_id: file.id, deleted: true }))
}
