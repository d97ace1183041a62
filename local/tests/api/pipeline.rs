//! The upload pipeline end to end, through HTTP on the local stack.

use crate::common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_and_large_files_go_up_in_parts_and_end_uploaded_with_their_type() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;

    let small = png(MIB);
    let id = client.upload(&user, "photo.png", "image/png", &small).await;
    let file = client.wait_final(&user, &id).await;
    assert_eq!(file["status"], "UPLOADED", "{file}");
    assert_eq!(file["size"], MIB);
    assert_eq!(file["detectedType"], "image/png");
    assert_eq!(file["kind"], "IMAGE");
    assert_eq!(file["partCount"], 1);

    let large = mp4(61 * MIB + 123);
    let upload = client.start(&user, "clip.mp4", "video/mp4", large.len()).await;
    assert_eq!((upload.part_size, upload.part_count), (5 * MIB, 13));
    let all: Vec<usize> = (1..=13).collect();
    client.send_parts(&user, &upload, &large, &all).await;
    let (status, body) = client.complete(&user, &upload.file_id).await;
    assert_eq!(status, 202, "{body}");
    let file = client.wait_final(&user, &upload.file_id).await;
    assert_eq!(file["status"], "UPLOADED", "{file}");
    assert_eq!(file["size"], large.len());
    assert_eq!(file["detectedType"], "video/mp4");
    assert_eq!(file["kind"], "VIDEO");
    assert_eq!(file["partCount"], 13);

    // The object S3 holds is byte for byte what was sent.
    let key = format!("uploads/{}/{}/clip.mp4", user.id, upload.file_id);
    let object = stack.clients.s3().get_object().bucket(&stack.bucket).key(&key).send().await.unwrap();
    let stored = object.body.collect().await.unwrap().into_bytes();
    assert!(stored.as_ref() == large.as_slice(), "stored object differs from the upload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executable_named_jpg_ends_failed_and_its_object_is_gone() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;

    let id = client.upload(&user, "cat.jpg", "image/jpeg", &elf(64 * 1024)).await;
    let file = client.wait_final(&user, &id).await;
    assert_eq!(file["status"], "FAILED", "{file}");
    assert!(file["reason"].as_str().unwrap().starts_with("forbidden_content"), "{file}");
    assert_eq!(file["detectedType"], "application/x-executable");

    let key = format!("uploads/{}/{id}/cat.jpg", user.id);
    // Inspect removes it once the verdict is out, so FAILED may show a moment before.
    let s3 = stack.clients.s3();
    let gone = || async {
        let head = s3.head_object().bucket(&stack.bucket).key(&key).send().await;
        head.is_err_and(|e| e.into_service_error().is_not_found())
    };
    eventually(5, "the refused object to be removed", gone).await;

    // A PNG declared as a PDF is refused for the mismatch.
    let id = client.upload(&user, "report.pdf", "application/pdf", &png(1000)).await;
    let file = client.wait_final(&user, &id).await;
    assert!(file["reason"].as_str().unwrap().starts_with("type_mismatch"), "{file}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_s3_refuses_tampered_and_oversized_parts() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    // Small bodies: S3 answers 403 before reading a body, so a large one
    // would only show as a reset connection.
    let data = png(1000);
    let upload = client.start(&user, "p.png", "image/png", data.len()).await;

    let url = &upload.urls[0];
    let tampered = {
        let (head, sig) = url.split_once("X-Amz-Signature=").unwrap();
        let flipped: String = sig
            .chars()
            .map(|c| {
                if c == 'a' {
                    'b'
                } else if c == 'b' {
                    'a'
                } else {
                    c
                }
            })
            .collect();
        assert_ne!(flipped, sig);
        format!("{head}X-Amz-Signature={flipped}")
    };
    let resp = client.http.put(&tampered).body(data.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 403, "a tampered signature must be refused");

    let mut longer = data.clone();
    longer.push(0);
    let resp = client.http.put(url).body(longer).send().await.unwrap();
    assert_eq!(resp.status(), 403, "a part larger than planned must be refused");

    let parts = stack
        .clients
        .s3()
        .list_parts()
        .bucket(&stack.bucket)
        .key(format!("uploads/{}/{}/p.png", user.id, upload.file_id))
        .upload_id(upload_id(&upload))
        .send()
        .await
        .unwrap();
    assert!(parts.parts().is_empty(), "refused bodies must not be stored");

    let resp = client.http.put(url).body(data).send().await.unwrap();
    assert_eq!(resp.status(), 200, "the planned part itself goes through");
}

fn upload_id(upload: &Upload) -> String {
    let query = upload.urls[0].split_once('?').unwrap().1;
    query.split('&').find_map(|kv| kv.strip_prefix("uploadId=")).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_s3_refuses_expired_urls() {
    let stack = spawn_stack_with(|o| o.extra_env.push(("PRESIGN_TTL_SECONDS".into(), "1".into()))).await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let data = png(1000);
    let upload = client.start(&user, "p.png", "image/png", data.len()).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let resp = client.http.put(&upload.urls[0]).body(data).send().await.unwrap();
    assert_eq!(resp.status(), 403, "an expired URL must be refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_with_a_missing_part_answers_409_naming_it() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let data = png(11 * MIB);
    let upload = client.start(&user, "p.png", "image/png", data.len()).await;
    assert_eq!(upload.part_count, 3);
    client.send_parts(&user, &upload, &data, &[1, 3]).await;
    // Part 2 is in S3 but never recorded: the server's record decides.
    client.put_part(&upload, 2, &data).await;

    let (status, body) = client.complete(&user, &upload.file_id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "missing_parts");
    assert_eq!(body["error"]["missingParts"], json!([2]));
    assert!(body["error"]["message"].as_str().unwrap().contains("1 of 3"), "{body}");

    // Recording part 2 with an ETag S3 does not hold still counts as missing.
    let (status, _) = client.record(&user, &upload, 2, "\"0123456789abcdef0123456789abcdef\"", 5 * MIB).await;
    assert_eq!(status, 200);
    let (status, body) = client.complete(&user, &upload.file_id).await;
    assert_eq!((status.as_u16(), &body["error"]["missingParts"]), (409, &json!([2])), "{body}");

    // Once recorded truly, the upload completes.
    client.send_parts(&user, &upload, &data, &[2]).await;
    let (status, body) = client.complete(&user, &upload.file_id).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(client.wait_final(&user, &upload.file_id).await["status"], "UPLOADED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_chunk_refuses_bad_parts_and_records_a_batch_all_or_nothing() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let upload = client.start(&user, "p.png", "image/png", 7 * MIB).await;

    let (status, body) = client.record(&user, &upload, 3, "\"abc\"", 5 * MIB).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (400, Some("invalid_part_number")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("1 to 2"));
    let (status, body) = client.record(&user, &upload, 2, "\"abc\"", 5 * MIB).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (400, Some("part_size_mismatch")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(&(2 * MIB).to_string()));

    // A batch is checked whole before anything is written: part 1 is good,
    // part 2's size is not, so neither is recorded.
    let good = json!({ "partNumber": 1, "etag": "\"abc\"", "size": 5 * MIB });
    let (status, body) =
        client.record_batch(&user, &upload, vec![good.clone(), json!({ "partNumber": 2, "etag": "\"abc\"", "size": MIB })]).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (400, Some("part_size_mismatch")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("part 2 "), "{body}");
    let (status, body) = client.record_batch(&user, &upload, vec![good.clone(), good.clone()]).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (400, Some("duplicate_part")), "{body}");
    let (status, body) = client.record_batch(&user, &upload, vec![]).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (400, Some("invalid_parts")), "{body}");
    let (status, body) = client.record_batch(&user, &upload, vec![good.clone(); 1001]).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (400, Some("invalid_parts")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("1 to 1000 parts per call; got 1001"), "{body}");
    let (_, file) = client.call("GET", &format!("/files/{}", upload.file_id), Some(&user.token), None).await;
    assert_eq!(file["recordedParts"], 0, "a refused batch records nothing: {file}");
    let (_, state) = client.call("GET", &format!("/uploads/{}", upload.file_id), Some(&user.token), None).await;
    assert_eq!(state["recordedParts"], json!([]), "{state}");

    // The same part twice, alone or in a batch, is recorded once.
    let second = json!({ "partNumber": 2, "etag": "\"abc\"", "size": 2 * MIB });
    let (status, body) = client.record_batch(&user, &upload, vec![good, second]).await;
    assert_eq!((status.as_u16(), &body["partNumbers"], &body["recordedParts"]), (200, &json!([1, 2]), &json!(2)), "{body}");
    for _ in 0..2 {
        let (status, body) = client.record(&user, &upload, 2, "\"abc\"", 2 * MIB).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["recordedParts"], 2);
    }
    let (_, file) = client.call("GET", &format!("/files/{}", upload.file_id), Some(&user.token), None).await;
    assert_eq!((file["status"].as_str(), file["recordedParts"].as_u64()), (Some("UPLOADING"), Some(2)), "{file}");
}

/// Clients written against the first API keep working: the chunks route
/// takes one part on its own as it first did, beside `{parts: [...]}`, and
/// a single-PUT URL takes a plain PUT of the bytes, with any Content-Type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_clients_record_one_part_per_call_and_put_small_files_plainly() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let data = png(11 * MIB);
    let upload = client.start(&user, "old.png", "image/png", data.len()).await;
    assert_eq!(upload.part_count, 3);
    let path = format!("/uploads/{}/chunks", upload.file_id);
    let etag = client.put_part(&upload, 1, &data).await;
    let single = json!({ "partNumber": 1, "etag": etag, "size": 5 * MIB });
    let (status, body) = client.call("POST", &path, Some(&user.token), Some(single)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["partNumber"].as_u64(), body["recordedParts"].as_u64(), body["partCount"].as_u64()),
        (Some(1), Some(1), Some(3)),
        "{body}"
    );
    assert_eq!(body["partNumbers"], json!([1]), "{body}");
    // A single part with a field missing says which.
    let (status, body) = client.call("POST", &path, Some(&user.token), Some(json!({ "partNumber": 2, "size": 5 * MIB }))).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (400, Some("invalid_body")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("etag"), "{body}");
    // The rest as a batch, then complete.
    client.send_parts(&user, &upload, &data, &[2, 3]).await;
    let (status, body) = client.complete(&user, &upload.file_id).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(client.wait_final(&user, &upload.file_id).await["status"], "UPLOADED");

    // A plain PUT, no signed headers echoed, with a Content-Type of its own.
    let small = png(3000);
    let request = json!({ "fileName": "plain.png", "size": small.len(), "contentType": "image/png" });
    let (status, started) = client.call("POST", "/uploads", Some(&user.token), Some(request)).await;
    assert_eq!(status, 201, "{started}");
    assert!(started["headers"].as_object().unwrap().keys().all(|k| !k.starts_with("x-amz-meta")), "{started}");
    let resp =
        client.http.put(started["url"].as_str().unwrap()).header("content-type", "image/png").body(small.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    let file = client.wait_final(&user, started["fileId"].as_str().unwrap()).await;
    assert_eq!((file["status"].as_str(), file["kind"].as_str()), (Some("UPLOADED"), Some("IMAGE")), "{file}");
}
