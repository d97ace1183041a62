//! The one table of HTTP routes. The local router serves exactly these,
//! template.yaml declares exactly these and openapi.yaml documents exactly
//! these (tests check each both ways), and each function dispatches on the
//! route's `Endpoint`, never on a re-typed path.

use lambda_http::Request;

/// What a route does: one per operation of openapi.yaml (its
/// `operationId` is the name in lowerCamelCase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    SignUp,
    SignIn,
    SignOut,
    StartUpload,
    UploadState,
    SignParts,
    SignPartsWithChecksums,
    RecordChunk,
    CompleteUpload,
    CancelUpload,
    ListFiles,
    GetFile,
    DownloadUrl,
    DeleteFile,
    CompanionCreate,
    CompanionSignPart,
    CompanionSignParts,
    CompanionListParts,
    CompanionComplete,
    CompanionAbort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// API Gateway syntax: `{name}` is a path parameter.
    pub path: &'static str,
    /// The crate under functions/ that handles it.
    pub function: &'static str,
    pub authenticated: bool,
    pub endpoint: Endpoint,
}

const fn route(method: &'static str, path: &'static str, function: &'static str, authenticated: bool, endpoint: Endpoint) -> Route {
    Route { method, path, function, authenticated, endpoint }
}

use Endpoint::*;

pub const ROUTES: &[Route] = &[
    route("POST", "/auth/signup", "auth", false, SignUp),
    route("POST", "/auth/signin", "auth", false, SignIn),
    route("POST", "/auth/signout", "auth", false, SignOut),
    route("POST", "/uploads", "presign", true, StartUpload),
    route("GET", "/uploads/{fileId}", "presign", true, UploadState),
    route("GET", "/uploads/{fileId}/parts", "presign", true, SignParts),
    route("POST", "/uploads/{fileId}/parts", "presign", true, SignPartsWithChecksums),
    route("POST", "/uploads/{fileId}/chunks", "record-chunk", true, RecordChunk),
    route("POST", "/uploads/{fileId}/complete", "complete-upload", true, CompleteUpload),
    route("DELETE", "/uploads/{fileId}", "complete-upload", true, CancelUpload),
    route("GET", "/files", "files", true, ListFiles),
    route("GET", "/files/{fileId}", "files", true, GetFile),
    route("POST", "/files/{fileId}/download-url", "files", true, DownloadUrl),
    route("DELETE", "/files/{fileId}", "files", true, DeleteFile),
    // Uppy Companion's S3 multipart routes, for @uppy/aws-s3's companionEndpoint.
    route("POST", "/s3/multipart", "presign", true, CompanionCreate),
    // Before `{partNumber}`: the first route that matches serves, as in API Gateway the literal one.
    route("GET", "/s3/multipart/{uploadId}/batch", "presign", true, CompanionSignParts),
    route("GET", "/s3/multipart/{uploadId}/{partNumber}", "presign", true, CompanionSignPart),
    route("GET", "/s3/multipart/{uploadId}", "complete-upload", true, CompanionListParts),
    route("POST", "/s3/multipart/{uploadId}/complete", "complete-upload", true, CompanionComplete),
    route("DELETE", "/s3/multipart/{uploadId}", "complete-upload", true, CompanionAbort),
];

/// The endpoint of the route API Gateway matched (its `routeKey`), if it is one of the table's.
pub fn endpoint(req: &Request) -> Option<Endpoint> {
    let key = crate::http::route_key(req);
    let (method, path) = key.split_once(' ')?;
    ROUTES.iter().find(|r| r.method == method && r.path == path).map(|r| r.endpoint)
}

impl Route {
    /// `"POST /uploads"`, as API Gateway writes `routeKey`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The path parameters if `path` matches this route's pattern.
    pub fn matches(&self, method: &str, path: &str) -> Option<Vec<(String, String)>> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let pattern: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        let actual: Vec<&str> = path.trim_matches('/').split('/').collect();
        if pattern.len() != actual.len() {
            return None;
        }
        let mut params = Vec::new();
        for (p, a) in pattern.iter().zip(&actual) {
            if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if a.is_empty() {
                    return None;
                }
                params.push((name.to_string(), a.to_string()));
            } else if p != a {
                return None;
            }
        }
        Some(params)
    }
}

/// The route serving `method path`, with its path parameters.
pub fn find(method: &str, path: &str) -> Option<(&'static Route, Vec<(String, String)>)> {
    ROUTES.iter().find_map(|r| r.matches(method, path).map(|p| (r, p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_routes_and_their_parameters() {
        let (route, params) = find("POST", "/uploads/abc/chunks").unwrap();
        assert_eq!(route.function, "record-chunk");
        assert_eq!(params, vec![("fileId".to_string(), "abc".to_string())]);
        assert!(find("GET", "/uploads").is_none());
        assert!(find("POST", "/uploads//chunks").is_none());
        assert!(find("PUT", "/files/x").is_none(), "the method is part of the route");
        let (route, _) = find("DELETE", "/files/x").unwrap();
        assert_eq!(route.function, "files");
        let (route, _) = find("DELETE", "/uploads/x").unwrap();
        assert_eq!(route.function, "complete-upload");
    }

    #[test]
    fn each_endpoint_has_one_route() {
        let endpoints: std::collections::HashSet<Endpoint> = ROUTES.iter().map(|r| r.endpoint).collect();
        assert_eq!(endpoints.len(), ROUTES.len());
        let event = crate::sample_events::sample_event("complete-upload", &[]).unwrap();
        assert_eq!(endpoint(&lambda_http::request::from_str(&event).unwrap()), Some(CompleteUpload));
    }

    #[test]
    fn keys_are_unique() {
        let mut keys: Vec<String> = ROUTES.iter().map(Route::key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), ROUTES.len());
    }
}
