//! Guests through node-svc's gRPC API on a real LXC node, and what a dead or slow node does:
//! it fails fast or times out on its own, and nothing else waits for it. Needs root, LXC and
//! `lxc-net` (deploy/test.sh provides them).

use std::time::{Duration, Instant};

use platform::auth::Service;
use platform::grpc::Caller;
use proto::node::v1 as pb;
use proto::node::v1::guests_client::GuestsClient;
use proto::node::v1::nodes_client::NodesClient;
use tests::{Backend, Options, Signed, TestApp};
use tonic::Code;

const ADMIN: Caller = Caller::admin(tests::ADMIN_ID);

/// A container path that removes its containers when dropped.
struct ContainerDir {
    dir: tempfile::TempDir,
}

impl ContainerDir {
    fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("vps-guests")
                .tempdir_in("/var/tmp")
                .expect("dir"),
        }
    }

    fn path(&self) -> String {
        self.dir.path().display().to_string()
    }
}

impl Drop for ContainerDir {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.dir.path()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let _ = std::process::Command::new("lxc-destroy")
                .arg("-P")
                .arg(self.dir.path())
                .args(["-n", &name, "-f", "-s"])
                .output();
        }
    }
}

/// node-svc as the administrator (users' calls) and as server-svc (everything else).
async fn clients(app: &TestApp) -> (NodesClient<Signed>, GuestsClient<Signed>) {
    (
        app.nodes_client(Service::Server),
        app.guests_client(Service::Server),
    )
}

async fn lxc_node(nodes: &mut NodesClient<Signed>, name: &str, path: &str) -> i64 {
    let request = pb::CreateNodeRequest {
        name: name.into(),
        driver: "lxc".into(),
        capacity: Some(pb::Capacity {
            cores: 2,
            memory_mb: 2048,
            disk_gb: 20,
        }),
        // A guest whose boot waits on DHCP ignores the halt signal until it has an address:
        // the snapshot's stop then takes this long, not the default 30 s.
        settings: [
            ("path".to_owned(), path.to_owned()),
            ("stop_grace_secs".to_owned(), "5".to_owned()),
        ]
        .into(),
        ..Default::default()
    };
    nodes
        .create_node(ADMIN.request(request))
        .await
        .expect("node")
        .into_inner()
        .id
}

fn guest(node_id: i64, name: &str) -> pb::GuestRef {
    pb::GuestRef {
        node_id,
        name: name.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_lives_and_dies_through_node_svc() {
    let app = TestApp::start(Backend::Sqlite).await;
    let (mut nodes, mut guests) = clients(&app).await;
    let dir = ContainerDir::new();
    let node = lxc_node(&mut nodes, "local", &dir.path()).await;
    let g = || guest(node, "vps-1");

    let create = pb::CreateGuestRequest {
        guest: Some(g()),
        template: "busybox".into(),
        hostname: "web1.example.test".into(),
        size: Some(pb::Capacity {
            cores: 1,
            memory_mb: 256,
            disk_gb: 1,
        }),
        root_password: String::new(),
    };
    guests.create_guest(create.clone()).await.expect("create");
    let again = guests
        .create_guest(create)
        .await
        .expect("create again")
        .into_inner();
    assert!(again.notes.iter().any(|n| n.contains("already existed")));
    guests.start_guest(g()).await.expect("start");
    let state = guests
        .get_guest_state(g())
        .await
        .expect("state")
        .into_inner();
    assert_eq!(state.state, i32::from(pb::PowerState::Running));

    let password = pb::SetGuestPasswordRequest {
        guest: Some(g()),
        user: "root".into(),
        password: "Correct-Horse-9".into(),
    };
    guests.set_guest_password(password).await.expect("password");
    let short = pb::SetGuestPasswordRequest {
        guest: Some(g()),
        user: "root".into(),
        password: "short".into(),
    };
    assert_eq!(
        guests
            .set_guest_password(short)
            .await
            .expect_err("short")
            .code(),
        Code::InvalidArgument
    );
    let resize = pb::ResizeGuestRequest {
        guest: Some(g()),
        memory_mb: Some(320),
        ..Default::default()
    };
    guests.resize_guest(resize).await.expect("resize");

    let usage = guests
        .node_usage(pb::NodeUsageRequest { node_id: node })
        .await
        .expect("usage")
        .into_inner();
    let mine = usage
        .guests
        .iter()
        .find(|u| u.name == "vps-1")
        .expect("listed");
    assert_eq!(mine.state, i32::from(pb::PowerState::Running));
    assert_eq!(mine.memory_limit_bytes, 320 * 1024 * 1024);

    let snapshot = pb::SnapshotRequest {
        guest: Some(g()),
        snapshot: "first".into(),
        description: "before".into(),
    };
    let notes = guests
        .create_snapshot(snapshot)
        .await
        .expect("snapshot")
        .into_inner()
        .notes;
    assert!(notes.iter().any(|n| n.contains("stopped")), "{notes:?}");
    let listed = guests
        .list_snapshots(g())
        .await
        .expect("list")
        .into_inner()
        .snapshots;
    assert_eq!(
        listed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["first"]
    );
    let bad = pb::SnapshotRequest {
        guest: Some(g()),
        snapshot: "no spaces".into(),
        description: String::new(),
    };
    assert_eq!(
        guests.create_snapshot(bad).await.expect_err("bad").code(),
        Code::InvalidArgument
    );

    guests
        .stop_guest(pb::StopGuestRequest {
            guest: Some(g()),
            grace_secs: 1,
        })
        .await
        .expect("stop");
    guests.delete_guest(g()).await.expect("delete");
    guests.delete_guest(g()).await.expect("delete again");
    assert_eq!(
        guests.get_guest_state(g()).await.expect_err("gone").code(),
        Code::NotFound
    );
    let invalid = guests
        .get_guest_state(guest(node, "1-bad"))
        .await
        .expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let no_node = guests
        .get_guest_state(guest(9999, "vps-1"))
        .await
        .expect_err("no node");
    assert_eq!(no_node.code(), Code::NotFound);
    let injected = pb::CreateGuestRequest {
        guest: Some(g()),
        template: "busybox".into(),
        hostname: "a.example.test\nlxc.hook.pre-start = /bin/false".into(),
        size: None,
        root_password: String::new(),
    };
    assert_eq!(
        guests
            .create_guest(injected)
            .await
            .expect_err("refused")
            .code(),
        Code::InvalidArgument
    );
    let huge = pb::ResizeGuestRequest {
        guest: Some(g()),
        memory_mb: Some(1 << 44),
        ..Default::default()
    };
    assert_eq!(
        guests.resize_guest(huge).await.expect_err("refused").code(),
        Code::InvalidArgument
    );

    // A deleted node's driver is not used again.
    nodes
        .delete_node(ADMIN.request(pb::DeleteNodeRequest { id: node }))
        .await
        .expect("delete node");
    assert_eq!(
        guests
            .get_guest_state(g())
            .await
            .expect_err("node gone")
            .code(),
        Code::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_fails_fast_and_hurts_only_itself() {
    let mut options = Options::default();
    options.node.probe_interval_secs = 1;
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    let (mut nodes, mut guests) = clients(&app).await;
    let dir = ContainerDir::new();
    let alive = lxc_node(&mut nodes, "alive", &dir.path()).await;
    let dead = lxc_node(&mut nodes, "dead", "/var/tmp/vps-no-such-container-path").await;

    let get = |id| {
        ADMIN.request(pb::GetNodeRequest {
            by: Some(pb::get_node_request::By::Id(id)),
        })
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let health = nodes
            .get_node(get(dead))
            .await
            .expect("get")
            .into_inner()
            .health;
        if health == i32::from(pb::NodeHealth::Unreachable) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the probe marks the dead node unreachable"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let started = Instant::now();
    let status = guests
        .get_guest_state(guest(dead, "vps-1"))
        .await
        .expect_err("dead");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        platform::grpc::error_reason(&status).map(|r| r.as_str_name()),
        Some("NODE_UNREACHABLE")
    );
    assert!(status.message().contains("dead"), "{}", status.message());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "fails fast, without waiting for a timeout"
    );

    assert_eq!(
        nodes
            .get_node(get(alive))
            .await
            .expect("get")
            .into_inner()
            .health,
        i32::from(pb::NodeHealth::Healthy)
    );
    guests
        .node_usage(pb::NodeUsageRequest { node_id: alive })
        .await
        .expect("the live node still answers");
    let pinned = pb::ReserveRequest {
        reservation_id: "on-dead".into(),
        size: Some(pb::Capacity {
            cores: 1,
            memory_mb: 128,
            disk_gb: 1,
        }),
        node_id: dead,
        ..Default::default()
    };
    assert_eq!(
        nodes.reserve(pinned).await.expect_err("not placed").code(),
        Code::ResourceExhausted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_calls_time_out_per_node() {
    let mut options = Options::default();
    options.node.node_timeout_secs = 2;
    options.node.node_concurrency = 1;
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    let (mut nodes, mut guests) = clients(&app).await;
    let dir = ContainerDir::new();
    let node = lxc_node(&mut nodes, "slow", &dir.path()).await;
    let create = pb::CreateGuestRequest {
        guest: Some(guest(node, "vps-slow")),
        template: "busybox".into(),
        ..Default::default()
    };
    guests.create_guest(create).await.expect("create");
    guests
        .start_guest(guest(node, "vps-slow"))
        .await
        .expect("start");

    // busybox's init ignores the halt signal, so a graceful stop waits out its grace time,
    // longer than this node's timeout.
    let started = Instant::now();
    let stop = pb::StopGuestRequest {
        guest: Some(guest(node, "vps-slow")),
        grace_secs: 8,
    };
    let status = guests.stop_guest(stop).await.expect_err("times out");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
    // Other nodes' calls never queue behind it: the registry answers at once.
    let list = nodes
        .list_nodes(ADMIN.request(pb::ListNodesRequest::default()))
        .await
        .expect("list");
    assert_eq!(list.into_inner().nodes.len(), 1);
    guests
        .delete_guest(guest(node, "vps-slow"))
        .await
        .expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_ticket_opens_one_websocket_terminal() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::{Error as WsError, Message};

    let app = TestApp::start(Backend::Sqlite).await;
    let (mut nodes, mut guests) = clients(&app).await;
    let dir = ContainerDir::new();
    let node = lxc_node(&mut nodes, "local", &dir.path()).await;
    let create = pb::CreateGuestRequest {
        guest: Some(guest(node, "vps-con")),
        template: "busybox".into(),
        ..Default::default()
    };
    guests.create_guest(create).await.expect("create");
    let mut consoles = app.consoles_client(Service::Server);
    let issue = |name: &str| pb::IssueConsoleTicketRequest {
        guest: Some(guest(node, name)),
        user_id: 7,
    };
    let ws_url = |ticket: &str| {
        format!(
            "{}/api/console/ws?ticket={ticket}",
            app.base.replacen("http://", "ws://", 1)
        )
    };
    let refusal = |result: Result<_, WsError>| match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the handshake should have been refused"),
    };

    // A stopped server has no console.
    let ticket = consoles
        .issue_ticket(issue("vps-con"))
        .await
        .expect("ticket")
        .into_inner();
    assert_eq!(ticket.expires_in_secs, 60);
    assert_eq!(
        refusal(tokio_tungstenite::connect_async(ws_url(&ticket.ticket)).await),
        409
    );

    guests
        .start_guest(guest(node, "vps-con"))
        .await
        .expect("start");
    let ticket = consoles
        .issue_ticket(issue("vps-con"))
        .await
        .expect("ticket")
        .into_inner()
        .ticket;
    assert!(ticket.starts_with("vct_"));
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url(&ticket))
        .await
        .expect("upgrade");
    let mut seen = String::new();
    let mut typed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !seen.contains("marker-42") {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .unwrap_or_else(|_| panic!("no answer: {seen:?}"))
            .expect("open")
            .expect("frame");
        let Message::Binary(bytes) = frame else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if text.contains("\u{1b}[6n") {
            socket
                .send(Message::binary(b"\x1b[1;1R".to_vec()))
                .await
                .expect("answer");
        }
        seen.push_str(&text);
        if !typed && seen.contains("# ") {
            socket
                .send(Message::text("echo marker-$((6*7))\r"))
                .await
                .expect("type");
            typed = true;
        }
    }
    socket.close(None).await.expect("close");

    // Single use: the same ticket is refused; so are unknown and missing ones.
    assert_eq!(
        refusal(tokio_tungstenite::connect_async(ws_url(&ticket)).await),
        401
    );
    assert_eq!(
        refusal(tokio_tungstenite::connect_async(ws_url("vct_0000")).await),
        401
    );
    assert_eq!(
        refusal(tokio_tungstenite::connect_async(ws_url("")).await),
        400
    );
    let plain = app
        .get("/api/console/ws?ticket=vct_x", tests::Cred::None)
        .await;
    assert_eq!(
        plain.status,
        reqwest::StatusCode::BAD_REQUEST,
        "{}",
        plain.text
    );
    assert!(plain.json["error"].is_string());
    let no_user = pb::IssueConsoleTicketRequest {
        guest: Some(guest(node, "vps-con")),
        user_id: 0,
    };
    assert_eq!(
        consoles
            .issue_ticket(no_user)
            .await
            .expect_err("unbound")
            .code(),
        Code::InvalidArgument
    );
    guests
        .delete_guest(guest(node, "vps-con"))
        .await
        .expect("delete");
}
