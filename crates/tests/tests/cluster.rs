//! The control plane as it runs on a cluster, on one box: every service as its own process
//! (the services' own binaries), two replicas of each, on one PostgreSQL and a three-node NATS
//! JetStream cluster on loopback, each service reached through a balancer that, as
//! Kubernetes' service proxy does, sends each new connection to a replica that takes it.
//!
//! While customers create servers, stop and start them, take snapshots, read and delete, one
//! replica of each service (and one NATS server) is killed and started again, in turn. Then:
//! no request failed except with a retryable 503 (retried with its idempotency key), no
//! saga was lost or ran twice (every task ended, every server was deleted, no container left),
//! no event was lost or mailed twice (one "created" mail per server), and the billing
//! scheduler charged every period of every server once.
//!
//! The numbers (requests, failures by kind, time to recover after each kill, memory of each
//! replica) are printed; run with `--nocapture` to see them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::fleet::Smtp;

const ADMIN_PASSWORD: &str = "cluster-admin-password-1";
const USER_PASSWORD: &str = "cluster-user-password-1";
const USERS: usize = 3;
/// How long the load runs while replicas are killed (`VPS_CLUSTER_LOAD_SECS`, 75 s).
fn load_for() -> Duration {
    let secs = std::env::var("VPS_CLUSTER_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(75);
    Duration::from_secs(secs)
}

/// A binary beside this test's (`target/<profile>/`), built by `cargo build --workspace`.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("this test's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the services first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// One process of the cluster, which can be killed and started again as it was.
struct Process {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Where it listens: probed for readiness.
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        use std::os::unix::process::CommandExt as _;
        // Its own process group: a kill takes its children (lxc-* tools) with it, as
        // systemd's and Kubernetes' kills do, which kill the whole service.
        let child = Command::new(&self.program)
            .process_group(0)
            .args(&self.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.name));
        self.child = Some(child);
    }

    fn signal(&mut self, signal: &str, target: String) {
        if self.child.is_some() {
            let _ = Command::new("kill").args([signal, "--", &target]).status();
        }
    }

    /// Kills it and every process it started without warning, as a crash of its pod or its
    /// systemd unit does (their cgroup goes whole, whatever process groups are inside).
    fn kill(&mut self) {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return;
        };
        let mut targets = vec![format!("-{pid}")];
        targets.extend(descendants(pid).iter().map(u32::to_string));
        for target in targets {
            self.signal("-KILL", target);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Stops it as Kubernetes does: SIGTERM, and the drain that follows (killed after 45 s).
    async fn terminate(&mut self) {
        let pid = self.child.as_ref().map(|c| c.id().to_string());
        if let Some(pid) = pid {
            self.signal("-TERM", pid);
        }
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(45);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn rss_mb(&self) -> f64 {
        let Some(child) = &self.child else {
            return 0.0;
        };
        std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// Every living descendant of `pid`, from the parents `/proc` lists.
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|p| {
                    let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                    // After the command's closing parenthesis: state, then the parent.
                    let after = &stat[stat.rfind(')')? + 1..];
                    let parent = after.split_whitespace().nth(1)?.parse().ok()?;
                    Some((p, parent))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let of = found[i];
        found.extend(parents.iter().filter(|(_, p)| *p == of).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The test's directory (every process's log, NATS' storage, backups), kept when the test
/// fails so the whole logs can be read.
struct KeptOnFailure(Option<tempfile::TempDir>);

impl KeptOnFailure {
    fn path(&self) -> &Path {
        self.0.as_ref().expect("the directory").path()
    }
}

impl Drop for KeptOnFailure {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take()
            && std::thread::panicking()
        {
            eprintln!("cluster: the logs are kept in {}", dir.keep().display());
        }
    }
}

/// Waits until `port` takes connections and, for a gRPC service, reports serving.
async fn ready(process: &mut Process, grpc: bool) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(status) = process
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            panic!(
                "{} ended ({status}); its log:\n{}",
                process.name,
                process.log_tail()
            );
        }
        if grpc {
            // Every probe is bounded: a process that takes the connection and never
            // answers is not ready, and must not hold the test.
            if let Ok(channel) = tonic::transport::Endpoint::from_shared(format!(
                "http://127.0.0.1:{}",
                process.port
            ))
            .expect("url")
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(2))
            .connect()
            .await
            {
                let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
                let serving = health
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await
                    .is_ok_and(|r| r.into_inner().status == 1);
                if serving {
                    return started.elapsed();
                }
            }
        } else if tokio::net::TcpStream::connect(("127.0.0.1", process.port))
            .await
            .is_ok()
        {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{} did not become ready; its log:\n{}",
        process.name,
        process.log_tail()
    );
}

/// A balancer in front of a service's replicas, as a Kubernetes Service is: each new
/// connection goes to the next replica that takes it.
async fn balance(listener: tokio::net::TcpListener, backends: Vec<u16>) {
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let backends = backends.clone();
        let next = Arc::clone(&next);
        tokio::spawn(async move {
            let first = next.fetch_add(1, Ordering::Relaxed);
            for i in 0..backends.len() {
                let port = backends[(first + i) % backends.len()];
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                {
                    let _ = outbound.set_nodelay(true);
                    let _ = inbound.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    return;
                }
            }
        });
    }
}

/// Databases for the services on the tests' PostgreSQL, dropped at the end.
struct Databases {
    admin: sea_orm::DatabaseConnection,
    names: Vec<String>,
    base: String,
}

impl Databases {
    async fn create(base: &str, services: &[&str]) -> Self {
        use sea_orm::ConnectionTrait as _;
        let admin = sea_orm::Database::connect(base).await.expect("PostgreSQL");
        let mut names = Vec::new();
        for service in services {
            let name = format!("cluster_{}_{service}", std::process::id());
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
                .await
                .expect("drop");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create database");
            names.push(name);
        }
        Self {
            admin,
            names,
            base: base.to_owned(),
        }
    }

    fn url(&self, service: &str) -> String {
        let name = format!("cluster_{}_{service}", std::process::id());
        let (prefix, _) = self.base.rsplit_once('/').expect("a database URL");
        format!("{prefix}/{name}")
    }

    async fn drop_all(&self) {
        use sea_orm::ConnectionTrait as _;
        for name in &self.names {
            let _ = self
                .admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

/// What the load saw.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    retried_503: AtomicU64,
    transport_retried: AtomicU64,
    /// Snapshots a lost try made, met by its retry (409).
    snapshot_conflicts_after_retry: AtomicU64,
    /// Anything else: each one a failure of the test.
    failures: Mutex<Vec<String>>,
    /// Set when the load did not end in time: every wait and retry returns at once.
    give_up: AtomicBool,
    created: Mutex<Vec<(i64, i64, String)>>,
}

impl Tally {
    /// Notes a failure of the test (each one fails it at the end).
    fn fail(&self, what: String) {
        self.failures.lock().expect("failures").push(what);
    }

    fn gave_up(&self) -> bool {
        self.give_up.load(Ordering::Relaxed)
    }
}

/// A customer of the panel API through the gateways' balancer.
struct Customer {
    http: reqwest::Client,
    base: String,
    token: String,
    tally: Arc<Tally>,
    /// What it is doing now, and since when: what the test reports if the load hangs.
    doing: Mutex<(String, Instant)>,
    /// The last answer it retried (a 503's body, a transport error), for the same report.
    last_retried: Mutex<String>,
}

impl Customer {
    fn now_doing(&self, what: String) {
        *self.doing.lock().expect("doing") = (what, Instant::now());
    }

    fn doing(&self) -> String {
        let (what, since) = &*self.doing.lock().expect("doing");
        let last = self.last_retried.lock().expect("last retried");
        format!(
            "{what} (for {:.0} s; last retried: {last})",
            since.elapsed().as_secs_f64()
        )
    }

    fn retried(&self, what: String) {
        *self.last_retried.lock().expect("last retried") = what;
    }

    /// Sends a request until it is answered with something other than a 503 or a cut
    /// connection (both retryable; a POST keeps its idempotency key across tries).
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, json, _) = self.send_counting(method, path, body).await;
        (status, json)
    }

    /// [`Customer::send`], also saying whether the answer came after a retry.
    async fn send_counting(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, bool) {
        let key = uuid::Uuid::new_v4().to_string();
        for attempt in 0..200 {
            if self.tally.gave_up() {
                return (StatusCode::SERVICE_UNAVAILABLE, Value::Null, true);
            }
            self.tally.requests.fetch_add(1, Ordering::Relaxed);
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .header("Idempotency-Key", &key);
            if let Some(body) = &body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) if response.status() == StatusCode::SERVICE_UNAVAILABLE => {
                    self.tally.retried_503.fetch_add(1, Ordering::Relaxed);
                    let body = response.text().await.unwrap_or_default();
                    self.retried(format!("{method} {path}: 503 {body}"));
                }
                Ok(response) => {
                    let status = response.status();
                    let json = response.json().await.unwrap_or(Value::Null);
                    if status.is_server_error() {
                        self.tally.fail(format!("{method} {path}: {status} {json}"));
                    }
                    return (status, json, attempt > 0);
                }
                Err(error) => {
                    self.tally.transport_retried.fetch_add(1, Ordering::Relaxed);
                    self.retried(format!("{method} {path}: {error:?}"));
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.tally
            .fail(format!("{method} {path}: no answer in 200 tries"));
        (StatusCode::SERVICE_UNAVAILABLE, Value::Null, true)
    }

    /// Waits for a task to end; one that failed is a failure of the test, with its error.
    async fn wait_task(&self, task: &str, what: &str) {
        let mut last = Value::Null;
        for _ in 0..600 {
            if self.tally.gave_up() {
                return;
            }
            let (_, reply) = self
                .send(reqwest::Method::GET, &format!("/api/tasks/{task}"), None)
                .await;
            if reply["state"] == "succeeded" {
                return;
            }
            if reply["state"] == "failed" {
                last = reply;
                break;
            }
            last = reply;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.tally
            .fail(format!("{what}: task {task} did not succeed: {last}"));
    }

    async fn wait_gone(&self, id: i64) {
        for _ in 0..600 {
            if self.tally.gave_up() {
                return;
            }
            let (status, _) = self
                .send(reqwest::Method::GET, &format!("/api/server/{id}"), None)
                .await;
            if status == StatusCode::NOT_FOUND {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.tally.fail(format!("server {id} was never deleted"));
    }

    /// Waits for the server to be in one of `wanted`; a server in `error` (a saga that gave
    /// up) or one that never gets there is a failure of the test (`None`).
    async fn wait_status(&self, id: i64, wanted: &[&str]) -> Option<Value> {
        let mut last = Value::Null;
        for _ in 0..600 {
            if self.tally.gave_up() {
                return None;
            }
            let (status, server) = self
                .send(reqwest::Method::GET, &format!("/api/server/{id}"), None)
                .await;
            if status == StatusCode::OK && wanted.iter().any(|w| server["status"] == *w) {
                return Some(server);
            }
            if status == StatusCode::OK && server["status"] == "error" {
                self.tally.fail(format!(
                    "server {id} fell into error waiting for {wanted:?}: {server}"
                ));
                return None;
            }
            last = server;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.tally
            .fail(format!("server {id} never reached {wanted:?}: {last}"));
        None
    }

    /// Creates a server, puts it through its paces and deletes it, until `stop`.
    async fn work(&self, who: usize, stop: &AtomicBool) {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let name = format!("c{who}-{n}");
            self.now_doing(format!("creating {name}"));
            let (status, created) = self
                .send(
                    reqwest::Method::POST,
                    "/api/server/create",
                    Some(json!({"osId": 1, "tariffId": 1, "name": name})),
                )
                .await;
            if status != StatusCode::CREATED {
                self.tally
                    .fail(format!("create {name}: {status} {created}"));
                return;
            }
            let id = created["id"].as_i64().expect("id");
            let owner = i64::try_from(who).expect("small");
            self.tally
                .created
                .lock()
                .expect("created")
                .push((id, owner, name.clone()));
            // A step that fails is noted and ends the round early: the server is deleted
            // all the same.
            let _ = self.exercise(id, n).await;
            // Deleted at the end of its round, so the customer stays within the quota.
            self.now_doing(format!("deleting {id}"));
            let (status, reply) = self
                .send(reqwest::Method::DELETE, &format!("/api/server/{id}"), None)
                .await;
            if !status.is_success() {
                self.tally.fail(format!("delete {id}: {status} {reply}"));
            }
            self.now_doing(format!("waiting for {id} to be gone"));
            self.wait_gone(id).await;
        }
        self.now_doing("done".into());
    }

    /// Waits for a new server to run, reads, stops, starts and snapshots it; `None` at the
    /// first step that failed (noted in the tally).
    async fn exercise(&self, id: i64, n: usize) -> Option<()> {
        self.now_doing(format!("waiting for {id} to run"));
        self.wait_status(id, &["running"]).await?;
        self.now_doing("listing servers".into());
        let _ = self.send(reqwest::Method::GET, "/api/servers", None).await;
        for (action, want) in [("stop", "stopped"), ("start", "running")] {
            self.now_doing(format!("{action} {id}"));
            let (status, reply) = self
                .send(
                    reqwest::Method::POST,
                    &format!("/api/server/{id}/{action}"),
                    None,
                )
                .await;
            if !status.is_success() {
                self.tally.fail(format!("{action} {id}: {status} {reply}"));
                return None;
            }
            if let Some(task) = reply["taskId"].as_str() {
                self.now_doing(format!("waiting for {action} {id}: task {task}"));
                self.wait_task(task, &format!("{action} {id}")).await;
            }
            self.now_doing(format!("waiting for {id} to be {want}"));
            self.wait_status(id, &[want]).await?;
        }
        let snapname = format!("s{n}");
        self.now_doing(format!("snapshot {snapname} of {id}"));
        let (status, reply, retried) = self
            .send_counting(
                reqwest::Method::POST,
                &format!("/api/server/{id}/snapshots"),
                Some(json!({"snapname": snapname})),
            )
            .await;
        // snapshot-svc keeps no idempotency keys: a try whose answer was lost (a 503 as its
        // replica died) may have made the snapshot, and the retry then meets it.
        if retried && status == StatusCode::CONFLICT {
            self.tally
                .snapshot_conflicts_after_retry
                .fetch_add(1, Ordering::Relaxed);
        } else if !status.is_success() {
            self.tally.fail(format!("snapshot {id}: {status} {reply}"));
            return None;
        }
        self.now_doing(format!("waiting for {id} to run after its snapshot"));
        self.wait_status(id, &["running"]).await?;
        self.now_doing(format!("listing the snapshots of {id}"));
        let (_, listed) = self
            .send(
                reqwest::Method::GET,
                &format!("/api/server/{id}/snapshots"),
                None,
            )
            .await;
        let kept = listed["data"]
            .as_array()
            .is_some_and(|all| all.iter().any(|s| s["name"] == snapname.as_str()));
        if !kept && !self.tally.gave_up() {
            self.tally.fail(format!(
                "snapshot {snapname} of {id} is not listed: {listed}"
            ));
            return None;
        }
        Some(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_of_every_service_survive_kills_under_load() {
    let Some(pg) = std::env::var("VPS_TEST_POSTGRES_URL").ok() else {
        assert!(
            std::env::var("VPS_TEST_REQUIRE_POSTGRES").is_err(),
            "VPS_TEST_POSTGRES_URL is required"
        );
        eprintln!("no VPS_TEST_POSTGRES_URL: the cluster test is skipped");
        return;
    };
    let dir = KeptOnFailure(Some(tempfile::tempdir_in("/var/tmp").expect("dir")));
    let root = dir.path();
    let lxc = tests::fleet::ContainerDir::new();
    let keys = root.join("keys");
    platform::auth::KeySet::kept_in(&keys).expect("caller keys");
    let smtp = Smtp::start(None);
    let catalog = root.join("catalog.toml");
    std::fs::write(&catalog, server_svc::domain::catalog::DEFAULT_CATALOG).expect("catalog");
    let services = [
        "identity", "server", "snapshot", "node", "monitor", "notify",
    ];
    let databases = Databases::create(&pg, &services).await;

    // NATS: three servers in one cluster.
    let nats_ports: Vec<u16> = (0..3).map(|_| testkit::free_port()).collect();
    let route_ports: Vec<u16> = (0..3).map(|_| testkit::free_port()).collect();
    let routes = route_ports
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut nats: Vec<Process> = (0..3)
        .map(|i| Process {
            name: format!("nats-{i}"),
            program: PathBuf::from("nats-server"),
            args: [
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &nats_ports[i].to_string(),
                "-n",
                &format!("n{i}"),
                "--cluster_name",
                "vps",
                "--cluster",
                &format!("nats://127.0.0.1:{}", route_ports[i]),
                "--routes",
                &routes,
                "-sd",
                &root.join(format!("nats-{i}")).display().to_string(),
            ]
            .map(str::to_owned)
            .to_vec(),
            env: Vec::new(),
            port: nats_ports[i],
            log: root.join(format!("nats-{i}.log")),
            child: None,
        })
        .collect();
    for server in &mut nats {
        server.start();
    }
    for server in &mut nats {
        ready(server, false).await;
    }
    let nats_url = nats_ports
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    // A client keeps the INFO it was first sent, and the streams' replicas follow the
    // servers it names: wait on fresh connections until one names all three.
    let started = Instant::now();
    let client = loop {
        let client = platform::outbox::connect(&nats_url).await.expect("nats");
        if platform::outbox::stream_replicas(&client.server_info()) == 3 {
            break client;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the NATS cluster never formed; logs in {}",
            root.display()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // The cluster elects its JetStream leader in a few seconds; make the streams then.
    let js = async_nats::jetstream::new(client);
    let mut made = Err(anyhow::anyhow!("not tried"));
    for _ in 0..60 {
        made = platform::outbox::ensure_stream(&js).await;
        if made.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    made.expect("the streams on the cluster");

    // Two replicas of every service, each service behind its balancer.
    let all = [
        "gateway", "identity", "server", "snapshot", "node", "monitor", "notify",
    ];
    let front: HashMap<&str, u16> = all.iter().map(|s| (*s, testkit::free_port())).collect();
    let secret = |b: u8| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode([b; 32])
    };
    let mut replicas: BTreeMap<&str, Vec<Process>> = BTreeMap::new();
    for service in all {
        let ports = [testkit::free_port(), testkit::free_port()];
        for (i, port) in ports.iter().enumerate() {
            let mut env: Vec<(String, String)> = vec![
                ("VPS_LISTEN".into(), format!("127.0.0.1:{port}")),
                (
                    "VPS_METRICS_LISTEN".into(),
                    format!("127.0.0.1:{}", testkit::free_port()),
                ),
                (
                    "VPS_CALLER__SIGNING_KEY_FILE".into(),
                    keys.join(format!("{service}.key")).display().to_string(),
                ),
                ("VPS_CALLER__TRUSTED_DIR".into(), keys.display().to_string()),
            ];
            for peer in &all[1..] {
                env.push((
                    format!("VPS_PEERS__{}", peer.to_uppercase()),
                    format!("http://127.0.0.1:{}", front[peer]),
                ));
            }
            if service != "gateway" {
                env.push(("VPS_DATABASE_URL".into(), databases.url(service)));
                env.push(("VPS_DATABASE_MAX_CONNECTIONS".into(), "8".into()));
            }
            if ["gateway", "server", "snapshot", "monitor", "notify"].contains(&service) {
                env.push(("VPS_NATS_URL".into(), nats_url.clone()));
            }
            let more: Vec<(&str, String)> = match service {
                "identity" => vec![
                    ("VPS_JWT_SECRET", secret(1)),
                    ("VPS_ADMIN__USERNAME", "admin".into()),
                    ("VPS_ADMIN__EMAIL", "admin@example.com".into()),
                    ("VPS_ADMIN__PASSWORD", ADMIN_PASSWORD.into()),
                    ("VPS_ALLOW_REGISTRATION", "true".into()),
                ],
                "server" => vec![
                    ("VPS_SECRETS_KEY", secret(2)),
                    ("VPS_CATALOG_PATH", catalog.display().to_string()),
                    ("VPS_LEASE_TTL_SECS", "3".into()),
                    ("VPS_RESUME_INTERVAL_SECS", "1".into()),
                    ("VPS_STOP_GRACE_SECS", "1".into()),
                    ("VPS_BILLING_PERIOD_SECS", "2".into()),
                    ("VPS_BILLING_TICK_SECS", "1".into()),
                ],
                "snapshot" => vec![
                    (
                        "VPS_BACKUP_TARGET__PATH",
                        root.join("backups").display().to_string(),
                    ),
                    ("VPS_LEASE_TTL_SECS", "3".into()),
                    ("VPS_RESUME_INTERVAL_SECS", "1".into()),
                    ("VPS_STOP_GRACE_SECS", "1".into()),
                ],
                "node" => vec![
                    ("VPS_CREDENTIALS_KEY", secret(3)),
                    ("VPS_LOCAL_LXC__NAME", "local".into()),
                    ("VPS_LOCAL_LXC__LOCATION", "local".into()),
                    ("VPS_LOCAL_LXC__PATH", lxc.path()),
                    ("VPS_LOCAL_LXC__CORES", "8".into()),
                    ("VPS_LOCAL_LXC__MEMORY_MB", "16384".into()),
                    ("VPS_LOCAL_LXC__DISK_GB", "200".into()),
                    // Guests the driver stops itself (for a snapshot) get a short grace.
                    ("VPS_LOCAL_LXC__SETTINGS__STOP_GRACE_SECS", "\"2\"".into()),
                ],
                "monitor" => vec![
                    ("VPS_INTERVAL_MS", "1000".into()),
                    ("VPS_NODE_TIMEOUT_MS", "700".into()),
                ],
                "notify" => vec![
                    ("VPS_SECRETS_KEY", secret(4)),
                    ("VPS_SMTP__HOST", "127.0.0.1".into()),
                    ("VPS_SMTP__PORT", smtp.port.to_string()),
                    ("VPS_SMTP__TLS", "none".into()),
                    ("VPS_MAIL__FROM", "VPS <noreply@panel.example>".into()),
                ],
                _ => vec![
                    ("VPS_AUTH_RATE_PER_MINUTE", "100000".into()),
                    ("VPS_AUTH_RATE_BURST", "100000".into()),
                ],
            };
            env.extend(more.into_iter().map(|(k, v)| (k.to_owned(), v)));
            let program = if service == "gateway" {
                binary("gateway")
            } else {
                binary(&format!("{service}-svc"))
            };
            replicas.entry(service).or_default().push(Process {
                name: format!("{service}-{i}"),
                program,
                args: Vec::new(),
                env,
                port: *port,
                log: root.join(format!("{service}-{i}.log")),
                child: None,
            });
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", front[service]))
            .await
            .expect("balancer");
        tokio::spawn(balance(listener, ports.to_vec()));
    }
    for process in replicas.values_mut().flatten() {
        process.start();
    }
    for (service, processes) in &mut replicas {
        for process in processes {
            ready(process, *service != "gateway").await;
        }
    }
    let started_rss: BTreeMap<String, f64> = replicas
        .values()
        .flatten()
        .map(|p| (p.name.clone(), p.rss_mb()))
        .collect();

    // Customers, with credits.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let base = format!("http://127.0.0.1:{}", front["gateway"]);
    let login = |login: String, password: &'static str| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let reply: Value = http
                .post(format!("{base}/api/auth/login"))
                .json(&json!({"login": login, "password": password}))
                .send()
                .await
                .expect("login")
                .json()
                .await
                .expect("session");
            reply["accessToken"].as_str().expect("a token").to_owned()
        }
    };
    let admin = login("admin".into(), ADMIN_PASSWORD).await;
    let tally = Arc::new(Tally::default());
    let mut customers = Vec::new();
    for i in 0..USERS {
        let username = format!("customer{i}");
        let registered = http
            .post(format!("{base}/api/auth/register"))
            .json(&json!({"username": username, "email": format!("{username}@example.com"), "password": USER_PASSWORD}))
            .send()
            .await
            .expect("register");
        assert_eq!(registered.status(), StatusCode::CREATED);
        let id = registered.json::<Value>().await.expect("user")["id"]
            .as_i64()
            .expect("id");
        let granted = http
            .post(format!("{base}/api/admin/users/{id}/credits"))
            .bearer_auth(&admin)
            .json(&json!({"amount": 100_000, "reason": "load"}))
            .send()
            .await
            .expect("credits");
        assert!(granted.status().is_success());
        customers.push(Customer {
            http: http.clone(),
            base: base.clone(),
            token: login(username, USER_PASSWORD).await,
            tally: Arc::clone(&tally),
            doing: Mutex::new(("starting".into(), Instant::now())),
            last_retried: Mutex::new("nothing".into()),
        });
    }

    // The load, and the kills.
    let stop = Arc::new(AtomicBool::new(false));
    let customers = Arc::new(customers);
    let load: Vec<_> = (0..USERS)
        .map(|i| {
            let customers = Arc::clone(&customers);
            let stop = Arc::clone(&stop);
            tokio::spawn(async move { customers[i].work(i, &stop).await })
        })
        .collect();
    let began = Instant::now();
    // (replica, how it was stopped, how long it was away, how long it took to serve).
    let mut recoveries: Vec<(String, &str, Duration, Duration)> = Vec::new();
    let order = [
        "server", "node", "identity", "snapshot", "nats", "notify", "monitor", "gateway",
    ];
    let pause = load_for() / u32::try_from(order.len() + 1).expect("few");
    for (round, target) in order.iter().enumerate() {
        tokio::time::sleep(pause).await;
        let (process, how) = match *target {
            "nats" => (&mut nats[round % 3], "killed"),
            // The gateway is stopped as a rolling update stops it; the others die.
            "gateway" => (
                &mut replicas.get_mut("gateway").expect("gateway")[round % 2],
                "terminated",
            ),
            service => (
                &mut replicas.get_mut(service).expect("service")[round % 2],
                "killed",
            ),
        };
        let killed = Instant::now();
        if how == "killed" {
            process.kill();
        } else {
            process.terminate().await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        process.start();
        let serving = ready(process, !matches!(*target, "gateway" | "nats")).await;
        recoveries.push((process.name.clone(), how, killed.elapsed(), serving));
    }
    tokio::time::sleep(pause).await;
    stop.store(true, Ordering::Relaxed);
    // A round takes well under a minute; one still running after three is stuck, and what
    // each customer was doing then is what the test reports, instead of hanging.
    let finishing = Instant::now() + Duration::from_secs(180);
    for mut worker in load {
        let left = finishing.saturating_duration_since(Instant::now());
        let ended = match tokio::time::timeout(left, &mut worker).await {
            Ok(ended) => ended,
            Err(_) => {
                if !tally.gave_up() {
                    let stuck: Vec<String> = customers
                        .iter()
                        .enumerate()
                        .map(|(i, c)| format!("customer {i}: {}", c.doing()))
                        .collect();
                    tally.fail(format!(
                        "the load did not end within 180 s of its stop: {stuck:?}"
                    ));
                    tally.give_up.store(true, Ordering::Relaxed);
                }
                worker.await
            }
        };
        ended.expect("a customer's load");
    }
    let load_secs = began.elapsed().as_secs_f64();

    // Every task ended; each server once, with one container and one "created" mail.
    let created = tally.created.lock().expect("created").clone();
    let failures = tally.failures.lock().expect("failures").clone();
    assert!(
        !created.is_empty(),
        "the load created servers: {failures:#?}"
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let mails_per_server = loop {
        let mails = smtp.mails();
        let counted: BTreeMap<i64, usize> = created
            .iter()
            .map(|(id, _, _)| {
                let tag = format!("#{id})");
                let n = mails
                    .iter()
                    .filter(|m| {
                        m["subject"].as_str().is_some_and(|s| s.contains("created"))
                            || m["text"]
                                .as_str()
                                .is_some_and(|t| t.contains("has been created"))
                    })
                    .filter(|m| m["text"].as_str().is_some_and(|t| t.contains(&tag)))
                    .count();
                (*id, n)
            })
            .collect();
        if counted.values().all(|n| *n >= 1) || Instant::now() > deadline {
            break counted;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // A delete asked for during a snapshot waits for it: the customer sees the server gone
    // at once, the container goes when the queued delete has run.
    let count = || {
        std::fs::read_dir(lxc.path())
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().join("config").is_file())
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let containers = count();

    // Billing: per server, every period charged once and none skipped.
    let mut billing_problems = Vec::new();
    let mut periods_charged = 0;
    for (i, customer) in customers.iter().enumerate() {
        let (_, credits) = customer
            .send(reqwest::Method::GET, "/api/credits", None)
            .await;
        let mut per_server: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for entry in credits["entries"].as_array().cloned().unwrap_or_default() {
            if let Some((server, at)) = entry["reference"]
                .as_str()
                .and_then(|r| r.rsplit_once(":period:"))
            {
                per_server
                    .entry(server.to_owned())
                    .or_default()
                    .push(at.parse().expect("a period's start"));
            }
        }
        for (server, mut periods) in per_server {
            periods.sort_unstable();
            let before = periods.len();
            periods.dedup();
            periods_charged += periods.len();
            if periods.len() != before {
                billing_problems.push(format!("customer {i}, {server}: a period charged twice"));
            }
            if !periods.windows(2).all(|w| w[1] - w[0] == 2000) {
                billing_problems.push(format!(
                    "customer {i}, {server}: a period skipped: {periods:?}"
                ));
            }
        }
    }

    let rss: Vec<String> = replicas
        .values()
        .flatten()
        .map(|p| {
            format!(
                "{} {:.0}→{:.0} MB",
                p.name,
                started_rss.get(&p.name).copied().unwrap_or(0.0),
                p.rss_mb()
            )
        })
        .collect();
    println!(
        "cluster: {} requests in {load_secs:.0} s by {USERS} customers; {} servers created; \
         retried after a 503: {}; retried after a cut connection: {}; snapshots a lost try \
         made, met by the retry: {}; failures: {}",
        tally.requests.load(Ordering::Relaxed),
        created.len(),
        tally.retried_503.load(Ordering::Relaxed),
        tally.transport_retried.load(Ordering::Relaxed),
        tally.snapshot_conflicts_after_retry.load(Ordering::Relaxed),
        failures.len(),
    );
    for (name, how, away, serving) in &recoveries {
        println!(
            "cluster: {name} {how}, started again 1 s later; away {:.1} s, serving {:.2} s after its start",
            away.as_secs_f64(),
            serving.as_secs_f64()
        );
    }
    println!("cluster: billing periods charged: {periods_charged}");
    println!("cluster: memory (RSS, start→end): {}", rss.join(", "));

    let logs = || {
        replicas
            .values()
            .flatten()
            .map(|p| format!("--- {}\n{}", p.name, p.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        failures.is_empty(),
        "requests failed: {failures:#?}\n{}",
        logs()
    );
    assert!(
        mails_per_server.values().all(|n| *n == 1),
        "one created mail per server: {mails_per_server:?}\n{}",
        logs()
    );
    let left: Vec<String> = std::fs::read_dir(lxc.path())
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("config").is_file())
                .map(|e| {
                    let inside: Vec<String> = std::fs::read_dir(e.path())
                        .map(|i| {
                            i.flatten()
                                .map(|f| f.file_name().to_string_lossy().into_owned())
                                .collect()
                        })
                        .unwrap_or_default();
                    format!("{} {inside:?}", e.file_name().to_string_lossy())
                })
                .collect()
        })
        .unwrap_or_default();
    // What the services said of a container left behind, to find out why.
    let mentions = |name: &str| {
        replicas
            .values()
            .flatten()
            .flat_map(|p| {
                std::fs::read_to_string(&p.log)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains(name) || l.contains("WARN") || l.contains("ERROR"))
                    .map(|l| format!("{}: {l}", p.name))
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let said: Vec<String> = left
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .map(mentions)
        .collect();
    assert_eq!(
        containers,
        0,
        "every server deleted, no container left behind: {left:?} (servers {created:?})\n{}",
        said.join("\n")
    );
    assert!(billing_problems.is_empty(), "{billing_problems:#?}");

    for process in replicas.values_mut().flatten() {
        process.terminate().await;
    }
    for server in &mut nats {
        server.kill();
    }
    databases.drop_all().await;
}
