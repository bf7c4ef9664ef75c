//! What clients do without waiting for us: delete a server they just ordered or are
//! restarting, send an administrator's suspend, unsuspend and delete back to back, describe
//! a node's processor in words. None of it may get a 409 for the client's own previous
//! request, and nothing may be left behind. Needs root, LXC and `lxc-net`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::fleet::{ContainerDir, balance, grant, held, lxc_node, pool, wait_task};
use tests::{ADMIN_API_KEY, Backend, Cred, TestApp};

const BUSYBOX: i64 = 1;
const SMALL: i64 = 1;

/// Waits until the container directory is empty and node-svc holds nothing for servers.
async fn nothing_left(app: &TestApp, dir: &ContainerDir, node: i64) {
    for _ in 0..600 {
        if dir.containers().is_empty() && held(app, node).await == ((0, 0, 0), 0) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "left behind: containers {:?}, held {:?}",
        dir.containers(),
        held(app, node).await
    );
}

/// Waits until the owner's panel list no longer shows the server.
async fn gone(app: &TestApp, jwt: &str, id: i64) {
    for _ in 0..600 {
        let one = app
            .get(&format!("/api/server/{id}"), Cred::Bearer(jwt))
            .await;
        if one.status == StatusCode::NOT_FOUND {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("server {id} is still there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_deleted_right_after_ordering_is_gone_in_every_dialect() {
    let app = TestApp::start(Backend::Sqlite).await;
    let dir = ContainerDir::new();
    let node = lxc_node(&app, &dir, 8192).await;
    pool(&app, node, "192.0.2.10-192.0.2.40", "192.0.2.1/24").await;
    let admin = app.admin_token().await;
    let (dana, jwt) = app.user("dana").await;
    grant(&app, &admin, dana, 100).await;
    let me = Cred::Bearer(&jwt);
    let vpsorg = app.mint(&jwt, "vpsorg", false).await["token"]
        .as_str()
        .expect("token")
        .to_owned();

    // Panel: order, then delete at once.
    let created = app
        .post(
            "/api/server/create",
            me,
            json!({"osId": BUSYBOX, "tariffId": SMALL, "name": "oops"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    let deleted = app.delete(&format!("/api/server/{id}"), me).await;
    assert!(
        deleted.status.is_success(),
        "a delete during the create is accepted: {}",
        deleted.text
    );
    let again = app.delete(&format!("/api/server/{id}"), me).await;
    assert!(
        again.status.is_success() || again.status == StatusCode::NOT_FOUND,
        "a repeated delete is no conflict: {}",
        again.text
    );
    gone(&app, &jwt, id).await;
    nothing_left(&app, &dir, node).await;
    assert_eq!(
        balance(&app, &jwt).await,
        100,
        "an unwound create gives the first hour back"
    );

    // VPS.org: the same, with its own routes.
    let created = app
        .post(
            "/api/v1/servers/",
            Cred::Bearer(&vpsorg),
            json!({"name": "oops-2", "plan_id": SMALL, "os_id": BUSYBOX, "location": "local",
                   "hostname": "oops2.example.com", "backups_enabled": false}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    let deleted = app
        .delete(&format!("/api/v1/servers/{id}/"), Cred::Bearer(&vpsorg))
        .await;
    assert!(deleted.status.is_success(), "{}", deleted.text);
    gone(&app, &jwt, id).await;
    nothing_left(&app, &dir, node).await;

    // During a restart: the restart finishes, then the delete runs.
    let created = app
        .post(
            "/api/server/create",
            me,
            json!({"osId": BUSYBOX, "tariffId": SMALL, "name": "restarted"}),
        )
        .await;
    let id = created.json["id"].as_i64().expect("id");
    let task = wait_task(&app, &jwt, created.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    let restart = app
        .post(&format!("/api/server/{id}/restart"), me, json!({}))
        .await;
    assert!(restart.status.is_success(), "{}", restart.text);
    let deleted = app.delete(&format!("/api/server/{id}"), me).await;
    assert!(
        deleted.status.is_success(),
        "a delete during a restart is accepted: {}",
        deleted.text
    );
    let power = app
        .post(&format!("/api/server/{id}/start"), me, json!({}))
        .await;
    assert!(
        power.status == StatusCode::CONFLICT || power.status == StatusCode::NOT_FOUND,
        "a server on its way out takes no more actions: {}",
        power.text
    );
    let restart_task = wait_task(&app, &jwt, restart.json["taskId"].as_str().expect("task")).await;
    assert_eq!(restart_task["state"], "succeeded", "{restart_task}");
    gone(&app, &jwt, id).await;
    nothing_left(&app, &dir, node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skyport_admin_actions_back_to_back_never_conflict() {
    let app = TestApp::start(Backend::Sqlite).await;
    let dir = ContainerDir::new();
    let node = lxc_node(&app, &dir, 4096).await;
    let key = Cred::ApiKey(ADMIN_API_KEY);
    let user = app
        .post(
            "/api/auth/create-user",
            key,
            json!({"username": "skye", "email": "skye@example.com", "password": "skye-password-1", "userId": "skye-1"}),
        )
        .await;
    assert!(user.status.is_success(), "{}", user.text);
    let deployed = app
        .post(
            "/api/instances/deploy",
            key,
            json!({"image": "BusyBox", "memory": "256", "cpu": "1", "nodeId": node.to_string(),
                   "name": "game-1", "user": "skye-1"}),
        )
        .await;
    assert!(deployed.status.is_success(), "{}", deployed.text);
    let id = deployed.json["id"].as_str().expect("id").to_owned();
    let mut status = Value::Null;
    for _ in 0..300 {
        let one = app.post("/api/getInstance", key, json!({"id": id})).await;
        status = one.json["status"].clone();
        if status == "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "running");

    // As a Skyport client sends them: each right after the previous answer.
    let suspended = app
        .post(&format!("/api/instances/suspend/{id}"), key, json!({}))
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.text);
    assert_eq!(suspended.json["suspended"], true);
    let lifted = app
        .post(&format!("/api/instances/unsuspend/{id}"), key, json!({}))
        .await;
    assert_eq!(lifted.status, StatusCode::OK, "{}", lifted.text);
    let deleted = app
        .call(
            Method::DELETE,
            "/api/instance/delete",
            key,
            Some(json!({"id": id})),
        )
        .await;
    assert!(deleted.status.is_success(), "{}", deleted.text);
    nothing_left(&app, &dir, node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skyport_node_takes_a_processor_description() {
    let app = TestApp::start(Backend::Sqlite).await;
    let key = Cred::ApiKey(ADMIN_API_KEY);
    let dir = ContainerDir::new();
    let body = |name: &str, processor: Value, cores: Option<u32>| {
        let mut body = json!({"name": name, "ram": 8192, "disk": 100, "processor": processor,
                              "driver": "lxc", "lxcPath": dir.path()});
        if let Some(cores) = cores {
            body["cores"] = json!(cores);
        }
        body
    };
    let described = app
        .post(
            "/api/nodes/create",
            key,
            body("epyc", json!("AMD EPYC 7543"), Some(16)),
        )
        .await;
    assert_eq!(described.status, StatusCode::CREATED, "{}", described.text);
    assert_eq!(described.json["processor"], "AMD EPYC 7543");
    assert_eq!(described.json["cores"], 16);
    let counted = app
        .post("/api/nodes/create", key, body("counted", json!("8"), None))
        .await;
    assert_eq!(counted.status, StatusCode::CREATED, "{}", counted.text);
    assert_eq!(counted.json["cores"], 8);
    let number = app
        .post("/api/nodes/create", key, body("number", json!(4), None))
        .await;
    assert_eq!(number.status, StatusCode::CREATED, "{}", number.text);
    assert_eq!(number.json["processor"], "4");
    let uncounted = app
        .post(
            "/api/nodes/create",
            key,
            body("vague", json!("AMD EPYC 7543"), None),
        )
        .await;
    assert_eq!(
        uncounted.status,
        StatusCode::BAD_REQUEST,
        "{}",
        uncounted.text
    );
    assert!(
        uncounted.json["error"]
            .as_str()
            .is_some_and(|e| e.contains("cores")),
        "{}",
        uncounted.text
    );
}
