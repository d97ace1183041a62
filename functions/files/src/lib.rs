//! `GET /files/{fileId}`: a file's state at every stage. Final states come
//! from Postgres; until the verdict lands, the upload session says UPLOADING.

use lambda_http::{Body, Error, Request, Response};
use serde_json::{Value, json};
use sluice_shared::auth::{TokenVerifier, now_secs};
use sluice_shared::aws::Clients;
use sluice_shared::config::{ConfigError, Env, UploadSettings};
use sluice_shared::db::Db;
use sluice_shared::http::{file_id, json_response, respond, route_key, unknown_route};
use sluice_shared::sessions::SessionStore;
use sluice_shared::time::rfc3339;
use sluice_shared::{ApiError, config};

pub struct Files {
    pub db: Db,
    pub sessions: SessionStore,
    pub verifier: TokenVerifier,
}

impl Files {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        let settings = UploadSettings::from_env(env)?;
        Ok(Self {
            db: Db::new(config::database_url(env)?),
            sessions: SessionStore::new(clients.dynamodb.clone(), &settings.sessions_table),
            verifier: config::token_verifier(env)?,
        })
    }
}

pub async fn handle(deps: &Files, req: Request) -> Result<Response<Body>, Error> {
    let result = match route_key(&req).as_str() {
        "GET /files/{fileId}" => get_file(deps, &req).await,
        _ => Err(unknown_route(&req)),
    };
    Ok(respond(result))
}

async fn get_file(deps: &Files, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let id = file_id(req)?;
    let db = deps.db.client().await.map_err(|e| ApiError::unavailable("the database", e))?;
    let row = db
        .query_opt(
            "SELECT f.file_name, f.status, f.size, f.etag, f.declared_type, f.detected_type, f.kind, f.reason,
                    extract(epoch FROM f.created_at)::bigint, extract(epoch FROM f.updated_at)::bigint,
                    (SELECT count(*) FROM chunks c WHERE c.file_id = f.id)
             FROM files f WHERE f.id = $1 AND f.owner_id = $2",
            &[&id, &caller.sub],
        )
        .await
        .map_err(|e| ApiError::unavailable("the database", e))?;
    if let Some(row) = row {
        let body: Value = json!({
            "fileId": id,
            "fileName": row.get::<_, String>(0),
            "status": row.get::<_, String>(1),
            "size": row.get::<_, i64>(2),
            "etag": row.get::<_, Option<String>>(3),
            "declaredType": row.get::<_, String>(4),
            "detectedType": row.get::<_, Option<String>>(5),
            "kind": row.get::<_, Option<String>>(6),
            "reason": row.get::<_, Option<String>>(7),
            "createdAt": rfc3339(row.get::<_, i64>(8) as u64),
            "updatedAt": rfc3339(row.get::<_, i64>(9) as u64),
            "partCount": row.get::<_, i64>(10),
        });
        return Ok(json_response(200, &body));
    }
    let session = deps.sessions.get(id).await.map_err(|e| ApiError::unavailable("the session table", e))?;
    let session = session
        .filter(|s| s.owner_id == caller.sub && !s.is_expired(now_secs()))
        .ok_or_else(|| ApiError::not_found("this file"))?;
    Ok(json_response(
        200,
        &json!({
            "fileId": id,
            "fileName": session.file_name,
            "status": session.stage.file_status().as_str(),
            "reason": session.stage.failure_reason(),
            "size": session.plan.size,
            "declaredType": session.declared_type,
            "partCount": session.plan.part_count,
            "recordedParts": session.recorded_count,
            "createdAt": rfc3339(session.created_at),
            "expiresAt": rfc3339(session.expires_at),
        }),
    ))
}
