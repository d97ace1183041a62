//! Uppy Companion's S3 multipart routes, called over HTTP exactly as
//! @uppy/aws-s3 6.x calls them in `companionEndpoint` mode: the sign-in
//! cookie is the only credential, the key Uppy echoes back is ignored, and
//! the parts S3 holds are the truth at complete.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_shared::ports::Quota;

/// A call as Uppy's `fetch` makes it: no Authorization header, the cookie
/// the browser keeps from sign-in.
async fn uppy(client: &Client, user: &User, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = client
        .http
        .request(method.parse().unwrap(), format!("{}/s3{path}", client.api))
        .header("cookie", format!("sluice_session={}", user.token));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(json!({ "raw": text })))
}

/// Signs part `n` through the API and PUTs `bytes` to it, as Uppy does;
/// answers the ETag header S3 gave (unquoted, as Uppy keeps it).
async fn put_part(client: &Client, user: &User, upload_id: &str, n: u32, bytes: &[u8]) -> String {
    // The key is sent URL-encoded with '+' for spaces, and is not trusted: a wrong one changes nothing.
    let (status, signed) = uppy(client, user, "GET", &format!("/multipart/{upload_id}/{n}?key=uploads%2Fsomeone+else%2Fx"), None).await;
    assert_eq!(status, 200, "{signed}");
    let url = signed["url"].as_str().unwrap();
    assert!(!url.to_ascii_lowercase().contains("x-amz-checksum"), "no checksum the bytes cannot match: {url}");
    let resp = client.http.put(url).body(bytes.to_vec()).send().await.unwrap();
    assert_eq!(resp.status(), 200, "PUT part {n}: {}", resp.text().await.unwrap_or_default());
    resp.headers()["etag"].to_str().unwrap().trim_matches('"').to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uppy_uploads_through_the_companion_routes_with_the_cookie_alone() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    // Uppy's default metadata: name and type, no size.
    let create =
        json!({ "filename": "holiday photo.png", "type": "image/png", "metadata": { "name": "holiday photo.png", "type": "image/png" } });
    let (status, created) = uppy(&client, &user, "POST", "/multipart", Some(create)).await;
    assert_eq!(status, 200, "{created}");
    let upload_id = created["uploadId"].as_str().unwrap().to_string();
    let file_id = created["fileId"].as_str().unwrap().to_string();
    assert!(upload_id.starts_with("u1."), "an upload token: {upload_id}");
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with(&format!("uploads/{}/{file_id}/", user.id)), "our key, named after the file id: {key}");

    // Uppy cuts its own parts (here 5 MiB and the rest).
    let data = png(7 * MIB + 123);
    let first = put_part(&client, &user, &upload_id, 1, &data[..5 * MIB]).await;
    let second = put_part(&client, &user, &upload_id, 2, &data[5 * MIB..]).await;

    // Resuming after a reload, Uppy lists what S3 holds.
    let (status, listed) = uppy(&client, &user, "GET", &format!("/multipart/{upload_id}?key=ignored"), None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed,
        json!([
            { "PartNumber": 1, "ETag": first, "Size": 5 * MIB },
            { "PartNumber": 2, "ETag": second, "Size": 2 * MIB + 123 },
        ])
    );

    // A part S3 does not hold with that ETag is refused, naming it.
    let wrong = json!({ "parts": [{ "PartNumber": 1, "ETag": first }, { "PartNumber": 2, "ETag": "0123456789abcdef" }] });
    let (status, answer) = uppy(&client, &user, "POST", &format!("/multipart/{upload_id}/complete?key=x"), Some(wrong)).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (409, Some("missing_parts")), "{answer}");
    assert_eq!(answer["error"]["missingParts"], json!([2]));

    let backwards = json!({ "parts": [{ "PartNumber": 2, "ETag": second }, { "PartNumber": 1, "ETag": first }] });
    let (status, answer) = uppy(&client, &user, "POST", &format!("/multipart/{upload_id}/complete"), Some(backwards)).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (400, Some("invalid_parts")), "{answer}");

    let parts = json!({ "parts": [{ "PartNumber": 1, "ETag": first }, { "PartNumber": 2, "ETag": second }] });
    let (status, done) = uppy(&client, &user, "POST", &format!("/multipart/{upload_id}/complete?key=x"), Some(parts.clone())).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["key"], key);
    assert_eq!(done["bucket"], stack.bucket.as_str());
    assert_eq!(done["location"], format!("/files/{file_id}"));
    // Uppy may retry a complete whose answer it lost.
    let (status, again) = uppy(&client, &user, "POST", &format!("/multipart/{upload_id}/complete?key=x"), Some(parts)).await;
    assert_eq!((status, &again), (StatusCode::OK, &done));

    let file = client.wait_final(&user, &upload_id).await;
    assert_eq!((file["status"].as_str(), file["kind"].as_str()), (Some("UPLOADED"), Some("IMAGE")), "{file}");
    assert_eq!(file["size"], data.len());
    assert_eq!(file["partCount"], 2, "the parts S3 held are recorded as chunks: {file}");
    assert_eq!(file["fileName"], "holiday photo.png");
    let (status, url) = client.call("POST", &format!("/files/{upload_id}/download-url"), Some(&user.token), None).await;
    assert_eq!(status, 200, "{url}");
    let downloaded = client.http.get(url["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    assert!(downloaded == data, "the bytes round-trip");
    // Our own part routes leave a Companion upload alone.
    let (status, answer) = client.call("GET", &format!("/uploads/{upload_id}/parts"), Some(&user.token), None).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (409, Some("not_multipart")), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companion_routes_refuse_strangers_bad_parts_and_wrong_sizes_and_cancel_cleanly() {
    let stack = spawn_stack_with(|o| {
        o.extra_env.push(("USER_QUOTA_BYTES".into(), (12 * MIB).to_string()));
        o.extra_env.push(("MAX_FILE_SIZE".into(), (20 * MIB).to_string()));
    })
    .await;
    let client = Client::new(&stack);
    let (owner, stranger) = (client.new_user().await, client.new_user().await);

    // No cookie, no entry; the error is our JSON shape.
    let anonymous = client.http.post(format!("{}/s3/multipart", client.api)).json(&json!({ "filename": "a.png", "type": "image/png" }));
    let resp = anonymous.send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "unauthorized");

    // A declared size (Uppy meta field `size`) bounds part numbers and is charged up front.
    let create = json!({ "filename": "a.png", "type": "image/png", "metadata": { "size": 6 * MIB } });
    let (status, created) = uppy(&client, &owner, "POST", "/multipart", Some(create)).await;
    assert_eq!(status, 200, "{created}");
    let upload_id = created["uploadId"].as_str().unwrap().to_string();
    let (status, answer) = uppy(&client, &owner, "GET", &format!("/multipart/{upload_id}/3"), None).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (400, Some("invalid_part_number")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("from 1 to 2"), "{answer}");
    let over = json!({ "filename": "b.png", "type": "image/png", "metadata": { "size": 7 * MIB } });
    let (status, answer) = uppy(&client, &owner, "POST", "/multipart", Some(over)).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (413, Some("quota_exceeded")), "{answer}");

    // Another user's upload id names nothing of theirs.
    for (method, path, body) in [
        ("GET", format!("/multipart/{upload_id}/1"), None),
        ("GET", format!("/multipart/{upload_id}"), None),
        ("POST", format!("/multipart/{upload_id}/complete"), Some(json!({ "parts": [{ "PartNumber": 1, "ETag": "x" }] }))),
        ("DELETE", format!("/multipart/{upload_id}"), None),
    ] {
        let (status, answer) = uppy(&client, &stranger, method, &path, body).await;
        assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (404, Some("not_found")), "{method} {path}: {answer}");
    }

    // Each part's length is signed, by Uppy's cut (5 MiB, then the 1 MiB
    // rest): S3 itself refuses more bytes in a part than the plan gives it.
    let data = png(6 * MIB);
    let (_, signed) = uppy(&client, &owner, "GET", &format!("/multipart/{upload_id}/2"), None).await;
    let longer = client.http.put(signed["url"].as_str().unwrap()).body(data[..2 * MIB].to_vec()).send().await.unwrap();
    assert_eq!(longer.status(), 403, "2 MiB into a part planned as 1 MiB");
    let (_, signed) = uppy(&client, &owner, "GET", &format!("/multipart/{upload_id}/1"), None).await;
    // S3 may answer 403 and close the connection before the body is sent.
    let longer = client.http.put(signed["url"].as_str().unwrap()).body(data.clone()).send().await;
    assert!(longer.as_ref().map_or(true, |r| r.status() == 403), "the whole file into part 1: {longer:?}");
    let (_, listed) = uppy(&client, &owner, "GET", &format!("/multipart/{upload_id}"), None).await;
    assert_eq!(listed, json!([]), "S3 kept neither part");
    assert_eq!(stack.inspect.quota.used(owner.id.parse().unwrap()).await.unwrap(), 6 * MIB as u64);

    // Parts that do not add up to the declared size are refused at complete.
    let first = put_part(&client, &owner, &upload_id, 1, &data[..5 * MIB]).await;
    let parts = json!({ "parts": [{ "PartNumber": 1, "ETag": first }] });
    let (status, answer) = uppy(&client, &owner, "POST", &format!("/multipart/{upload_id}/complete"), Some(parts)).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (409, Some("size_mismatch")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains(&format!("{} bytes", 5 * MIB)), "{answer}");

    // Uppy's cancel aborts the multipart upload and gives the quota back.
    assert_eq!(uploads_in_s3(&stack, "").await.len(), 1);
    let (status, answer) = uppy(&client, &owner, "DELETE", &format!("/multipart/{upload_id}?key=x"), None).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({})));
    assert_eq!(uploads_in_s3(&stack, "").await.len(), 0, "S3 holds no parts of it");
    let file = client.wait_final(&owner, &upload_id).await;
    assert_eq!((file["status"].as_str(), file["reason"].as_str()), (Some("FAILED"), Some("cancelled")), "{file}");

    // Without a declared size nothing bounds the parts before complete: the
    // upload holds the largest file allowed (20 MiB) from the start, more
    // than this user's 12 MiB quota.
    let create = json!({ "filename": "c.png", "type": "image/png", "metadata": {} });
    let (status, answer) = uppy(&client, &owner, "POST", "/multipart", Some(create)).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (413, Some("quota_exceeded")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("declare metadata.size"), "{answer}");
    assert_eq!(uploads_in_s3(&stack, "").await.len(), 0, "S3 was not asked");
    assert_eq!(stack.inspect.quota.used(owner.id.parse().unwrap()).await.unwrap(), 0);

    // A type outside the allowlist and a bad size are refused before S3 is asked.
    let exe = json!({ "filename": "x.exe", "type": "application/x-msdownload" });
    let (status, answer) = uppy(&client, &owner, "POST", "/multipart", Some(exe)).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (415, Some("unsupported_type")), "{answer}");
    let bad = json!({ "filename": "x.png", "type": "image/png", "metadata": { "size": "lots" } });
    let (status, answer) = uppy(&client, &owner, "POST", "/multipart", Some(bad)).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (400, Some("invalid_size")), "{answer}");
    assert_eq!(uploads_in_s3(&stack, "").await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_s3_lets_the_page_on_the_api_origin_put_parts_and_read_etags() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let (_, created) = uppy(&client, &user, "POST", "/multipart", Some(json!({ "filename": "a.png", "type": "image/png" }))).await;
    let upload_id = created["uploadId"].as_str().unwrap();
    let (_, signed) = uppy(&client, &user, "GET", &format!("/multipart/{upload_id}/1"), None).await;
    let url = signed["url"].as_str().unwrap();

    let preflight = |origin: &str| {
        client
            .http
            .request(reqwest::Method::OPTIONS, url)
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight(&stack.api_url).await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["access-control-allow-origin"], stack.api_url.as_str());
    assert!(allowed.headers()["access-control-allow-methods"].to_str().unwrap().contains("PUT"));
    let other = preflight("http://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none(), "only the API's origin");

    let put = client.http.put(url).header("origin", &stack.api_url).body(png(1024)).send().await.unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(put.headers()["access-control-expose-headers"], "ETag", "the page can read the ETag");
}

/// An upload that declared no size holds the largest file allowed from its
/// start; a complete S3 refuses (a part but the last under 5 MiB:
/// EntityTooSmall) leaves that hold as it was, and the next complete
/// charges exactly what S3 holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeclared_upload_holds_the_largest_file_until_complete_charges_what_s3_holds() {
    let max = 64 * MIB as u64;
    let stack = spawn_stack_with(|o| o.extra_env.push(("MAX_FILE_SIZE".into(), max.to_string()))).await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let owner = uuid::Uuid::parse_str(&user.id).unwrap();
    let create = json!({ "filename": "u.png", "type": "image/png", "metadata": {} });
    let (_, created) = uppy(&client, &user, "POST", "/multipart", Some(create)).await;
    let upload_id = created["uploadId"].as_str().unwrap().to_string();
    assert_eq!(stack.inspect.quota.used(owner).await.unwrap(), max, "held from the start");
    let data = png(6 * MIB);
    let small = put_part(&client, &user, &upload_id, 1, &data[..MIB]).await;
    let last = put_part(&client, &user, &upload_id, 2, &data[5 * MIB..]).await;
    let parts = |first: &str| json!({ "parts": [{ "PartNumber": 1, "ETag": first }, { "PartNumber": 2, "ETag": last }] });
    let path = format!("/multipart/{upload_id}/complete");
    let (status, answer) = uppy(&client, &user, "POST", &path, Some(parts(&small))).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (409, Some("complete_refused")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("EntityTooSmall"), "{answer}");
    assert_eq!(stack.inspect.quota.used(owner).await.unwrap(), max, "a refused complete leaves the hold, no stale charge");

    let full = put_part(&client, &user, &upload_id, 1, &data[..5 * MIB]).await;
    let (status, answer) = uppy(&client, &user, "POST", &path, Some(parts(&full))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(stack.inspect.quota.used(owner).await.unwrap(), data.len() as u64, "charged for the bytes S3 holds");
    assert_eq!(client.wait_final(&user, &upload_id).await["status"], "UPLOADED");

    // A cancel that wins the race against a complete: its release stands,
    // and the complete's true-up cannot charge the cancelled upload again.
    let (_, created) = uppy(&client, &user, "POST", "/multipart", Some(json!({ "filename": "v.png", "type": "image/png" }))).await;
    let cancelled = created["uploadId"].as_str().unwrap().to_string();
    let part = put_part(&client, &user, &cancelled, 1, &data).await;
    assert_eq!(stack.inspect.quota.used(owner).await.unwrap(), data.len() as u64 + max);
    let (status, _) = uppy(&client, &user, "DELETE", &format!("/multipart/{cancelled}"), None).await;
    assert_eq!(status, 200);
    let file_id = created["fileId"].as_str().unwrap().parse().unwrap();
    assert!(!stack.inspect.quota.resize(owner, file_id, max, u64::MAX).await.unwrap(), "nothing held, nothing charged");
    let (status, answer) = uppy(
        &client,
        &user,
        "POST",
        &format!("/multipart/{cancelled}/complete"),
        Some(json!({ "parts": [{ "PartNumber": 1, "ETag": part }] })),
    )
    .await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (409, Some("upload_cancelled")), "{answer}");
    assert_eq!(stack.inspect.quota.used(owner).await.unwrap(), data.len() as u64, "only the stored file is charged");
}

/// The upload id Uppy gets is a token: the part routes sign from it in
/// memory, with no DynamoDB call, for its owner only, while it lives; a
/// bare file id (an upload id from before tokens) is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_are_signed_from_the_upload_token_alone_for_its_owner_while_it_lives() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let (owner, stranger) = (client.new_user().await, client.new_user().await);
    let create = json!({ "filename": "a.png", "type": "image/png", "metadata": { "size": 12 * MIB } });
    let (_, created) = uppy(&client, &owner, "POST", "/multipart", Some(create)).await;
    let (token, file_id) = (created["uploadId"].as_str().unwrap().to_string(), created["fileId"].as_str().unwrap().to_string());

    // Signing, one part or a batch, reads nothing from DynamoDB.
    let before = stack.dynamo_calls.count();
    let data = png(12 * MIB);
    let first = put_part(&client, &owner, &token, 1, &data[..5 * MIB]).await;
    let (status, batch) = uppy(&client, &owner, "GET", &format!("/multipart/{token}/batch?partNumbers=2,3&key=x"), None).await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(stack.dynamo_calls.count(), before, "no DynamoDB call to sign");
    let urls = batch["presignedUrls"].as_object().unwrap();
    assert_eq!(urls.keys().collect::<Vec<_>>(), ["2", "3"]);
    let mut etags = vec![first];
    for (n, range) in [(2, 5 * MIB..10 * MIB), (3, 10 * MIB..12 * MIB)] {
        let resp = client.http.put(urls[&n.to_string()].as_str().unwrap()).body(data[range].to_vec()).send().await.unwrap();
        assert_eq!(resp.status(), 200, "part {n}");
        etags.push(resp.headers()["etag"].to_str().unwrap().trim_matches('"').to_string());
    }
    // The batch signs each part's length as the one-part route does.
    let (_, again) = uppy(&client, &owner, "GET", &format!("/multipart/{token}/batch?partNumbers=3"), None).await;
    let longer = client.http.put(again["presignedUrls"]["3"].as_str().unwrap()).body(data[..3 * MIB].to_vec()).send().await.unwrap();
    assert_eq!(longer.status(), 403, "3 MiB into a part planned as 2 MiB");
    for bad in ["0,1", "4", "1,x", ""] {
        let (status, answer) = uppy(&client, &owner, "GET", &format!("/multipart/{token}/batch?partNumbers={bad}"), None).await;
        assert_eq!(status, 400, "partNumbers={bad}: {answer}");
    }

    // Not the owner's, changed, or forged: not found, and nothing signed.
    let mut changed = token.clone().into_bytes();
    let at = 10;
    changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(changed).unwrap();
    let keys = sluice_shared::domain::upload_token::UploadTokens::parse(&stack.env["UPLOAD_TOKEN_KEYS"]).unwrap();
    let mut expired = keys.verify(&token, 0).unwrap();
    expired.expires_at = sluice_shared::auth::now_secs() - 1;
    let expired = keys.issue(&expired);
    let other_key = sluice_shared::domain::upload_token::UploadTokens::new(vec![vec![9; 32]]).unwrap();
    let forged = other_key.issue(&keys.verify(&token, 0).unwrap());
    for (who, upload_id) in [(&stranger, &token), (&owner, &changed), (&owner, &expired), (&owner, &forged)] {
        let (status, answer) = uppy(&client, who, "GET", &format!("/multipart/{upload_id}/1"), None).await;
        assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (404, Some("not_found")), "{upload_id}: {answer}");
        let (status, _) = uppy(&client, who, "GET", &format!("/multipart/{upload_id}/batch?partNumbers=1"), None).await;
        assert_eq!(status, 404);
    }

    // The bare file id, as an upload id handed out before tokens, still works everywhere.
    let (status, listed) = uppy(&client, &owner, "GET", &format!("/multipart/{file_id}"), None).await;
    assert_eq!((status, listed.as_array().map(Vec::len)), (StatusCode::OK, Some(3)), "{listed}");
    let (status, signed) = uppy(&client, &owner, "GET", &format!("/multipart/{file_id}/1"), None).await;
    assert_eq!(status, 200, "{signed}");
    let parts: Vec<Value> = etags.iter().enumerate().map(|(i, etag)| json!({ "PartNumber": i + 1, "ETag": etag })).collect();
    let (status, done) = uppy(&client, &owner, "POST", &format!("/multipart/{token}/complete"), Some(json!({ "parts": parts }))).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(client.wait_final(&owner, &file_id).await["status"], "UPLOADED");

    // Once the upload is completed, a URL its token still signs is refused by S3.
    let (status, late) = uppy(&client, &owner, "GET", &format!("/multipart/{token}/1"), None).await;
    assert_eq!(status, 200, "{late}");
    let resp = client.http.put(late["url"].as_str().unwrap()).body(data[..5 * MIB].to_vec()).send().await;
    // S3 may answer 404 and close the connection before the body is sent.
    assert!(resp.as_ref().map_or(true, |r| r.status() == 404), "S3 holds no such upload any more: {resp:?}");
    let key = created["key"].as_str().unwrap();
    let stored = stack.clients.s3().head_object().bucket(&stack.bucket).key(key).send().await.unwrap();
    assert_eq!(stored.content_length(), Some(12 * MIB as i64), "the stored file is as completed");
}
