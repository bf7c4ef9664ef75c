//! Servers end to end, through the gateway, on a real LXC node: every server endpoint of the
//! four dialects, their refusals (wrong state, foreign server, no credits, bad input) and
//! their error shapes. Needs root, LXC and `lxc-net` (deploy/test.sh provides them).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::fleet::{
    ContainerDir, balance, grant, held, lxc_node, pool, wait_server, wait_status, wait_task,
};
use tests::{ADMIN_API_KEY, Backend, Cred, TestApp};

/// Image 1 of the shipped catalog is BusyBox (`lxc = "busybox"`); plan 1 is "Small"
/// (1 vCPU, 512 MB, 5 GB, 300 a month, so 1 an hour).
const BUSYBOX: i64 = 1;
const SMALL: i64 = 1;

async fn panel_lifecycle(backend: Backend) {
    let app = TestApp::start(backend).await;
    let dir = ContainerDir::new();
    let node = lxc_node(&app, &dir, 4096).await;
    pool(&app, node, "192.0.2.10-192.0.2.20", "192.0.2.1/24").await;
    let admin = app.admin_token().await;
    let (amy, jwt) = app.user("amy").await;
    let (_, bob) = app.user("bob").await;
    grant(&app, &admin, amy, 100).await;
    let me = Cred::Bearer(&jwt);

    let created = app
        .post(
            "/api/server/create",
            me,
            json!({"osId": BUSYBOX, "tariffId": SMALL, "name": "web-1"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.json["status"], "creating");
    let id = created.json["id"].as_i64().expect("id");
    let password = created.json["rootPassword"].as_str().expect("password");
    assert!(password.len() >= 16, "a generated root password");
    assert_eq!(balance(&app, &jwt).await, 99, "the first hour is charged");

    let task = wait_task(&app, &jwt, created.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(
        task["stepsDone"],
        json!([
            "credits",
            "place",
            "address",
            "guest",
            "from_backup",
            "start",
            "password",
            "backups"
        ])
    );
    let server = app.get(&format!("/api/server/{id}"), me).await;
    assert_eq!(server.status, StatusCode::OK);
    assert_eq!(server.json["status"], "running");
    assert_eq!(server.json["tariff"]["price"], 300);
    assert_eq!(server.json["os"]["type"], "linux");
    let ip = server.json["ipAddress"].as_str().expect("an address");
    assert!(ip.starts_with("192.0.2."), "{ip}");
    let containers = dir.containers();
    assert_eq!(containers.len(), 1, "one container: {containers:?}");
    assert!(dir.running(&containers[0]));
    assert!(
        !server.text.contains(password),
        "the password is shown only once"
    );

    let list = app.get("/api/server", me).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json.as_array().map(Vec::len), Some(1));
    assert_eq!(list.json[0]["rootPassword"], Value::Null);
    assert_eq!(list.json[0]["userId"], amy);

    let status = app.get(&format!("/api/server/{id}/status"), me).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text);
    let status = wait_status(&app, &jwt, &format!("/api/server/{id}/status"), |s| {
        s["stats"]["status"] == "success"
    })
    .await;
    assert_eq!(status["stats"]["data"]["status"], "running");
    assert!(status["stats"]["data"]["memory"]["max"].as_u64() > Some(0));

    // Another user sees nothing of it.
    let foreign = Cred::Bearer(&bob);
    for (method, path) in [
        (Method::GET, format!("/api/server/{id}")),
        (Method::GET, format!("/api/server/{id}/status")),
        (Method::POST, format!("/api/server/{id}/stop")),
        (Method::POST, format!("/api/server/{id}/password")),
        (Method::DELETE, format!("/api/server/{id}")),
    ] {
        let reply = app
            .call(method.clone(), &path, foreign, Some(json!({})))
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert!(reply.json["error"].is_string(), "panel error shape");
    }
    let foreign_task = app
        .get(
            &format!(
                "/api/tasks/{}",
                created.json["taskId"].as_str().unwrap_or("")
            ),
            foreign,
        )
        .await;
    assert_eq!(foreign_task.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/api/server", foreign).await.json,
        json!([]),
        "bob's list is empty"
    );

    // Power: wrong-state actions are refused with 409.
    let again = app
        .post(&format!("/api/server/{id}/start"), me, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert!(
        again.json["error"]
            .as_str()
            .is_some_and(|e| e.contains("already running"))
    );
    let stop = app
        .post(&format!("/api/server/{id}/stop"), me, json!({}))
        .await;
    assert_eq!(stop.status, StatusCode::OK, "{}", stop.text);
    assert_eq!(stop.json["action"], "stop");
    let task = wait_task(&app, &jwt, stop.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    assert!(!dir.running(&containers[0]), "the container stopped");
    let busy = app
        .post(&format!("/api/server/{id}/restart"), me, json!({}))
        .await;
    assert_eq!(
        busy.status,
        StatusCode::CONFLICT,
        "restart needs a running server"
    );
    let password_stopped = app
        .post(&format!("/api/server/{id}/password"), me, json!({}))
        .await;
    assert_eq!(password_stopped.status, StatusCode::CONFLICT);

    // Resize while stopped, partially.
    let resize = app
        .call(
            Method::PUT,
            &format!("/api/server/{id}/resize"),
            me,
            Some(json!({"cores": 2, "memory": 768})),
        )
        .await;
    assert_eq!(resize.status, StatusCode::OK, "{}", resize.text);
    let task = wait_task(&app, &jwt, resize.json["data"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(
        held(&app, node).await.0,
        (2, 768, 5),
        "the reservation follows"
    );
    for bad in [
        json!({"cores": 0}),
        json!({"memory": 1}),
        json!({"disk": 1}),
        json!({}),
        json!({"cores": "two"}),
    ] {
        let reply = app
            .call(
                Method::PUT,
                &format!("/api/server/{id}/resize"),
                me,
                Some(bad.clone()),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.text
        );
    }

    let start = app
        .post(&format!("/api/server/{id}/start"), me, json!({}))
        .await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.text);
    wait_task(&app, &jwt, start.json["taskId"].as_str().expect("task")).await;
    assert!(dir.running(&containers[0]));
    let restart = app
        .post(&format!("/api/server/{id}/restart"), me, json!({}))
        .await;
    assert_eq!(restart.status, StatusCode::OK);
    let task = wait_task(&app, &jwt, restart.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");

    let new_password = app
        .post(&format!("/api/server/{id}/password"), me, json!({}))
        .await;
    assert_eq!(new_password.status, StatusCode::OK, "{}", new_password.text);
    let fresh = new_password.json["password"].as_str().expect("password");
    assert!(fresh.len() >= 16 && fresh != password);
    let task = wait_task(
        &app,
        &jwt,
        new_password.json["taskId"].as_str().expect("task"),
    )
    .await;
    assert_eq!(task["state"], "succeeded", "{task}");

    // Reinstall: a new guest from the image, a new password, the same server.
    let before = dir.containers();
    let reinstall = app
        .post(
            &format!("/api/server/{id}/reinstall"),
            me,
            json!({"osId": BUSYBOX}),
        )
        .await;
    assert_eq!(reinstall.status, StatusCode::OK, "{}", reinstall.text);
    let third = reinstall.json["password"].as_str().expect("password");
    assert!(third.len() >= 16 && third != fresh);
    let task = wait_task(&app, &jwt, reinstall.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(
        task["stepsDone"],
        json!(["power_off", "remove_guest", "guest", "start", "password"])
    );
    assert_eq!(dir.containers(), before, "the same guest name, rebuilt");
    assert!(dir.running(&before[0]));
    let bad_image = app
        .post(
            &format!("/api/server/{id}/reinstall"),
            me,
            json!({"osId": 999}),
        )
        .await;
    assert_eq!(bad_image.status, StatusCode::BAD_REQUEST);

    let console = app
        .post("/api/server/console", me, json!({"vmid": id}))
        .await;
    assert_eq!(console.status, StatusCode::OK, "{}", console.text);
    assert!(
        console.json["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("/api/console/ws?ticket="))
    );
    let foreign_console = app
        .post("/api/server/console", foreign, json!({"vmid": id}))
        .await;
    assert_eq!(foreign_console.status, StatusCode::NOT_FOUND);

    // Bad input on create.
    for bad in [
        json!({"osId": BUSYBOX}),
        json!({"osId": 999, "tariffId": SMALL}),
        json!({"osId": BUSYBOX, "tariffId": 999}),
        json!({"osId": BUSYBOX, "tariffId": SMALL, "name": "bad name"}),
        json!({"osId": BUSYBOX, "tariffId": SMALL, "hostname": "localhost"}),
        json!({"osId": "one", "tariffId": SMALL}),
    ] {
        let reply = app.post("/api/server/create", me, bad.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.text
        );
        assert!(reply.json["error"].is_string());
    }

    let deleted = app.delete(&format!("/api/server/{id}"), me).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(deleted.json["status"], "deleted");
    let task = wait_task(&app, &jwt, deleted.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(
        app.get(&format!("/api/server/{id}"), me).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(dir.containers().is_empty(), "the container is gone");
    assert_eq!(
        held(&app, node).await,
        ((0, 0, 0), 0),
        "capacity and address released"
    );
}

tests::on_every_backend!(panel_lifecycle);

/// A user with credits, their VPS.org token, and a running server.
async fn vpsorg_setup(app: &TestApp, name: &str) -> (String, String, i64) {
    let admin = app.admin_token().await;
    let (user, jwt) = app.user(name).await;
    grant(app, &admin, user, 50).await;
    let token = app.mint(&jwt, "vpsorg", false).await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let created = app
        .post(
            "/api/v1/servers/",
            Cred::Bearer(&token),
            json!({"name": format!("{name}-web"), "plan_id": SMALL, "os_id": BUSYBOX,
                   "location": "local", "hostname": format!("{name}.example.com"),
                   "backups_enabled": true}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    (jwt, token, created.json["id"].as_i64().expect("id"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpsorg_servers() {
    let app = TestApp::start(Backend::Sqlite).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let (jwt, token, id) = vpsorg_setup(&app, "vera").await;
    let me = Cred::Bearer(&token);

    let provisioning = app.get(&format!("/api/v1/servers/{id}/"), me).await;
    assert_eq!(provisioning.status, StatusCode::OK);
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;

    let one = app.get(&format!("/api/v1/servers/{id}/"), me).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_eq!(one.json["status"], "active");
    assert_eq!(one.json["hostname"], "vera.example.com");
    assert_eq!(one.json["backups_enabled"], true);
    assert_eq!(one.json["plan"]["vcpus"], 1);
    assert_eq!(one.json["plan"]["memory"], 512);
    assert_eq!(one.json["plan"]["storage"], 5);
    assert_eq!(one.json["os"]["name"], "BusyBox");
    assert!(one.json["resource_usage"]["cpu_percent"].is_number());
    assert!(one.json["resource_usage"]["memory_used"].is_number());
    assert!(one.json.get("ipv6_address").is_some());

    let list = app.get("/api/v1/servers/", me).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json["count"], 1);
    assert_eq!(list.json["results"][0]["id"], id);
    for (filter, count) in [
        ("?status=active", 1),
        ("?status=stopped", 0),
        ("?location=local", 1),
        ("?location=elsewhere", 0),
        ("?status=active&location=local", 1),
    ] {
        let reply = app.get(&format!("/api/v1/servers/{filter}"), me).await;
        assert_eq!(reply.status, StatusCode::OK, "{filter}");
        assert_eq!(reply.json["count"], count, "{filter}");
    }
    let bad_filter = app.get("/api/v1/servers/?status=sleeping", me).await;
    assert_eq!(bad_filter.status, StatusCode::BAD_REQUEST);
    assert!(bad_filter.json["detail"].is_string());

    // Wrong state is a 400 in VPS.org.
    let again = app
        .post(&format!("/api/v1/servers/{id}/start/"), me, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.text);
    assert!(
        again.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("already running"))
    );
    let stop = app
        .post(&format!("/api/v1/servers/{id}/stop/"), me, json!({}))
        .await;
    assert_eq!(stop.status, StatusCode::OK, "{}", stop.text);
    assert_eq!(stop.json["status"], "success");
    assert_eq!(stop.json["message"], "Server is stopping");
    assert_eq!(stop.json["server"]["status"], "stopping");
    wait_task(&app, &jwt, stop.json["task_id"].as_str().expect("task")).await;
    let reboot = app
        .post(&format!("/api/v1/servers/{id}/reboot/"), me, json!({}))
        .await;
    assert_eq!(
        reboot.status,
        StatusCode::BAD_REQUEST,
        "reboot needs a running server"
    );
    let start = app
        .post(&format!("/api/v1/servers/{id}/start/"), me, json!({}))
        .await;
    assert_eq!(start.status, StatusCode::OK);
    assert_eq!(start.json["server"]["status"], "starting");
    wait_task(&app, &jwt, start.json["task_id"].as_str().expect("task")).await;
    let reboot = app
        .post(&format!("/api/v1/servers/{id}/reboot/"), me, json!({}))
        .await;
    assert_eq!(reboot.status, StatusCode::OK, "{}", reboot.text);
    assert_eq!(reboot.json["server"]["status"], "rebooting");
    wait_task(&app, &jwt, reboot.json["task_id"].as_str().expect("task")).await;

    // PUT needs every field; PATCH changes some.
    let put_missing = app
        .call(
            Method::PUT,
            &format!("/api/v1/servers/{id}/"),
            me,
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(put_missing.status, StatusCode::BAD_REQUEST);
    assert!(
        put_missing.json["errors"]["hostname"].is_array(),
        "{}",
        put_missing.text
    );
    let put = app
        .call(
            Method::PUT,
            &format!("/api/v1/servers/{id}/"),
            me,
            Some(json!({"name": "renamed", "hostname": "renamed.example.com", "backups_enabled": false})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.json["hostname"], "renamed.example.com");
    assert_eq!(put.json["backups_enabled"], false);
    let patch = app
        .call(
            Method::PATCH,
            &format!("/api/v1/servers/{id}/"),
            me,
            Some(json!({"name": "new-server-name"})),
        )
        .await;
    assert_eq!(patch.status, StatusCode::OK);
    assert_eq!(patch.json["name"], "new-server-name");
    assert_eq!(patch.json["hostname"], "renamed.example.com");
    let bad_patch = app
        .call(
            Method::PATCH,
            &format!("/api/v1/servers/{id}/"),
            me,
            Some(json!({"hostname": "not a host"})),
        )
        .await;
    assert_eq!(bad_patch.status, StatusCode::BAD_REQUEST);
    assert!(bad_patch.json["errors"]["hostname"].is_array());

    // Create refusals.
    for (body, field) in [
        (
            json!({"plan_id": SMALL, "os_id": BUSYBOX, "location": "local"}),
            "name",
        ),
        (
            json!({"name": "x1", "os_id": BUSYBOX, "location": "local"}),
            "plan_id",
        ),
        (
            json!({"name": "x1", "plan_id": SMALL, "os_id": BUSYBOX}),
            "location",
        ),
        (
            json!({"name": "x1", "plan_id": SMALL, "os_id": BUSYBOX, "location": "mars"}),
            "location",
        ),
        (
            json!({"name": "x1", "plan_id": SMALL, "os_id": BUSYBOX, "location": "local", "hostname": "x"}),
            "hostname",
        ),
        (
            json!({"name": "-x", "plan_id": SMALL, "os_id": BUSYBOX, "location": "local"}),
            "name",
        ),
        (
            json!({"name": "x1", "plan_id": "a", "os_id": BUSYBOX, "location": "local"}),
            "plan_id",
        ),
        (
            json!({"name": "x1", "plan_id": SMALL, "os_id": BUSYBOX, "location": "local", "ssh_key_id": 7}),
            "ssh_key_id",
        ),
    ] {
        let reply = app.post("/api/v1/servers/", me, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert!(
            reply.json["errors"][field].is_array(),
            "{body} names {field}: {}",
            reply.text
        );
    }

    // 402 without credits, and nothing is created.
    let (_, poor_jwt) = app.user("poor").await;
    let poor = app.mint(&poor_jwt, "vpsorg", false).await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let refused = app
        .post(
            "/api/v1/servers/",
            Cred::Bearer(&poor),
            json!({"name": "cheap", "plan_id": SMALL, "os_id": BUSYBOX, "location": "local"}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.text
    );
    assert!(refused.json["detail"].is_string());
    assert_eq!(
        app.get("/api/v1/servers/", Cred::Bearer(&poor)).await.json["count"],
        0
    );
    // Foreign servers are 404.
    for (method, path) in [
        (Method::GET, format!("/api/v1/servers/{id}/")),
        (Method::PATCH, format!("/api/v1/servers/{id}/")),
        (Method::DELETE, format!("/api/v1/servers/{id}/")),
        (Method::POST, format!("/api/v1/servers/{id}/stop/")),
    ] {
        let reply = app
            .call(method.clone(), &path, Cred::Bearer(&poor), Some(json!({})))
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert!(reply.json["detail"].is_string());
    }

    let deleted = app.delete(&format!("/api/v1/servers/{id}/"), me).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.text.is_empty());
    let gone = app.get(&format!("/api/v1/servers/{id}/"), me).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    for _ in 0..300 {
        if dir.containers().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(dir.containers().is_empty(), "the container is removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cvm_client_api() {
    let app = TestApp::start(Backend::Sqlite).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let (jwt, _, id) = vpsorg_setup(&app, "carl").await;
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    let pair = app.mint(&jwt, "cvm", true).await;
    let (public, private) = (
        pair["publicToken"].as_str().expect("public").to_owned(),
        pair["privateToken"].as_str().expect("private").to_owned(),
    );
    let me = Cred::Cvm(&public, &private);

    let list = app.get("/api/client/vps/list", me).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let vps = &list.json["response"]["vpses"][0];
    assert_eq!(vps["id"], id.to_string());
    assert_eq!(vps["hostname"], "carl.example.com");
    assert_eq!(vps["guaranteed_ram"], "512");
    assert_eq!(vps["disk_space"], "5120");
    assert_eq!(vps["cpu_count"], "1");
    assert_eq!(vps["traffic_in_limit"], "1000000000000", "split accounting");
    assert!(vps["traffic_out_used"].is_string());
    assert!(vps.get("traffic_limit").is_none());

    let status = app.get(&format!("/api/client/vps/{id}/status"), me).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text);
    assert_eq!(status.json["response"]["status"], "running");
    assert!(status.json["response"]["ram_used"].is_string());
    assert!(status.json["response"]["disk_used"].is_string());
    assert!(status.json["response"]["traffic_in_used"].is_string());

    // Power actions answer when they are done.
    let stop = app
        .post(&format!("/api/client/vps/{id}/stop"), me, json!({}))
        .await;
    assert_eq!(stop.status, StatusCode::OK, "{}", stop.text);
    assert!(stop.json.get("errors").is_none());
    let status = app.get(&format!("/api/client/vps/{id}/status"), me).await;
    assert_eq!(status.json["response"]["status"], "stopped");
    let again = app
        .post(&format!("/api/client/vps/{id}/stop"), me, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.json["errors"][0].is_string(), "{}", again.text);
    let start = app
        .post(&format!("/api/client/vps/{id}/start"), me, json!({}))
        .await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.text);
    let restart = app
        .post(&format!("/api/client/vps/{id}/restart"), me, json!({}))
        .await;
    assert_eq!(restart.status, StatusCode::OK, "{}", restart.text);
    assert_eq!(
        app.get(&format!("/api/client/vps/{id}/status"), me)
            .await
            .json["response"]["status"],
        "running"
    );

    // Another user's pair, a pair without client-API access, and bad ids.
    let (_, other) = app.user("olga").await;
    let theirs = app.mint(&other, "cvm", true).await;
    let foreign = Cred::Cvm(
        theirs["publicToken"].as_str().expect("public"),
        theirs["privateToken"].as_str().expect("private"),
    );
    for (method, path) in [
        (Method::GET, format!("/api/client/vps/{id}/status")),
        (Method::POST, format!("/api/client/vps/{id}/stop")),
    ] {
        let reply = app.call(method, &path, foreign, Some(json!({}))).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(reply.json["errors"][0].is_string());
    }
    assert_eq!(
        app.get("/api/client/vps/list", foreign).await.json["response"]["vpses"],
        json!([])
    );
    let limited = app.mint(&jwt, "cvm", false).await;
    let no_client = Cred::Cvm(
        limited["publicToken"].as_str().expect("public"),
        limited["privateToken"].as_str().expect("private"),
    );
    assert_eq!(
        app.get("/api/client/vps/list", no_client).await.status,
        StatusCode::FORBIDDEN
    );
    let bad = app.get("/api/client/vps/abc/status", me).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json["errors"][0].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skyport_instances_and_images() {
    let app = TestApp::start(Backend::Sqlite).await;
    let dir = ContainerDir::new();
    let node = lxc_node(&app, &dir, 4096).await;
    let key = Cred::ApiKey(ADMIN_API_KEY);

    let images = app.get("/api/images", key).await;
    assert_eq!(images.status, StatusCode::OK, "{}", images.text);
    assert!(
        images
            .json
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i["name"] == "BusyBox" && i["id"] == "1"))
    );
    let user = app
        .post(
            "/api/auth/create-user",
            key,
            json!({"username": "sky", "email": "sky@example.com", "password": "sky-password-1", "userId": "sky-42"}),
        )
        .await;
    assert_eq!(user.status, StatusCode::CREATED, "{}", user.text);

    let missing = app
        .post("/api/instances/deploy", key, json!({"image": "BusyBox"}))
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.json["error"].is_string());
    let unknown_user = app
        .post(
            "/api/instances/deploy",
            key,
            json!({"image": "BusyBox", "memory": "256", "cpu": "1", "nodeId": node.to_string(),
                   "name": "game-1", "user": "nobody"}),
        )
        .await;
    assert_eq!(unknown_user.status, StatusCode::BAD_REQUEST);

    let deployed = app
        .post(
            "/api/instances/deploy",
            key,
            json!({"image": "BusyBox", "memory": "256", "cpu": "1", "ports": "25565,25566",
                   "nodeId": node.to_string(), "name": "game-1", "user": "sky-42",
                   "primary": "25565", "variables": {"EULA": "true"}}),
        )
        .await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text);
    assert_eq!(deployed.json["userId"], "sky-42");
    assert_eq!(deployed.json["memory"], "256");
    assert_eq!(deployed.json["ports"], "25565,25566");
    assert_eq!(deployed.json["primary"], "25565");
    assert_eq!(deployed.json["variables"]["EULA"], "true");
    let id = deployed.json["id"].as_str().expect("id").to_owned();
    assert_eq!(id.len(), 36, "instances are known by UUID");

    let admin = app.admin_token().await;
    let mut running = false;
    for _ in 0..300 {
        let one = app.post("/api/getInstance", key, json!({"id": id})).await;
        assert_eq!(one.status, StatusCode::OK, "{}", one.text);
        if one.json["status"] == "running" {
            running = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(running, "the instance runs");

    let all = app.get("/api/instances", key).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.json.as_array().map(Vec::len), Some(1));
    let theirs = app
        .post("/api/getUserInstance", key, json!({"userId": "sky-42"}))
        .await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.text);
    assert_eq!(theirs.json[0]["id"], id.as_str());
    let nobody = app
        .post("/api/getUserInstance", key, json!({"userId": "ghost"}))
        .await;
    assert_eq!(nobody.status, StatusCode::BAD_REQUEST);
    let no_id = app.post("/api/getInstance", key, json!({})).await;
    assert_eq!(no_id.status, StatusCode::BAD_REQUEST);
    let unknown = app
        .post(
            "/api/getInstance",
            key,
            json!({"id": "00000000-0000-0000-0000-000000000000"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Suspension: stopped, power refused, then lifted.
    let suspended = app
        .post(
            &format!("/api/instances/suspend/{id}"),
            key,
            json!({"id": id}),
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.text);
    assert_eq!(suspended.json["suspended"], true);
    let again = app
        .post(&format!("/api/instances/suspend/{id}"), key, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let owner = app.login("sky", "sky-password-1").await;
    let owner_jwt = owner["accessToken"].as_str().expect("token").to_owned();
    let numeric = deployed_numeric_id(&app, &owner_jwt).await;
    let mut stopped = false;
    for _ in 0..300 {
        if dir.containers().first().is_some_and(|c| !dir.running(c)) {
            stopped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(stopped, "a suspended instance is stopped");
    let start = app
        .post(
            &format!("/api/server/{numeric}/start"),
            Cred::Bearer(&owner_jwt),
            json!({}),
        )
        .await;
    assert_eq!(start.status, StatusCode::CONFLICT, "{}", start.text);
    assert!(
        start.json["error"]
            .as_str()
            .is_some_and(|e| e.contains("suspended"))
    );
    let by_owner = app
        .post(
            &format!("/api/instances/unsuspend/{id}"),
            Cred::Bearer(&owner_jwt),
            json!({}),
        )
        .await;
    assert_eq!(
        by_owner.status,
        StatusCode::UNAUTHORIZED,
        "Skyport takes API keys only"
    );
    // The suspension's own task (stopping the guest) ends before anything else may begin.
    let suspending = app
        .get(&format!("/api/server/{numeric}"), Cred::Bearer(&owner_jwt))
        .await;
    let task = wait_task(
        &app,
        &owner_jwt,
        suspending.json["taskId"].as_str().expect("task"),
    )
    .await;
    assert_eq!(task["kind"], "suspend");
    assert_eq!(task["state"], "succeeded", "{task}");
    let lifted = app
        .post(&format!("/api/instances/unsuspend/{id}"), key, json!({}))
        .await;
    assert_eq!(lifted.status, StatusCode::OK, "{}", lifted.text);
    assert_eq!(lifted.json["suspended"], false);
    assert_eq!(lifted.json["status"], "stopped");

    let deleted = app
        .call(
            Method::DELETE,
            "/api/instance/delete",
            key,
            Some(json!({"id": id})),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::CREATED, "{}", deleted.text);
    let missing = app
        .call(Method::DELETE, "/api/instance/delete", key, Some(json!({})))
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let _ = admin;
    for _ in 0..300 {
        if dir.containers().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(dir.containers().is_empty());
}

async fn deployed_numeric_id(app: &TestApp, jwt: &str) -> i64 {
    app.get("/api/server", Cred::Bearer(jwt)).await.json[0]["id"]
        .as_i64()
        .expect("the owner sees the instance in the panel")
}
