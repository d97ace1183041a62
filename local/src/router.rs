//! A local API Gateway: each HTTP request becomes an HTTP API (payload v2)
//! event for the function the routes table names, and its response goes
//! back as HTTP, as API Gateway would do.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use lambda_http::Body;
use serde_json::{Value, json};
use sluice_shared::ApiError;
use sluice_shared::error::ErrorCode;
use sluice_shared::routes;

/// API Gateway's payload limit.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The API functions' handlers with their dependencies.
pub struct Api {
    pub auth: auth::Auth,
    pub presign: presign::Presign,
    pub record_chunk: record_chunk::RecordChunk,
    pub complete_upload: complete_upload::CompleteUpload,
    pub files: files::Files,
    /// The built web page (web/dist), served for every other GET as
    /// CloudFront serves the web bucket beside the API.
    pub web_dir: Option<std::path::PathBuf>,
    /// Invocations per route, for tests that check how many calls a client makes.
    pub calls: RouteCalls,
}

/// How many times each route (its key, `"POST /uploads/{fileId}/parts"`)
/// was invoked.
#[derive(Default)]
pub struct RouteCalls(std::sync::Mutex<std::collections::HashMap<String, u32>>);

impl RouteCalls {
    pub fn of(&self, route_key: &str) -> u32 {
        self.0.lock().unwrap().get(route_key).copied().unwrap_or_default()
    }

    fn count(&self, route_key: &str) {
        *self.0.lock().unwrap().entry(route_key.to_string()).or_default() += 1;
    }
}

pub async fn serve(api: &Api, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let is_read = matches!(*req.method(), http::Method::GET | http::Method::HEAD);
    if is_read
        && routes::find(req.method().as_str(), req.uri().path()).is_none()
        && let Some(page) = api.web_dir.as_deref().and_then(|dir| web_file(dir, req.uri().path()))
    {
        return page;
    }
    let lambda_response = match to_event(req).await {
        Ok((function, event)) => {
            api.calls.count(event["routeKey"].as_str().unwrap_or_default());
            invoke(api, function, event).await
        }
        Err(err) => err.into_response(),
    };
    let (parts, body) = lambda_response.into_parts();
    let bytes = match body {
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

/// A file of the built page; `/` is index.html. Paths that climb out of the
/// folder or name nothing fall through to the API's 404.
fn web_file(dir: &std::path::Path, path: &str) -> Option<hyper::Response<Full<Bytes>>> {
    let relative = match path.trim_start_matches('/') {
        "" => "index.html",
        other => other,
    };
    if relative.split('/').any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\\')) {
        return None;
    }
    let bytes = std::fs::read(dir.join(relative)).ok()?;
    let content_type = match relative.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json" | "map") => "application/json",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    };
    hyper::Response::builder()
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CACHE_CONTROL, "no-cache")
        .body(Full::new(Bytes::from(bytes)))
        .ok()
}

async fn invoke(api: &Api, function: &str, event: Value) -> lambda_http::Response<Body> {
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(r) => r,
        Err(e) => return ApiError::new(ErrorCode::InvalidRequest, e.to_string()).into_response(),
    };
    let result = match function {
        "auth" => auth::handle(&api.auth, request).await,
        "presign" => presign::handle(&api.presign, request).await,
        "record-chunk" => record_chunk::handle(&api.record_chunk, request).await,
        "complete-upload" => complete_upload::handle(&api.complete_upload, request).await,
        "files" => files::handle(&api.files, request).await,
        other => Err(format!("no function {other}").into()),
    };
    // Lambda answers 502 when a function errors; ours never should.
    result.unwrap_or_else(|e| ApiError::new(ErrorCode::FunctionError, e.to_string()).into_response())
}

/// The v2 event API Gateway would send, and the function it would invoke.
pub async fn to_event(req: hyper::Request<Incoming>) -> Result<(&'static str, Value), ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let method = parts.method.as_str().to_string();
    let (route, params) =
        routes::find(&method, &path).ok_or_else(|| ApiError::new(ErrorCode::RouteNotFound, format!("no route for {method} {path}")))?;
    let bytes = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| ApiError::new(ErrorCode::BodyTooLarge, format!("the body exceeds {MAX_BODY_BYTES} bytes")))?
        .to_bytes();

    let mut headers = serde_json::Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = value.to_str().unwrap_or_default().to_string();
        if name == http::header::COOKIE {
            cookies.extend(value.split(';').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()));
            continue;
        }
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_string(), json!(value));
            }
        }
    }
    let (body, base64) = match std::str::from_utf8(&bytes) {
        Ok(text) => (text.to_string(), false),
        Err(_) => {
            use base64::Engine;
            (base64::engine::general_purpose::STANDARD.encode(&bytes), true)
        }
    };
    let path_parameters: serde_json::Map<String, Value> = params.into_iter().map(|(k, v)| (k, json!(v))).collect();
    let now = time::OffsetDateTime::now_utc();
    let host = headers.get("host").and_then(Value::as_str).unwrap_or("localhost").to_string();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.key(),
        "rawPath": path,
        "rawQueryString": parts.uri.query().unwrap_or_default(),
        "headers": headers,
        "pathParameters": path_parameters,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent").cloned().unwrap_or(json!(""))
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route.key(),
            "stage": "$default",
            "time": now.to_string(),
            "timeEpoch": (now.unix_timestamp_nanos() / 1_000_000) as i64
        },
        "isBase64Encoded": base64
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !bytes.is_empty() {
        event["body"] = json!(body);
    }
    Ok((route.function, event))
}
