//! Request parsing and response building shared by the API functions, and
//! the rules over an upload session that the upload routes answer by
//! (`upload_rules`).

pub mod upload_rules;

pub use upload_rules::{UploadRules, owned_session, require_parts_per_call};

use crate::error::ErrorCode;
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
        if err.status() >= 500 {
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
    ApiError::new(ErrorCode::RouteNotFound, format!("no route for {} {}", req.method(), req.uri().path()))
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
        return Err(ApiError::new(ErrorCode::InvalidBody, "the request needs a JSON body"));
    }
    // A form (text/plain, urlencoded, multipart) is what another site can
    // make a browser post without asking: only JSON is JSON.
    let content_type = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if media != "application/json" && !(media.starts_with("application/") && media.ends_with("+json")) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("the body must be sent as Content-Type: application/json; this one was {content_type:?}"),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::new(ErrorCode::InvalidBody, format!("the JSON body is not valid: {e}")))
}

/// The `{fileId}` path parameter, or `{uploadId}` on the Companion routes:
/// the upload id we hand Uppy is the file id, so the server finds the
/// session (and its key) from it and never from the key Uppy sends back.
/// A malformed id cannot name any file of the caller's, so it answers 404
/// like any other unknown file.
/// The file the path names: its id, or an upload token standing for it
/// (what `POST /s3/multipart` answers as `uploadId`). The token's MAC is not
/// checked here: the id only names the file, and every route then checks
/// that the caller owns it; signing checks the MAC (`upload_token`).
pub fn file_id(req: &Request) -> Result<Uuid, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first("fileId").or_else(|| p.first("uploadId")))
        .and_then(|s| Uuid::parse_str(s).ok().or_else(|| crate::domain::upload_token::named_file(s)))
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
        _ => Err(ApiError::new(ErrorCode::InvalidQuery, format!("{name} must be a whole number from {min} to {max}; got '{raw}'"))),
    }
}

/// Whether the request carries `Authorization: Bearer`: a script's call,
/// which no other site can make a browser send.
fn has_bearer(req: &Request) -> bool {
    req.headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
}

/// Refuses a state-changing request that a browser was made to send from
/// another site: one authenticated by the session cookie (or signing in,
/// signing up or out). `Sec-Fetch-Site: cross-site` (or `same-site`) is refused; a browser
/// that sends no Sec-Fetch-Site must send an `Origin` naming the host the
/// request went to, or none. Bearer calls and reads pass.
pub fn refuse_cross_site(req: &Request) -> Result<(), ApiError> {
    use http::Method;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) || has_bearer(req) {
        return Ok(());
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let refuse = |why: String| Err(ApiError::new(ErrorCode::CrossSiteRequest, why));
    match header("sec-fetch-site") {
        // same-site is refused too: a sibling subdomain is another party.
        Some(site) if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site") => {
            return refuse(format!(
                "this request was sent from another site (Sec-Fetch-Site: {site}); the session cookie only works from this site's own page"
            ));
        }
        Some(_) => return Ok(()),
        None => {}
    }
    let Some(origin) = header("origin") else { return Ok(()) };
    let origin_host = origin.split_once("://").map(|(_, rest)| rest.trim_end_matches('/')).unwrap_or_default();
    let host = header("host").unwrap_or_default();
    if !origin_host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        refuse(format!("this request came from {origin:?}, not from {host:?}; the session cookie only works from this site's own page"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, headers: &[(&str, &str)]) -> Request {
        let mut builder = http::Request::builder().method(method).uri("https://api.example.com/files/x");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::Text("{}".into())).unwrap()
    }

    #[test]
    fn only_cross_site_state_changes_without_a_bearer_token_are_refused() {
        let code =
            |method, headers: &[(&str, &str)]| refuse_cross_site(&request(method, headers)).map_err(|e| (e.status(), e.code.as_str()));
        let host = ("host", "api.example.com");
        // GIVEN a browser that says where the request comes from
        assert_eq!(code("POST", &[host, ("sec-fetch-site", "cross-site")]), Err((403, "cross_site_request")));
        assert_eq!(code("POST", &[host, ("sec-fetch-site", "same-origin"), ("origin", "https://cdn.example.net")]), Ok(()));
        assert_eq!(code("DELETE", &[host, ("sec-fetch-site", "same-site")]), Err((403, "cross_site_request")));
        assert_eq!(code("POST", &[host, ("sec-fetch-site", "none")]), Ok(()));
        // GIVEN one that sends only Origin: it must be the host the request went to
        assert_eq!(code("PUT", &[host, ("origin", "https://evil.example")]), Err((403, "cross_site_request")));
        assert_eq!(code("PUT", &[host, ("origin", "null")]), Err((403, "cross_site_request")));
        assert_eq!(code("PUT", &[host, ("origin", "https://api.example.com")]), Ok(()));
        // GIVEN a script: no Origin at all, or a bearer token, or a read
        assert_eq!(code("POST", &[host]), Ok(()));
        assert_eq!(code("POST", &[host, ("sec-fetch-site", "cross-site"), ("authorization", "Bearer t")]), Ok(()));
        assert_eq!(code("GET", &[host, ("sec-fetch-site", "cross-site")]), Ok(()));
    }

    #[test]
    fn only_json_bodies_are_read_as_json() {
        let body = |content_type: Option<&str>| {
            let mut req = request("POST", &[]);
            if let Some(t) = content_type {
                req.headers_mut().insert(http::header::CONTENT_TYPE, t.parse().unwrap());
            }
            json_body::<serde_json::Value>(&req).map(|_| ()).map_err(|e| (e.status(), e.code.as_str()))
        };
        assert_eq!(body(Some("application/json")), Ok(()));
        assert_eq!(body(Some("Application/JSON; charset=utf-8")), Ok(()));
        assert_eq!(body(Some("application/merge-patch+json")), Ok(()));
        for refused in [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data; boundary=x")] {
            assert_eq!(body(refused), Err((415, "unsupported_media_type")), "{refused:?}");
        }
    }
}
