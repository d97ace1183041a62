//! Request parsing and response building shared by the API functions.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::ApiError;

pub fn json_response(status: u16, body: &impl Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(text))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// Turns a handler result into the response; errors become their JSON shape.
pub fn respond(result: Result<Response<Body>, ApiError>) -> Response<Body> {
    result.unwrap_or_else(|err| {
        if err.status >= 500 {
            tracing::warn!(%err, "request failed");
        }
        err.into_response()
    })
}

/// `"POST /uploads/{fileId}/chunks"`: the route API Gateway matched.
pub fn route_key(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

pub fn unknown_route(req: &Request) -> ApiError {
    ApiError::new(
        404,
        "route_not_found",
        format!("no route for {} {}", req.method(), req.uri().path()),
    )
}

/// Parses a JSON body into `T`, answering 400 with serde's own words.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    if bytes.is_empty() {
        return Err(ApiError::bad_request("invalid_body", "the request needs a JSON body"));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("the JSON body is not valid: {e}")))
}

/// The `{fileId}` path parameter, or `{uploadId}` on the Companion routes:
/// the upload id we hand Uppy is the file id, so the server finds the
/// session (and its key) from it and never from the key Uppy sends back.
/// A malformed id cannot name any file of the caller's, so it answers 404
/// like any other unknown file.
pub fn file_id(req: &Request) -> Result<Uuid, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first("fileId").or_else(|| p.first("uploadId")))
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| ApiError::not_found("this file"))
}

/// A query string parameter parsed as a number within bounds.
pub fn query_number(req: &Request, name: &str, default: u32, min: u32, max: u32) -> Result<u32, ApiError> {
    let params = req.query_string_parameters_ref();
    let Some(raw) = params.and_then(|p| p.first(name)) else {
        return Ok(default);
    };
    match raw.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            format!("{name} must be a whole number from {min} to {max}; got '{raw}'"),
        )),
    }
}

/// The caller's token: `Authorization: Bearer …`, or the sign-in cookie.
pub fn credentials(req: &Request) -> Option<String> {
    if let Some(value) = req.headers().get(http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string());
    }
    req.headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == crate::auth::COOKIE_NAME)
        .map(|(_, value)| value.to_string())
}
