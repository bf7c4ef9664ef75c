//! The README's first command in miniature: `vps-stack` starts nats-server and every service,
//! prints how to log in, keeps its data across restarts, and stops cleanly on Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Ports {
    gateway: u16,
    nats: u16,
    grpc: [u16; 6],
}

fn ports() -> Ports {
    Ports {
        gateway: testkit::free_port(),
        nats: testkit::free_port(),
        grpc: std::array::from_fn(|_| testkit::free_port()),
    }
}

/// Starts the launcher and reads its banner; returns the child and the banner lines.
fn launch(data_dir: &std::path::Path, ports: &Ports) -> (Child, Vec<String>) {
    launch_with(data_dir, ports, &[])
}

/// [`launch`] with more environment.
fn launch_with(
    data_dir: &std::path::Path,
    ports: &Ports,
    env: &[(&str, String)],
) -> (Child, Vec<String>) {
    let names = [
        "IDENTITY", "SERVER", "SNAPSHOT", "NODE", "MONITOR", "NOTIFY",
    ];
    let mut command = Command::new(env!("CARGO_BIN_EXE_vps-stack"));
    command
        .env("VPS_DATA_DIR", data_dir)
        .env("VPS_LXC_PATH", lxc_dir(data_dir))
        .env("VPS_GATEWAY_PORT", ports.gateway.to_string())
        .env("VPS_NATS_PORT", ports.nats.to_string())
        .env("VPS_ADMIN_API_KEY", ADMIN_API_KEY)
        .stdout(Stdio::piped())
        .stderr(log_file(data_dir));
    for (name, port) in names.iter().zip(ports.grpc) {
        command.env(format!("VPS_{name}_PORT"), port.to_string());
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let mut child = command.spawn().expect("vps-stack starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    let mut reader = BufReader::new(stdout);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("banner line") == 0 {
            break;
        }
        let done = line.contains("Stop:");
        lines.push(line.trim_end().to_owned());
        if done {
            break;
        }
    }
    assert!(
        lines.iter().any(|l| l.contains("Stop:")),
        "the banner was printed: {lines:?}"
    );
    // Keep reading, as a terminal would, so the launcher never writes into a closed pipe.
    std::thread::spawn(move || reader.lines().for_each(drop));
    (child, lines)
}

/// The launcher's log (appended across launches), shown when an assertion fails.
/// The local node's containers: beside the data directory, not inside it.
fn lxc_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}-lxc", data_dir.display()))
}

fn log_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("launcher-test.log")
}

fn log_file(data_dir: &std::path::Path) -> Stdio {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(data_dir))
        .expect("log file");
    Stdio::from(file)
}

fn log_tail(data_dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(log_path(data_dir)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn interrupt_and_wait(child: &mut Child, data_dir: &std::path::Path) {
    let status = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(
                status.success(),
                "clean exit on Ctrl-C, got {status}; log:\n{}",
                log_tail(data_dir)
            );
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the stack did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A login through the gateway, from this synchronous test.
fn login(port: u16, password: &str, data_dir: &std::path::Path) -> reqwest::StatusCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/api/auth/login"))
            .json(&serde_json::json!({"login": "admin", "password": password}))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the gateway does not answer: {e}; log:\n{}",
                    log_tail(data_dir)
                )
            })
            .status()
    })
}

const ADMIN_API_KEY: &str = "sk_launcher-test-key-0123456789abcdefghij";

/// `GET /api/users` with the configured Skyport key.
fn users_with_key(port: u16, data_dir: &std::path::Path) -> reqwest::StatusCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/api/users"))
            .header("x-api-key", ADMIN_API_KEY)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the gateway does not answer: {e}; log:\n{}",
                    log_tail(data_dir)
                )
            })
            .status()
    })
}

fn expect_login(
    port: u16,
    password: &str,
    data_dir: &std::path::Path,
    expected: reqwest::StatusCode,
) {
    let got = login(port, password, data_dir);
    assert_eq!(
        got,
        expected,
        "login answered {got}; log:\n{}",
        log_tail(data_dir)
    );
}

/// The README's walk-through: credits for the administrator, a BusyBox server on the local
/// LXC node, running, then deleted.
fn order_a_server(port: u16, password: &str, data_dir: &std::path::Path) {
    order_a_server_with(port, password, data_dir, &[]);
}

/// [`order_a_server`] with more headers on the create call (a `traceparent`).
fn order_a_server_with(
    port: u16,
    password: &str,
    data_dir: &std::path::Path,
    headers: &[(&str, &str)],
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let gw = format!("http://127.0.0.1:{port}");
        let session: serde_json::Value = http
            .post(format!("{gw}/api/auth/login"))
            .json(&serde_json::json!({"login": "admin", "password": password}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("session");
        let token = session["accessToken"].as_str().expect("token").to_owned();
        let granted = http
            .post(format!("{gw}/api/admin/users/1/credits"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"amount": 10_000, "reason": "first steps"}))
            .send()
            .await
            .expect("credits");
        assert!(granted.status().is_success());
        let mut create = http.post(format!("{gw}/api/server/create"));
        for (name, value) in headers {
            create = create.header(*name, *value);
        }
        let created = create
            .bearer_auth(&token)
            .json(&serde_json::json!({"osId": 1, "tariffId": 1, "name": "hello"}))
            .send()
            .await
            .expect("create");
        assert_eq!(
            created.status(),
            reqwest::StatusCode::CREATED,
            "log:\n{}",
            log_tail(data_dir)
        );
        let created: serde_json::Value = created.json().await.expect("server");
        let id = created["id"].as_i64().expect("id");
        let mut status = serde_json::Value::Null;
        for _ in 0..300 {
            let server: serde_json::Value = http
                .get(format!("{gw}/api/server/{id}"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("get")
                .json()
                .await
                .expect("server");
            status = server["status"].clone();
            if status == "running" || status == "error" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, "running", "log:\n{}", log_tail(data_dir));
        let deleted = http
            .delete(format!("{gw}/api/server/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("delete");
        assert!(deleted.status().is_success());
        let lxc = lxc_dir(data_dir);
        for _ in 0..300 {
            let left = std::fs::read_dir(&lxc).map_or(0, |d| {
                d.flatten()
                    .filter(|e| e.path().join("config").is_file())
                    .count()
            });
            if left == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the container was not removed; log:\n{}",
            log_tail(data_dir)
        );
    });
}

/// Whether the stack will register its local LXC node (root, with the LXC tools).
fn local_lxc() -> bool {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    root && std::path::Path::new("/usr/bin/lxc-create").exists()
}

#[test]
fn the_stack_starts_prints_its_login_keeps_data_and_stops_cleanly() {
    // Under /var/tmp, where unprivileged guests can reach the container path beside it.
    let dir = tempfile::tempdir_in("/var/tmp").expect("temp dir");
    let _remove_lxc = RemoveOnDrop(lxc_dir(dir.path()));
    let ports = ports();

    let (mut child, banner) = launch(dir.path(), &ports);
    let gateway_line = banner
        .iter()
        .find(|l| l.contains("Gateway:"))
        .expect("gateway line");
    assert!(
        gateway_line.contains(&format!("http://127.0.0.1:{}", ports.gateway)),
        "{gateway_line}"
    );
    let password_line = banner
        .iter()
        .find(|l| l.contains("password '"))
        .expect("generated password shown");
    let password = password_line
        .split('\'')
        .nth(1)
        .expect("quoted password")
        .to_owned();
    let kept = std::fs::read_to_string(dir.path().join("admin-password")).expect("password file");
    assert_eq!(kept.trim(), password);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("admin-password"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the password file is private");
    }
    expect_login(
        ports.gateway,
        &password,
        dir.path(),
        reqwest::StatusCode::OK,
    );
    expect_login(
        ports.gateway,
        "wrong-password",
        dir.path(),
        reqwest::StatusCode::UNAUTHORIZED,
    );
    assert_eq!(
        users_with_key(ports.gateway, dir.path()),
        reqwest::StatusCode::OK,
        "the configured Skyport key works"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", ports.nats)).is_ok(),
        "nats-server runs"
    );
    if local_lxc() {
        order_a_server(ports.gateway, &password, dir.path());
    } else {
        eprintln!("not root or no LXC: the server walk-through is skipped");
    }
    interrupt_and_wait(&mut child, dir.path());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", ports.nats)).is_err(),
        "nats-server stopped too"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", ports.gateway)).is_err(),
        "the gateway stopped"
    );

    // A second start reuses the data directory: same password, no new one printed.
    let (mut child, banner) = launch(dir.path(), &ports);
    assert!(
        !banner.iter().any(|l| l.contains("password '")),
        "no new password: {banner:?}"
    );
    expect_login(
        ports.gateway,
        &password,
        dir.path(),
        reqwest::StatusCode::OK,
    );
    interrupt_and_wait(&mut child, dir.path());
}

/// Removes a directory when dropped.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An OTLP trace receiver on loopback: the collector's gRPC service, keeping what it gets.
mod otlp {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    /// A span as received: its trace, name, and string attributes (the resource's too).
    #[derive(Debug, Clone)]
    pub struct Span {
        pub trace_id: String,
        pub span_id: String,
        pub parent_span_id: String,
        pub name: String,
        pub attributes: HashMap<String, String>,
    }

    #[derive(Clone, Default)]
    struct Receiver(Arc<Mutex<Vec<Span>>>);

    fn strings(
        attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    ) -> impl Iterator<Item = (String, String)> + '_ {
        attributes
            .iter()
            .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(v) => Some((kv.key.clone(), v.clone())),
                _ => None,
            })
    }

    #[tonic::async_trait]
    impl TraceService for Receiver {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let mut kept = self.0.lock().expect("spans");
            for resource in request.into_inner().resource_spans {
                let resource_attributes: Vec<(String, String)> = resource
                    .resource
                    .as_ref()
                    .map(|r| strings(&r.attributes).collect())
                    .unwrap_or_default();
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        let mut attributes: HashMap<String, String> =
                            resource_attributes.iter().cloned().collect();
                        attributes.extend(strings(&span.attributes));
                        kept.push(Span {
                            trace_id: hex(&span.trace_id),
                            span_id: hex(&span.span_id),
                            parent_span_id: hex(&span.parent_span_id),
                            name: span.name,
                            attributes,
                        });
                    }
                }
            }
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Starts the receiver on a thread of its own: its port, and the spans it keeps.
    pub fn start() -> (u16, Arc<Mutex<Vec<Span>>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let receiver = Receiver::default();
        let spans = Arc::clone(&receiver.0);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(receiver))
                    .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                    .await
                    .expect("the OTLP receiver runs");
            });
        });
        (port, spans)
    }
}

/// `GET /metrics` on the stack's metrics port.
fn metrics_page(port: u16) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .expect("the metrics page answers")
            .text()
            .await
            .expect("text")
    })
}

/// The value of the first series named `name` on `page` that has every one of `labels`.
fn series(page: &str, name: &str, labels: &[&str]) -> Option<f64> {
    page.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

/// Another team's consumer, as the stack's `events` user: it reads the events through a
/// durable consumer of its own, and can neither publish an event nor delete the stream.
fn outside_consumer_reads_only(nats_port: u16, data_dir: &std::path::Path) {
    use futures_util::StreamExt as _;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let password = std::fs::read_to_string(data_dir.join("secrets/nats-events"))
            .expect("the events user's password");
        let client = platform::outbox::connect(&format!(
            "nats://events:{}@127.0.0.1:{nats_port}",
            password.trim()
        ))
        .await
        .expect("the events user logs in");
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream("VPS_EVENTS").await.expect("the stream");
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some("ext-billing-test".to_owned()),
                filter_subject: "vps.events.server.>".to_owned(),
                deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .expect("a durable consumer of its own");
        let mut messages = consumer
            .fetch()
            .max_messages(50)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .expect("fetch");
        let mut subjects = Vec::new();
        while let Some(message) = messages.next().await {
            let message = message.expect("an event");
            subjects.push(message.subject.to_string());
            message.ack().await.expect("ack");
        }
        assert!(
            subjects.iter().any(|s| s == "vps.events.server.created"),
            "the server's events are read: {subjects:?}"
        );
        let others = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some("notify-svc".to_owned()),
                ..Default::default()
            })
            .await;
        assert!(
            others.is_err(),
            "notify-svc's consumer is not for others to take"
        );
        let forged = tokio::time::timeout(Duration::from_secs(3), async {
            js.publish("vps.events.server.created", "{}".into())
                .await?
                .await
                .map_err(anyhow::Error::from)
        })
        .await;
        assert!(
            !matches!(forged, Ok(Ok(_))),
            "an outside consumer cannot publish an event"
        );
        let deleted =
            tokio::time::timeout(Duration::from_secs(3), js.delete_stream("VPS_EVENTS")).await;
        assert!(
            !matches!(deleted, Ok(Ok(_))),
            "an outside consumer cannot delete the stream"
        );
        assert!(
            js.get_stream("VPS_EVENTS").await.is_ok(),
            "the stream is kept"
        );
    });
}

#[test]
fn a_create_is_one_trace_across_the_services_every_service_is_measured_and_events_are_read_only_outside()
 {
    if !local_lxc() {
        eprintln!("not root or no LXC: this test needs the local node");
        return;
    }
    let dir = tempfile::tempdir_in("/var/tmp").expect("temp dir");
    let _remove_lxc = RemoveOnDrop(lxc_dir(dir.path()));
    let ports = ports();
    let metrics_port = testkit::free_port();
    let (otlp_port, spans) = otlp::start();
    let (mut child, banner) = launch_with(
        dir.path(),
        &ports,
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{otlp_port}"),
            ),
            // Export every 200 ms rather than every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
            ("VPS_METRICS_PORT", metrics_port.to_string()),
        ],
    );
    assert!(
        banner
            .iter()
            .any(|l| l.contains(&format!("http://127.0.0.1:{metrics_port}/metrics"))),
        "the banner says where the metrics are: {banner:?}"
    );
    let password = std::fs::read_to_string(dir.path().join("admin-password"))
        .expect("password file")
        .trim()
        .to_owned();

    // The client starts the trace; everything the create causes must join it.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    order_a_server_with(
        ports.gateway,
        &password,
        dir.path(),
        &[("traceparent", traceparent.as_str())],
    );

    // gateway -> server-svc -> node-svc -> outbox -> NATS -> notify-svc, in one trace.
    type Wanted = (&'static str, fn(&otlp::Span) -> bool);
    let wanted: [Wanted; 6] = [
        ("the gateway's request", |s| {
            s.name.starts_with("http")
                && s.attributes.get("route").map(String::as_str) == Some("/api/server/create")
        }),
        ("server-svc's CreateServer", |s| {
            s.attributes.get("vps.service").map(String::as_str) == Some("server-svc")
                && s.name.ends_with("/CreateServer")
        }),
        ("a node-svc call", |s| {
            s.attributes.get("vps.service").map(String::as_str) == Some("node-svc")
        }),
        ("the saga", |s| s.name == "saga"),
        ("the outbox's publication on NATS", |s| {
            s.name == "publish"
                && s.attributes
                    .get("messaging.destination")
                    .is_some_and(|d| d.starts_with("vps.events.server."))
        }),
        ("notify-svc taking the event", |s| {
            s.name == "consume"
                && s.attributes.get("consumer").map(String::as_str) == Some("notify-svc")
        }),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let trace: Vec<otlp::Span> = spans
            .lock()
            .expect("spans")
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        let missing: Vec<&str> = wanted
            .iter()
            .filter(|(_, matches)| !trace.iter().any(matches))
            .map(|(what, _)| *what)
            .collect();
        // One tree: every span but the client's child hangs off another span of it.
        let ids: std::collections::HashSet<&str> =
            trace.iter().map(|s| s.span_id.as_str()).collect();
        let orphans: Vec<&otlp::Span> = trace
            .iter()
            .filter(|s| {
                s.parent_span_id != "00f067aa0ba902b7" && !ids.contains(s.parent_span_id.as_str())
            })
            .collect();
        if missing.is_empty() && orphans.is_empty() {
            assert!(
                trace.iter().all(|s| {
                    s.attributes.get("service.name").map(String::as_str) == Some("vps-stack")
                }),
                "the resource names the process"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the trace lacks {missing:?} or has spans whose parent is not in it ({orphans:#?}); \
             it has {:#?}; log:\n{}",
            trace
                .iter()
                .map(|s| (&s.name, &s.attributes))
                .collect::<Vec<_>>(),
            log_tail(dir.path())
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    outside_consumer_reads_only(ports.nats, dir.path());

    // Every service's metrics, on the stack's one page.
    let page = metrics_page(metrics_port);
    let expect = |name: &str, labels: &[&str]| {
        let value = series(&page, name, labels)
            .unwrap_or_else(|| panic!("no {name} with {labels:?} on the page:\n{page}"));
        assert!(value > 0.0, "{name} {labels:?} is {value}");
    };
    expect(
        "http_requests_total",
        &[
            r#"dialect="panel""#,
            r#"route="/api/server/create""#,
            r#"method="POST""#,
            r#"status="201""#,
        ],
    );
    expect(
        "http_request_duration_seconds_count",
        &[r#"route="/api/server/create""#],
    );
    for service in ["server-svc", "node-svc", "identity-svc"] {
        expect(
            "grpc_server_handled_total",
            &[&format!(r#"service="{service}""#), r#"code="Ok""#],
        );
    }
    expect(
        "grpc_server_handled_total",
        &[
            r#"service="server-svc""#,
            r#"method="/vps.server.v1.Servers/CreateServer""#,
        ],
    );
    expect(
        "grpc_server_handling_seconds_count",
        &[r#"service="node-svc""#],
    );
    expect("vps_saga_finished_total", &[r#"outcome="done""#]);
    expect("vps_outbox_published_total", &[]);
    expect("vps_outbox_publish_delay_seconds_count", &[]);
    expect("vps_monitor_poll_seconds_count", &[r#"outcome="ok""#]);
    assert!(
        series(
            &page,
            "vps_jetstream_consumer_pending",
            &[r#"consumer="notify-svc""#]
        )
        .is_some(),
        "notify-svc's consumer lag is on the page:\n{page}"
    );
    assert!(
        page.contains("vps_server_info") || page.contains("vps_monitor_node_up"),
        "monitor-svc's per-node lines are on the same page:\n{page}"
    );
    interrupt_and_wait(&mut child, dir.path());
}
