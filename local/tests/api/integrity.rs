//! Small files in one PUT, SHA-256 checksums that S3 itself enforces, the
//! type allowlist and the per-user quota, end to end on the local stack.

use crate::common::*;
use serde_json::json;
use sluice_shared::domain::Sha256Checksum;
use sluice_shared::quota::QuotaLedger;

fn sha256(bytes: &[u8]) -> String {
    Sha256Checksum::of(bytes).into_string()
}

async fn objects_under(stack: &sluice_local::Stack, prefix: &str) -> usize {
    let listed = stack.clients.s3().list_objects_v2().bucket(&stack.bucket).prefix(prefix).send().await.unwrap();
    listed.contents().len()
}

fn ledger(stack: &sluice_local::Stack) -> QuotaLedger {
    QuotaLedger::new(stack.clients.dynamodb(), &stack.table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_file_goes_up_in_one_put_with_its_sha256_checked_by_s3() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let data = png(300 * 1024);
    let request = json!({ "fileName": "small.png", "size": data.len(), "contentType": "image/png", "sha256": sha256(&data) });
    let (status, started) = client.call("POST", "/uploads", Some(&user.token), Some(request)).await;
    assert_eq!((status.as_u16(), started["mode"].as_str()), (201, Some("single")), "{started}");
    let file_id = started["fileId"].as_str().unwrap();
    assert!(started.get("parts").is_none(), "one URL, no parts: {started}");

    // Bytes that differ from the declared SHA-256 are refused by S3 itself.
    let mut corrupted = data.clone();
    corrupted[1000] ^= 1;
    let (status, answer) = client.put_signed(&started, corrupted).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("BadDigest"), "{answer}");
    assert_eq!(objects_under(&stack, &format!("uploads/{}/{file_id}/", user.id)).await, 0);

    let (status, answer) = client.put_signed(&started, data.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let file = client.wait_final(&user, file_id).await;
    assert_eq!((file["status"].as_str(), file["kind"].as_str()), (Some("UPLOADED"), Some("IMAGE")), "{file}");
    assert_eq!(file["sha256"].as_str(), Some(sha256(&data).as_str()), "kept in Postgres: {file}");

    // The part routes have nothing to say about a single PUT.
    for (method, path) in [("GET", format!("/uploads/{file_id}/parts")), ("POST", format!("/uploads/{file_id}/complete"))] {
        let (status, answer) = client.call(method, &path, Some(&user.token), None).await;
        assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (409, Some("not_multipart")), "{method} {path}: {answer}");
    }
    // Above the threshold (or on request) it is multipart; a single PUT above it is refused.
    let big = json!({ "fileName": "big.png", "size": 8 * MIB + 1, "contentType": "image/png" });
    let (_, answer) = client.call("POST", "/uploads", Some(&user.token), Some(big)).await;
    assert_eq!(answer["mode"], "multipart", "{answer}");
    let forced = json!({ "fileName": "big.png", "size": 8 * MIB + 1, "contentType": "image/png", "mode": "single" });
    let (status, answer) = client.call("POST", "/uploads", Some(&user.token), Some(forced)).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (400, Some("invalid_mode")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("8388608"), "{answer}");
    let bad = json!({ "fileName": "a.png", "size": 10, "contentType": "image/png", "sha256": "abc" });
    let (status, answer) = client.call("POST", "/uploads", Some(&user.token), Some(bad)).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (400, Some("invalid_checksum")), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_put_that_lands_after_its_cancel_is_removed() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let data = png(50 * 1024);
    let request = json!({ "fileName": "late.png", "size": data.len(), "contentType": "image/png" });
    let (_, started) = client.call("POST", "/uploads", Some(&user.token), Some(request)).await;
    let file_id = started["fileId"].as_str().unwrap();
    let (status, cancelled) = client.call("DELETE", &format!("/uploads/{file_id}"), Some(&user.token), None).await;
    assert_eq!((status.as_u16(), cancelled["reason"].as_str()), (200, Some("cancelled")), "{cancelled}");
    // The URL is still valid, so the PUT succeeds; inspect then removes the bytes.
    let (status, _) = client.put_signed(&started, data).await;
    assert_eq!(status, 200);
    let prefix = format!("uploads/{}/{file_id}/", user.id);
    eventually(20, "the late object removed", || async { objects_under(&stack, &prefix).await == 0 }).await;
    let file = client.wait_final(&user, file_id).await;
    assert_eq!((file["status"].as_str(), file["reason"].as_str()), (Some("FAILED"), Some("cancelled")), "{file}");
    assert_eq!(ledger(&stack).used(user.id.parse().unwrap()).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_signed_with_their_sha256_refuse_other_bytes() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let data = png(12 * MIB);
    let upload = client.start(&user, "summed.png", "image/png", data.len()).await;
    // Part URLs signed without a checksum carry none the bytes could fail
    // (some SDKs add a CRC32 of an empty body).
    assert!(upload.urls.iter().all(|u| !u.to_ascii_lowercase().contains("checksum")), "{:?}", upload.urls[0]);

    let part = |n: usize| &data[(n - 1) * 5 * MIB..(n * 5 * MIB).min(data.len())];
    let sums: Vec<String> = (1..=3).map(|n| sha256(part(n))).collect();
    let request = json!({ "parts": (1..=3).map(|n| json!({ "partNumber": n, "checksumSha256": sums[n - 1] })).collect::<Vec<_>>() });
    let (status, signed) = client.call("POST", &format!("/uploads/{}/parts", upload.file_id), Some(&user.token), Some(request)).await;
    assert_eq!(status, 200, "{signed}");
    let signed = signed["parts"].as_array().unwrap().clone();
    assert_eq!(signed[1]["headers"]["x-amz-checksum-sha256"].as_str(), Some(sums[1].as_str()));

    // A flipped bit in part 2: S3 refuses it, and keeps nothing for part 2.
    let mut corrupted = part(2).to_vec();
    corrupted[12345] ^= 0x40;
    let (status, answer) = client.put_signed(&signed[1], corrupted).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("BadDigest"), "{answer}");

    for n in 1..=3 {
        let mut put = client.http.put(signed[n - 1]["url"].as_str().unwrap()).body(part(n).to_vec());
        put = put.header("x-amz-checksum-sha256", &sums[n - 1]);
        let resp = put.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let etag = resp.headers()["etag"].to_str().unwrap().to_string();
        // Part 3 is recorded with a wrong checksum claim: complete must notice.
        let claimed = if n == 3 { sums[0].clone() } else { sums[n - 1].clone() };
        let chunk = json!({ "parts": [{ "partNumber": n, "etag": etag, "size": part(n).len(), "checksumSha256": claimed }] });
        let (status, answer) = client.call("POST", &format!("/uploads/{}/chunks", upload.file_id), Some(&user.token), Some(chunk)).await;
        assert_eq!(status, 200, "{answer}");
        if n == 3 {
            let (status, answer) = client.complete(&user, &upload.file_id).await;
            assert_eq!((status.as_u16(), answer["error"]["missingParts"].clone()), (409, json!([3])), "{answer}");
            let chunk = json!({ "parts": [{ "partNumber": 3, "etag": etag, "size": part(3).len(), "checksumSha256": sums[2] }] });
            let path = format!("/uploads/{}/chunks", upload.file_id);
            assert_eq!(client.call("POST", &path, Some(&user.token), Some(chunk)).await.0, 200);
        }
    }
    let (status, answer) = client.complete(&user, &upload.file_id).await;
    assert_eq!(status, 202, "{answer}");
    let file = client.wait_final(&user, &upload.file_id).await;
    assert_eq!(file["status"], "UPLOADED", "{file}");

    // Each part's SHA-256 is kept with its chunk in Postgres.
    let (db, connection) = tokio_postgres::connect(&stack.database_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let file_id: uuid::Uuid = upload.file_id.parse().unwrap();
    let rows = db.query("SELECT checksum FROM chunks WHERE file_id = $1 ORDER BY part_number", &[&file_id]).await.unwrap();
    let kept: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(kept, sums);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_holds_under_parallel_starts_and_comes_back() {
    let stack = spawn_stack_with(|opts| {
        opts.extra_env.push(("USER_QUOTA_BYTES".into(), (20 * MIB).to_string()));
        opts.extra_env.push(("ALLOWED_TYPES".into(), "image/*,video/mp4".into()));
    })
    .await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let owner = user.id.parse().unwrap();

    // Ten parallel 5 MiB starts against 20 MiB: exactly four fit.
    let starts = (0..10).map(|i| {
        let request = json!({ "fileName": format!("f{i}.png"), "size": 5 * MIB, "contentType": "image/png", "mode": "multipart" });
        client.call("POST", "/uploads", Some(&user.token), Some(request))
    });
    let answers = futures::future::join_all(starts).await;
    let started: Vec<String> = answers.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b["fileId"].as_str().unwrap().to_string()).collect();
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s == 413).collect();
    assert_eq!((started.len(), refused.len()), (4, 6), "{answers:?}");
    let message = refused[0].1["error"]["message"].as_str().unwrap();
    assert_eq!(refused[0].1["error"]["code"], "quota_exceeded");
    assert!(message.contains(&(20 * MIB).to_string()) && message.contains(&(5 * MIB).to_string()), "{message}");
    assert_eq!(ledger(&stack).used(owner).await.unwrap(), 20 * MIB as u64);

    // A cancel gives its bytes back, twice cancelled or not.
    for _ in 0..2 {
        let (status, _) = client.call("DELETE", &format!("/uploads/{}", started[0]), Some(&user.token), None).await;
        assert_eq!(status, 200);
    }
    assert_eq!(ledger(&stack).used(owner).await.unwrap(), 15 * MIB as u64);

    // A stored file holds its bytes until it is deleted.
    let data = png(5 * MIB);
    let file_id = client.upload(&user, "kept.png", "image/png", &data).await;
    assert_eq!(client.wait_final(&user, &file_id).await["status"], "UPLOADED");
    assert_eq!(ledger(&stack).used(owner).await.unwrap(), 20 * MIB as u64);
    let one_more = json!({ "fileName": "x.png", "size": 1, "contentType": "image/png" });
    assert_eq!(client.call("POST", "/uploads", Some(&user.token), Some(one_more.clone())).await.0, 413);
    let (status, _) = client.call("DELETE", &format!("/files/{file_id}"), Some(&user.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(ledger(&stack).used(owner).await.unwrap(), 15 * MIB as u64);

    // Bytes inspect refuses leave the quota with the object.
    let (spoof_id, put) = client.upload_single(&user, "cat.png", "image/png", &elf(4096)).await;
    assert_eq!(put, 200);
    assert_eq!(client.wait_final(&user, &spoof_id).await["status"], "FAILED");
    assert_eq!(ledger(&stack).used(owner).await.unwrap(), 15 * MIB as u64);
    assert_eq!(client.call("POST", "/uploads", Some(&user.token), Some(one_more)).await.0, 201);

    // The allowlist applies to the declared type at once.
    let pdf = json!({ "fileName": "a.pdf", "size": 10, "contentType": "application/pdf" });
    let (status, answer) = client.call("POST", "/uploads", Some(&user.token), Some(pdf)).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (415, Some("unsupported_type")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("image/*, video/mp4"), "{answer}");
}

/// The ETag of the object a plain GET of `key` answers (the current version).
async fn current_etag(stack: &sluice_local::Stack, key: &str) -> Option<String> {
    let head = stack.clients.s3().head_object().bucket(&stack.bucket).key(key).send().await.ok()?;
    head.e_tag
}

/// A single-PUT URL stays valid for its TTL after the verdict. Replaying it
/// (bytes inspect would accept, then bytes it would refuse) makes a new
/// version that inspect removes: the judged bytes stay current, the
/// download returns exactly them, the file stays UPLOADED and charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_single_put_never_replaces_the_judged_file() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let owner = user.id.parse().unwrap();
    let data = png(40 * 1024);
    let request = json!({ "fileName": "kept.png", "size": data.len(), "contentType": "image/png" });
    let (_, started) = client.call("POST", "/uploads", Some(&user.token), Some(request)).await;
    let file_id = started["fileId"].as_str().unwrap();
    let key = format!("uploads/{}/{file_id}/kept.png", user.id);
    assert_eq!(client.put_signed(&started, data.clone()).await.0, 200);
    let file = client.wait_final(&user, file_id).await;
    assert_eq!(file["status"], "UPLOADED", "{file}");
    let judged = current_etag(&stack, &key).await.unwrap();
    let head = stack.clients.s3().head_object().bucket(&stack.bucket).key(&key).send().await.unwrap();
    let judged_version = head.version_id.expect("the bucket is versioned");

    let accepted = sluice_shared::inspection::samples::png_seeded(data.len(), 7);
    assert_ne!(accepted, data);
    for replay in [accepted, elf(data.len())] {
        let (status, answer) = client.put_signed(&started, replay).await;
        assert_eq!(status, 200, "S3 takes it, the URL being valid: {answer}");
        eventually(10, "the replayed version removed", || async { current_etag(&stack, &key).await.as_ref() == Some(&judged) }).await;

        let (_, file) = client.call("GET", &format!("/files/{file_id}"), Some(&user.token), None).await;
        assert_eq!((file["status"].as_str(), file["size"].as_u64()), (Some("UPLOADED"), Some(data.len() as u64)), "{file}");
        let (status, link) = client.call("POST", &format!("/files/{file_id}/download-url"), Some(&user.token), None).await;
        assert_eq!(status, 200, "{link}");
        let downloaded = client.http.get(link["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
        assert!(downloaded == data, "the download is the inspected bytes");
        assert_eq!(ledger(&stack).used(owner).await.unwrap(), data.len() as u64, "still charged, exactly once");
    }

    // Deleting the file frees its bytes and its charge.
    let (status, _) = client.call("DELETE", &format!("/files/{file_id}"), Some(&user.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(current_etag(&stack, &key).await, None);
    let version = stack.clients.s3().head_object().bucket(&stack.bucket).key(&key).version_id(&judged_version).send().await;
    assert!(version.is_err(), "the judged version is gone too, not only hidden by a delete marker");
    assert_eq!(ledger(&stack).used(owner).await.unwrap(), 0);
}
