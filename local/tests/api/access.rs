//! Who may do what, and what bad input gets back.

use crate::common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_file_answers_404_on_every_route() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let owner = client.new_user().await;
    let other = client.new_user().await;
    let data = png(1000);
    let upload = client.start(&owner, "mine.png", "image/png", data.len()).await;
    let etag = client.put_part(&upload, 1, &data).await;
    let id = &upload.file_id;

    let chunk = json!({ "parts": [{ "partNumber": 1, "etag": etag, "size": data.len() }] });
    let attempts = [
        ("GET", format!("/uploads/{id}/parts"), None),
        ("POST", format!("/uploads/{id}/parts"), Some(json!({ "parts": [{ "partNumber": 1 }] }))),
        ("POST", format!("/uploads/{id}/chunks"), Some(chunk.clone())),
        ("POST", format!("/uploads/{id}/complete"), None),
        ("GET", format!("/files/{id}"), None),
        ("GET", format!("/uploads/{id}"), None),
        ("DELETE", format!("/uploads/{id}"), None),
        ("POST", format!("/files/{id}/download-url"), None),
        ("DELETE", format!("/files/{id}"), None),
    ];
    let covered: std::collections::BTreeSet<String> =
        attempts.iter().map(|(m, p, _)| sluice_shared::routes::find(m, p).expect("a route").0.key()).collect();
    let owned_routes = sluice_shared::routes::ROUTES.iter().filter(|r| r.path.contains("{fileId}")).count();
    assert_eq!(covered.len(), owned_routes, "every route about one file is tried");
    for (method, path, body) in &attempts {
        let (status, answer) = client.call(method, path, Some(&other.token), body.clone()).await;
        assert_eq!(status, 404, "{method} {path} by another user: {answer}");
        assert_eq!(answer["error"]["code"], "not_found");
    }
    // Nothing the other user did touched the owner's upload.
    let (status, body) = client.record(&owner, &upload, 1, &etag, data.len()).await;
    assert_eq!((status.as_u16(), body["recordedParts"].as_u64()), (200, Some(1)), "{body}");
    let (status, _) = client.complete(&owner, id).await;
    assert_eq!(status, 202);
    let file = client.wait_final(&owner, id).await;
    assert_eq!(file["status"], "UPLOADED");
    let (status, _) = client.call("GET", &format!("/files/{id}"), Some(&other.token), None).await;
    assert_eq!(status, 404, "a finished file is still hidden from others");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_an_http_only_cookie_that_authenticates() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let resp = client
        .http
        .post(format!("{}/auth/signin", stack.api_url))
        .json(&json!({ "email": user.email, "password": "correct horse battery" }))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    let resp = client
        .http
        .post(format!("{}/uploads", stack.api_url))
        .header("cookie", format!("theme=dark; {pair}"))
        .json(&json!({ "fileName": "a.png", "size": 10, "contentType": "image/png" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    // Sign-out answers with the same cookie emptied and expired, so the
    // browser drops it (web/e2e checks that Chromium does); it needs no token.
    let resp = client.http.post(format!("{}/auth/signout", stack.api_url)).header("cookie", &pair).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let cleared = resp.headers()["set-cookie"].to_str().unwrap();
    let expected: Vec<&str> = cookie
        .split("; ")
        .map(|attribute| match attribute {
            a if a == pair => "sluice_session=",
            a if a.starts_with("Max-Age=") => "Max-Age=0",
            a => a,
        })
        .collect();
    let expected = expected.join("; ");
    assert_eq!(cleared, expected, "the attributes sign-in set, with no value and no lifetime left");
    let resp = client.http.post(format!("{}/auth/signout", stack.api_url)).send().await.unwrap();
    assert_eq!(resp.status(), 204, "signing out without a cookie is not an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_json_4xx_with_the_numbers() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let t = Some(user.token.as_str());

    let cases = [
        ("POST", "/auth/signup", None, Some(json!({ "email": user.email, "password": "another password" })), 409, "email_taken"),
        ("POST", "/auth/signup", None, Some(json!({ "email": "nope", "password": "long enough" })), 400, "invalid_email"),
        ("POST", "/auth/signup", None, Some(json!({ "email": "x@y.io", "password": "short" })), 400, "invalid_password"),
        ("POST", "/auth/signin", None, Some(json!({ "email": user.email, "password": "wrong password" })), 401, "unauthorized"),
        ("POST", "/auth/signin", None, Some(json!({ "email": "nobody@example.com", "password": "whatever1" })), 401, "unauthorized"),
        ("POST", "/auth/signin", None, None, 400, "invalid_body"),
        ("POST", "/uploads", t, Some(json!({ "fileName": "a.png", "size": 0, "contentType": "image/png" })), 400, "invalid_size"),
        ("POST", "/uploads", t, Some(json!({ "fileName": "a.png", "size": -5, "contentType": "image/png" })), 400, "invalid_body"),
        (
            "POST",
            "/uploads",
            t,
            Some(json!({ "fileName": "a.png", "size": 6_000_000_000u64, "contentType": "image/png" })),
            413,
            "file_too_large",
        ),
        (
            "POST",
            "/uploads",
            t,
            Some(json!({ "fileName": "a.exe", "size": 10, "contentType": "application/x-msdownload" })),
            415,
            "unsupported_type",
        ),
        ("POST", "/uploads", t, Some(json!({ "fileName": "", "size": 10, "contentType": "image/png" })), 400, "invalid_file_name"),
        ("POST", "/uploads", t, Some(json!({ "size": 10 })), 400, "invalid_body"),
        ("GET", "/uploads/not-a-uuid/parts", t, None, 404, "not_found"),
        ("GET", "/nowhere", t, None, 404, "route_not_found"),
    ];
    for (method, path, token, body, status, code) in cases {
        let (got, answer) = client.call(method, path, token, body.clone()).await;
        assert_eq!(got.as_u16(), status, "{method} {path} {body:?}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{method} {path} {body:?}: {answer}");
        assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (_, answer) = client
        .call("POST", "/uploads", t, Some(json!({ "fileName": "a.png", "size": 6_000_000_000u64, "contentType": "image/png" })))
        .await;
    assert!(answer["error"]["message"].as_str().unwrap().contains("6000000000"), "{answer}");

    let upload = client.start(&user, "a.png", "image/png", 12 * MIB).await;
    let path = format!("/uploads/{}/parts?first=2&count=5000", upload.file_id);
    let (status, answer) = client.call("GET", &path, t, None).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (400, Some("invalid_query")), "{answer}");
    let path = format!("/uploads/{}/parts?first=2&count=10", upload.file_id);
    let (status, answer) = client.call("GET", &path, t, None).await;
    assert_eq!(status, 200, "{answer}");
    let numbers: Vec<u64> = answer["parts"].as_array().unwrap().iter().map(|p| p["partNumber"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [2, 3], "URLs stop at the last planned part");
}

/// Login CSRF and cross-site writes: a form on another site can post to
/// the API without asking, and the browser would carry the SameSite cookie
/// on a top-level navigation. Only JSON is read as JSON, and a state change
/// authenticated by the cookie (or signing in) must come from this site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_requests_from_another_site_and_form_bodies_are_refused() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let signin = format!("{}/auth/signin", stack.api_url);
    let credentials = json!({ "email": user.email, "password": "correct horse battery" }).to_string();

    // What `<form enctype="text/plain">` sends: 415, and no cookie is set.
    let resp = client.http.post(&signin).header("content-type", "text/plain").body(credentials.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 415);
    assert!(resp.headers().get("set-cookie").is_none(), "a refused sign-in sets no cookie");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type", "{body}");

    // JSON from another site: refused by Sec-Fetch-Site, or by Origin when a browser sends no Sec-Fetch-Site.
    let json_signin = || client.http.post(&signin).header("content-type", "application/json").body(credentials.clone());
    let cross = json_signin().header("sec-fetch-site", "cross-site").send().await.unwrap();
    assert_eq!(cross.status(), 403);
    let foreign = json_signin().header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(foreign.status(), 403);
    let body: Value = foreign.json().await.unwrap();
    assert_eq!(body["error"]["code"], "cross_site_request", "{body}");
    // The page's own origin, and a plain script (no Origin), sign in.
    let own = json_signin().header("origin", &stack.api_url).header("sec-fetch-site", "same-origin").send().await.unwrap();
    assert_eq!(own.status(), 200);
    let cookie = own.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    assert_eq!(json_signin().send().await.unwrap().status(), 200);

    // A cookie-authenticated delete from another origin leaves the file.
    let (id, put) = client.upload_single(&user, "kept.png", "image/png", &png(2000)).await;
    assert_eq!(put, 200);
    assert_eq!(client.wait_final(&user, &id).await["status"], "UPLOADED");
    let file_url = format!("{}/files/{id}", stack.api_url);
    let resp = client.http.delete(&file_url).header("cookie", &cookie).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let resp = client.http.delete(&file_url).header("cookie", &cookie).header("sec-fetch-site", "cross-site").send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let (status, file) = client.call("GET", &format!("/files/{id}"), Some(&user.token), None).await;
    assert_eq!((status.as_u16(), file["status"].as_str()), (200, Some("UPLOADED")), "{file}");
    // A cookie-authenticated read from anywhere is fine (CORS decides who may read the answer).
    let resp = client.http.get(&file_url).header("cookie", &cookie).header("sec-fetch-site", "cross-site").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // Bearer calls are never refused for their Origin: no site can make a browser send one.
    let resp = client.http.delete(&file_url).bearer_auth(&user.token).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());

    // Uploads started with the cookie from this site's page work; from another, not.
    let start = |site: &'static str| {
        client
            .http
            .post(format!("{}/uploads", stack.api_url))
            .header("cookie", &cookie)
            .header("sec-fetch-site", site)
            .json(&json!({ "fileName": "a.png", "size": 2000, "contentType": "image/png" }))
    };
    assert_eq!(start("cross-site").send().await.unwrap().status(), 403);
    assert_eq!(start("same-origin").send().await.unwrap().status(), 201);
}
