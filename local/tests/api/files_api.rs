//! The files API: the caller's files page by page, and download URLs only
//! for the owner's UPLOADED files, under the name they were uploaded with.

use std::collections::BTreeSet;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_listed_newest_first_in_pages_that_inserts_do_not_shift() {
    let stack = spawn_stack().await;
    // Cursors must not depend on how the server formats dates (RDS parameter groups vary).
    let db = sluice_shared::db::connect(&stack.database_url).await.unwrap();
    let name: String = db.query_one("SELECT current_database()", &[]).await.unwrap().get(0);
    db.batch_execute(&format!("ALTER DATABASE \"{name}\" SET datestyle = 'SQL, DMY'")).await.unwrap();
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let other = client.new_user().await;
    let mut uploaded = Vec::new();
    for n in 0..3 {
        let id = client.upload(&user, &format!("f{n}.png"), "image/png", &png(2000 + n)).await;
        client.wait_final(&user, &id).await;
        uploaded.push(id);
    }

    let (status, first) = client.call("GET", "/files?limit=2", Some(&user.token), None).await;
    assert_eq!(status, 200, "{first}");
    let ids = |page: &serde_json::Value| -> Vec<String> {
        page["files"].as_array().unwrap().iter().map(|f| f["fileId"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ids(&first), vec![uploaded[2].clone(), uploaded[1].clone()], "newest first");
    assert_eq!(first["files"][0]["status"], "UPLOADED");
    assert_eq!(first["files"][0]["kind"], "IMAGE");
    assert_eq!(first["files"][0]["detectedType"], "image/png");
    assert_eq!(first["files"][0]["size"], 2002);
    let cursor = first["nextCursor"].as_str().expect("a next page").to_string();

    // A file added between pages does not shift the next page.
    let newest = client.upload(&user, "later.png", "image/png", &png(1500)).await;
    client.wait_final(&user, &newest).await;
    let (status, second) = client.call("GET", &format!("/files?limit=2&cursor={cursor}"), Some(&user.token), None).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(ids(&second), vec![uploaded[0].clone()]);
    assert!(second["nextCursor"].is_null(), "the last page has no next: {second}");

    let (_, all) = client.call("GET", "/files", Some(&user.token), None).await;
    let listed: BTreeSet<String> = ids(&all).into_iter().collect();
    assert_eq!(listed.len(), 4);
    assert!(listed.contains(&newest));

    let (status, others) = client.call("GET", "/files", Some(&other.token), None).await;
    assert_eq!((status.as_u16(), ids(&others).len()), (200, 0), "another user sees none of them");
    let (status, body) = client.call("GET", "/files?cursor=not-a-cursor", Some(&user.token), None).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (400, Some("invalid_cursor")));
    let (status, body) = client.call("GET", "/files?limit=101", Some(&user.token), None).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (400, Some("invalid_query")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("100"));
    let (status, _) = client.call("GET", "/files", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_downloads_an_uploaded_file_under_its_own_name() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let owner = client.new_user().await;
    let other = client.new_user().await;
    let data = png(300 * 1024);
    let name = "../../etc/Résumé \"v2\".png";
    let id = client.upload(&owner, name, "image/png", &data).await;
    assert_eq!(client.wait_final(&owner, &id).await["status"], "UPLOADED");
    let path = format!("/files/{id}/download-url");

    let (status, body) = client.call("POST", &path, Some(&owner.token), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["expiresAt"].as_str().is_some());
    let resp = client.http.get(body["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_string();
    assert_eq!(disposition, "attachment; filename=\"R_sum_ _v2_.png\"; filename*=UTF-8''R%C3%A9sum%C3%A9%20%22v2%22.png");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice(), "the bytes that went up come back");

    let (status, body) = client.call("POST", &path, Some(&other.token), None).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, _) = client.call("POST", &path, None, None).await;
    assert_eq!(status, 401);

    // A spoofed file ends FAILED: there is nothing to download.
    let spoofed = client.upload(&owner, "cat.jpg", "image/jpeg", &elf(4096)).await;
    assert_eq!(client.wait_final(&owner, &spoofed).await["status"], "FAILED");
    let (status, body) = client.call("POST", &format!("/files/{spoofed}/download-url"), Some(&owner.token), None).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (409, Some("not_downloadable")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_is_gone_from_s3_and_from_every_route() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let owner = client.new_user().await;
    let other = client.new_user().await;
    let id = client.upload(&owner, "gone.png", "image/png", &png(3000)).await;
    let kept = client.upload(&owner, "kept.png", "image/png", &png(3001)).await;
    assert_eq!(client.wait_final(&owner, &id).await["status"], "UPLOADED");
    client.wait_final(&owner, &kept).await;
    let key = format!("uploads/{}/{id}/gone.png", owner.id);
    let exists = |key: String| {
        let s3 = stack.clients.s3();
        let bucket = stack.bucket.clone();
        async move { s3.head_object().bucket(bucket).key(key).send().await.is_ok() }
    };
    assert!(exists(key.clone()).await);
    let path = format!("/files/{id}");

    let (status, _) = client.call("DELETE", &path, Some(&other.token), None).await;
    assert_eq!(status, 404, "another user cannot delete it");
    assert!(exists(key.clone()).await);

    let (status, body) = client.call("DELETE", &path, Some(&owner.token), None).await;
    assert_eq!((status.as_u16(), body["deleted"].as_bool()), (200, Some(true)), "{body}");
    assert!(!exists(key).await, "the object is removed from S3");
    let (status, _) = client.call("GET", &path, Some(&owner.token), None).await;
    assert_eq!(status, 404);
    let (status, _) = client.call("POST", &format!("{path}/download-url"), Some(&owner.token), None).await;
    assert_eq!(status, 404);
    let (_, listed) = client.call("GET", "/files", Some(&owner.token), None).await;
    let ids: Vec<&str> = listed["files"].as_array().unwrap().iter().map(|f| f["fileId"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![kept.as_str()], "only the kept file is listed");
    let (status, _) = client.call("DELETE", &path, Some(&owner.token), None).await;
    assert_eq!(status, 404, "deleting again finds nothing");
}
