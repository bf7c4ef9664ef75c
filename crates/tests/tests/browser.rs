//! The dashboard in a real browser: Debian's Chromium, driven by playwright-core through
//! `web/e2e/run.mjs`, against a gateway serving the built dashboard (`web/dist`, which
//! `deploy/test.sh` builds), with real LXC guests, NATS for the live feed, and a customer
//! and an administrator. Screenshots of every page are kept in `web/test-output`.

use std::path::PathBuf;

use serde_json::Value;
use tests::fleet::{ContainerDir, Nats, create_server, grant, lxc_node};
use tests::{ADMIN_PASSWORD, ADMIN_USERNAME, Backend, Cred, Options, TestApp, USER_PASSWORD};

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_and_operators_use_the_dashboard_in_chromium() {
    let web = web_dir();
    let dist = web.join("dist");
    assert!(
        dist.join("index.html").is_file() && web.join("node_modules/playwright-core").is_dir(),
        "the dashboard is not built: run deploy/test.sh, or `npm ci && npm run build` in web/"
    );
    let nats = Nats::start().await;
    let mut options = Options::default();
    options.gateway.web_dir = Some(dist);
    options.gateway.nats_url = Some(nats.url.clone().into());
    options.server.nats_url = Some(nats.url.clone().into());
    options.monitor.nats_url = Some(nats.url.clone().into());
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let (alice, jwt) = app.user("alice").await;
    grant(&app, &admin, alice, 100).await;
    create_server(&app, &jwt, "web-1").await;

    let out = web.join("test-output");
    let run = tokio::process::Command::new("node")
        .arg(web.join("e2e/run.mjs"))
        .arg(app.url("/"))
        .arg(&out)
        .env("E2E_USER", "alice")
        .env("E2E_PASSWORD", USER_PASSWORD)
        .env("E2E_ADMIN", ADMIN_USERNAME)
        .env("E2E_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .current_dir(&web)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let measured: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .expect("the run prints its measurements");
    println!("dashboard in Chromium: {measured}");
    assert_eq!(measured["rows"], 1, "alice's one server was listed");

    // What the browser did, read back through the API.
    let servers = app.get("/api/server", Cred::Bearer(&jwt)).await.json;
    let ordered = servers
        .as_array()
        .expect("servers")
        .iter()
        .find(|s| s["name"] == "ordered-1")
        .cloned()
        .expect("the ordered server exists");
    assert_eq!(ordered["status"], "running");
    let credits = app.get("/api/credits", Cred::Bearer(&jwt)).await.json;
    let top_up = credits["entries"]
        .as_array()
        .expect("ledger")
        .iter()
        .find(|e| e["reason"] == "Top-up from the browser")
        .cloned()
        .expect("the administrator's grant is in the ledger");
    assert_eq!(top_up["amount"], 2500);
    let tokens = app.get("/api/tokens", Cred::Bearer(&jwt)).await;
    assert!(tokens.text.contains("from-the-browser"), "{}", tokens.text);
    let tickets = app.get("/api/tickets", Cred::Bearer(&jwt)).await;
    assert!(
        tickets.text.contains("Help from the browser"),
        "{}",
        tickets.text
    );
    let shots = measured["shots"].as_array().expect("shots");
    assert!(shots.len() >= 20, "a screenshot of every page: {shots:?}");
    for shot in shots {
        let name = shot.as_str().expect("name");
        let size = std::fs::metadata(out.join(name)).map_or(0, |m| m.len());
        assert!(size > 1000, "{name} was taken");
    }
}
