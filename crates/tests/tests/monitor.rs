//! monitor-svc against real LXC guests: samples and history through the status route, a
//! guest that burns CPU raises an alert, a guest stopped behind the platform's back becomes
//! `stopped`, traffic survives a restart, per-server metrics, replicas sharing nodes, a
//! plan's throttle over the traffic limit, and
//! Proxmox guests read from `/cluster/resources` (fakepve) without status reads asking it.

use std::time::Duration;

use futures_util::StreamExt as _;
use platform::auth::Service;
use proto::node::v1 as nodepb;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::fleet::{
    ContainerDir, FakePve, Nats, create_server, grant, guest_of, lxc_node, wait_server,
    wait_status, wait_task,
};
use tests::{Backend, Cred, Options, TestApp};

const ADMIN: platform::grpc::Caller = platform::grpc::Caller::admin(1);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The next alert change for `metric` on a `vps.alerts.<id>` subscription (20 s at most).
async fn next_alert(alerts: &mut async_nats::Subscriber, metric: &str) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), alerts.next())
            .await
            .expect("an alert change")
            .expect("a message");
        let alert: Value = serde_json::from_slice(&message.payload).expect("JSON");
        if alert["metric"] == metric {
            return alert;
        }
    }
}

/// The traffic control on a running guest's host-side link, once it has a token bucket.
async fn wait_shaped(dir: &ContainerDir, guest: &str) -> String {
    let mut shown = String::new();
    for _ in 0..50 {
        let info = std::process::Command::new("lxc-info")
            .args(["-P", &dir.path(), "-n", guest])
            .output()
            .expect("lxc-info");
        let info = String::from_utf8_lossy(&info.stdout).into_owned();
        if let Some(link) = info.lines().find_map(|l| l.strip_prefix("Link:")) {
            let qdisc = std::process::Command::new("tc")
                .args(["qdisc", "show", "dev", link.trim()])
                .output()
                .expect("tc");
            shown = String::from_utf8_lossy(&qdisc.stdout).into_owned();
            if shown.contains("tbf") {
                return shown;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let config =
        std::fs::read_to_string(format!("{}/{guest}/config", dir.path())).unwrap_or_default();
    panic!("no token bucket on {guest}'s link: {shown}\nits config:\n{config}");
}

/// The init process of a running container, as the host sees it.
fn init_pid(dir: &ContainerDir, name: &str) -> u32 {
    let out = std::process::Command::new("lxc-info")
        .args(["-P", &dir.path(), "-n", name, "-p", "-H"])
        .output()
        .expect("lxc-info");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a running container's pid")
}

/// Sends `bytes` of UDP out of the guest without anything leaving its network namespace: a
/// veth pair inside it carries them from one end to the other (both count them), on a
/// documentation range. Calling it again in the same namespace reuses the pair.
fn send_inside(dir: &ContainerDir, name: &str, bytes: usize) {
    let pid = init_pid(dir, name).to_string();
    let netns = |args: &[&str]| {
        std::process::Command::new("nsenter")
            .args(["-t", &pid, "-n"])
            .args(args)
            .status()
            .expect("nsenter")
    };
    netns(&[
        "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1",
    ]);
    netns(&["ip", "link", "set", "d0", "up"]);
    netns(&["ip", "link", "set", "d1", "up"]);
    netns(&["ip", "addr", "add", "192.0.2.200/24", "dev", "d0"]);
    netns(&[
        "ip",
        "neigh",
        "replace",
        "192.0.2.201",
        "lladdr",
        "02:00:00:00:00:01",
        "dev",
        "d0",
    ]);
    // bash's /dev/udp: each write is one datagram of 1000 bytes.
    let script = format!(
        "exec 3>/dev/udp/192.0.2.201/9; p=$(head -c 1000 /dev/zero | tr '\\0' x); for i in $(seq {}); do printf '%s' \"$p\" >&3; done",
        bytes / 1000
    );
    let sent = netns(&["bash", "-c", &script]);
    assert!(sent.success(), "sending inside the guest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lxc_guests_are_sampled_alerted_and_watched() {
    let nats = Nats::start().await;
    let metrics_port = free_port();
    let mut options = Options::default();
    options.monitor.nats_url = Some(nats.url.clone().into());
    options.monitor.metrics_listen = Some(([127, 0, 0, 1], metrics_port).into());
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let (amy, jwt) = app.user("amy").await;
    grant(&app, &admin, amy, 100).await;
    let id = create_server(&app, &jwt, "watched").await;
    let guest = guest_of(&app, id).await;
    let status_path = format!("/api/server/{id}/status");

    // Samples arrive within a cycle, and the hour's history grows with them.
    let status = wait_status(&app, &jwt, &status_path, |s| {
        s["stats"]["status"] == "success"
            && s["stats"]["data"]["rrdData"]
                .as_array()
                .is_some_and(|r| r.len() >= 2)
    })
    .await;
    assert_eq!(status["stats"]["data"]["status"], "running");
    let point = &status["stats"]["data"]["rrdData"][0];
    for field in [
        "time",
        "cpu",
        "mem",
        "maxmem",
        "disk",
        "maxdisk",
        "netin",
        "netout",
        "diskread",
        "diskwrite",
    ] {
        assert!(point[field].is_number(), "{field} in {point}");
    }
    let week = app
        .get(
            &format!("{status_path}?timeframe=week&cf=MAX"),
            Cred::Bearer(&jwt),
        )
        .await;
    assert_eq!(week.status, StatusCode::OK, "{}", week.text);
    assert!(
        week.json["stats"]["data"]["rrdData"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "{}",
        week.text
    );
    let bad = app
        .get(
            &format!("{status_path}?timeframe=decade"),
            Cred::Bearer(&jwt),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(bad.json["error"].is_string());

    // Every sample goes out on core NATS.
    let client = async_nats::connect(&nats.url).await.expect("nats");
    let mut samples = client
        .subscribe(format!("vps.stats.{id}"))
        .await
        .expect("subscribe");
    let mut alerts = client
        .subscribe(format!("vps.alerts.{id}"))
        .await
        .expect("subscribe");
    let sample = tokio::time::timeout(Duration::from_secs(10), samples.next())
        .await
        .expect("a sample within a few cycles")
        .expect("a message");
    let sample: Value = serde_json::from_slice(&sample.payload).expect("JSON");
    assert_eq!(sample["serverId"], id);
    assert_eq!(sample["state"], "running");

    // A guest that burns its one core shows it, and the CPU alert fires.
    let mut burner = std::process::Command::new("lxc-attach")
        .args([
            "-P",
            &dir.path(),
            "-n",
            &guest,
            "--clear-env",
            "--",
            "/bin/sh",
            "-c",
            "while :; do :; done",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("lxc-attach");
    let busy = wait_status(&app, &jwt, &status_path, |s| {
        s["stats"]["data"]["cpu"].as_f64().is_some_and(|c| c > 0.5)
    })
    .await;
    assert!(busy["stats"]["data"]["cpu"].as_f64() <= Some(1.0));
    let _ = burner.kill();
    let _ = burner.wait();
    let fired = next_alert(&mut alerts, "cpu").await;
    assert_eq!(fired["type"], "fired", "{fired}");
    assert_eq!(fired["serverId"], id);
    assert!(
        fired["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("CPU usage is at")),
        "{fired}"
    );

    // Per-server metrics, labelled by ids.
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(&format!("vps_server_cpu_usage_ratio{{server_id=\"{id}\",")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("vps_server_info{{server_id=\"{id}\",")),
        "{metrics}"
    );

    // Traffic sent before and after a restart adds up for the month. A month counts from zero,
    // so a run that crosses midnight at a month's end checks only what the new month counted.
    let month = monitor_svc::domain::traffic::month_of(chrono::Utc::now().timestamp_millis());
    let same_month =
        || monitor_svc::domain::traffic::month_of(chrono::Utc::now().timestamp_millis()) == month;
    send_inside(&dir, &guest, 2_000_000);
    let mut before = 0;
    for _ in 0..100 {
        before = traffic_of(&app, id).await.1;
        if before >= 2_000_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        before >= 2_000_000 || !same_month(),
        "{before} bytes counted"
    );
    let restart = app
        .post(
            &format!("/api/server/{id}/restart"),
            Cred::Bearer(&jwt),
            json!({}),
        )
        .await;
    wait_task(&app, &jwt, restart.json["taskId"].as_str().expect("task")).await;
    send_inside(&dir, &guest, 1_000_000);
    let mut after = 0;
    for _ in 0..100 {
        after = traffic_of(&app, id).await.1;
        if after >= before + 1_000_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let same = same_month();
    let counted_before = if same { before } else { 0 };
    assert!(
        after >= counted_before + 1_000_000,
        "{after} after {before}: a restart lost traffic"
    );
    // CVM shows the month's traffic, not the guest's counters since its restart.
    let pair = app.mint(&jwt, "cvm", true).await;
    let cvm = Cred::Cvm(
        pair["publicToken"].as_str().expect("public"),
        pair["privateToken"].as_str().expect("private"),
    );
    let shown = app.get(&format!("/api/client/vps/{id}/status"), cvm).await;
    let out: u64 = shown.json["response"]["traffic_out_used"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("traffic_out_used");
    assert!(
        out >= after || !same_month(),
        "CVM shows {out} of {after}: {}",
        shown.text
    );

    // Stopped behind the platform's back: the server follows, and the alert resolves.
    let stopped = std::process::Command::new("lxc-stop")
        .args(["-P", &dir.path(), "-n", &guest, "-k"])
        .status()
        .expect("lxc-stop");
    assert!(stopped.success());
    let server = wait_server(&app, &jwt, id, |s| s["status"] == "stopped").await;
    assert_eq!(server["status"], "stopped");
    let resolved = next_alert(&mut alerts, "cpu").await;
    assert_eq!(resolved["type"], "resolved", "{resolved}");
}

async fn named_lxc_node(app: &TestApp, dir: &ContainerDir, name: &str) -> i64 {
    app.nodes_client(Service::Gateway)
        .create_node(ADMIN.request(nodepb::CreateNodeRequest {
            name: name.into(),
            location: "local".into(),
            driver: "lxc".into(),
            capacity: Some(nodepb::Capacity {
                cores: 4,
                memory_mb: 1024,
                disk_gb: 10,
            }),
            settings: [("path".to_owned(), dir.path())].into(),
            ..Default::default()
        }))
        .await
        .expect("a node")
        .into_inner()
        .id
}

async fn polled(app: &TestApp, url: &str) -> Vec<(i64, String)> {
    app.monitor_client(url, Service::Gateway)
        .get_poll_status(ADMIN.request(proto::monitor::v1::GetPollStatusRequest {}))
        .await
        .expect("poll status")
        .into_inner()
        .nodes
        .into_iter()
        .map(|n| (n.node_id, n.error))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_nodes_and_a_dead_one_delays_no_other() {
    let app = TestApp::start(Backend::Sqlite).await;
    // Enough nodes that hashing them all onto one replica is vanishingly unlikely (2 in 2^13).
    let dirs: Vec<ContainerDir> = (0..12).map(|_| ContainerDir::new()).collect();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        nodes.push(named_lxc_node(&app, dir, &format!("lxc-{i}")).await);
    }
    // A node that takes connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let dead = app
        .nodes_client(Service::Gateway)
        .create_node(
            ADMIN.request(nodepb::CreateNodeRequest {
                name: "silent".into(),
                location: "local".into(),
                driver: "proxmox".into(),
                capacity: Some(nodepb::Capacity {
                    cores: 4,
                    memory_mb: 1024,
                    disk_gb: 10,
                }),
                address: "127.0.0.1".into(),
                port: u32::from(silent_addr.port()),
                settings: [
                    ("node".to_owned(), "pve".to_owned()),
                    ("insecure".to_owned(), "true".to_owned()),
                ]
                .into(),
                credentials: [(
                    "token".to_owned(),
                    "root@pam!t=00000000-0000-0000-0000-000000000000".to_owned(),
                )]
                .into(),
                ..Default::default()
            }),
        )
        .await
        .map(|r| r.into_inner().id);
    let (url, second) = app.another_monitor_svc(|_| {}).await;

    // Within a few cycles, each node is polled by exactly one of the two replicas.
    let mut shared = false;
    let mut last = (Vec::new(), Vec::new());
    for _ in 0..150 {
        let a = polled(&app, &app.monitor_url).await;
        let b = polled(&app, &url).await;
        let a_ids: Vec<i64> = a.iter().map(|n| n.0).collect();
        let b_ids: Vec<i64> = b.iter().map(|n| n.0).collect();
        let all_lxc = nodes.iter().all(|n| a_ids.contains(n) != b_ids.contains(n));
        last = (a_ids.clone(), b_ids.clone());
        if all_lxc && !a_ids.is_empty() && !b_ids.is_empty() {
            assert!(
                a_ids.iter().all(|n| !b_ids.contains(n)),
                "{a_ids:?} and {b_ids:?}"
            );
            shared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        shared,
        "the two replicas did not split the nodes {nodes:?}: {:?} and {:?}",
        last.0, last.1
    );

    // The silent node fails its polls; the LXC nodes keep their interval meanwhile.
    if let Ok(dead) = dead {
        let mut seen_error = false;
        for _ in 0..50 {
            let all: Vec<(i64, String)> = [
                polled(&app, &app.monitor_url).await,
                polled(&app, &url).await,
            ]
            .concat();
            if all.iter().any(|(n, e)| *n == dead && !e.is_empty()) {
                seen_error = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(seen_error, "the silent node's poll should fail");
    }
    let status = app
        .monitor_client(&app.monitor_url, Service::Gateway)
        .get_poll_status(ADMIN.request(proto::monitor::v1::GetPollStatusRequest {}))
        .await
        .expect("status")
        .into_inner();
    let now = chrono::Utc::now().timestamp_millis();
    for node in status.nodes.iter().filter(|n| nodes.contains(&n.node_id)) {
        assert!(node.error.is_empty(), "{node:?}");
        assert!(
            now - node.last_cycle_at_ms < 2500,
            "an LXC node fell behind: {node:?}"
        );
    }

    // One replica stops: the other takes every node.
    second.trigger();
    let mut taken = false;
    for _ in 0..100 {
        let a: Vec<i64> = polled(&app, &app.monitor_url)
            .await
            .into_iter()
            .map(|n| n.0)
            .collect();
        if nodes.iter().all(|n| a.contains(n)) {
            taken = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        taken,
        "the remaining replica did not take the stopped one's nodes"
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_server_service_reads_stats() {
    let app = TestApp::start(Backend::Sqlite).await;
    let mut as_gateway = app.monitor_client(&app.monitor_url, Service::Gateway);
    let user = platform::grpc::Caller::user(5);
    let refused = as_gateway
        .get_stats(user.request(proto::monitor::v1::GetStatsRequest {
            server_id: 1,
            ..Default::default()
        }))
        .await
        .expect_err("a user may not read stats directly");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let refused = as_gateway
        .get_poll_status(user.request(proto::monitor::v1::GetPollStatusRequest {}))
        .await
        .expect_err("users may not read the poll status");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let mut as_server = app.monitor_client(&app.monitor_url, Service::Server);
    let stats = as_server
        .get_stats(proto::monitor::v1::GetStatsRequest {
            server_id: 99,
            ..Default::default()
        })
        .await
        .expect("server-svc may")
        .into_inner();
    assert!(stats.latest.is_none() && stats.stale);
}

async fn traffic_of(app: &TestApp, id: i64) -> (u64, u64) {
    let s = app
        .servers_client(Service::Gateway)
        .get_server(ADMIN.request(proto::server::v1::ServerRef {
            id,
            uuid: String::new(),
        }))
        .await
        .expect("the server")
        .into_inner();
    (s.traffic_in_bytes, s.traffic_out_bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxmox_guests_come_from_cluster_resources_and_reads_never_ask_the_node() {
    let pve = FakePve::start();
    let nats = Nats::start().await;
    let mut options = Options::default();
    options.monitor.nats_url = Some(nats.url.clone().into());
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    pve.register(&app, "pve-watched").await;
    let admin = app.admin_token().await;
    let (pat, jwt) = app.user("pat").await;
    grant(&app, &admin, pat, 100).await;
    let created = app
        .post(
            "/api/server/create",
            Cred::Bearer(&jwt),
            json!({"osId": 2, "tariffId": 2, "name": "pve-watched"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let task = wait_task(&app, &jwt, created.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    let id = created.json["id"].as_i64().expect("id");
    let tag = format!("vps-{}", guest_of(&app, id).await);
    let status_path = format!("/api/server/{id}/status");
    wait_status(&app, &jwt, &status_path, |s| {
        s["stats"]["status"] == "success"
    })
    .await;

    let client = async_nats::connect(&nats.url).await.expect("nats");
    let mut alerts = client
        .subscribe(format!("vps.alerts.{id}"))
        .await
        .expect("subscribe");
    // PVE's own figures: CPU as a fraction of the guest's cores, counters since its start.
    pve.set_stats(&json!({ &tag: {
        "cpu": 0.97, "netin": 5000, "netout": 7000, "diskread": 1000, "diskwrite": 2000, "uptime": 100,
    }}));
    let busy = wait_status(&app, &jwt, &status_path, |s| {
        s["stats"]["data"]["cpu"].as_f64() == Some(0.97)
    })
    .await;
    assert_eq!(
        busy["stats"]["data"]["network"],
        json!({"in": 5000, "out": 7000})
    );
    let alert = next_alert(&mut alerts, "cpu").await;
    assert_eq!(
        (alert["metric"].as_str(), alert["type"].as_str()),
        (Some("cpu"), Some("fired")),
        "{alert}"
    );
    assert_eq!(alert["level"], "warning");

    // The guest restarts: its counters begin again, and the month keeps what came before.
    pve.set_stats(&json!({ &tag: {"cpu": 0.1, "netin": 200, "netout": 300, "uptime": 5} }));
    let mut traffic = (0, 0);
    for _ in 0..100 {
        traffic = traffic_of(&app, id).await;
        if traffic == (5200, 7300) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(traffic, (5200, 7300), "in and out for the month");

    // The node goes away: status reads still answer at once, from the last sample (they
    // never asked the node), until the sample goes stale and the server reads `unknown`.
    drop(pve);
    let started = std::time::Instant::now();
    let read = app.get(&status_path, Cred::Bearer(&jwt)).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        read.json["stats"]["data"]["memory"]["max"].as_u64() > Some(0),
        "{}",
        read.text
    );
    let stale = wait_status(&app, &jwt, &status_path, |s| s["status"] == "unknown").await;
    assert_eq!(stale["stats"]["status"], "unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_over_its_traffic_limit_is_throttled_once_a_month() {
    let nats = Nats::start().await;
    let mut options = Options::default();
    options.server.nats_url = Some(nats.url.clone().into());
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let (amy, jwt) = app.user("amy").await;
    grant(&app, &admin, amy, 100).await;
    let plan = app
        .call(
            reqwest::Method::PUT,
            "/api/admin/plans/77",
            Cred::Bearer(&admin),
            Some(json!({
                "name": "metered", "vcpus": 1, "memory": 256, "disk": 2, "bandwidth": 1,
                "price": 100, "trafficAction": "throttle", "throttleMbit": 8,
            })),
        )
        .await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.text);
    assert_eq!(plan.json["trafficAction"], "throttle");
    // A limit of 1 MB for this server (its own, below the plan's GB).
    let reply = app
        .servers_client(Service::Gateway)
        .create_server(ADMIN.request(proto::server::v1::CreateServerRequest {
            owner_id: amy,
            name: "metered".into(),
            plan_id: 77,
            image_id: 1,
            traffic_combined: true,
            traffic_limit_bytes: 1_000_000,
            ..Default::default()
        }))
        .await
        .expect("created")
        .into_inner();
    let task = wait_task(&app, &jwt, &reply.task_id).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    let id = reply.server.expect("server").id;
    let guest = guest_of(&app, id).await;
    let client = async_nats::connect(&nats.url).await.expect("nats");
    let mut exceeded = client
        .subscribe("vps.events.server.traffic_exceeded")
        .await
        .expect("subscribe");
    wait_status(&app, &jwt, &format!("/api/server/{id}/status"), |s| {
        s["stats"]["status"] == "success"
    })
    .await;

    send_inside(&dir, &guest, 2_000_000);
    let message = tokio::time::timeout(Duration::from_secs(20), exceeded.next())
        .await
        .expect("the traffic event")
        .expect("a message");
    let event: Value = serde_json::from_slice(&message.payload).expect("JSON");
    assert_eq!(event["serverId"], id);
    assert_eq!(event["action"], "throttle");
    assert_eq!(event["limitBytes"], 1_000_000);
    assert!(event["outBytes"].as_u64() >= Some(2_000_000), "{event}");

    // The guest's host-side link now carries the plan's rate, and again after a restart
    // (a new link).
    let shaped = wait_shaped(&dir, &guest).await;
    assert!(shaped.contains("rate 8Mbit"), "{shaped}");
    let restart = app
        .post(
            &format!("/api/server/{id}/restart"),
            Cred::Bearer(&jwt),
            json!({}),
        )
        .await;
    let task = wait_task(&app, &jwt, restart.json["taskId"].as_str().expect("task")).await;
    assert_eq!(task["state"], "succeeded", "{task}");
    let shaped = wait_shaped(&dir, &guest).await;
    assert!(shaped.contains("rate 8Mbit"), "after a restart: {shaped}");

    // More traffic the same month raises nothing more.
    send_inside(&dir, &guest, 500_000);
    let again = tokio::time::timeout(Duration::from_secs(4), exceeded.next()).await;
    assert!(
        again.is_err(),
        "a second event in the same month: {again:?}"
    );
}
