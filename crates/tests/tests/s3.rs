//! The S3 backup target against a real S3 server on loopback (moto's, from PyPI): archives
//! stream in parts and are hashed on the way, read back whole, a changed object is refused,
//! and a backup of a real LXC guest is kept there, restored from there and deleted there.

use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use snapshot_svc::target::Target;
use tests::fleet::{ContainerDir, S3, grant, guest_of, lxc_node, wait_server, wait_task};
use tests::{Backend, Cred, Options, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_streams_hashes_and_refuses_a_changed_object() {
    let s3 = S3::start().await;
    let target = Target::open(&s3.target()).expect("the S3 target");
    assert_eq!(target.kind(), "s3");
    // 20 MiB in 1 MiB chunks: three parts of the multipart upload.
    let chunks: Vec<bytes::Bytes> = (0..20u8)
        .map(|i| bytes::Bytes::from(vec![i.wrapping_mul(37); 1024 * 1024]))
        .collect();
    let mut expected = Sha256::new();
    for c in &chunks {
        expected.update(c);
    }
    let expected = hex::encode(expected.finalize());
    let stream = futures_util::stream::iter(chunks.clone().into_iter().map(Ok));
    let written = target
        .write("7/archive.tar.zst", stream)
        .await
        .expect("write");
    assert_eq!(written.size, 20 * 1024 * 1024);
    assert_eq!(written.sha256, expected);
    assert_eq!(
        s3.keys().await,
        vec!["vps/7/archive.tar.zst"],
        "under the prefix"
    );
    target
        .verify("7/archive.tar.zst", written.size, &written.sha256)
        .await
        .expect("the object matches");

    // A stream that fails part-way leaves nothing behind.
    let failing = futures_util::stream::iter(vec![
        Ok(chunks[0].clone()),
        Err(snapshot_svc::error::SnapshotError::Target(
            "the source went away".into(),
        )),
    ]);
    assert!(target.write("7/broken.tar.zst", failing).await.is_err());
    assert_eq!(s3.keys().await, vec!["vps/7/archive.tar.zst"]);

    // Changed behind our back: refused.
    target
        .put_small("7/archive.tar.zst", b"something else".to_vec())
        .await
        .expect("overwrite");
    let refused = target
        .verify("7/archive.tar.zst", written.size, &written.sha256)
        .await
        .expect_err("a changed object is refused");
    assert!(
        matches!(refused, snapshot_svc::error::SnapshotError::Corrupt(_)),
        "{refused:?}"
    );

    target.delete("7/archive.tar.zst").await.expect("delete");
    target
        .delete("7/archive.tar.zst")
        .await
        .expect("deleting twice is fine");
    assert!(s3.keys().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_of_a_guest_live_in_the_bucket() {
    let s3 = S3::start().await;
    let mut options = Options::default();
    options.snapshot.backup_target = s3.target();
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let (user, jwt) = app.user("sue").await;
    grant(&app, &admin, user, 100).await;
    let me = Cred::Bearer(&jwt);
    let created = app
        .post(
            "/api/server/create",
            me,
            json!({"osId": 1, "tariffId": 1, "name": "s3-box"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    let guest = guest_of(&app, id).await;
    dir.exec(&guest, "echo kept-in-s3 > /root/data");

    let taken = app
        .post(
            &format!("/api/server/{id}/backups"),
            me,
            json!({"name": "to-s3"}),
        )
        .await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.text);
    let task = wait_task(&app, &jwt, taken.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    let backup = taken.json["backup"]["id"].as_i64().expect("id");
    let listed = app.get(&format!("/api/server/{id}/backups"), me).await;
    assert_eq!(listed.json["data"][0]["target"], "s3", "{}", listed.text);
    let keys = s3.keys().await;
    assert_eq!(keys.len(), 2, "the archive and its manifest: {keys:?}");
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("vps/{id}/")) && k.ends_with(".tar.zst"))
    );
    assert!(keys.iter().any(|k| k.ends_with(".manifest.json")));

    dir.exec(&guest, "echo lost > /root/data");
    let restore = app
        .post(
            &format!("/api/server/{id}/backups/restore"),
            me,
            json!({"backupId": backup, "overwrite": true}),
        )
        .await;
    assert_eq!(restore.status, StatusCode::OK, "{}", restore.text);
    let task = wait_task(&app, &jwt, restore.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    assert_eq!(dir.exec(&guest, "cat /root/data").trim(), "kept-in-s3");

    let gone = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/server/{id}/backups"),
            me,
            Some(json!({"backupId": backup})),
        )
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
    let task = wait_task(&app, &jwt, gone.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    assert!(s3.keys().await.is_empty(), "nothing left in the bucket");
}
