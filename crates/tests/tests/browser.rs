//! The dashboard in a real browser: Debian's Chromium, driven by playwright-core through
//! `web/e2e/run.mjs`, against a gateway serving the built dashboard (`web/dist`, which
//! `deploy/test.sh` builds), with one real LXC server to list. Screenshots are kept in
//! `web/test-output`.

use std::path::PathBuf;

use serde_json::Value;
use tests::fleet::{ContainerDir, create_server, grant, lxc_node};
use tests::{Backend, Options, TestApp, USER_PASSWORD};

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

#[tokio::test]
async fn a_customer_logs_in_sees_the_list_and_logs_out_in_chromium() {
    let web = web_dir();
    let dist = web.join("dist");
    assert!(
        dist.join("index.html").is_file() && web.join("node_modules/playwright-core").is_dir(),
        "the dashboard is not built: run deploy/test.sh, or `npm ci && npm run build` in web/"
    );
    let mut options = Options::default();
    options.gateway.web_dir = Some(dist);
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let (alice, jwt) = app.user("alice").await;
    grant(&app, &app.admin_token().await, alice, 100).await;
    create_server(&app, &jwt, "web-1").await;

    let out = web.join("test-output");
    let run = tokio::process::Command::new("node")
        .arg(web.join("e2e/run.mjs"))
        .arg(app.url("/"))
        .args(["alice", USER_PASSWORD])
        .arg(&out)
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
    assert_eq!(measured["rows"], 1, "alice's one server is listed");
    assert_eq!(measured["statuses"][0], "running");
    for shot in ["login.png", "servers.png", "servers-phone.png"] {
        let size = std::fs::metadata(out.join(shot)).map_or(0, |m| m.len());
        assert!(size > 1000, "{shot} was taken");
    }
}
