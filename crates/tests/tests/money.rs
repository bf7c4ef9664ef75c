//! Money a customer cannot dodge: starting or growing a server needs the next period
//! covered at its price (402), a deleted server's unpaid periods are charged (into debt if
//! need be), and a debt blocks new orders until it is paid. Needs root, LXC and `lxc-net`.

use reqwest::StatusCode;
use serde_json::json;
use tests::fleet::{ContainerDir, balance, grant, lxc_node, wait_task};
use tests::{Backend, Cred, Options, TestApp};

const BUSYBOX: i64 = 1;
/// 1 vCPU, 512 MB, 5 GB: 1 an hour.
const SMALL: i64 = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_resize_need_the_next_period_and_deletes_settle_into_debt() {
    let mut options = Options::default();
    // Two-second periods, and a billing loop too slow to charge them itself.
    options.server.billing_period_secs = 2;
    options.server.billing_tick_secs = 3600;
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 8192).await;
    let admin = app.admin_token().await;
    let (mia, jwt) = app.user("mia").await;
    grant(&app, &admin, mia, 1).await;
    let me = Cred::Bearer(&jwt);

    let created = app
        .post(
            "/api/server/create",
            me,
            json!({"osId": BUSYBOX, "tariffId": SMALL, "name": "thin"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    let task = wait_task(&app, &jwt, created.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(balance(&app, &jwt).await, 0, "the first hour took it all");

    // Growing it would cost more than nothing.
    let resize = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/server/{id}/resize"),
            me,
            Some(json!({"cores": 2})),
        )
        .await;
    assert_eq!(
        resize.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        resize.text
    );
    // Stopped, it cannot be started again on an empty balance.
    let stop = app
        .post(&format!("/api/server/{id}/stop"), me, json!({}))
        .await;
    assert!(stop.status.is_success(), "{}", stop.text);
    wait_task(&app, &jwt, stop.json["taskId"].as_str().expect("task")).await;
    let start = app
        .post(&format!("/api/server/{id}/start"), me, json!({}))
        .await;
    assert_eq!(start.status, StatusCode::PAYMENT_REQUIRED, "{}", start.text);
    assert!(start.json["error"].is_string());

    // Its first period ran out unpaid (it ran in it); the delete charges it, into debt.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let deleted = app.delete(&format!("/api/server/{id}"), me).await;
    assert!(deleted.status.is_success(), "{}", deleted.text);
    for _ in 0..300 {
        if dir.containers().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(dir.containers().is_empty());
    let owed = balance(&app, &jwt).await;
    assert_eq!(owed, -1, "the used period is owed");
    let ledger = app.get("/api/credits", me).await;
    assert!(
        ledger.text.contains("usage"),
        "the debt is in the ledger: {}",
        ledger.text
    );

    // A debt blocks new orders until it is paid.
    let refused = app
        .post(
            "/api/server/create",
            me,
            json!({"osId": BUSYBOX, "tariffId": SMALL, "name": "again"}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.text
    );
    grant(&app, &admin, mia, 2).await;
    let ordered = app
        .post(
            "/api/server/create",
            me,
            json!({"osId": BUSYBOX, "tariffId": SMALL, "name": "again"}),
        )
        .await;
    assert_eq!(ordered.status, StatusCode::CREATED, "{}", ordered.text);
    assert_eq!(
        balance(&app, &jwt).await,
        0,
        "debt paid, first hour charged"
    );
}

tests::on_every_backend!(quotas_hold_under_concurrent_orders_and_administrators_set_them);

async fn quotas_hold_under_concurrent_orders_and_administrators_set_them(backend: Backend) {
    let mut options = Options::default();
    options.server.quota = server_svc::QuotaDefaults {
        servers: 2,
        cores: 16,
        memory_mb: 16 * 1024,
        addresses: 10,
    };
    let app = TestApp::start_with(backend, options).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 16 * 1024).await;
    let admin = app.admin_token().await;
    let (quinn, jwt) = app.user("quinn").await;
    grant(&app, &admin, quinn, 100).await;
    let me = Cred::Bearer(&jwt);

    let mine = app.get("/api/quota", me).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert_eq!(mine.json["limits"]["servers"], 2);
    assert_eq!(mine.json["used"]["servers"], 0);
    assert_eq!(mine.json["custom"], false);

    // Six orders at once: exactly the quota's two are taken.
    let orders = futures_util::future::join_all((0..6).map(|i| {
        app.post(
            "/api/server/create",
            me,
            json!({"osId": BUSYBOX, "tariffId": SMALL, "name": format!("q{i}")}),
        )
    }))
    .await;
    let created = orders
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let refused: Vec<_> = orders
        .iter()
        .filter(|r| r.status == StatusCode::FORBIDDEN)
        .collect();
    assert_eq!((created, refused.len()), (2, 4), "{orders:?}");
    assert!(
        refused[0].json["error"]
            .as_str()
            .is_some_and(|e| e.contains("at most 2 servers")),
        "{}",
        refused[0].text
    );
    let used = app.get("/api/quota", me).await;
    assert_eq!(used.json["used"]["servers"], 2);
    assert_eq!(used.json["used"]["cores"], 2);
    assert_eq!(used.json["used"]["memory"], 1024);

    // An administrator raises it; users cannot.
    let own = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/admin/users/{quinn}/quota"),
            me,
            Some(json!({"servers": 9, "cores": 9, "memory": 9999, "addresses": 9})),
        )
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN);
    let raised = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/admin/users/{quinn}/quota"),
            Cred::Bearer(&admin),
            Some(json!({"servers": 3, "cores": 8, "memory": 4096, "addresses": 3})),
        )
        .await;
    assert_eq!(raised.status, StatusCode::OK, "{}", raised.text);
    assert_eq!(raised.json["custom"], true);
    let bad = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/admin/users/{quinn}/quota"),
            Cred::Bearer(&admin),
            Some(json!({"servers": -1, "cores": 8, "memory": 4096, "addresses": 3})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    let third = app
        .post(
            "/api/server/create",
            me,
            json!({"osId": BUSYBOX, "tariffId": SMALL, "name": "q-third"}),
        )
        .await;
    assert_eq!(third.status, StatusCode::CREATED, "{}", third.text);
    // Growing a server counts against the vCPU quota too: 3 held + 7 more > 8.
    let task = wait_task(&app, &jwt, third.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    let id = third.json["id"].as_i64().expect("id");
    let grow = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/server/{id}/resize"),
            me,
            Some(json!({"cores": 8})),
        )
        .await;
    assert_eq!(grow.status, StatusCode::FORBIDDEN, "{}", grow.text);
    assert!(grow.text.contains("at most 8 vCPUs"), "{}", grow.text);
    let reset = app
        .delete(
            &format!("/api/admin/users/{quinn}/quota"),
            Cred::Bearer(&admin),
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text);
    assert_eq!(reset.json["limits"]["servers"], 2);
    assert_eq!(reset.json["used"]["servers"], 3, "servers held stay");
}
