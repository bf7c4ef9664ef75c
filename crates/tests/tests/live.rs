//! The live feed with the official `socket.io-client` (Node.js, pinned in
//! `crates/tests/js/package.json`): a bad token is refused, a header works as well as the
//! handshake's `auth`, a subscription receives
//! `server-stats` within a cycle over WebSocket and long-polling, a foreign server gets an
//! `error` and nothing else, a server stopped and started is heard as `server-status` with no
//! subscription (and another user's is not), a dropped transport resubscribes, and a guest
//! pushed over the
//! CPU threshold raises `server-alerts`; once the session is revoked, the socket closes.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};

use serde_json::Value;
use tests::fleet::{ContainerDir, Nats, create_server, grant, guest_of, lxc_node, wait_task};
use tests::{Backend, Options, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_subscribes_and_hears_stats_and_alerts() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/js/live.mjs");
    let modules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/js/node_modules/socket.io-client"
    );
    assert!(
        std::path::Path::new(modules).exists(),
        "socket.io-client is not installed: npm ci --prefix crates/tests/js (deploy/test.sh does)"
    );
    let nats = Nats::start().await;
    let mut options = Options::default();
    options.monitor.nats_url = Some(nats.url.clone().into());
    options.gateway.nats_url = Some(nats.url.clone().into());
    options.server.nats_url = Some(nats.url.clone().into());
    // Sockets of a revoked session close within a second or two (plus the auth cache).
    options.gateway.live.recheck_secs = 1;
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let (amy, jwt) = app.user("amy").await;
    let (bob, bob_jwt) = app.user("bob").await;
    grant(&app, &admin, amy, 100).await;
    grant(&app, &admin, bob, 100).await;
    let id = create_server(&app, &jwt, "live").await;
    let foreign = create_server(&app, &bob_jwt, "not-yours").await;
    let guest = guest_of(&app, id).await;

    let mut node = Command::new("node")
        .arg(script)
        .env("BASE", &app.base)
        .env("TOKEN", &jwt)
        .env("ADMIN_TOKEN", &admin)
        .env("SERVER_ID", id.to_string())
        .env("FOREIGN_ID", foreign.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node (apt-get install nodejs)");
    let mut stdin = node.stdin.take().expect("stdin");
    let stdout = node.stdout.take().expect("stdout");
    // The script's lines, read on a thread so the test's runtime stays free.
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
            if lines_tx.send(value).is_err() {
                break;
            }
        }
    });
    let mut steps = Vec::new();
    let mut burner = None;
    while let Ok(Some(line)) =
        tokio::time::timeout(std::time::Duration::from_secs(90), lines.recv()).await
    {
        assert!(
            line.get("failed").is_none(),
            "the client failed after {steps:?}: {line}"
        );
        let step = line["step"].as_str().unwrap_or_default().to_owned();
        if step == "ready" {
            burner = Some(
                Command::new("lxc-attach")
                    .args(["-P", &dir.path(), "-n", &guest, "--clear-env", "--"])
                    .args(["/bin/sh", "-c", "while :; do :; done"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("lxc-attach"),
            );
            writeln!(stdin, "go").expect("tell the client");
            // Another user's server changes state: amy's socket must not hear of it.
            let stop = app
                .post(
                    &format!("/api/server/{foreign}/stop"),
                    tests::Cred::Bearer(&bob_jwt),
                    serde_json::json!({}),
                )
                .await;
            assert_eq!(stop.status, 200, "{}", stop.text);
            // Its status event is out before the client's last check.
            let task = stop.json["taskId"].as_str().expect("task").to_owned();
            assert_eq!(wait_task(&app, &bob_jwt, &task).await["state"], "succeeded");
        }
        steps.push(step);
    }
    if let Some(mut b) = burner {
        let _ = b.kill();
        let _ = b.wait();
    }
    let status = node.wait().expect("node ends");
    assert!(status.success(), "the client failed after {steps:?}");
    assert_eq!(
        steps,
        [
            "refused",
            "header",
            "stats",
            "foreign",
            "status",
            "polling",
            "resubscribed",
            "ready",
            "alert",
            "unsubscribed",
            "revoked"
        ]
    );
}
