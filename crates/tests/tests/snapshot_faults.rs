//! Every snapshot and backup saga, failed at every one of its steps as the saga itself lists
//! them, with every undo failing once on the way back and (for the sagas that unwind) the
//! unwind interrupted after the undo of the step before, as if the process died, and
//! finished after a restart. On a real LXC node: the task fails naming the step, the server
//! is back where it was, and nothing is left behind: no half-made snapshot on the
//! hypervisor, no archive on the backup target without a completed backup that owns it,
//! and a record that says what is really there.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::fleet::{ContainerDir, grant, guest_of, lxc_node, wait_server, wait_task};
use tests::{Backend, Cred, TestApp};

const BUSYBOX: i64 = 1;
const SMALL: i64 = 1;

fn task_of(reply: &Value) -> String {
    reply["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task id in {reply}"))
        .to_owned()
}

/// Waits until a snapshot-svc task has stopped half-way through its unwind: still
/// unwinding, and nobody holds its lease.
async fn halted(app: &TestApp, task_id: &str) {
    use sea_orm::{ConnectionTrait as _, Statement};
    let db = sea_orm::Database::connect(app.snapshot_config.database_url.as_str())
        .await
        .expect("snapshot-svc's database");
    let backend = db.get_database_backend();
    let (task_sql, lease_sql) = if backend == sea_orm::DatabaseBackend::Postgres {
        (
            "SELECT id FROM tasks WHERE id = $1 AND state = 'unwinding'",
            "SELECT name FROM leases WHERE name = $1",
        )
    } else {
        (
            "SELECT id FROM tasks WHERE id = ? AND state = 'unwinding'",
            "SELECT name FROM leases WHERE name = ?",
        )
    };
    for _ in 0..300 {
        let unwinding = db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                task_sql,
                [task_id.into()],
            ))
            .await
            .expect("tasks")
            .is_some();
        let leased = db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                lease_sql,
                [format!("task:{task_id}").into()],
            ))
            .await
            .expect("leases")
            .is_some();
        if unwinding && !leased {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("task {task_id} never stopped half-way through its unwind");
}

/// Waits until snapshot-svc's own record of a task says it ended (server-svc's ends when
/// the server is released, which may come first).
async fn wait_saga(app: &TestApp, task_id: &str) -> String {
    let mut client = app.snapshots_client(platform::auth::Service::Gateway);
    for _ in 0..600 {
        let task = client
            .get_task(platform::grpc::Caller::admin(tests::ADMIN_ID).request(
                proto::snapshot::v1::GetTaskRequest {
                    id: task_id.to_owned(),
                },
            ))
            .await;
        if let Ok(task) = task {
            let state = task.into_inner().state;
            if state == "succeeded" || state == "failed" {
                return state;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("snapshot-svc's task {task_id} did not end");
}

/// Waits until snapshot-svc has no saga at work (a saga stopped half-way before its reply
/// is finished by the restarted service in the background).
async fn settled(app: &TestApp) {
    use sea_orm::{ConnectionTrait as _, Statement};
    let db = sea_orm::Database::connect(app.snapshot_config.database_url.as_str())
        .await
        .expect("snapshot-svc's database");
    let backend = db.get_database_backend();
    let sql = "SELECT id FROM tasks WHERE state IN ('running', 'unwinding')";
    for _ in 0..300 {
        let open = db
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .expect("tasks");
        if open.is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("snapshot-svc's sagas did not all end");
}

/// The archives on the backup target.
fn archives(app: &TestApp) -> usize {
    let mut count = 0;
    let mut stack = vec![app.backup_dir()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".tar.zst") {
                count += 1;
            }
        }
    }
    count
}

struct Case<'a> {
    app: &'a TestApp,
    jwt: &'a str,
    id: i64,
}

impl Case<'_> {
    fn me(&self) -> Cred<'_> {
        Cred::Bearer(self.jwt)
    }

    async fn snapshots(&self) -> Vec<Value> {
        let reply = self
            .app
            .get(&format!("/api/server/{}/snapshots", self.id), self.me())
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json["data"].as_array().cloned().unwrap_or_default()
    }

    async fn backups(&self) -> Vec<Value> {
        let reply = self
            .app
            .get(&format!("/api/server/{}/backups", self.id), self.me())
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json["data"].as_array().cloned().unwrap_or_default()
    }

    async fn take_snapshot(&self, name: &str) {
        let reply = self
            .app
            .post(
                &format!("/api/server/{}/snapshots", self.id),
                self.me(),
                json!({"snapname": name}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let task = wait_task(self.app, self.jwt, &task_of(&reply.json)).await;
        assert_eq!(task["state"], "succeeded", "{task}");
    }

    async fn take_backup(&self) -> i64 {
        let reply = self
            .app
            .post(
                &format!("/api/server/{}/backups", self.id),
                self.me(),
                json!({}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let task = wait_task(self.app, self.jwt, &task_of(&reply.json)).await;
        assert_eq!(task["state"], "succeeded", "{task}");
        reply.json["backup"]["id"].as_i64().expect("backup id")
    }

    /// Begins the task of `kind` under test; the reply.
    async fn begin(&self, kind: &str, step: &str, base_backup: i64) -> tests::Reply {
        let base = format!("/api/server/{}", self.id);
        match kind {
            "snapshot" => {
                self.app
                    .post(
                        &format!("{base}/snapshots"),
                        self.me(),
                        json!({"snapname": format!("f-{step}")}),
                    )
                    .await
            }
            "snapshot_restore" => {
                self.app
                    .post(
                        &format!("{base}/snapshots/rollback"),
                        self.me(),
                        json!({"snapname": "base"}),
                    )
                    .await
            }
            "snapshot_delete" => {
                self.app
                    .call(
                        Method::DELETE,
                        &format!("{base}/snapshots"),
                        self.me(),
                        Some(json!({"snapname": format!("d-{step}")})),
                    )
                    .await
            }
            "backup" => {
                self.app
                    .post(&format!("{base}/backups"), self.me(), json!({}))
                    .await
            }
            "backup_restore" => {
                self.app
                    .post(
                        &format!("{base}/backups/restore"),
                        self.me(),
                        json!({"backupId": base_backup, "overwrite": true}),
                    )
                    .await
            }
            "backup_delete" => {
                self.app
                    .call(
                        Method::DELETE,
                        &format!("{base}/backups"),
                        self.me(),
                        Some(json!({"backupId": base_backup})),
                    )
                    .await
            }
            other => panic!("a saga this test does not know: {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_snapshot_saga_failing_at_every_step_leaves_nothing_behind() {
    every_saga_failing_at_every_step("snapshot", 11).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backup_saga_failing_at_every_step_leaves_nothing_behind() {
    every_saga_failing_at_every_step("backup", 12).await;
}

/// Every saga whose kind starts with `family`, at every step; at least `expected` cases.
async fn every_saga_failing_at_every_step(family: &str, expected: usize) {
    let mut app = TestApp::start(Backend::Sqlite).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let (user, jwt) = app.user("fay").await;
    grant(&app, &admin, user, 100).await;
    let created = app
        .post(
            "/api/server/create",
            Cred::Bearer(&jwt),
            json!({"osId": BUSYBOX, "tariffId": SMALL, "name": format!("{family}-faults")}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
    let guest = guest_of(&app, id).await;
    let case = Case {
        app: &app,
        jwt: &jwt,
        id,
    };
    case.take_snapshot("base").await;

    let mut tried = 0;
    for (kind, steps) in snapshot_svc::app::steps() {
        if !kind.starts_with(family) {
            continue;
        }
        let forward_only = kind.ends_with("_delete");
        for (at, step) in steps.iter().copied().enumerate() {
            // What the case needs first, taken without faults.
            app.restart_snapshot_svc(|c| c.faults.clear()).await;
            let case = Case {
                app: &app,
                jwt: &jwt,
                id,
            };
            if kind == "snapshot_delete" {
                case.take_snapshot(&format!("d-{step}")).await;
            }
            let base_backup = if kind.starts_with("backup_") {
                case.take_backup().await
            } else {
                0
            };
            let lxc_before = dir.lxc_snapshots(&guest).len();
            let snapshots_before = case.snapshots().await;

            let mut faults = vec![format!("{kind}:{step}")];
            faults.extend(steps.iter().map(|s| format!("{kind}:{s}:undo-fail")));
            let interrupted = if forward_only {
                None
            } else {
                at.checked_sub(1).map(|i| steps[i])
            };
            faults.extend(interrupted.map(|s| format!("{kind}:{s}:undo-halt")));
            app.restart_snapshot_svc(|c| c.faults = faults).await;
            let case = Case {
                app: &app,
                jwt: &jwt,
                id,
            };

            let reply = case.begin(kind, step, base_backup).await;
            let task_id = reply.json["taskId"].as_str().map(str::to_owned);
            match &task_id {
                Some(task_id) => {
                    assert_eq!(
                        reply.status,
                        StatusCode::OK,
                        "{kind}:{step}: {}",
                        reply.text
                    );
                    if interrupted.is_some() {
                        halted(&app, task_id).await;
                        app.restart_snapshot_svc(|c| c.faults.clear()).await;
                    }
                    let task = wait_task(&app, &jwt, task_id).await;
                    assert_eq!(task["state"], "failed", "{kind}:{step}: {task}");
                    assert_eq!(wait_saga(&app, task_id).await, "failed", "{kind}:{step}");
                    assert!(
                        task["error"].as_str().is_some_and(|e| e.starts_with(step)),
                        "{kind}:{step}: {task}"
                    );
                }
                None => {
                    // Failed before the reply: refused, in the panel's shape.
                    assert!(
                        reply.status.is_client_error(),
                        "{kind}:{step}: {}",
                        reply.text
                    );
                    assert!(reply.json["error"].is_string(), "{kind}:{step}");
                    if interrupted.is_some() {
                        app.restart_snapshot_svc(|c| c.faults.clear()).await;
                    }
                }
            }
            app.restart_snapshot_svc(|c| c.faults.clear()).await;
            settled(&app).await;
            let case = Case {
                app: &app,
                jwt: &jwt,
                id,
            };

            // The server is back where it was, and no task of anyone's holds it.
            let server = wait_server(&app, &jwt, id, |s| s["status"] == "running").await;
            if let Some(held) = server["taskId"].as_str() {
                let last = wait_task(&app, &jwt, held).await;
                assert_ne!(last["state"], "running", "{kind}:{step}: {last}");
            }
            assert!(dir.running(&guest), "{kind}:{step}: the guest runs again");

            // Snapshots: the record says what the hypervisor keeps.
            let snapshots = case.snapshots().await;
            let completed = snapshots
                .iter()
                .filter(|s| s["status"] == "completed")
                .count();
            assert_eq!(
                dir.lxc_snapshots(&guest).len(),
                completed,
                "{kind}:{step}: {snapshots:?}"
            );
            if kind == "snapshot" {
                assert_eq!(dir.lxc_snapshots(&guest).len(), lxc_before, "{kind}:{step}");
                assert!(
                    snapshots
                        .iter()
                        .all(|s| s["name"] != format!("f-{step}") || s["status"] == "failed"),
                    "{kind}:{step}: no half-made snapshot: {snapshots:?}"
                );
            }
            if kind == "snapshot_restore" {
                assert_eq!(snapshots, snapshots_before, "{kind}:{step}");
            }

            // Backups: every archive belongs to a completed backup.
            let backups = case.backups().await;
            let whole = backups
                .iter()
                .filter(|b| b["status"] == "completed")
                .count();
            assert_eq!(archives(&app), whole, "{kind}:{step}: {backups:?}");
            assert!(
                backups.iter().all(|b| b["status"] != "in_progress"),
                "{kind}:{step}: {backups:?}"
            );

            // Clean up what this case made, so the next one starts from the same place.
            for s in snapshots.iter().filter(|s| s["name"] != "base") {
                let name = s["name"].as_str().expect("name");
                let gone = app
                    .call(
                        Method::DELETE,
                        &format!("/api/server/{id}/snapshots"),
                        Cred::Bearer(&jwt),
                        Some(json!({"snapname": name})),
                    )
                    .await;
                assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
                wait_task(&app, &jwt, &task_of(&gone.json)).await;
            }
            for b in &backups {
                let gone = app
                    .call(
                        Method::DELETE,
                        &format!("/api/server/{id}/backups"),
                        Cred::Bearer(&jwt),
                        Some(json!({"backupId": b["id"]})),
                    )
                    .await;
                assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
                wait_task(&app, &jwt, &task_of(&gone.json)).await;
            }
            assert_eq!(archives(&app), 0, "{kind}:{step}: cleaned up");
            tried += 1;
        }
    }
    assert!(
        tried >= expected,
        "every step of every {family} saga was tried ({tried})"
    );
}
