//! Snapshots and backups end to end, on real LXC guests: data written in a guest comes back
//! after a rollback or a restore (read through the hypervisor's own tools), the server
//! returns to the power state it had, the per-server limit holds under concurrent
//! requests, another tenant's snapshots and backups are 404 in both dialects, and a
//! corrupted archive is refused without touching the server.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::fleet::{ContainerDir, grant, guest_of, lxc_node, wait_server, wait_task};
use tests::{Backend, Cred, TestApp};

const BUSYBOX: i64 = 1;
const SMALL: i64 = 1;

/// A user with credits and a running server: (jwt, VPS.org token, server id).
async fn tenant(app: &TestApp, name: &str) -> (String, String, i64) {
    let admin = app.admin_token().await;
    let (user, jwt) = app.user(name).await;
    grant(app, &admin, user, 100).await;
    let token = app.mint(&jwt, "vpsorg", false).await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let created = app
        .post(
            "/api/server/create",
            Cred::Bearer(&jwt),
            json!({"osId": BUSYBOX, "tariffId": SMALL, "name": format!("{name}-box")}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    wait_server(app, &jwt, id, |s| s["status"] == "running").await;
    (jwt, token, id)
}

fn task_of(reply: &Value) -> String {
    reply["taskId"]
        .as_str()
        .or_else(|| reply["task_id"].as_str())
        .unwrap_or_else(|| panic!("no task id in {reply}"))
        .to_owned()
}

async fn snapshots_and_rollback(backend: Backend) {
    let app = TestApp::start(backend).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let (jwt, _, id) = tenant(&app, "sam").await;
    let me = Cred::Bearer(&jwt);
    let guest = guest_of(&app, id).await;
    dir.exec(&guest, "echo original > /root/data");

    let path = format!("/api/server/{id}/snapshots");
    let taken = app
        .post(
            &path,
            me,
            json!({"snapname": "before", "description": "Before the change"}),
        )
        .await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.text);
    assert_eq!(taken.json["status"], "success");
    assert_eq!(taken.json["snapname"], "before");
    let task = wait_task(&app, &jwt, &task_of(&taken.json)).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(task["kind"], "snapshot");
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    assert_eq!(dir.lxc_snapshots(&guest).len(), 1, "LXC keeps the snapshot");

    let listed = app.get(&path, me).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.json["data"][0]["name"], "before");
    assert_eq!(listed.json["data"][0]["description"], "Before the change");
    assert_eq!(listed.json["data"][0]["status"], "completed");
    assert!(listed.json["data"][0]["snaptime"].as_i64().unwrap_or(0) > 1_700_000_000);

    // The same name again is refused; a bad name is a 400 in the panel's shape.
    let again = app.post(&path, me, json!({"snapname": "before"})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    let bad = app.post(&path, me, json!({"snapname": "no spaces"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(bad.json["error"].is_string());

    dir.exec(&guest, "echo changed > /root/data");
    let rollback = app
        .post(
            &format!("{path}/rollback"),
            me,
            json!({"snapname": "before"}),
        )
        .await;
    assert_eq!(rollback.status, StatusCode::OK, "{}", rollback.text);
    let shown = app.get(&format!("/api/server/{id}"), me).await;
    assert!(
        ["restoring", "running"].contains(&shown.json["status"].as_str().unwrap_or("")),
        "{}",
        shown.text
    );
    let task = wait_task(&app, &jwt, &task_of(&rollback.json)).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    assert!(dir.running(&guest), "running again, as before the rollback");
    assert_eq!(dir.exec(&guest, "cat /root/data").trim(), "original");

    // A rollback of a stopped server leaves it stopped.
    let stop = app
        .post(&format!("/api/server/{id}/stop"), me, json!({}))
        .await;
    wait_task(&app, &jwt, &task_of(&stop.json)).await;
    let rollback = app
        .post(
            &format!("{path}/rollback"),
            me,
            json!({"snapname": "before"}),
        )
        .await;
    assert_eq!(rollback.status, StatusCode::OK, "{}", rollback.text);
    let task = wait_task(&app, &jwt, &task_of(&rollback.json)).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    wait_server(&app, &jwt, id, |s| s["status"] == "stopped").await;
    assert!(!dir.running(&guest));

    let missing = app
        .post(&format!("{path}/rollback"), me, json!({"snapname": "nope"}))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);

    let deleted = app
        .call(
            Method::DELETE,
            &path,
            me,
            Some(json!({"snapname": "before"})),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    let task = wait_task(&app, &jwt, &task_of(&deleted.json)).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    let listed = app.get(&path, me).await;
    assert_eq!(listed.json["data"], json!([]));
    assert!(
        dir.lxc_snapshots(&guest).is_empty(),
        "LXC's snapshot is gone"
    );
}

async fn backups_restore_and_refuse_corruption(backend: Backend) {
    let app = TestApp::start(backend).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let (jwt, token, id) = tenant(&app, "bea").await;
    let org = Cred::Bearer(&token);
    let guest = guest_of(&app, id).await;
    dir.exec(&guest, "echo precious > /root/data");

    let taken = app
        .post(
            "/api/v1/backups/",
            org,
            json!({"server_id": id, "name": "nightly"}),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CREATED, "{}", taken.text);
    assert_eq!(taken.json["status"], "in_progress");
    let backup = taken.json["id"].as_i64().expect("id");
    let done = wait_backup(&app, &token, backup).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["sha256"].as_str().map(str::len), Some(64), "{done}");
    assert!(done["size_mb"].as_u64().is_some_and(|mb| mb >= 1), "{done}");
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;

    dir.exec(&guest, "echo ruined > /root/data; rm -f /bin/vi");
    let unconfirmed = app
        .post(
            &format!("/api/v1/backups/{backup}/restore/"),
            org,
            json!({}),
        )
        .await;
    assert_eq!(
        unconfirmed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unconfirmed.text
    );
    let no = app
        .post(
            &format!("/api/v1/backups/{backup}/restore/"),
            org,
            json!({"overwrite": false}),
        )
        .await;
    assert_eq!(no.status, StatusCode::BAD_REQUEST, "{}", no.text);
    assert!(no.json["detail"].is_string());

    let restore = app
        .post(
            &format!("/api/v1/backups/{backup}/restore/"),
            org,
            json!({"overwrite": true}),
        )
        .await;
    assert_eq!(restore.status, StatusCode::OK, "{}", restore.text);
    assert_eq!(
        restore.json["server"]["status"], "restoring",
        "{}",
        restore.text
    );
    let task = wait_task(&app, &jwt, &task_of(&restore.json)).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    assert_eq!(dir.exec(&guest, "cat /root/data").trim(), "precious");
    assert!(
        dir.exec(&guest, "ls /bin/vi").contains("vi"),
        "the archive brought back what was deleted"
    );

    // A new server from the backup: the archive's files, billed as any order; nobody
    // else's backup will do.
    let before = tests::fleet::balance(&app, &jwt).await;
    let cloned = app
        .post(
            "/api/server/create",
            Cred::Bearer(&jwt),
            json!({"osId": BUSYBOX, "tariffId": SMALL, "name": "bea-clone", "backupId": backup}),
        )
        .await;
    assert_eq!(cloned.status, StatusCode::CREATED, "{}", cloned.text);
    let clone = cloned.json["id"].as_i64().expect("id");
    wait_server(&app, &jwt, clone, |s| s["status"] == "running").await;
    assert!(
        tests::fleet::balance(&app, &jwt).await < before,
        "billed as a create"
    );
    let clone_guest = guest_of(&app, clone).await;
    assert_eq!(dir.exec(&clone_guest, "cat /root/data").trim(), "precious");
    let (_, other) = app.user("bob").await;
    let foreign = app
        .post(
            "/api/server/create",
            Cred::Bearer(&other),
            json!({"osId": BUSYBOX, "tariffId": SMALL, "backupId": backup}),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.text);
    let bad = app
        .post(
            "/api/server/create",
            Cred::Bearer(&jwt),
            json!({"osId": BUSYBOX, "tariffId": SMALL, "backupId": -1}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);

    // One byte of the archive changed: refused before the server is touched.
    let archive = find_archive(&app, backup);
    let mut bytes = std::fs::read(&archive).expect("the archive");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&archive, bytes).expect("corrupt it");
    dir.exec(&guest, "echo newer > /root/data");
    let refused = app
        .post(
            &format!("/api/v1/backups/{backup}/restore/"),
            org,
            json!({"overwrite": true}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert!(
        refused.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("SHA-256")),
        "{}",
        refused.text
    );
    let server = wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    assert!(server["taskId"].is_null() || server["taskId"] != refused.json["task_id"]);
    assert_eq!(
        dir.exec(&guest, "cat /root/data").trim(),
        "newer",
        "untouched"
    );

    let deleted = app.delete(&format!("/api/v1/backups/{backup}/"), org).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    for _ in 0..100 {
        if app
            .get(&format!("/api/v1/backups/{backup}/"), org)
            .await
            .status
            == StatusCode::NOT_FOUND
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.get(&format!("/api/v1/backups/{backup}/"), org)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(!archive.exists(), "the archive is gone with it");
}

/// Polls a VPS.org backup until it is no longer in progress.
async fn wait_backup(app: &TestApp, token: &str, id: i64) -> Value {
    for _ in 0..600 {
        let reply = app
            .get(&format!("/api/v1/backups/{id}/"), Cred::Bearer(token))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        if reply.json["status"] != "in_progress" {
            return reply.json;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("backup {id} did not finish within 60 s");
}

/// The archive file of a backup in the test's directory target.
fn find_archive(app: &TestApp, _backup: i64) -> std::path::PathBuf {
    let root = app.backup_dir();
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("the backup directory")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "zst") {
                found.push(path);
            }
        }
    }
    assert_eq!(found.len(), 1, "one archive: {found:?}");
    found.remove(0)
}

async fn limits_and_foreign_servers(backend: Backend) {
    let app = TestApp::start(backend).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let (jwt, token, id) = tenant(&app, "lia").await;
    let org = Cred::Bearer(&token);

    // Ten at once: never more than five, and every refusal is VPS.org's 400.
    let burst = (0..10).map(|i| {
        let app = &app;
        async move {
            app.post(
                "/api/v1/snapshots/",
                org,
                json!({"server_id": id, "name": format!("burst-{i}")}),
            )
            .await
        }
    });
    let replies = futures_util::future::join_all(burst).await;
    let accepted = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert!(
        accepted >= 1,
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.json["detail"].is_string());
    }
    // Then one at a time up to the limit, and no further.
    let mut made = accepted;
    for i in 0..10 {
        wait_idle(&app, &jwt, id).await;
        let reply = app
            .post(
                "/api/v1/snapshots/",
                org,
                json!({"server_id": id, "name": format!("more-{i}")}),
            )
            .await;
        if reply.status == StatusCode::CREATED {
            made += 1;
            assert_eq!(reply.json["status"], "in_progress");
            assert_eq!(reply.json["server"]["id"], id);
            continue;
        }
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
        assert!(
            reply.json["detail"]
                .as_str()
                .is_some_and(|d| d.contains("limit")),
            "{}",
            reply.text
        );
        break;
    }
    assert_eq!(made, 5, "exactly the limit");
    wait_idle(&app, &jwt, id).await;
    let listed = app
        .get(&format!("/api/v1/snapshots/?server_id={id}"), org)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.json["count"], 5, "{}", listed.text);
    assert_eq!(listed.json["results"][0]["server"]["id"], id);
    let guest = guest_of(&app, id).await;
    assert_eq!(dir.lxc_snapshots(&guest).len(), 5, "and so does LXC");

    // Another tenant sees none of it, in either dialect.
    let (other_jwt, other_token, _) = tenant(&app, "mal").await;
    let them = Cred::Bearer(&other_jwt);
    let them_org = Cred::Bearer(&other_token);
    let snapshot = listed.json["results"][0]["id"].as_i64().expect("id");
    let checks = [
        app.get(&format!("/api/server/{id}/snapshots"), them).await,
        app.post(
            &format!("/api/server/{id}/snapshots"),
            them,
            json!({"snapname": "x"}),
        )
        .await,
        app.post(
            &format!("/api/server/{id}/snapshots/rollback"),
            them,
            json!({"snapname": "burst-0"}),
        )
        .await,
        app.call(
            Method::DELETE,
            &format!("/api/server/{id}/snapshots"),
            them,
            Some(json!({"snapname": "more-0"})),
        )
        .await,
        app.get(&format!("/api/server/{id}/backups"), them).await,
        app.post(&format!("/api/server/{id}/backups"), them, json!({}))
            .await,
        app.get(&format!("/api/server/{id}/backups/schedule"), them)
            .await,
        app.get(&format!("/api/v1/snapshots/?server_id={id}"), them_org)
            .await,
        app.get(&format!("/api/v1/snapshots/{snapshot}/"), them_org)
            .await,
        app.post(
            &format!("/api/v1/snapshots/{snapshot}/restore/"),
            them_org,
            json!({}),
        )
        .await,
        app.delete(&format!("/api/v1/snapshots/{snapshot}/"), them_org)
            .await,
        app.post(
            "/api/v1/snapshots/",
            them_org,
            json!({"server_id": id, "name": "x"}),
        )
        .await,
        app.post("/api/v1/backups/", them_org, json!({"server_id": id}))
            .await,
        app.get(&format!("/api/v1/backups/?server_id={id}"), them_org)
            .await,
    ];
    for reply in checks {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    }
    let theirs = app.get("/api/v1/snapshots/", them_org).await;
    assert_eq!(theirs.json["count"], 0, "{}", theirs.text);
    assert_eq!(
        app.get(&format!("/api/v1/snapshots/{snapshot}/"), org)
            .await
            .status,
        StatusCode::OK,
        "the owner still sees it"
    );

    // Deleting the server takes its snapshots with it.
    let deleted = app
        .delete(&format!("/api/server/{id}"), Cred::Bearer(&jwt))
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    let task = wait_task(&app, &jwt, &task_of(&deleted.json)).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    let mine = app.get("/api/v1/snapshots/", org).await;
    assert_eq!(mine.json["count"], 0, "{}", mine.text);
}

/// Waits until the server has no task under way (it is `running` and its last task ended).
async fn wait_idle(app: &TestApp, jwt: &str, id: i64) {
    let server = wait_server(app, jwt, id, |s| s["status"] == "running").await;
    if let Some(task) = server["taskId"].as_str() {
        wait_task(app, jwt, task).await;
    }
}

/// The tasks snapshot-svc ran of `kind`, with when each began (ms), oldest first.
async fn tasks_of(app: &TestApp, kind: &str) -> Vec<i64> {
    use sea_orm::{ConnectionTrait as _, Statement};
    let db = sea_orm::Database::connect(app.snapshot_config.database_url.as_str())
        .await
        .expect("snapshot-svc's database");
    let backend = db.get_database_backend();
    let sql = if backend == sea_orm::DatabaseBackend::Postgres {
        "SELECT created_at FROM tasks WHERE kind = $1 ORDER BY created_at"
    } else {
        "SELECT created_at FROM tasks WHERE kind = ? ORDER BY created_at"
    };
    db.query_all_raw(Statement::from_sql_and_values(backend, sql, [kind.into()]))
        .await
        .expect("tasks")
        .iter()
        .map(|row| row.try_get::<i64>("", "created_at").expect("created_at"))
        .collect()
}

const SLOT_SECS: u64 = 4;

async fn schedules_fire_once_per_slot_and_prune(backend: Backend) {
    let options = tests::Options {
        snapshot: snapshot_svc::Config {
            schedule_every_secs: Some(SLOT_SECS),
            schedule_tick_secs: 1,
            stop_grace_secs: 1,
            ..snapshot_svc::Config::default()
        },
        ..tests::Options::default()
    };
    let mut app = TestApp::start_with(backend, options).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let (jwt, token, id) = tenant(&app, "sid").await;
    let me = Cred::Bearer(&jwt);
    // A second replica on the same database: the slots are shared, never doubled.
    let replica = app.another_snapshot_svc(|_| {}).await;

    let path = format!("/api/server/{id}/backups/schedule");
    assert_eq!(app.get(&path, me).await.status, StatusCode::NOT_FOUND);
    let bad = app
        .call(
            Method::PUT,
            &path,
            me,
            Some(json!({"frequency": "hourly", "time": "03:00"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    let bad_zone = app
        .call(
            Method::PUT,
            &path,
            me,
            Some(json!({"frequency": "daily", "time": "03:00", "timeZone": "Mars/Olympus"})),
        )
        .await;
    assert_eq!(
        bad_zone.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_zone.text
    );
    let put = app
        .call(
            Method::PUT,
            &path,
            me,
            Some(json!({"frequency": "weekly", "weekday": "sun", "time": "02:30", "timeZone": "Europe/Berlin", "keepLast": 2})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.json["data"]["keepLast"], 2);
    assert_eq!(put.json["data"]["timeZone"], "Europe/Berlin");
    assert!(put.json["data"]["nextRunAt"].is_string());

    // Let several slots pass.
    for _ in 0..150 {
        if tasks_of(&app, "backup").await.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let fired = tasks_of(&app, "backup").await;
    assert!(fired.len() >= 4, "{fired:?}");
    let slots: std::collections::BTreeSet<i64> = fired
        .iter()
        .map(|at| at / (SLOT_SECS as i64 * 1000))
        .collect();
    assert_eq!(
        slots.len(),
        fired.len(),
        "one backup per slot, however many replicas: {fired:?}"
    );

    // The retention keeps the last two (seen between two slots' backups).
    let org = Cred::Bearer(&token);
    let mut kept = Value::Null;
    for _ in 0..100 {
        let list = app
            .get(&format!("/api/v1/backups/?server_id={id}"), org)
            .await;
        let results = list.json["results"].as_array().cloned().unwrap_or_default();
        if results.iter().all(|b| b["status"] == "completed") && results.len() <= 2 {
            kept = list.json;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(kept["count"], 2, "{kept}");
    assert!(
        kept["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|b| b["type"] == "scheduled")
    );
    let removed = app.call(Method::DELETE, &path, me, None).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    assert_eq!(app.get(&path, me).await.status, StatusCode::NOT_FOUND);

    // Down over two slots: back, it fires the missed one once, not once per slot missed.
    let put = app
        .call(
            Method::PUT,
            &path,
            me,
            Some(json!({"frequency": "daily", "time": "03:00", "keepLast": 5})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    app.stop_snapshot_svc();
    replica.trigger();
    tokio::time::sleep(std::time::Duration::from_secs(SLOT_SECS * 2 + 2)).await;
    let before = tasks_of(&app, "backup").await.len();
    // Slots of 10^9 s from the epoch: the next one after the catch-up is in 2033, so no
    // slot can come due within this wait (with 600 s slots one did, now and then).
    app.restart_snapshot_svc(|c| c.schedule_every_secs = Some(1_000_000_000))
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let after = tasks_of(&app, "backup").await.len();
    assert_eq!(after, before + 1, "the missed slots fire once");
}

async fn automatic_backups_follow_backups_enabled(backend: Backend) {
    let app = TestApp::start(backend).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let (user, jwt) = app.user("abe").await;
    grant(&app, &admin, user, 100).await;
    let token = app.mint(&jwt, "vpsorg", false).await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let org = Cred::Bearer(&token);
    let created = app
        .post(
            "/api/v1/servers/",
            org,
            json!({"name": "abe-web", "plan_id": SMALL, "os_id": BUSYBOX, "location": "local", "backups_enabled": true}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    let path = format!("/api/server/{id}/backups/schedule");
    let mut schedule = Value::Null;
    for _ in 0..50 {
        let reply = app.get(&path, Cred::Bearer(&jwt)).await;
        if reply.status == StatusCode::OK {
            schedule = reply.json;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(schedule["data"]["origin"], "automatic", "{schedule}");
    assert_eq!(schedule["data"]["frequency"], "daily");
    assert_eq!(schedule["data"]["keepDaily"], 7);

    let off = app
        .call(
            Method::PATCH,
            &format!("/api/v1/servers/{id}/"),
            org,
            Some(json!({"backups_enabled": false})),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    assert_eq!(
        app.get(&path, Cred::Bearer(&jwt)).await.status,
        StatusCode::NOT_FOUND
    );
    let on = app
        .call(
            Method::PATCH,
            &format!("/api/v1/servers/{id}/"),
            org,
            Some(json!({"backups_enabled": true})),
        )
        .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.text);
    assert_eq!(
        app.get(&path, Cred::Bearer(&jwt)).await.status,
        StatusCode::OK
    );
}

tests::on_every_backend!(
    snapshots_and_rollback,
    backups_restore_and_refuse_corruption,
    limits_and_foreign_servers,
    schedules_fire_once_per_slot_and_prune,
    automatic_backups_follow_backups_enabled,
);

/// Every snapshot and backup event reaches JetStream through the outbox, in the contract's
/// schema, deduplicated by its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_backup_events_are_published() {
    use futures_util::StreamExt as _;
    let nats = tests::fleet::Nats::start().await;
    let mut options = tests::Options::default();
    options.snapshot.nats_url = Some(nats.url.clone().into());
    let mut app = TestApp::start_with(Backend::Sqlite, options).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let (jwt, _, id) = tenant(&app, "eva").await;
    let me = Cred::Bearer(&jwt);
    let snapshots = format!("/api/server/{id}/snapshots");
    let backups = format!("/api/server/{id}/backups");
    async fn done(app: &TestApp, jwt: &str, reply: tests::Reply) -> Value {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        wait_task(app, jwt, &task_of(&reply.json)).await
    }
    let reply = app.post(&snapshots, me, json!({"snapname": "one"})).await;
    done(&app, &jwt, reply).await;
    let reply = app
        .post(
            &format!("{snapshots}/rollback"),
            me,
            json!({"snapname": "one"}),
        )
        .await;
    done(&app, &jwt, reply).await;
    let reply = app
        .call(
            Method::DELETE,
            &snapshots,
            me,
            Some(json!({"snapname": "one"})),
        )
        .await;
    done(&app, &jwt, reply).await;
    let taken = app.post(&backups, me, json!({})).await;
    let backup = taken.json["backup"]["id"].as_i64().expect("id");
    done(&app, &jwt, taken).await;
    let reply = app
        .post(
            &format!("{backups}/restore"),
            me,
            json!({"backupId": backup, "overwrite": true}),
        )
        .await;
    done(&app, &jwt, reply).await;
    let reply = app
        .call(
            Method::DELETE,
            &backups,
            me,
            Some(json!({"backupId": backup})),
        )
        .await;
    done(&app, &jwt, reply).await;
    // And one that fails after its reply.
    app.restart_snapshot_svc(|c| c.faults = vec!["snapshot:measure".to_owned()])
        .await;
    let reply = app.post(&snapshots, me, json!({"snapname": "two"})).await;
    let failed = done(&app, &jwt, reply).await;
    assert_eq!(failed["state"], "failed", "{failed}");

    let client = async_nats::connect(&nats.url).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let stream = js
        .get_stream("VPS_EVENTS")
        .await
        .expect("the events stream");
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut seen: Vec<(String, Value)> = Vec::new();
    while !seen.iter().any(|(s, _)| s == "vps.events.snapshot.failed") {
        let next = tokio::time::timeout(std::time::Duration::from_secs(15), messages.next())
            .await
            .unwrap_or_else(|_| panic!("events arrive: {seen:?}"))
            .expect("a message")
            .expect("no error");
        let payload: Value = serde_json::from_slice(&next.payload).expect("JSON");
        let msg_id = next
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_owned());
        assert_eq!(
            msg_id.as_deref(),
            payload["id"].as_str(),
            "deduplicated by the event id"
        );
        next.ack().await.expect("ack");
        if !next.subject.starts_with("vps.events.server.") {
            seen.push((next.subject.to_string(), payload));
        }
    }
    let subjects: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        vec![
            "vps.events.snapshot.created",
            "vps.events.snapshot.restored",
            "vps.events.snapshot.deleted",
            "vps.events.backup.created",
            "vps.events.backup.restored",
            "vps.events.backup.deleted",
            "vps.events.snapshot.failed",
        ]
    );
    for (subject, payload) in &seen {
        assert_eq!(payload["version"], 1, "{payload}");
        assert_eq!(payload["serverId"], id, "{payload}");
        assert_eq!(
            Some(payload["type"].as_str().unwrap_or("")),
            subject.rsplit('.').next()
        );
        assert!(
            payload["ownerId"].as_i64().is_some_and(|o| o > 0),
            "{payload}"
        );
    }
    let (_, failure) = seen.last().expect("the failure");
    assert_eq!(failure["operation"], "create");
    assert!(
        failure["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("measure")),
        "{failure}"
    );
    assert_eq!(seen[5].1["cause"], "owner");
}

/// A plan may allow a server fewer (or more) snapshots than the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_sets_its_own_snapshot_limit() {
    let app = TestApp::start(Backend::Sqlite).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let catalog = app.get("/api/catalog", Cred::Bearer(&admin)).await;
    let plan = catalog.json["tariffs"]
        .as_array()
        .and_then(|t| t.iter().find(|p| p["id"] == SMALL))
        .cloned()
        .expect("the small plan");
    assert_eq!(plan["snapshotLimit"], 0, "the default applies");
    let body = |limit: u32| {
        json!({"name": plan["name"], "vcpus": plan["vcpus"], "memory": plan["memory"],
               "disk": plan["disk"], "bandwidth": plan["bandwidth"], "price": plan["price"],
               "snapshotLimit": limit})
    };
    let path = format!("/api/admin/plans/{SMALL}");
    let too_many = app
        .call(Method::PUT, &path, Cred::Bearer(&admin), Some(body(5000)))
        .await;
    assert_eq!(
        too_many.status,
        StatusCode::BAD_REQUEST,
        "{}",
        too_many.text
    );
    let set = app
        .call(Method::PUT, &path, Cred::Bearer(&admin), Some(body(1)))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(set.json["snapshotLimit"], 1);

    let (jwt, _, id) = tenant(&app, "pam").await;
    let me = Cred::Bearer(&jwt);
    let snapshots = format!("/api/server/{id}/snapshots");
    let first = app.post(&snapshots, me, json!({"snapname": "one"})).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    wait_task(&app, &jwt, &task_of(&first.json)).await;
    let second = app.post(&snapshots, me, json!({"snapname": "two"})).await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.text);
    assert!(
        second.json["error"]
            .as_str()
            .is_some_and(|e| e.contains("limit")),
        "{}",
        second.text
    );
}
