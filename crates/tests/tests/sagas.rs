//! The create saga under failure, crash and concurrency, on a real LXC node: a failure at
//! every step unwinds the ones before it and leaves nothing behind; a process that dies
//! mid-saga resumes on restart; idempotency keys replay; concurrent creates never oversell
//! credits or capacity; billing charges, reminds and suspends; events reach JetStream; and
//! a Proxmox VE node (the fakepve test server) takes servers too.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt as _;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use server_svc::domain::task::TaskKind;
use tests::fleet::{
    ContainerDir, FakePve, Nats, balance, grant, halted, held, lxc_node, pool, wait_server,
    wait_task,
};
use tests::{Backend, Cred, Options, TestApp};

const BUSYBOX: i64 = 1;
const SMALL: i64 = 1;

fn create_body(name: &str) -> Value {
    json!({"osId": BUSYBOX, "tariffId": SMALL, "name": name})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_at_any_create_step_unwinds_and_leaves_nothing() {
    let mut app = TestApp::start(Backend::Sqlite).await;
    let dir = ContainerDir::new();
    let node = lxc_node(&app, &dir, 4096).await;
    pool(&app, node, "198.51.100.10-198.51.100.20", "198.51.100.1/24").await;
    let admin = app.admin_token().await;
    let (user, jwt) = app.user("fay").await;
    grant(&app, &admin, user, 20).await;
    let me = Cred::Bearer(&jwt);

    let steps = server_svc::app::steps(TaskKind::Create);
    for (at, step) in steps.iter().copied().enumerate() {
        // The step fails, and so does the first try of every undo. Once the reply has gone
        // out, the unwind is also interrupted (as if the process died) after the undo of the
        // step before, and repeated after a restart.
        let replied = at >= 2;
        let mut faults = vec![format!("create:{step}")];
        faults.extend(steps.iter().map(|s| format!("create:{s}:undo-fail")));
        let repeat = at.checked_sub(1).filter(|_| replied).map(|i| steps[i]);
        faults.extend(repeat.map(|s| format!("create:{s}:undo-halt")));
        app.restart_server_svc(|c| c.faults = faults).await;
        let before = balance(&app, &jwt).await;
        let created = app
            .post(
                "/api/server/create",
                me,
                create_body(&format!("f-{}", step.replace('_', "-"))),
            )
            .await;
        if !replied {
            // These run before the reply: the request fails and no server exists.
            assert!(created.status.is_client_error(), "{step}: {}", created.text);
            assert!(
                created.json["error"]
                    .as_str()
                    .is_some_and(|e| e.contains(step))
            );
            assert_eq!(app.get("/api/server", me).await.json, json!([]), "{step}");
        } else {
            assert_eq!(
                created.status,
                StatusCode::CREATED,
                "{step}: {}",
                created.text
            );
            let id = created.json["id"].as_i64().expect("id");
            let task_id = created.json["taskId"].as_str().expect("task");
            if repeat.is_some() {
                halted(&app, task_id).await;
                app.restart_server_svc(|c| c.faults.clear()).await;
            }
            let task = wait_task(&app, &jwt, task_id).await;
            assert_eq!(task["state"], "failed", "{step}: {task}");
            assert_eq!(task["stepsDone"], json!([]), "{step}: every step undone");
            assert!(
                task["error"].as_str().is_some_and(|e| e.starts_with(step)),
                "{task}"
            );
            let server = app.get(&format!("/api/server/{id}"), me).await;
            assert_eq!(server.json["status"], "error", "{step}");
            assert_eq!(server.json["ipAddress"], Value::Null, "{step}");
            // The failed server can be deleted; that leaves no trace either.
            let deleted = app.delete(&format!("/api/server/{id}"), me).await;
            assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
            let task = wait_task(&app, &jwt, deleted.json["taskId"].as_str().expect("task")).await;
            assert_eq!(task["state"], "succeeded", "{task}");
        }
        assert_eq!(
            balance(&app, &jwt).await,
            before,
            "{step}: credits refunded"
        );
        assert_eq!(
            held(&app, node).await,
            ((0, 0, 0), 0),
            "{step}: capacity and address released"
        );
        assert!(
            dir.containers().is_empty(),
            "{step}: no container left: {:?}",
            dir.containers()
        );
    }

    // One task at a time: a password change that has not finished (halted, as if the
    // process died) holds off a stop, and finishes after a restart.
    app.restart_server_svc(|c| c.faults.clear()).await;
    let created = app
        .post("/api/server/create", me, create_body("guard"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let guarded = created.json["id"].as_i64().expect("id");
    wait_task(&app, &jwt, created.json["taskId"].as_str().expect("task")).await;
    app.restart_server_svc(|c| c.faults = vec!["password:password:halt".to_owned()])
        .await;
    let password = app
        .post(&format!("/api/server/{guarded}/password"), me, json!({}))
        .await;
    assert_eq!(password.status, StatusCode::OK, "{}", password.text);
    let password_task = password.json["taskId"].as_str().expect("task").to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stop = app
        .post(&format!("/api/server/{guarded}/stop"), me, json!({}))
        .await;
    assert_eq!(stop.status, StatusCode::CONFLICT, "{}", stop.text);
    assert!(
        stop.json["error"]
            .as_str()
            .is_some_and(|e| e.contains("another task"))
    );
    app.restart_server_svc(|c| c.faults.clear()).await;
    let task = wait_task(&app, &jwt, &password_task).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    let deleted = app.delete(&format!("/api/server/{guarded}"), me).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    wait_task(&app, &jwt, deleted.json["taskId"].as_str().expect("task")).await;

    // A failed resize gives the new reservation back and keeps the old size.
    app.restart_server_svc(|c| c.faults = vec!["resize:resize_guest".to_owned()])
        .await;
    let created = app.post("/api/server/create", me, create_body("r1")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    wait_task(&app, &jwt, created.json["taskId"].as_str().expect("task")).await;
    let resize = app
        .call(
            Method::PUT,
            &format!("/api/server/{id}/resize"),
            me,
            Some(json!({"cores": 3, "memory": 1024})),
        )
        .await;
    assert_eq!(resize.status, StatusCode::OK, "{}", resize.text);
    let task = wait_task(&app, &jwt, resize.json["data"].as_str().expect("task")).await;
    assert_eq!(task["state"], "failed", "{task}");
    assert_eq!(
        held(&app, node).await.0,
        (1, 512, 5),
        "only the old size is held"
    );
    let server = app.get(&format!("/api/server/{id}"), me).await;
    assert_eq!(
        server.json["status"], "running",
        "a failed resize returns to the prior state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_interrupted_mid_saga_resumes_on_restart() {
    let options = Options {
        server: server_svc::Config {
            faults: vec!["create:guest:halt".to_owned()],
            stop_grace_secs: 1,
            ..server_svc::Config::default()
        },
        ..Options::default()
    };
    let mut app = TestApp::start_with(Backend::Sqlite, options).await;
    let dir = ContainerDir::new();
    let node = lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let (user, jwt) = app.user("rex").await;
    grant(&app, &admin, user, 10).await;
    let me = Cred::Bearer(&jwt);

    let created = app
        .post("/api/server/create", me, create_body("resume"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    let task_id = created.json["taskId"].as_str().expect("task").to_owned();
    // The guest is built (the driver tags it last), then the saga stops before recording
    // the step, as if the process died there.
    let built = || {
        dir.containers().first().is_some_and(|name| {
            std::path::Path::new(&dir.path())
                .join(name)
                .join("vps-managed")
                .is_file()
        })
    };
    for _ in 0..300 {
        if built() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(built(), "the guest was built");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let task = app.get(&format!("/api/tasks/{task_id}"), me).await.json;
    assert_eq!(task["state"], "running", "{task}");
    // Halted at the guest step: the steps before it are done, in the saga's order.
    let steps = server_svc::app::steps(TaskKind::Create);
    let guest = steps
        .iter()
        .position(|s| *s == "guest")
        .expect("a guest step");
    assert_eq!(task["step"], "guest");
    assert_eq!(task["stepsDone"], json!(steps[..guest]));
    assert_eq!(dir.containers().len(), 1);

    app.restart_server_svc(|c| c.faults.clear()).await;
    let task = wait_task(&app, &jwt, &task_id).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    let server = wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    assert_eq!(server["id"], id);
    let containers = dir.containers();
    assert_eq!(
        containers.len(),
        1,
        "the guest step ran again without a second guest"
    );
    assert!(dir.running(&containers[0]));
    assert_eq!(
        balance(&app, &jwt).await,
        9,
        "the first hour was charged once"
    );
    assert_eq!(held(&app, node).await.0, (1, 512, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_replay_refuse_and_serialize() {
    let app = TestApp::start(Backend::Sqlite).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 8192).await;
    let admin = app.admin_token().await;
    let (user, jwt) = app.user("ida").await;
    grant(&app, &admin, user, 10).await;
    let me = Cred::Bearer(&jwt);

    let first = app
        .post_keyed("/api/server/create", me, create_body("idem"), "key-1")
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = app
        .post_keyed("/api/server/create", me, create_body("idem"), "key-1")
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert!(first.json["rootPassword"].is_string(), "{}", first.text);
    let mut without_password = first.json.clone();
    without_password["rootPassword"] = Value::Null;
    assert_eq!(
        again.json, without_password,
        "the same reply, but the root password is shown only once"
    );
    let other = app
        .post_keyed("/api/server/create", me, create_body("other"), "key-1")
        .await;
    assert_eq!(
        other.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        other.text
    );
    assert!(other.json["error"].is_string());
    let bad_key = app
        .post_keyed("/api/server/create", me, create_body("k"), &"k".repeat(300))
        .await;
    assert_eq!(bad_key.status, StatusCode::BAD_REQUEST);

    // Concurrent requests with one key run once.
    let replies = futures_util::future::join_all(
        (0..8).map(|_| app.post_keyed("/api/server/create", me, create_body("burst"), "key-2")),
    )
    .await;
    let ids: HashSet<i64> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            r.json["id"].as_i64().expect("id")
        })
        .collect();
    assert_eq!(ids.len(), 1, "one server for one key");
    let servers = app.get("/api/server", me).await.json;
    assert_eq!(servers.as_array().map(Vec::len), Some(2));
    assert_eq!(balance(&app, &jwt).await, 8, "two first hours, not nine");
    // Stored replies are sealed, and hold no root password at all.
    let password = first.json["rootPassword"].as_str().expect("password");
    let db = sea_orm::Database::connect(app.server_config.database_url.as_str())
        .await
        .expect("server-svc's database");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT reply FROM idempotency_keys",
        ))
        .await
        .expect("keys");
    assert!(!rows.is_empty());
    for row in rows {
        let reply: Option<String> = row.try_get("", "reply").expect("reply");
        let reply = reply.expect("a finished key has its reply");
        assert!(reply.starts_with("v1:") && !reply.contains(password));
        let decoded = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            reply.trim_start_matches("v1:"),
        )
        .expect("base64");
        assert!(
            !String::from_utf8_lossy(&decoded).contains(password),
            "no password in the clear"
        );
    }

    // Another user's identical key is theirs alone.
    let (other_user, other_jwt) = app.user("ivo").await;
    grant(&app, &admin, other_user, 5).await;
    let theirs = app
        .post_keyed(
            "/api/server/create",
            Cred::Bearer(&other_jwt),
            create_body("idem"),
            "key-1",
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert_ne!(theirs.json["id"], first.json["id"]);

    // Actions too: a repeated stop with its key is the first stop, not a 409.
    let id = first.json["id"].as_i64().expect("id");
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    let stop = app
        .post_keyed(&format!("/api/server/{id}/stop"), me, json!({}), "stop-1")
        .await;
    assert_eq!(stop.status, StatusCode::OK, "{}", stop.text);
    let repeat = app
        .post_keyed(&format!("/api/server/{id}/stop"), me, json!({}), "stop-1")
        .await;
    assert_eq!(repeat.status, StatusCode::OK, "{}", repeat.text);
    assert_eq!(repeat.json["taskId"], stop.json["taskId"]);
    for server in app
        .get("/api/server", me)
        .await
        .json
        .as_array()
        .into_iter()
        .flatten()
    {
        let id = server["id"].as_i64().expect("id");
        wait_server(&app, &jwt, id, |s| {
            s["status"] == "running" || s["status"] == "stopped"
        })
        .await;
    }
}

tests::on_every_backend!(a_key_whose_request_died_is_taken_over);

/// A request that dies holding its idempotency key (its replica killed mid-request) does not
/// hold the key's repeats off: once its claim lapses, a repeat answers with the task its
/// change made, or makes the change when it made none.
async fn a_key_whose_request_died_is_taken_over(backend: Backend) {
    let app = TestApp::start(backend).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let (user, jwt) = app.user("ina").await;
    grant(&app, &admin, user, 10).await;
    let me = Cred::Bearer(&jwt);
    let created = app
        .post_keyed("/api/server/create", me, create_body("lapse"), "create-1")
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    let db = sea_orm::Database::connect(app.server_config.database_url.as_str())
        .await
        .expect("server-svc's database");
    let sql = |q: String| {
        let db = &db;
        async move {
            db.execute_raw(Statement::from_string(db.get_database_backend(), q))
                .await
                .expect("sql")
        }
    };

    // Died after its change committed: the stop's task is on the key, its reply is not.
    let stop = app
        .post_keyed(&format!("/api/server/{id}/stop"), me, json!({}), "stop-1")
        .await;
    assert_eq!(stop.status, StatusCode::OK, "{}", stop.text);
    let task = stop.json["taskId"].as_str().expect("task").to_owned();
    let lapsed = sql(format!(
        "UPDATE idempotency_keys SET reply = NULL, claimed_until = 1 \
         WHERE scope = '{user}:stop-1' AND task_id = '{task}'"
    ))
    .await;
    assert_eq!(
        lapsed.rows_affected(),
        1,
        "the stop's change noted its task"
    );
    let repeat = app
        .post_keyed(&format!("/api/server/{id}/stop"), me, json!({}), "stop-1")
        .await;
    assert_eq!(repeat.status, StatusCode::OK, "{}", repeat.text);
    assert_eq!(
        repeat.json["taskId"],
        task.as_str(),
        "answered, not stopped again"
    );
    assert_eq!(wait_task(&app, &jwt, &task).await["state"], "succeeded");
    let stopped = wait_server(&app, &jwt, id, |s| s["status"] == "stopped").await;
    assert_eq!(stopped["taskId"], task.as_str(), "no second stop task");
    let again = app
        .post_keyed(&format!("/api/server/{id}/stop"), me, json!({}), "stop-1")
        .await;
    assert_eq!(
        again.json["taskId"],
        task.as_str(),
        "the answer is kept again"
    );

    // Died before its change: a start's claim on another key, lapsed, with no task.
    let start = app
        .post_keyed(&format!("/api/server/{id}/start"), me, json!({}), "start-1")
        .await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.text);
    let first_start = start.json["taskId"].as_str().expect("task").to_owned();
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    let stop = app
        .post_keyed(&format!("/api/server/{id}/stop"), me, json!({}), "stop-2")
        .await;
    assert_eq!(stop.status, StatusCode::OK, "{}", stop.text);
    wait_server(&app, &jwt, id, |s| s["status"] == "stopped").await;
    // The same start request (a key is not part of it), claimed by a request that died.
    sql(format!(
        "INSERT INTO idempotency_keys \
         (scope, request_hash, reply, created_at, claim_token, claimed_until, task_id) \
         SELECT '{user}:start-2', request_hash, NULL, 1, 'dead', 1, NULL \
         FROM idempotency_keys WHERE scope = '{user}:start-1'"
    ))
    .await;
    let taken = app
        .post_keyed(&format!("/api/server/{id}/start"), me, json!({}), "start-2")
        .await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.text);
    let second_start = taken.json["taskId"].as_str().expect("task");
    assert_ne!(second_start, first_start, "the start was made");
    assert_eq!(
        wait_task(&app, &jwt, second_start).await["state"],
        "succeeded"
    );
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;

    // A claim still held is waited on, not taken over: its repeat is told to come back.
    sql(format!(
        "INSERT INTO idempotency_keys \
         (scope, request_hash, reply, created_at, claim_token, claimed_until, task_id) \
         SELECT '{user}:stop-3', request_hash, NULL, 1, 'alive', {far}, NULL \
         FROM idempotency_keys WHERE scope = '{user}:stop-1'",
        far = i64::MAX / 2
    ))
    .await;
    let waited = app
        .post_keyed(&format!("/api/server/{id}/stop"), me, json!({}), "stop-3")
        .await;
    assert_eq!(waited.status, StatusCode::CONFLICT, "{}", waited.text);
    let server = app.get(&format!("/api/server/{id}"), me).await;
    assert_eq!(server.json["status"], "running", "nothing was stopped");
}

/// Sends twenty concurrent creates; returns how many got each status.
async fn burst(app: &TestApp, jwt: &str, prefix: &str) -> (usize, usize, usize) {
    let replies = futures_util::future::join_all((0..20).map(|i| {
        app.post(
            "/api/server/create",
            Cred::Bearer(jwt),
            create_body(&format!("{prefix}{i}")),
        )
    }))
    .await;
    let count = |status| replies.iter().filter(|r| r.status == status).count();
    let counts = (
        count(StatusCode::CREATED),
        count(StatusCode::PAYMENT_REQUIRED),
        count(StatusCode::INSUFFICIENT_STORAGE),
    );
    assert_eq!(
        counts.0 + counts.1 + counts.2,
        20,
        "only 201, 402 and 507: {:?}",
        replies
            .iter()
            .map(|r| (r.status, &r.text))
            .collect::<Vec<_>>()
    );
    counts
}

/// Waits for every server of the caller to settle, then deletes them all.
async fn settle_and_delete(app: &TestApp, jwt: &str) {
    let servers = app.get("/api/server", Cred::Bearer(jwt)).await.json;
    for server in servers.as_array().into_iter().flatten() {
        let id = server["id"].as_i64().expect("id");
        wait_server(app, jwt, id, |s| s["status"] == "running").await;
        let deleted = app
            .delete(&format!("/api/server/{id}"), Cred::Bearer(jwt))
            .await;
        let task = wait_task(app, jwt, deleted.json["taskId"].as_str().expect("task")).await;
        assert_eq!(task["state"], "succeeded", "{task}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_creates_never_oversell() {
    // Quotas out of the way: this is about capacity and credits.
    let mut options = Options::default();
    options.server.quota = server_svc::QuotaDefaults {
        servers: 100,
        cores: 100,
        memory_mb: 100 * 1024,
        addresses: 100,
    };
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    let dir = ContainerDir::new();
    // Room for exactly four Small servers (512 MB each, no memory overcommit).
    let node = lxc_node(&app, &dir, 2048).await;
    let admin = app.admin_token().await;

    // Capacity: plenty of credits, room for four.
    let (rich, rich_jwt) = app.user("rich").await;
    grant(&app, &admin, rich, 1_000).await;
    let (created, refused, full) = burst(&app, &rich_jwt, "r").await;
    assert_eq!(
        (created, refused, full),
        (4, 0, 16),
        "exactly what the node holds"
    );
    assert_eq!(held(&app, node).await.0, (4, 2048, 20));
    assert_eq!(
        balance(&app, &rich_jwt).await,
        996,
        "refused orders cost nothing"
    );
    settle_and_delete(&app, &rich_jwt).await;
    assert_eq!(held(&app, node).await.0, (0, 0, 0));
    assert!(dir.containers().is_empty());

    // Credits: room for four, money for three.
    let (poor, poor_jwt) = app.user("penny").await;
    grant(&app, &admin, poor, 3).await;
    let (created, refused, full) = burst(&app, &poor_jwt, "p").await;
    assert_eq!(
        (created, refused, full),
        (3, 17, 0),
        "exactly what the balance pays for"
    );
    assert_eq!(
        balance(&app, &poor_jwt).await,
        0,
        "every server paid once, never below zero"
    );
    assert_eq!(held(&app, node).await.0.1, 3 * 512);
    settle_and_delete(&app, &poor_jwt).await;
    assert!(dir.containers().is_empty());
}

async fn outbox(app: &TestApp) -> Vec<(String, Value)> {
    let db = sea_orm::Database::connect(app.server_config.database_url.as_str())
        .await
        .expect("server-svc's database");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT subject, payload FROM outbox ORDER BY seq",
        ))
        .await
        .expect("outbox");
    rows.iter()
        .map(|row| {
            let subject: String = row.try_get("", "subject").expect("subject");
            let payload: String = row.try_get("", "payload").expect("payload");
            (
                subject,
                serde_json::from_str(&payload).expect("JSON payload"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_charges_hourly_then_reminds_then_suspends() {
    let options = Options {
        server: server_svc::Config {
            billing_period_secs: 1,
            billing_tick_secs: 1,
            suspend_grace_secs: 2,
            stop_grace_secs: 1,
            ..server_svc::Config::default()
        },
        ..Options::default()
    };
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let (user, jwt) = app.user("bill").await;
    grant(&app, &admin, user, 3).await;
    let me = Cred::Bearer(&jwt);

    let created = app
        .post("/api/server/create", me, create_body("billed"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    let server = wait_server(&app, &jwt, id, |s| s["status"] == "suspended").await;
    assert_eq!(server["status"], "suspended");
    assert_eq!(
        balance(&app, &jwt).await,
        0,
        "charged down to zero, never below"
    );
    let start = app
        .post(&format!("/api/server/{id}/start"), me, json!({}))
        .await;
    assert_eq!(
        start.status,
        StatusCode::CONFLICT,
        "suspended servers refuse power"
    );
    let containers = dir.containers();
    for _ in 0..100 {
        if !dir.running(&containers[0]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !dir.running(&containers[0]),
        "a suspended server is stopped"
    );

    let events = outbox(&app).await;
    let subjects: Vec<&str> = events.iter().map(|(s, _)| s.as_str()).collect();
    // First a warning that the balance runs low, then the overdue notice, each once per
    // episode, both before the suspension.
    let stage_at = |stage: &str| {
        let at: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, (s, p))| s == "vps.events.billing.payment_reminder" && p["stage"] == stage)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            at.len(),
            1,
            "one {stage} reminder per episode: {subjects:?}"
        );
        at[0]
    };
    let low_at = stage_at("low_balance");
    let overdue_at = stage_at("overdue");
    let suspended_at = subjects
        .iter()
        .position(|s| *s == "vps.events.server.suspended")
        .expect("suspended");
    assert!(
        low_at < overdue_at && overdue_at < suspended_at,
        "warned, then reminded, then suspended: {subjects:?}"
    );
    assert_eq!(events[low_at].1["daysLeft"], 0, "{:?}", events[low_at]);
    assert!(subjects.contains(&"vps.events.server.created"));
    let ids: HashSet<&str> = events
        .iter()
        .filter_map(|(_, p)| p["id"].as_str())
        .collect();
    assert_eq!(ids.len(), events.len(), "every event has its own id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_events_reach_jetstream() {
    let nats = Nats::start().await;
    let options = Options {
        server: server_svc::Config {
            nats_url: Some(nats.url.clone().into()),
            stop_grace_secs: 1,
            ..server_svc::Config::default()
        },
        ..Options::default()
    };
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let (user, jwt) = app.user("eve").await;
    grant(&app, &admin, user, 10).await;
    let me = Cred::Bearer(&jwt);
    let created = app
        .post("/api/server/create", me, create_body("evented"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    let deleted = app.delete(&format!("/api/server/{id}"), me).await;
    wait_task(&app, &jwt, deleted.json["taskId"].as_str().expect("task")).await;

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
    let mut seen = Vec::new();
    let mut messages = consumer.messages().await.expect("messages");
    while seen
        .iter()
        .all(|(s, _): &(String, Value)| s != "vps.events.server.deleted")
    {
        let next = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("events arrive")
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
        seen.push((next.subject.to_string(), payload));
        next.ack().await.expect("ack");
    }
    let subjects: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects.first(),
        Some(&"vps.events.server.created"),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&"vps.events.server.state"),
        "{subjects:?}"
    );
    assert!(seen.iter().all(|(_, p)| p["serverId"] == id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_on_a_proxmox_node() {
    let pve = FakePve::start();
    let app = TestApp::start(Backend::Sqlite).await;
    pve.register(&app, "pve-test").await;
    let admin = app.admin_token().await;
    let (user, jwt) = app.user("pat").await;
    grant(&app, &admin, user, 100).await;
    let me = Cred::Bearer(&jwt);

    // Image 2 (Debian 12) has a Proxmox template; BusyBox has none.
    let created = app
        .post(
            "/api/server/create",
            me,
            json!({"osId": 2, "tariffId": 2, "name": "pve-web"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    let task = wait_task(&app, &jwt, created.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    let status = app.get(&format!("/api/server/{id}/status"), me).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text);
    assert_eq!(status.json["stats"]["data"]["status"], "running");
    assert!(
        !status
            .text
            .contains(pve.info["token"].as_str().expect("token")),
        "no hypervisor credential in any reply"
    );
    let stop = app
        .post(&format!("/api/server/{id}/stop"), me, json!({}))
        .await;
    let task = wait_task(&app, &jwt, stop.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");

    let busybox = app
        .post("/api/server/create", me, create_body("no-template"))
        .await;
    assert_eq!(busybox.status, StatusCode::CREATED);
    let task = wait_task(&app, &jwt, busybox.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "failed");
    assert!(
        task["error"]
            .as_str()
            .is_some_and(|e| e.contains("no template for proxmox")),
        "{task}"
    );

    let deleted = app.delete(&format!("/api/server/{id}"), me).await;
    let task = wait_task(&app, &jwt, deleted.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");

    // The node goes away: CVM answers 503 and the status is unknown, never stopped.
    let second = app
        .post(
            "/api/server/create",
            me,
            json!({"osId": 2, "tariffId": 2, "name": "pve-two"}),
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    let id = second.json["id"].as_i64().expect("id");
    wait_task(&app, &jwt, second.json["taskId"].as_str().expect("task")).await;
    let pair = app.mint(&jwt, "cvm", true).await;
    let cvm = Cred::Cvm(
        pair["publicToken"].as_str().expect("public"),
        pair["privateToken"].as_str().expect("private"),
    );
    let token = pve.info["token"].as_str().expect("token").to_owned();
    drop(pve);
    let stop = app
        .post(&format!("/api/client/vps/{id}/stop"), cvm, json!({}))
        .await;
    assert_eq!(
        stop.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        stop.text
    );
    assert!(stop.json["errors"][0].is_string());
    // The node's samples go stale within a few of monitor-svc's cycles.
    let mut status = app.get(&format!("/api/client/vps/{id}/status"), cvm).await;
    for _ in 0..100 {
        if status.json["response"]["status"] == "unknown" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        status = app.get(&format!("/api/client/vps/{id}/status"), cvm).await;
    }
    assert_eq!(status.status, StatusCode::OK, "{}", status.text);
    assert_eq!(status.json["response"]["status"], "unknown");
    assert!(!status.text.contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_charged_for_the_periods_it_ran_and_then_no_more() {
    let options = Options {
        server: server_svc::Config {
            billing_period_secs: 1,
            billing_tick_secs: 1,
            stop_grace_secs: 1,
            ..server_svc::Config::default()
        },
        ..Options::default()
    };
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let (user, jwt) = app.user("sam").await;
    grant(&app, &admin, user, 100).await;
    let me = Cred::Bearer(&jwt);

    let created = app
        .post("/api/server/create", me, create_body("stopper"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    // Let at least one period pass while it runs.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let stop = app
        .post(&format!("/api/server/{id}/stop"), me, json!({}))
        .await;
    assert_eq!(stop.status, StatusCode::OK, "{}", stop.text);
    wait_task(&app, &jwt, stop.json["taskId"].as_str().expect("task")).await;
    // The period it stopped in is still charged; after that, nothing.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let settled = balance(&app, &jwt).await;
    assert!(
        settled <= 100 - 3,
        "the first hour and the periods it ran were charged: {settled}"
    );
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert_eq!(
        balance(&app, &jwt).await,
        settled,
        "a server that stays stopped is not charged"
    );
}
