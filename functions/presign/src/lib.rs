//! `POST /uploads` starts an upload: one presigned PUT for small files, a
//! multipart upload with its first part URLs otherwise. `GET` and `POST
//! /uploads/{fileId}/parts` sign more part URLs (the POST signs each part's
//! SHA-256 in, so S3 refuses other bytes); `GET /uploads/{fileId}` tells a
//! client that lost its place which parts are recorded, so it resumes by
//! sending only the missing ones.

use sluice_shared::error::ErrorCode;
use std::time::Duration;

use aws_sdk_s3::config::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::types::ChecksumAlgorithm;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde_json::{Map, Value};
use sluice_api::companion::{CreateMultipart, MultipartCreated, SignedPart, SignedParts};
use sluice_api::limits::{DEFAULT_PARTS_PER_GET, FIRST_PARTS, MAX_PARTS_PER_CALL};
use sluice_api::uploads::{MultipartUpload, PartUrl, PartUrls, SignParts, SingleUpload, StartUpload, StartedUpload, UploadState};
use sluice_shared::auth::{TokenVerifier, now_secs};
use sluice_shared::aws::{self, Clients, metadata};
use sluice_shared::config::{ConfigError, Env, UploadSettings};
use sluice_shared::domain::status::SessionStage;
use sluice_shared::domain::upload_token::{TokenError, UploadClaim, UploadTokens};
use sluice_shared::domain::{FileName, PartNumber, PartPlan, PlanError, Sha256Checksum, UploadMode};
use sluice_shared::http::{
    UploadRules, json_body, json_response, owned_session, query_number, require_parts_per_call, respond, unknown_route,
};
use sluice_shared::ports::{Quota, Sessions};
use sluice_shared::quota::QuotaLedger;
use sluice_shared::routes::{self, Endpoint};
use sluice_shared::sessions::{SessionStore, UploadSession};
use sluice_shared::time::rfc3339;
use sluice_shared::{ApiError, config};
use uuid::Uuid;

use crate::part_signer::{PartHeaders, PartSigner};

pub mod part_signer;

pub struct Presign {
    pub s3: aws_sdk_s3::Client,
    /// The S3 client's credentials, whose secret signs part URLs in bulk.
    pub credentials: Option<SharedCredentialsProvider>,
    pub sessions: SessionStore,
    pub quota: QuotaLedger,
    pub verifier: TokenVerifier,
    /// Make the upload ids handed to Uppy, and check them when it signs a part.
    pub upload_tokens: UploadTokens,
    pub settings: UploadSettings,
}

impl Presign {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        let settings = UploadSettings::from_env(env)?;
        Ok(Self {
            s3: clients.s3(),
            credentials: clients.credentials(),
            sessions: SessionStore::new(clients.dynamodb(), &settings.sessions_table),
            quota: QuotaLedger::new(clients.dynamodb(), &settings.sessions_table),
            verifier: config::token_verifier(env)?,
            upload_tokens: config::upload_tokens(env)?,
            settings,
        })
    }
}

pub async fn handle(deps: &Presign, req: Request) -> Result<Response<Body>, Error> {
    let result = match routes::endpoint(&req) {
        Some(Endpoint::StartUpload) => start(deps, &req).await,
        Some(Endpoint::UploadState) => session_state(deps, &req).await,
        Some(Endpoint::SignParts) => more_parts(deps, &req).await,
        Some(Endpoint::SignPartsWithChecksums) => parts_with_checksums(deps, &req).await,
        Some(Endpoint::CompanionCreate) => companion_create(deps, &req).await,
        Some(Endpoint::CompanionSignPart) => companion_sign_part(deps, &req).await,
        Some(Endpoint::CompanionSignParts) => companion_sign_parts(deps, &req).await,
        _ => Err(unknown_route(&req)),
    };
    Ok(respond(result))
}

async fn start(deps: &Presign, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let input: StartUpload = json_body(req)?;
    let settings = &deps.settings;
    let (mode, plan) = PartPlan::choose(input.size, settings.max_file_size, settings.single_put_max, input.mode).map_err(plan_error)?;
    let sha256 = input.sha256.as_deref().map(Sha256Checksum::parse).transpose()?;
    let mut session = new_session(deps, caller.sub, &input.file_name, &input.content_type, mode, plan)?;
    session.sha256 = sha256.map(Sha256Checksum::into_string);
    let body = match open(deps, &mut session).await? {
        Some(put) => StartedUpload::Single(SingleUpload {
            file_id: session.file_id,
            key: session.key,
            url: put.url,
            method: "PUT".into(),
            headers: put.headers,
            url_expires_at: put.expires_at,
            expires_at: rfc3339(session.expires_at),
        }),
        None => {
            let first: Vec<_> = session.plan.parts().take(FIRST_PARTS as usize).map(|n| (n, None)).collect();
            let parts = sign_parts(deps, &session, &first).await?;
            StartedUpload::Multipart(MultipartUpload {
                file_id: session.file_id,
                upload_id: session.upload_id,
                key: session.key,
                part_size: plan.part_size,
                part_count: plan.part_count,
                parts,
                expires_at: rfc3339(session.expires_at),
            })
        }
    };
    debug_assert_eq!(mode == UploadMode::Single, matches!(body, StartedUpload::Single(_)));
    Ok(json_response(201, &body))
}

fn plan_error(e: PlanError) -> ApiError {
    match e {
        PlanError::TooLarge { .. } => ApiError::new(ErrorCode::FileTooLarge, e.to_string()),
        PlanError::TooLargeForSingle { .. } | PlanError::CompanionOnly => ApiError::new(ErrorCode::InvalidMode, e.to_string()),
        PlanError::Empty => ApiError::new(ErrorCode::InvalidSize, e.to_string()),
    }
}

/// A new open session for the caller's file, after checking its name and
/// declared type; nothing is stored yet.
fn new_session(
    deps: &Presign,
    owner: Uuid,
    file_name: &str,
    content_type: &str,
    mode: UploadMode,
    plan: PartPlan,
) -> Result<UploadSession, ApiError> {
    let name = FileName::parse(file_name).map_err(|e| ApiError::new(ErrorCode::InvalidFileName, e.to_string()))?;
    let settings = &deps.settings;
    let declared = content_type.trim().to_ascii_lowercase();
    if !settings.allowed_types.allows(&declared) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedType,
            format!("contentType '{declared}' is not accepted; accepted types: {}", settings.allowed_types),
        ));
    }
    let file_id = Uuid::new_v4();
    let now = now_secs();
    Ok(UploadSession {
        file_id,
        owner_id: owner,
        key: format!("uploads/{owner}/{file_id}/{}", name.safe()),
        // Known once S3 has created the multipart upload; none for a single PUT.
        upload_id: String::new(),
        file_name: name.original().to_string(),
        declared_type: declared,
        mode,
        plan,
        sha256: None,
        stage: SessionStage::Open,
        recorded_count: 0,
        created_at: now,
        expires_at: now + settings.session_ttl_secs,
        stage_at: now,
        judged: None,
        verdict_stored: false,
    })
}

/// Charges the quota, then begins the upload; if beginning fails, the
/// quota is given back. The charge is the declared size; a client-cut
/// upload that declared none holds the largest file allowed until complete
/// charges what S3 holds, since nothing bounds its parts before then.
async fn open(deps: &Presign, session: &mut UploadSession) -> Result<Option<PartUrl>, ApiError> {
    let (owner, file_id) = (session.owner_id, session.file_id);
    let declared = session.plan.declared_size();
    let charge = declared.unwrap_or(deps.settings.max_file_size);
    deps.quota.charge(owner, file_id, charge, deps.settings.user_quota).await.map_err(|e| {
        let error = ApiError::from(e);
        match declared {
            Some(_) => error,
            None if error.code != ErrorCode::QuotaExceeded => error,
            None => {
                let message = format!(
                    "{}; with no size declared the upload holds the largest file allowed ({charge} bytes) until it completes: declare metadata.size to hold only that",
                    error.message
                );
                ApiError::new(error.code, message)
            }
        }
    })?;
    let started = begin(deps, session).await;
    if started.is_err() {
        let _ = deps.quota.release(owner, file_id).await;
    }
    started
}

/// Creates the S3 side of the session (a multipart upload, whose id it
/// records, or the signed PUT, which it answers) and then stores the session.
async fn begin(deps: &Presign, session: &mut UploadSession) -> Result<Option<PartUrl>, ApiError> {
    let bucket = &deps.settings.bucket;
    let single_put = match session.mode {
        UploadMode::Multipart | UploadMode::Companion => {
            let created = deps
                .s3
                .create_multipart_upload()
                .bucket(bucket)
                .key(&session.key)
                .metadata(metadata::OWNER, session.owner_id.to_string())
                .metadata(metadata::FILE_ID, session.file_id.to_string())
                .metadata(metadata::DECLARED_TYPE, &session.declared_type)
                // S3 then keeps each part's SHA-256, computing it for parts sent without one.
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .send()
                .await
                .map_err(|e| ApiError::unavailable("S3", aws::describe(e)))?;
            session.upload_id = created.upload_id.unwrap_or_default();
            None
        }
        UploadMode::Single => {
            let signed = deps
                .s3
                .put_object()
                .bucket(bucket)
                .key(&session.key)
                .content_length(session.plan.size as i64)
                // No metadata headers: inspect reads the owner and the file
                // from the key and the type from the session, so a plain
                // PUT of the bytes (what most clients send) is enough.
                .set_checksum_sha256(session.sha256.clone())
                .presigned(presigning(deps)?)
                .await
                .map_err(|e| ApiError::unavailable("URL signing", aws::describe(e)))?;
            Some(presigned_part_url(1, &signed, url_expiry(deps)))
        }
    };
    if let Err(e) = deps.sessions.create(session).await {
        // Leave nothing behind in S3 when the session cannot be kept.
        if session.has_multipart_upload() {
            let abort = deps.s3.abort_multipart_upload().bucket(bucket).key(&session.key).upload_id(&session.upload_id);
            let _ = abort.send().await;
        }
        return Err(ApiError::unavailable("the session table", e));
    }
    Ok(single_put)
}

async fn session_state(deps: &Presign, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let session = owned_session(&deps.sessions, req, caller.sub).await?;
    let recorded = deps.sessions.parts(session.file_id).await?;
    Ok(json_response(
        200,
        &UploadState {
            file_id: session.file_id,
            mode: session.mode,
            status: session.stage.file_status(),
            stage: session.stage,
            file_name: session.file_name,
            size: session.plan.size,
            sha256: session.sha256,
            part_size: session.plan.part_size,
            part_count: session.plan.part_count,
            recorded_parts: recorded,
            expires_at: rfc3339(session.expires_at),
        },
    ))
}

async fn more_parts(deps: &Presign, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let session = owned_session(&deps.sessions, req, caller.sub).await?;
    session.require_parts_open()?;
    let first = query_number(req, "first", 1, 1, session.plan.part_count)?;
    let count = query_number(req, "count", DEFAULT_PARTS_PER_GET, 1, MAX_PARTS_PER_CALL)?;
    let wanted: Vec<_> = session.plan.parts().skip(first as usize - 1).take(count as usize).map(|n| (n, None)).collect();
    let parts = sign_parts(deps, &session, &wanted).await?;
    Ok(json_response(200, &PartUrls { file_id: session.file_id, part_count: session.plan.part_count, parts }))
}

async fn parts_with_checksums(deps: &Presign, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let input: SignParts = json_body(req)?;
    let session = owned_session(&deps.sessions, req, caller.sub).await?;
    session.require_parts_open()?;
    require_parts_per_call(input.parts.len())?;
    let mut wanted = Vec::with_capacity(input.parts.len());
    for part in &input.parts {
        wanted.push((session.part(part.part_number)?, part.checksum_sha256.as_deref().map(Sha256Checksum::parse).transpose()?));
    }
    let parts = sign_parts(deps, &session, &wanted).await?;
    Ok(json_response(200, &PartUrls { file_id: session.file_id, part_count: session.plan.part_count, parts }))
}

/// The size the client declared in Uppy's file metadata (`size`), if any:
/// Uppy sends only the file's meta fields, and size is not one by default.
fn declared_size(metadata: &Map<String, Value>) -> Result<Option<u64>, ApiError> {
    match metadata.get("size") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(Value::String(s)) if s.parse::<u64>().is_ok() => Ok(s.parse().ok()),
        Some(other) => Err(ApiError::new(ErrorCode::InvalidSize, format!("metadata.size must be a whole number of bytes; got {other}"))),
    }
}

/// Starts an upload whose parts Uppy cuts. The upload id handed back is a
/// token naming the file, its key and S3's upload (see upload_token): the
/// part routes sign from it without reading the session, and the key Uppy
/// echoes back is never used.
async fn companion_create(deps: &Presign, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let input: CreateMultipart = json_body(req)?;
    let plan = PartPlan::client_cut(declared_size(&input.metadata)?, deps.settings.max_file_size).map_err(plan_error)?;
    let mut session = new_session(deps, caller.sub, &input.filename, &input.content_type, UploadMode::Companion, plan)?;
    open(deps, &mut session).await?;
    let claim = UploadClaim {
        file_id: session.file_id,
        owner_id: session.owner_id,
        key: session.key.clone(),
        upload_id: session.upload_id.clone(),
        size: session.plan.declared_size(),
        expires_at: session.expires_at,
    };
    let created = MultipartCreated { upload_id: deps.upload_tokens.issue(&claim), key: session.key, file_id: session.file_id };
    Ok(json_response(200, &created))
}

/// What signing a Companion part needs: the object, S3's upload and the plan.
struct CompanionTarget {
    key: String,
    upload_id: String,
    plan: PartPlan,
}

/// The caller's Companion upload the path names: from its upload token,
/// in memory; or, for a bare file id (an upload id from before tokens),
/// from its session.
async fn companion_target(deps: &Presign, req: &Request, owner: Uuid) -> Result<CompanionTarget, ApiError> {
    let raw = req.path_parameters_ref().and_then(|p| p.first("uploadId")).unwrap_or_default();
    match deps.upload_tokens.verify(raw, now_secs()) {
        // Open as far as signing goes: a part URL of an upload cancelled or
        // completed meanwhile is refused by S3 (NoSuchUpload).
        Ok(claim) if claim.owner_id == owner => Ok(CompanionTarget {
            plan: PartPlan::client_cut(claim.size, deps.settings.max_file_size).map_err(plan_error)?,
            key: claim.key,
            upload_id: claim.upload_id,
        }),
        Err(TokenError::NotAToken) => {
            let session = owned_session(&deps.sessions, req, owner).await?;
            session.require_companion()?;
            session.require_open()?;
            Ok(CompanionTarget { key: session.key, upload_id: session.upload_id, plan: session.plan })
        }
        // Another user's, not ours, or past its session's end: as if it did not exist.
        Ok(_) | Err(TokenError::Forged | TokenError::Expired(_)) => Err(ApiError::not_found("this upload")),
    }
}

/// A part number the plan allows, or 400 naming the range.
fn companion_part(deps: &Presign, plan: &PartPlan, raw: &str) -> Result<u32, ApiError> {
    let limit = plan.client_part_limit(deps.settings.max_file_size);
    raw.trim().parse::<u32>().ok().filter(|n| (1..=limit).contains(n)).ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidPartNumber, format!("partNumber must be from 1 to {limit} for this upload; got '{raw}'"))
    })
}

/// One part URL for Uppy. With a declared size the part's exact length (by
/// Uppy's cut) is signed in, so S3 refuses any other; without one, none
/// can be, and complete checks every part against what S3 holds instead.
async fn companion_sign_part(deps: &Presign, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let target = companion_target(deps, req, caller.sub).await?;
    let raw = req.path_parameters_ref().and_then(|p| p.first("partNumber")).unwrap_or_default();
    let part_number = companion_part(deps, &target.plan, raw)?;
    let length = target.plan.client_part_size(part_number);
    let signed = sign_part(deps, &target.key, &target.upload_id, part_number, length, None, presigning(deps)?).await?;
    Ok(json_response(200, &SignedPart { url: signed.uri().to_string(), expires: deps.settings.url_ttl_secs }))
}

/// Older @uppy/aws-s3's `GET /s3/multipart/{uploadId}/batch?partNumbers=1,2`:
/// the URLs of several parts in one call, each as `companion_sign_part` signs it.
async fn companion_sign_parts(deps: &Presign, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = deps.verifier.caller(req)?;
    let target = companion_target(deps, req, caller.sub).await?;
    let listed = req.query_string_parameters_ref().and_then(|q| q.first("partNumbers").map(str::to_string)).unwrap_or_default();
    let numbers =
        listed.split(',').filter(|n| !n.trim().is_empty()).map(|n| companion_part(deps, &target.plan, n)).collect::<Result<Vec<_>, _>>()?;
    require_parts_per_call(numbers.len())?;
    let presigning = presigning(deps)?;
    let mut presigned_urls = std::collections::BTreeMap::new();
    for n in numbers {
        let signed = sign_part(deps, &target.key, &target.upload_id, n, target.plan.client_part_size(n), None, presigning.clone()).await?;
        presigned_urls.insert(n.to_string(), signed.uri().to_string());
    }
    Ok(json_response(200, &SignedParts { presigned_urls }))
}

fn presigning(deps: &Presign) -> Result<PresigningConfig, ApiError> {
    PresigningConfig::expires_in(Duration::from_secs(deps.settings.url_ttl_secs)).map_err(|e| ApiError::unavailable("URL signing", e))
}

fn url_expiry(deps: &Presign) -> String {
    rfc3339(now_secs() + deps.settings.url_ttl_secs)
}

/// The URL and the headers a client must send with it. Content-Length is
/// signed too, but every HTTP client sets it from the body (browsers refuse
/// to let a page set it), so it is not listed.
fn part_url<'a>(part_number: u32, url: String, headers: impl Iterator<Item = (&'a str, &'a str)>, expires_at: String) -> PartUrl {
    let headers = headers
        .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    PartUrl { part_number, url, headers, expires_at }
}

fn presigned_part_url(part_number: u32, signed: &PresignedRequest, expires_at: String) -> PartUrl {
    part_url(part_number, signed.uri().to_string(), signed.headers(), expires_at)
}

/// Presigned UploadPart URLs with the exact part size signed in, so S3
/// itself refuses a body of any other length, and the part's SHA-256 when
/// the client gave one, so S3 refuses other bytes. The SDK signs the first
/// part of each shape; the rest are signed from its URL (see part_signer).
pub async fn sign_parts(
    deps: &Presign,
    session: &UploadSession,
    parts: &[(PartNumber, Option<Sha256Checksum>)],
) -> Result<Vec<PartUrl>, ApiError> {
    let presigning = presigning(deps)?;
    let expires_at = url_expiry(deps);
    // A credentials lookup only pays off when there are URLs to sign after the template.
    let secret = if parts.len() > 1 { signing_secret(deps).await } else { None };
    let mut signers: Vec<PartSigner> = Vec::new();
    let mut sdk_shapes = Vec::new();
    let mut urls = Vec::with_capacity(parts.len());
    for (part, sha256) in parts {
        let per_part =
            PartHeaders { content_length: Some(session.plan.size_of(*part)), sha256: sha256.as_ref().map(Sha256Checksum::as_str) };
        if let Some(signer) = signers.iter().find(|s| s.shape() == per_part.shape()) {
            let signed = signer.sign(part.get(), per_part);
            let headers = signed.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
            urls.push(part_url(part.get(), signed.url, headers, expires_at.clone()));
            continue;
        }
        let signed =
            sign_part(deps, &session.key, &session.upload_id, part.get(), per_part.content_length, sha256.as_ref(), presigning.clone())
                .await?;
        if let Some(secret) = &secret
            && !sdk_shapes.contains(&per_part.shape())
        {
            let headers: Vec<(String, String)> = signed.headers().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            match PartSigner::from_template(signed.uri(), &headers, part.get(), per_part, secret) {
                Some(signer) => signers.push(signer),
                None => {
                    tracing::warn!(uri = signed.uri(), "the SDK's part URL did not reproduce; the SDK signs every part of this call");
                    sdk_shapes.push(per_part.shape());
                }
            }
        }
        urls.push(presigned_part_url(part.get(), &signed, expires_at.clone()));
    }
    Ok(urls)
}

/// The secret the S3 client signs with, if its provider answers now.
async fn signing_secret(deps: &Presign) -> Option<String> {
    let credentials = deps.credentials.as_ref()?.provide_credentials().await.ok()?;
    Some(credentials.secret_access_key().to_string())
}

/// One presigned UploadPart URL; the length and SHA-256, when given, are
/// signed in so S3 refuses any other body.
async fn sign_part(
    deps: &Presign,
    key: &str,
    upload_id: &str,
    part_number: u32,
    content_length: Option<u64>,
    sha256: Option<&Sha256Checksum>,
    presigning: PresigningConfig,
) -> Result<PresignedRequest, ApiError> {
    deps.s3
        .upload_part()
        .bucket(&deps.settings.bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(part_number as i32)
        .set_content_length(content_length.map(|n| n as i64))
        .set_checksum_sha256(sha256.map(|c| c.as_str().to_string()))
        .presigned(presigning)
        .await
        .map_err(|e| ApiError::unavailable("URL signing", aws::describe(e)))
}
