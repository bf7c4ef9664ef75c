//! Two server-svc replicas on one database (PostgreSQL when the tests have it): sagas
//! started through both, one replica's sagas stopped mid-way as if it died, and the
//! replica itself stopped. Every saga ends exactly once, by whichever replica holds its
//! lease; nothing is charged twice.

use platform::auth::Service;
use platform::grpc::Caller;
use proto::server::v1 as pb;
use tests::fleet::{ContainerDir, balance, grant, lxc_node};
use tests::{Backend, Options, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sagas_survive_a_replica_and_run_once() {
    let backend = Backend::postgres().unwrap_or(Backend::Sqlite);
    let mut options = Options::default();
    options.server.lease_ttl_secs = 3;
    options.server.resume_interval_secs = 1;
    // Replica A stops every create after its start step, as if it died there.
    options.server.faults = vec!["create:start:halt".to_owned()];
    let app = TestApp::start_with(backend, options).await;
    let (b_url, b_shutdown) = app.another_server_svc(|config| config.faults.clear()).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 8192).await;
    let admin = app.admin_token().await;
    let (rae, _) = app.user("rae").await;
    grant(&app, &admin, rae, 10).await;
    let rae_caller = Caller::user(rae);

    let mut a = app.servers_client(Service::Gateway);
    let mut b = pb::servers_client::ServersClient::new(app.signed(
        &b_url,
        Service::Gateway,
        Service::Server,
    ));
    let order = |name: &str| pb::CreateServerRequest {
        name: name.to_owned(),
        plan_id: 1,
        image_id: 1,
        ..Default::default()
    };
    let mut tasks = Vec::new();
    for i in 0..3 {
        let reply = a
            .create_server(rae_caller.request(order(&format!("on-a-{i}"))))
            .await
            .expect("ordered through A")
            .into_inner();
        tasks.push(reply.task_id);
    }
    for i in 0..2 {
        let reply = b
            .create_server(rae_caller.request(order(&format!("on-b-{i}"))))
            .await
            .expect("ordered through B")
            .into_inner();
        tasks.push(reply.task_id);
    }
    // A goes away; B finishes what A left.
    app.stop_server_svc();

    for task_id in &tasks {
        let mut state = pb::TaskState::Unspecified;
        for _ in 0..600 {
            let task = b
                .get_task(rae_caller.request(pb::GetTaskRequest {
                    id: task_id.clone(),
                }))
                .await
                .expect("task")
                .into_inner();
            state = task.state();
            if matches!(state, pb::TaskState::Succeeded | pb::TaskState::Failed) {
                assert_eq!(
                    task.steps_done,
                    server_svc::app::steps(server_svc::domain::task::TaskKind::Create),
                    "every step once, in order"
                );
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(state, pb::TaskState::Succeeded, "task {task_id}");
    }
    let servers = b
        .list_servers(rae_caller.request(pb::ListServersRequest::default()))
        .await
        .expect("servers")
        .into_inner()
        .servers;
    assert_eq!(servers.len(), 5);
    assert!(
        servers
            .iter()
            .all(|s| s.status() == pb::ServerStatus::Running),
        "{servers:?}"
    );
    assert_eq!(dir.containers().len(), 5, "one guest per server");
    // Five first hours, each charged once (Small costs 1 an hour).
    let jwt = tests::token_of(&app.login("rae", tests::USER_PASSWORD).await);
    assert_eq!(balance(&app, &jwt).await, 5);
    b_shutdown.trigger();
}

/// Two replicas bill one server with one-second periods while the one that holds the
/// billing lease stops half-way: the other takes the lease over, and every period is
/// charged exactly once, in order, with no gap longer than the takeover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_billing_period_is_charged_once_across_replicas() {
    let backend = Backend::postgres().unwrap_or(Backend::Sqlite);
    let mut options = Options::default();
    options.server.billing_period_secs = 1;
    options.server.billing_tick_secs = 1;
    let app = TestApp::start_with(backend, options).await;
    let (_b_url, b_shutdown) = app.another_server_svc(|_| {}).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let (sam, jwt) = app.user("sam").await;
    grant(&app, &admin, sam, 100).await;

    let created = app
        .post(
            "/api/server/create",
            tests::Cred::Bearer(&jwt),
            serde_json::json!({"osId": 1, "tariffId": 1, "name": "billed"}),
        )
        .await;
    assert_eq!(
        created.status,
        reqwest::StatusCode::CREATED,
        "{}",
        created.text
    );
    let id = created.json["id"].as_i64().expect("id");
    tests::fleet::wait_server(&app, &jwt, id, |s| s["status"] == "running").await;

    // Both replicas run their billing loops; one of them holds the lease. Stop the first
    // replica half-way: if it held the lease, the other takes over.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    app.stop_server_svc();
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    b_shutdown.trigger();

    let credits = app.get("/api/credits", tests::Cred::Bearer(&jwt)).await;
    let entries = credits.json["entries"].as_array().expect("entries").clone();
    let mut periods: Vec<i64> = entries
        .iter()
        .filter_map(|e| e["reference"].as_str())
        .filter_map(|r| r.rsplit_once(":period:").map(|(_, at)| at.parse::<i64>()))
        .map(|at| at.expect("a period's start"))
        .collect();
    periods.sort_unstable();
    let before = periods.len();
    periods.dedup();
    assert_eq!(
        periods.len(),
        before,
        "no period charged twice: {entries:?}"
    );
    assert!(
        periods.len() >= 4,
        "billing went on through the takeover: {} periods",
        periods.len()
    );
    assert!(
        periods.windows(2).all(|w| w[1] - w[0] == 1000),
        "every period charged, one after another, none skipped: {periods:?}"
    );
    let charged: i64 = entries
        .iter()
        .filter(|e| {
            e["reference"]
                .as_str()
                .is_some_and(|r| r.contains(":period:"))
        })
        .map(|e| -e["amount"].as_i64().expect("amount"))
        .sum();
    assert_eq!(
        charged,
        i64::try_from(periods.len()).expect("few"),
        "one hour's price (1) per period"
    );
}
