//! Helpers for tests that run servers on real nodes: a container directory that cleans up
//! after itself, an LXC node and address pool registered through node-svc, credits, and
//! waiting for tasks.

use std::time::Duration;

use platform::auth::Service;
use platform::grpc::Caller;
use proto::node::v1 as pb;
use proto::node::v1::nodes_client::NodesClient;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::{ADMIN_ID, Cred, Signed, TestApp};

/// The first administrator, as node-svc sees a caller the gateway signed for.
const ADMIN: Caller = Caller::admin(ADMIN_ID);

/// An LXC container path under /var/tmp that destroys its containers when dropped.
pub struct ContainerDir {
    dir: tempfile::TempDir,
}

impl Default for ContainerDir {
    fn default() -> Self {
        Self::new()
    }
}

impl ContainerDir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("vps-servers")
                .tempdir_in("/var/tmp")
                .expect("dir"),
        }
    }

    pub fn path(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// The containers in this directory.
    pub fn containers(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.path()) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().join("config").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Runs `script` with `/bin/sh` in a running container (through `lxc-attach`, with an
    /// empty environment) and returns what it printed; panics if it fails.
    pub fn exec(&self, name: &str, script: &str) -> String {
        let out = std::process::Command::new("lxc-attach")
            .arg("-P")
            .arg(self.dir.path())
            .args(["-n", name, "--clear-env", "--", "/bin/sh", "-c", script])
            .output()
            .expect("lxc-attach");
        assert!(
            out.status.success(),
            "{script:?} in {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The snapshots LXC itself keeps of a container (`lxc-snapshot -L`).
    pub fn lxc_snapshots(&self, name: &str) -> Vec<String> {
        let out = std::process::Command::new("lxc-snapshot")
            .arg("-P")
            .arg(self.dir.path())
            .args(["-n", name, "-L"])
            .output()
            .expect("lxc-snapshot");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| w.starts_with("snap"))
            .map(str::to_owned)
            .collect()
    }

    /// Whether a container runs, as `lxc-info` says.
    pub fn running(&self, name: &str) -> bool {
        std::process::Command::new("lxc-info")
            .arg("-P")
            .arg(self.dir.path())
            .args(["-n", name, "-s", "-H"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "RUNNING")
    }
}

impl Drop for ContainerDir {
    fn drop(&mut self) {
        for name in self.containers() {
            let _ = std::process::Command::new("lxc-destroy")
                .arg("-P")
                .arg(self.dir.path())
                .args(["-n", &name, "-f", "-s"])
                .output();
        }
    }
}

/// node-svc's registry API, as the administrator (signed by the gateway).
pub async fn nodes_client(app: &TestApp) -> NodesClient<Signed> {
    app.nodes_client(Service::Gateway)
}

/// Registers an LXC node in `dir` with this much memory (MB) and no memory overcommit.
pub async fn lxc_node(app: &TestApp, dir: &ContainerDir, memory_mb: u64) -> i64 {
    let request = pb::CreateNodeRequest {
        name: "lxc-test".into(),
        location: "local".into(),
        driver: "lxc".into(),
        capacity: Some(pb::Capacity {
            cores: 8,
            memory_mb,
            disk_gb: 200,
        }),
        overcommit: Some(pb::Overcommit {
            cpu: 4.0,
            memory: 1.0,
            disk: 1.0,
        }),
        // Guests the driver stops itself (for a snapshot) get a short grace, as in the
        // services' own stops here.
        settings: [
            ("path".to_owned(), dir.path()),
            ("stop_grace_secs".to_owned(), "2".to_owned()),
        ]
        .into(),
        ..Default::default()
    };
    nodes_client(app)
        .await
        .create_node(ADMIN.request(request))
        .await
        .expect("create the LXC node")
        .into_inner()
        .id
}

/// An IPv4 pool for a node: a `first-last` range and its gateway with prefix (`a.b.c.d/24`).
pub async fn pool(app: &TestApp, node_id: i64, range: &str, gateway: &str) {
    nodes_client(app)
        .await
        .create_pool(ADMIN.request(pb::CreatePoolRequest {
            name: format!("pool-{node_id}-{}", range.replace(['.', '/', '-'], "_")),
            node_id,
            location: String::new(),
            range: range.into(),
            gateway: gateway.into(),
        }))
        .await
        .expect("create the pool");
}

/// What node-svc holds for servers: reserved (cores, MB, GB) on a node, and allocated
/// addresses across pools.
pub async fn held(app: &TestApp, node_id: i64) -> ((u32, u64, u64), u64) {
    let mut client = nodes_client(app).await;
    let node = client
        .get_node(ADMIN.request(pb::GetNodeRequest {
            by: Some(pb::get_node_request::By::Id(node_id)),
        }))
        .await
        .expect("node")
        .into_inner();
    let reserved = node.reserved.unwrap_or_default();
    let pools = client
        .list_pools(ADMIN.request(pb::ListPoolsRequest {}))
        .await
        .expect("pools")
        .into_inner()
        .pools;
    (
        (reserved.cores, reserved.memory_mb, reserved.disk_gb),
        pools.iter().map(|p| p.allocated).sum(),
    )
}

/// The name of a server's guest on its node, as server-svc has it.
pub async fn guest_of(app: &TestApp, server_id: i64) -> String {
    app.servers_client(Service::Gateway)
        .get_server(ADMIN.request(proto::server::v1::ServerRef {
            id: server_id,
            uuid: String::new(),
        }))
        .await
        .expect("the server")
        .into_inner()
        .guest_name
}

/// Grants credits to a user as the administrator.
pub async fn grant(app: &TestApp, admin_jwt: &str, user_id: i64, amount: i64) {
    let reply = app
        .post(
            &format!("/api/admin/users/{user_id}/credits"),
            Cred::Bearer(admin_jwt),
            json!({"amount": amount, "reason": "test credits"}),
        )
        .await;
    assert!(reply.status.is_success(), "grant: {}", reply.text);
}

/// The caller's balance.
pub async fn balance(app: &TestApp, jwt: &str) -> i64 {
    let reply = app.get("/api/credits", Cred::Bearer(jwt)).await;
    assert_eq!(reply.status, StatusCode::OK, "balance: {}", reply.text);
    reply.json["balance"].as_i64().expect("balance")
}

/// Polls `GET /api/tasks/{id}` until the task succeeds or fails (60 s at most).
pub async fn wait_task(app: &TestApp, jwt: &str, task_id: &str) -> Value {
    for _ in 0..600 {
        let reply = app
            .get(&format!("/api/tasks/{task_id}"), Cred::Bearer(jwt))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "task: {}", reply.text);
        if reply.json["state"] == "succeeded" || reply.json["state"] == "failed" {
            return reply.json;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("task {task_id} did not finish within 60 s");
}

/// Polls the panel's view of a server until `done` holds (60 s at most).
pub async fn wait_server(
    app: &TestApp,
    jwt: &str,
    id: i64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let reply = app
            .get(&format!("/api/server/{id}"), Cred::Bearer(jwt))
            .await;
        if done(&reply.json) {
            return reply.json;
        }
        last = reply.json;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server {id} did not reach the expected state: {last}");
}

/// Creates a BusyBox server on the small plan for the owner of `jwt` and waits for it to
/// run: its id.
pub async fn create_server(app: &TestApp, jwt: &str, name: &str) -> i64 {
    let created = app
        .post(
            "/api/server/create",
            Cred::Bearer(jwt),
            json!({"osId": 1, "tariffId": 1, "name": name}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let task = wait_task(app, jwt, created.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    created.json["id"].as_i64().expect("id")
}

/// Polls a panel status route until `done` holds (30 s at most): samples arrive with
/// monitor-svc's cycle, not with the request.
pub async fn wait_status(
    app: &TestApp,
    jwt: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let reply = app.get(path, Cred::Bearer(jwt)).await;
        if done(&reply.json) {
            return reply.json;
        }
        last = reply.json;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} did not show the expected figures: {last}");
}

/// A `nats-server -js` on a free loopback port, stopped when dropped.
pub struct Nats {
    child: std::process::Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Nats {
    /// Starts it and waits until it accepts connections.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let child = std::process::Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server (apt-get install nats-server)");
        let nats = Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            _dir: dir,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return nats;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nats-server did not come up on port {port}");
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An S3-compatible server (moto's, from PyPI) on a free loopback port with one bucket,
/// stopped when dropped.
pub struct S3 {
    child: std::process::Child,
    pub endpoint: String,
    pub bucket: String,
}

impl S3 {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto's server (pip install 'moto[s3]')");
        let s3 = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "vps-backups".to_owned(),
        };
        let http = reqwest::Client::new();
        for _ in 0..200 {
            // Creating the bucket is also the readiness check.
            if let Ok(reply) = http
                .put(format!("{}/{}", s3.endpoint, s3.bucket))
                .send()
                .await
                && reply.status().is_success()
            {
                return s3;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto's S3 server did not come up on port {port}");
    }

    /// A backup target in this bucket (moto takes any credentials).
    pub fn target(&self) -> snapshot_svc::TargetConfig {
        snapshot_svc::TargetConfig {
            kind: "s3".to_owned(),
            bucket: self.bucket.clone(),
            endpoint: self.endpoint.clone(),
            region: "us-east-1".to_owned(),
            access_key_id: "test-key".to_owned(),
            secret_access_key: Some(secrecy::SecretString::from("test-secret")),
            prefix: "vps/".to_owned(),
            ..snapshot_svc::TargetConfig::default()
        }
    }

    /// The keys in the bucket.
    pub async fn keys(&self) -> Vec<String> {
        let body = reqwest::get(format!("{}/{}?list-type=2", self.endpoint, self.bucket))
            .await
            .expect("list the bucket")
            .text()
            .await
            .expect("body");
        body.split("<Key>")
            .skip(1)
            .filter_map(|k| k.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until a task's saga has stopped half-way through its unwind (a halt fault): the
/// task is still unwinding and nobody holds its lease.
pub async fn halted(app: &TestApp, task_id: &str) {
    let db = sea_orm::Database::connect(app.server_config.database_url.as_str())
        .await
        .expect("server-svc's database");
    let backend = db.get_database_backend();
    for _ in 0..300 {
        let unwinding = db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                if backend == sea_orm::DatabaseBackend::Postgres {
                    "SELECT id FROM tasks WHERE id = $1 AND state = 'unwinding'"
                } else {
                    "SELECT id FROM tasks WHERE id = ? AND state = 'unwinding'"
                },
                [task_id.into()],
            ))
            .await
            .expect("tasks")
            .is_some();
        let leased = db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                if backend == sea_orm::DatabaseBackend::Postgres {
                    "SELECT name FROM leases WHERE name = $1"
                } else {
                    "SELECT name FROM leases WHERE name = ?"
                },
                [format!("task:{task_id}").into()],
            ))
            .await
            .expect("leases")
            .is_some();
        if unwinding && !leased {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("task {task_id} never stopped half-way through its unwind");
}

/// The fakepve Proxmox VE test server (PyPI), as node-svc's driver tests start it; stopped
/// when dropped.
pub struct FakePve {
    child: std::process::Child,
    pub info: Value,
    dir: tempfile::TempDir,
}

impl FakePve {
    pub fn start() -> Self {
        use std::io::BufRead as _;
        let dir = tempfile::tempdir().expect("dir");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../node-svc/tests/support/fakepve_server.py"
        );
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .arg("0")
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs fakepve (pip install 'fakepve[crypto]')");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready line");
        let info = serde_json::from_str(&line).expect("fakepve's ready line");
        Self { child, info, dir }
    }

    /// What `/cluster/resources` reports for guests from now on, by vmid or tag
    /// (`vps-<guest name>`): e.g. `{"vps-x": {"cpu": 0.97, "netout": 1000}}`.
    pub fn set_stats(&self, stats: &Value) {
        let path = self.dir.path().join("stats.json");
        let partial = self.dir.path().join("stats.json.partial");
        std::fs::write(&partial, stats.to_string()).expect("write stats");
        std::fs::rename(&partial, &path).expect("rename stats");
    }

    /// Registers this server as a Proxmox node of the test stack.
    pub async fn register(&self, app: &TestApp, name: &str) -> i64 {
        let port: u32 = self.info["url"]
            .as_str()
            .expect("url")
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        let request = pb::CreateNodeRequest {
            name: name.into(),
            location: "local".into(),
            driver: "proxmox".into(),
            address: "127.0.0.1".into(),
            port,
            capacity: Some(pb::Capacity {
                cores: 16,
                memory_mb: 65_536,
                disk_gb: 1_000,
            }),
            settings: [
                (
                    "node".to_owned(),
                    self.info["node"].as_str().expect("node").to_owned(),
                ),
                (
                    "ca_file".to_owned(),
                    self.info["cafile"].as_str().expect("ca").to_owned(),
                ),
            ]
            .into(),
            credentials: [(
                "token".to_owned(),
                self.info["token"].as_str().expect("token").to_owned(),
            )]
            .into(),
            ..Default::default()
        };
        nodes_client(app)
            .await
            .create_node(ADMIN.request(request))
            .await
            .expect("the Proxmox node")
            .into_inner()
            .id
    }
}

impl Drop for FakePve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SMTP server on loopback (aiosmtpd, from PyPI) that keeps every mail it receives;
/// stopped when dropped. It can be stopped and started again on the same port.
pub struct Smtp {
    child: Option<std::process::Child>,
    pub port: u16,
    auth: Option<(String, String)>,
    /// `starttls` or `implicit`: TLS with a certificate from a CA of its own.
    tls: Option<&'static str>,
    dir: tempfile::TempDir,
}

impl Smtp {
    /// Starts it on a free port; with `auth`, it requires that user and password.
    pub fn start(auth: Option<(&str, &str)>) -> Self {
        Self::started(auth, None)
    }

    /// Starts one that speaks TLS (`starttls` or `implicit`) with a certificate for
    /// 127.0.0.1 from a CA of its own, whose certificate [`Smtp::config`] names.
    pub fn start_tls(mode: &'static str) -> Self {
        Self::started(None, Some(mode))
    }

    fn started(auth: Option<(&str, &str)>, tls: Option<&'static str>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut smtp = Self {
            child: None,
            port,
            auth: auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
            tls,
            dir: tempfile::tempdir().expect("dir"),
        };
        smtp.resume();
        smtp
    }

    /// Stops accepting mail (the port refuses connections).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port.
    pub fn resume(&mut self) {
        use std::io::BufRead as _;
        self.stop();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/smtp_sink.py");
        let mut command = std::process::Command::new("python3");
        command
            .arg(script)
            .arg(self.port.to_string())
            .arg(self.dir.path().join("mails.jsonl"));
        if let Some((user, pass)) = &self.auth {
            command.arg("--auth").arg(format!("{user}:{pass}"));
        }
        if let Some(mode) = self.tls {
            command.arg("--tls").arg(mode).arg(self.dir.path());
        }
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs aiosmtpd (pip install aiosmtpd)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready line");
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        self.child = Some(child);
    }

    /// notify-svc's SMTP settings for this server (plain on loopback, or TLS trusting its
    /// CA).
    pub fn config(&self) -> notify_svc::SmtpConfig {
        notify_svc::SmtpConfig {
            host: "127.0.0.1".to_owned(),
            port: self.port,
            tls: match self.tls {
                Some("starttls") => notify_svc::Tls::Starttls,
                Some(_) => notify_svc::Tls::Implicit,
                None => notify_svc::Tls::None,
            },
            ca_file: self.tls.map(|_| self.dir.path().join("ca.pem")),
            user: self.auth.as_ref().map(|(u, _)| u.clone()),
            pass: self
                .auth
                .as_ref()
                .map(|(_, p)| secrecy::SecretString::from(p.clone())),
            timeout_secs: 5,
            allow_plaintext_network: false,
        }
    }

    /// Every mail received so far, in order: `from`, `to`, `subject`, `message_id`,
    /// `text`, `html`, `rcpt_tos`, `auth`, `tls`.
    pub fn mails(&self) -> Vec<Value> {
        // Only whole lines: the server may be writing the next one.
        std::fs::read_to_string(self.dir.path().join("mails.jsonl"))
            .unwrap_or_default()
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| serde_json::from_str(l).expect("a mail record"))
            .collect()
    }

    /// Waits until `count` mails match `wanted`; those mails.
    pub async fn wait_for(&self, count: usize, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
        for _ in 0..300 {
            let found: Vec<Value> = self.mails().into_iter().filter(|m| wanted(m)).collect();
            if found.len() >= count {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{count} matching mails did not arrive; the server has: {:#?}",
            self.mails()
        );
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A webhook receiver on loopback that verifies every delivery with the Standard Webhooks
/// reference library (PyPI) and keeps what it received; stopped when dropped.
pub struct WebhookReceiver {
    child: std::process::Child,
    pub base: String,
    dir: tempfile::TempDir,
}

impl WebhookReceiver {
    pub fn start() -> Self {
        use std::io::BufRead as _;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let dir = tempfile::tempdir().expect("dir");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/webhook_receiver.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs the receiver (pip install standardwebhooks)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready line");
        assert_eq!(line.trim(), "ready", "the webhook receiver did not start");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    fn update(&self, file: &str, path: &str, value: Value) {
        let file = self.dir.path().join(file);
        let mut all: Value = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        all[path] = value;
        std::fs::write(&file, all.to_string()).expect("write");
    }

    /// The secret deliveries to `path` are verified with.
    pub fn secret(&self, path: &str, secret: &str) {
        self.update("secrets.json", path, Value::from(secret));
    }

    /// The statuses `path` answers with, in order (then 200).
    pub fn statuses(&self, path: &str, statuses: &[u16]) {
        self.update("statuses.json", path, serde_json::json!(statuses));
    }

    /// What arrived, in order: `path`, `verified`, `error`, `id`, `status`, `body`.
    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("received.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a record"))
            .collect()
    }

    /// Waits until `count` requests to `path` arrived; those requests.
    pub async fn wait_for(&self, path: &str, count: usize) -> Vec<Value> {
        for _ in 0..300 {
            let found: Vec<Value> = self
                .received()
                .into_iter()
                .filter(|r| r["path"] == path)
                .collect();
            if found.len() >= count {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{count} deliveries to {path} did not arrive; received: {:#?}",
            self.received()
        );
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
