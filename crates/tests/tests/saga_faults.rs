//! Every saga but create (whose test is in `sagas.rs`), failed at every one of its steps as
//! the saga itself lists them, with every undo failing once on the way back and the unwind
//! interrupted after the undo of the step before (as if the process died) and repeated
//! after a restart, on a real LXC node: the task fails naming the step, the server ends
//! where the saga says it should, and once it is deleted nothing is left: no guest, no
//! reservation, no address, and not a credit charged or refunded twice.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server_svc::domain::task::TaskKind;
use tests::fleet::{
    ContainerDir, balance, grant, halted, held, lxc_node, pool, wait_server, wait_task,
};
use tests::{Backend, Cred, TestApp};

const BUSYBOX: i64 = 1;
const SMALL: i64 = 1;

/// Where a server stands after a failed task of `kind`.
fn status_after_failure(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Start => "stopped",
        TaskKind::Stop | TaskKind::Reboot | TaskKind::Password | TaskKind::Resize => "running",
        TaskKind::Reinstall | TaskKind::Delete | TaskKind::Create => "error",
        TaskKind::Suspend => "suspended",
        TaskKind::Unsuspend => "stopped",
        // Held for snapshot-svc, whose sagas have their own test (snapshots.rs).
        TaskKind::Snapshot
        | TaskKind::SnapshotRestore
        | TaskKind::Backup
        | TaskKind::BackupRestore => "running",
    }
}

fn task_of(reply: &Value) -> String {
    reply["taskId"]
        .as_str()
        .or_else(|| reply["data"].as_str())
        .unwrap_or_else(|| panic!("no task id in {reply}"))
        .to_owned()
}

/// Starts a task of `kind` on a running server, after whatever it needs first; the task id.
async fn begin(app: &TestApp, jwt: &str, kind: TaskKind, id: i64) -> String {
    let me = Cred::Bearer(jwt);
    let path = |action: &str| format!("/api/server/{id}/{action}");
    let reply = match kind {
        TaskKind::Start => {
            let stop = app.post(&path("stop"), me, json!({})).await;
            assert_eq!(stop.status, StatusCode::OK, "{}", stop.text);
            wait_task(app, jwt, &task_of(&stop.json)).await;
            app.post(&path("start"), me, json!({})).await
        }
        TaskKind::Stop => app.post(&path("stop"), me, json!({})).await,
        TaskKind::Reboot => app.post(&path("restart"), me, json!({})).await,
        TaskKind::Password => app.post(&path("password"), me, json!({})).await,
        TaskKind::Reinstall => app.post(&path("reinstall"), me, json!({})).await,
        TaskKind::Resize => {
            app.call(Method::PUT, &path("resize"), me, Some(json!({"cores": 2})))
                .await
        }
        TaskKind::Delete => app.delete(&format!("/api/server/{id}"), me).await,
        TaskKind::Suspend => {
            return admin_act(app, id, proto::server::v1::Action::Suspend).await;
        }
        TaskKind::Create
        | TaskKind::Unsuspend
        | TaskKind::Snapshot
        | TaskKind::SnapshotRestore
        | TaskKind::Backup
        | TaskKind::BackupRestore => unreachable!("not begun here"),
    };
    assert_eq!(reply.status, StatusCode::OK, "{kind}: {}", reply.text);
    task_of(&reply.json)
}

/// An action on a server as an administrator (suspensions have no panel route); its task.
async fn admin_act(app: &TestApp, id: i64, action: proto::server::v1::Action) -> String {
    let mut servers = app.servers_client(platform::auth::Service::Gateway);
    let request = proto::server::v1::ActRequest {
        server: Some(proto::server::v1::ServerRef {
            id,
            uuid: String::new(),
        }),
        action: action.into(),
        reason: "fault test".to_owned(),
        ..Default::default()
    };
    servers
        .act(platform::grpc::Caller::admin(tests::ADMIN_ID).request(request))
        .await
        .unwrap_or_else(|e| panic!("{action:?}: {e}"))
        .into_inner()
        .task_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_saga_failing_at_every_step_leaves_nothing_behind() {
    let mut app = TestApp::start(Backend::Sqlite).await;
    let dir = ContainerDir::new();
    let node = lxc_node(&app, &dir, 4096).await;
    pool(&app, node, "198.51.100.10-198.51.100.20", "198.51.100.1/24").await;
    let admin = app.admin_token().await;
    let (user, jwt) = app.user("gil").await;
    grant(&app, &admin, user, 200).await;
    let me = Cred::Bearer(&jwt);

    let mut tried = 0;
    for kind in TaskKind::ALL {
        if matches!(kind, TaskKind::Create) {
            continue;
        }
        let steps = server_svc::app::steps(kind);
        for (at, step) in steps.iter().copied().enumerate() {
            let mut faults = vec![format!("{kind}:{step}")];
            faults.extend(steps.iter().map(|s| format!("{kind}:{s}:undo-fail")));
            let interrupted = at.checked_sub(1).map(|i| steps[i]);
            faults.extend(interrupted.map(|s| format!("{kind}:{s}:undo-halt")));
            app.restart_server_svc(|c| c.faults = faults).await;

            let created = app
                .post(
                    "/api/server/create",
                    me,
                    json!({"osId": BUSYBOX, "tariffId": SMALL, "name": format!("{kind}-{step}").replace('_', "-")}),
                )
                .await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
            let id = created.json["id"].as_i64().expect("id");
            let built = wait_task(&app, &jwt, &task_of(&created.json)).await;
            assert_eq!(built["state"], "succeeded", "{built}");
            let charged = balance(&app, &jwt).await;
            let size = held(&app, node).await;

            let task_id = begin(&app, &jwt, kind, id).await;
            if interrupted.is_some() {
                halted(&app, &task_id).await;
                app.restart_server_svc(|c| c.faults.clear()).await;
            }
            let task = wait_task(&app, &jwt, &task_id).await;
            assert_eq!(task["state"], "failed", "{kind}:{step}: {task}");
            assert!(
                task["error"].as_str().is_some_and(|e| e.starts_with(step)),
                "{kind}:{step}: {task}"
            );
            let expected = status_after_failure(kind);
            let server = wait_server(&app, &jwt, id, |s| s["status"] == expected).await;
            if kind != TaskKind::Delete && kind != TaskKind::Reinstall {
                assert_eq!(
                    held(&app, node).await,
                    size,
                    "{kind}:{step}: the failed task holds nothing more nor less: {server}"
                );
            }
            assert_eq!(
                balance(&app, &jwt).await,
                charged,
                "{kind}:{step}: nothing charged or refunded"
            );

            // Without faults, the server goes, and with it everything it held.
            app.restart_server_svc(|c| c.faults.clear()).await;
            if kind == TaskKind::Suspend {
                admin_act(&app, id, proto::server::v1::Action::Unsuspend).await;
            }
            let deleted = app.delete(&format!("/api/server/{id}"), me).await;
            assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
            let gone = wait_task(&app, &jwt, &task_of(&deleted.json)).await;
            assert_eq!(gone["state"], "succeeded", "{kind}:{step}: {gone}");
            assert_eq!(
                held(&app, node).await,
                ((0, 0, 0), 0),
                "{kind}:{step}: capacity and addresses released"
            );
            assert!(
                dir.containers().is_empty(),
                "{kind}:{step}: no container left: {:?}",
                dir.containers()
            );
            assert_eq!(balance(&app, &jwt).await, charged, "{kind}:{step}");
            tried += 1;
        }
    }
    assert!(tried >= 15, "every step of every saga was tried ({tried})");
}
