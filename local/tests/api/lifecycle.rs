//! Uploads that stop half-way end well: resumed with only the missing
//! parts, or cancelled with nothing left in S3.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_lost_its_place_resumes_with_only_the_missing_parts() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let data = png(12 * MIB);
    let upload = client.start(&user, "resume.png", "image/png", data.len()).await;
    assert_eq!(upload.part_count, 3);
    // Parts 1 and 3 went up and were recorded; then the client crashed.
    client.send_parts(&user, &upload, &data, &[1, 3]).await;

    let (status, state) = client.call("GET", &format!("/uploads/{}", upload.file_id), Some(&user.token), None).await;
    assert_eq!(status, 200, "{state}");
    assert_eq!((state["status"].as_str(), state["partCount"].as_u64()), (Some("UPLOADING"), Some(3)));
    assert_eq!(state["partSize"].as_u64(), Some(5 * MIB as u64));
    let recorded: Vec<(u64, u64)> = state["recordedParts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["partNumber"].as_u64().unwrap(), p["size"].as_u64().unwrap()))
        .collect();
    assert_eq!(recorded, vec![(1, 5 * MIB as u64), (3, 2 * MIB as u64)]);
    assert!(state["recordedParts"][0]["etag"].as_str().is_some_and(|e| !e.is_empty()));

    // The missing part, with a fresh URL from the parts route, and the upload completes.
    let (status, fresh) = client.call("GET", &format!("/uploads/{}/parts?first=2&count=1", upload.file_id), Some(&user.token), None).await;
    assert_eq!(status, 200, "{fresh}");
    let url = fresh["parts"][0]["url"].as_str().unwrap();
    let part = &data[5 * MIB..10 * MIB];
    let put = client.http.put(url).body(part.to_vec()).send().await.unwrap();
    assert_eq!(put.status(), 200);
    let etag = put.headers()["etag"].to_str().unwrap().to_string();
    let (status, recorded) = client.record(&user, &upload, 2, &etag, part.len()).await;
    assert_eq!(recorded["recordedParts"], 3, "{status} {recorded}");
    let (status, _) = client.complete(&user, &upload.file_id).await;
    assert_eq!(status, 202);
    let file = client.wait_final(&user, &upload.file_id).await;
    assert_eq!((file["status"].as_str(), file["size"].as_u64()), (Some("UPLOADED"), Some(data.len() as u64)), "{file}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_upload_leaves_no_parts_in_s3_and_ends_failed() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let other = client.new_user().await;
    let data = png(11 * MIB);
    let upload = client.start(&user, "cancel.png", "image/png", data.len()).await;
    client.send_parts(&user, &upload, &data, &[1, 2]).await;
    let prefix = format!("uploads/{}/{}/", user.id, upload.file_id);
    assert_eq!(uploads_in_s3(&stack, &prefix).await.len(), 1, "the upload is in progress in S3");
    let path = format!("/uploads/{}", upload.file_id);

    let (status, answer) = client.call("DELETE", &path, Some(&other.token), None).await;
    assert_eq!(status, 404, "another user cannot cancel it: {answer}");
    assert_eq!(uploads_in_s3(&stack, &prefix).await.len(), 1);

    let (status, answer) = client.call("DELETE", &path, Some(&user.token), None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["status"].as_str(), answer["reason"].as_str()), (Some("FAILED"), Some("cancelled")));
    assert!(uploads_in_s3(&stack, &prefix).await.is_empty(), "the aborted upload's parts are gone");

    // Final at once, and in Postgres once persist has the verdict.
    let (_, file) = client.call("GET", &format!("/files/{}", upload.file_id), Some(&user.token), None).await;
    assert_eq!((file["status"].as_str(), file["reason"].as_str()), (Some("FAILED"), Some("cancelled")), "{file}");
    let file = client.wait_final(&user, &upload.file_id).await;
    assert_eq!((file["status"].as_str(), file["reason"].as_str()), (Some("FAILED"), Some("cancelled")), "{file}");
    let db = sluice_shared::db::connect(&stack.database_url).await.unwrap();
    eventually(20, "the cancelled row in Postgres", || async {
        let row = db.query_opt("SELECT status, reason FROM files WHERE id = $1::text::uuid", &[&upload.file_id]).await.unwrap();
        row.is_some_and(|r| r.get::<_, String>(0) == "FAILED" && r.get::<_, Option<String>>(1).as_deref() == Some("cancelled"))
    })
    .await;

    // Nothing more can happen to it, and cancelling again is harmless.
    let (status, answer) = client.record(&user, &upload, 3, "\"abc\"", MIB).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (409, Some("upload_not_open")), "{answer}");
    let (status, answer) = client.complete(&user, &upload.file_id).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (409, Some("upload_cancelled")), "{answer}");
    let (status, answer) = client.call("GET", &format!("{path}/parts"), Some(&user.token), None).await;
    assert_eq!(status, 409, "{answer}");
    let (status, answer) = client.call("DELETE", &path, Some(&user.token), None).await;
    assert_eq!((status.as_u16(), answer["reason"].as_str()), (200, Some("cancelled")), "{answer}");
    let (_, state) = client.call("GET", &path, Some(&user.token), None).await;
    assert_eq!(state["stage"], "CANCELLED", "{state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_being_completed_cannot_be_cancelled() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let data = png(MIB);
    let upload = client.start(&user, "done.png", "image/png", data.len()).await;
    client.send_parts(&user, &upload, &data, &[1]).await;
    let (status, _) = client.complete(&user, &upload.file_id).await;
    assert_eq!(status, 202);
    let (status, answer) = client.call("DELETE", &format!("/uploads/{}", upload.file_id), Some(&user.token), None).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (409, Some("upload_completing")), "{answer}");
    let file = client.wait_final(&user, &upload.file_id).await;
    assert_eq!(file["status"], "UPLOADED", "{file}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_nobody_finishes_is_swept_when_its_session_expires() {
    let stack = spawn_stack_with(|opts| {
        // Long enough to start, PUT and record one part on a loaded CI machine.
        opts.extra_env.push(("SESSION_TTL_SECONDS".into(), "10".into()));
        opts.sweep_every = std::time::Duration::from_secs(1);
    })
    .await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let data = png(6 * MIB);
    let upload = client.start(&user, "abandoned.png", "image/png", data.len()).await;
    client.send_parts(&user, &upload, &data, &[1]).await;
    let prefix = format!("uploads/{}/{}/", user.id, upload.file_id);
    assert_eq!(uploads_in_s3(&stack, &prefix).await.len(), 1);

    eventually(20, "the expired upload aborted in S3", || async { uploads_in_s3(&stack, &prefix).await.is_empty() }).await;
    let path = format!("/files/{}", upload.file_id);
    eventually(20, "the file FAILED in Postgres", || async { client.call("GET", &path, Some(&user.token), None).await.0 == 200 }).await;
    let (_, file) = client.call("GET", &path, Some(&user.token), None).await;
    assert_eq!((file["status"].as_str(), file["reason"].as_str()), (Some("FAILED"), Some("expired")), "{file}");

    // The expired session is gone for the client: nothing more can be sent.
    let (status, _) = client.call("GET", &format!("/uploads/{}", upload.file_id), Some(&user.token), None).await;
    assert_eq!(status, 404);
    let (status, _) = client.record(&user, &upload, 2, "\"abc\"", MIB).await;
    assert_eq!(status, 404);
}

/// S3 completed the upload but its answer was lost (the SDK's retry then
/// finds NoSuchUpload): complete still succeeds, the session never goes
/// back to OPEN, and a cancel cannot fail the stored file or free its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_whose_answer_was_lost_ends_uploaded_and_cannot_be_cancelled() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let owner = uuid::Uuid::parse_str(&user.id).unwrap();
    let data = png(11 * MIB);
    let upload = client.start(&user, "lost.png", "image/png", data.len()).await;
    let all: Vec<usize> = (1..=upload.part_count).collect();
    client.send_parts(&user, &upload, &data, &all).await;
    stack.s3_probe.lose_next_complete_answer();
    let (status, body) = client.complete(&user, &upload.file_id).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = client.call("DELETE", &format!("/uploads/{}", upload.file_id), Some(&user.token), None).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (409, Some("upload_completing")), "{body}");
    let file = client.wait_final(&user, &upload.file_id).await;
    assert_eq!(file["status"], "UPLOADED", "{file}");
    assert_eq!(stack.inspect.quota.used(owner).await.unwrap(), data.len() as u64, "its bytes stay charged");
}

/// A single PUT whose S3 event never reached inspect is still OPEN when its
/// session expires: the sweeper finds its bytes and judges them, instead
/// of failing the file `expired` with the bytes left in S3 uncharged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_put_whose_event_was_lost_is_judged_when_its_session_expires() {
    let stack = spawn_stack_with(|opts| {
        opts.extra_env.push(("SESSION_TTL_SECONDS".into(), "4".into()));
        opts.sweep_every = std::time::Duration::from_secs(1);
    })
    .await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let data = png(30 * 1024);
    stack.s3_probe.lose_next_event();
    let (file_id, status) = client.upload_single(&user, "unheard.png", "image/png", &data).await;
    assert_eq!(status, 200);
    // 404 meanwhile: an expired session is gone, and no verdict is stored yet.
    let path = format!("/files/{file_id}");
    eventually(20, "the file judged", || async {
        let (status, file) = client.call("GET", &path, Some(&user.token), None).await;
        status == 200 && file["status"] != "UPLOADING"
    })
    .await;
    let (_, file) = client.call("GET", &path, Some(&user.token), None).await;
    assert_eq!((file["status"].as_str(), file["reason"].as_str()), (Some("UPLOADED"), None), "{file}");
    let owner = user.id.parse().unwrap();
    assert_eq!(stack.inspect.quota.used(owner).await.unwrap(), data.len() as u64, "still charged, exactly");
}
