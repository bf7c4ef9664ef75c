//! The `proxmox` driver against the fakepve Proxmox VE test server (PyPI), started on
//! loopback for each test: API-token and ticket logins, LXC and QEMU guests, UPID tasks,
//! snapshots, one-call usage, and contract checks of every request shape against PVE's
//! published API schema (shipped with fakepve).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use node_svc::driver::proxmox::{API, Auth, ProxmoxConfig, ProxmoxDriver};
use node_svc::driver::{DriverError, GuestSpec, Hypervisor, PowerState, Resources};
use serde_json::Value;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/fakepve_server.py"
);

struct FakePve {
    child: Child,
    info: Value,
    _dir: tempfile::TempDir,
}

impl FakePve {
    fn start() -> Self {
        Self::start_with_ticket_ttl(7200.0)
    }

    fn start_with_ticket_ttl(ticket_ttl: f64) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        // Port 0: fakepve binds a free port itself and reports it.
        let mut child = Command::new("python3")
            .arg(SCRIPT)
            .arg("0")
            .arg(dir.path())
            .env("FAKEPVE_TICKET_TTL", ticket_ttl.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs fakepve (pip install 'fakepve[crypto]')");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready line");
        let info: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("fakepve did not start: {e}: {line:?}"));
        Self {
            child,
            info,
            _dir: dir,
        }
    }

    fn config(&self, auth: Auth) -> ProxmoxConfig {
        ProxmoxConfig {
            base_url: self.info["url"].as_str().expect("url").to_owned(),
            node: self.info["node"].as_str().expect("node").to_owned(),
            auth,
            ca_file: Some(self.info["cafile"].as_str().expect("cafile").into()),
            insecure: false,
            storage: "local-lvm".to_owned(),
            bridge: "vmbr0".to_owned(),
            backup_storage: "local".to_owned(),
        }
    }

    fn token(&self) -> Auth {
        Auth::Token(self.info["token"].as_str().expect("token").to_owned())
    }

    fn password(&self) -> Auth {
        Auth::Password {
            username: self.info["user"].as_str().expect("user").to_owned(),
            password: self.info["password"].as_str().expect("password").to_owned(),
        }
    }
}

impl Drop for FakePve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spec(name: &str, template: &str) -> GuestSpec {
    GuestSpec {
        name: name.to_owned(),
        template: template.to_owned(),
        hostname: format!("{name}.example.test"),
        resources: Resources {
            cores: Some(1),
            memory_mb: Some(512),
            disk_gb: Some(8),
        },
        root_password: None,
    }
}

const GRACE: Duration = Duration::from_secs(5);
const DEBIAN: &str = "lxc:local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst";

#[tokio::test]
async fn containers_with_an_api_token() {
    let pve = FakePve::start();
    let driver = ProxmoxDriver::new(pve.config(pve.token())).expect("driver");
    driver.probe().await.expect("probe");

    let notes = driver.create(&spec("vps-1", DEBIAN)).await.expect("create");
    assert!(
        notes.iter().any(|n| n.starts_with("created as vmid")),
        "{notes:?}"
    );
    let again = driver
        .create(&spec("vps-1", DEBIAN))
        .await
        .expect("idempotent create");
    assert!(again.iter().any(|n| n.contains("already existed")));
    driver
        .create(&spec("vps-2", DEBIAN))
        .await
        .expect("a second guest gets the next vmid");
    assert_eq!(
        driver.state("vps-1").await.expect("state"),
        PowerState::Stopped
    );

    driver.start("vps-1").await.expect("start");
    driver.start("vps-1").await.expect("start again");
    assert_eq!(
        driver.state("vps-1").await.expect("state"),
        PowerState::Running
    );
    driver.reboot("vps-1", GRACE).await.expect("reboot");

    driver
        .resize(
            "vps-1",
            Resources {
                cores: Some(2),
                memory_mb: Some(1024),
                disk_gb: Some(16),
            },
        )
        .await
        .expect("resize");
    let usage = driver.usage().await.expect("usage");
    let mine = usage.iter().find(|u| u.name == "vps-1").expect("listed");
    assert_eq!(mine.state, PowerState::Running);
    assert_eq!(mine.memory_limit_bytes, Some(1024 * 1024 * 1024));
    assert!(mine.cpu_fraction.is_some());
    assert_eq!(usage.len(), 2, "both of our guests, in one call");

    driver
        .snapshot_create("vps-1", "before", "before the upgrade")
        .await
        .expect("snapshot");
    let again = driver
        .snapshot_create("vps-1", "before", "")
        .await
        .expect("snapshot again");
    assert!(again.iter().any(|n| n.contains("already existed")));
    let list = driver.snapshot_list("vps-1").await.expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].name.as_str(), list[0].description.as_str()),
        ("before", "before the upgrade")
    );
    assert!(list[0].created_at > 0);
    driver
        .snapshot_rollback("vps-1", "before")
        .await
        .expect("rollback");
    assert!(matches!(
        driver.snapshot_rollback("vps-1", "nope").await,
        Err(DriverError::NotFound(_))
    ));
    driver
        .snapshot_delete("vps-1", "before")
        .await
        .expect("delete snapshot");
    driver
        .snapshot_delete("vps-1", "before")
        .await
        .expect("delete snapshot again");

    let refused = driver
        .set_password("vps-1", "root", "Secret-12345")
        .await
        .expect_err("not for containers");
    assert!(matches!(refused, DriverError::Conflict(_)));
    driver
        .rrddata("vps-1", "hour")
        .await
        .expect("rrddata answers");
    driver.console_proxy("vps-1").await.expect("termproxy");

    driver.stop("vps-1", GRACE).await.expect("stop");
    driver.stop("vps-1", GRACE).await.expect("stop again");
    driver.delete("vps-1").await.expect("delete");
    driver.delete("vps-1").await.expect("delete again");
    assert!(matches!(
        driver.state("vps-1").await,
        Err(DriverError::NotFound(_))
    ));
    driver.delete("vps-2").await.expect("delete running or not");
}

#[tokio::test]
async fn ticket_login_with_csrf() {
    let pve = FakePve::start();
    let driver = ProxmoxDriver::new(pve.config(pve.password())).expect("driver");
    driver
        .create(&spec("vps-t", DEBIAN))
        .await
        .expect("create with a ticket (CSRF on writes)");
    driver.start("vps-t").await.expect("start");
    assert_eq!(
        driver.state("vps-t").await.expect("state"),
        PowerState::Running
    );
    driver.delete("vps-t").await.expect("delete");

    let wrong = ProxmoxDriver::new(pve.config(Auth::Password {
        username: "root@pam".into(),
        password: "wrong".into(),
    }))
    .expect("driver");
    let refused = wrong.probe().await.expect_err("bad password");
    assert!(
        matches!(&refused, DriverError::Failed(m) if m.contains("refused the credentials")),
        "{refused:?}"
    );
    let bad_token =
        ProxmoxDriver::new(pve.config(Auth::Token("root@pam!vps=wrong".into()))).expect("driver");
    assert!(matches!(
        bad_token.probe().await,
        Err(DriverError::Failed(_))
    ));
}

#[tokio::test]
async fn vms_are_cloned_from_a_template() {
    let pve = FakePve::start();
    let driver = ProxmoxDriver::new(pve.config(pve.token())).expect("driver");
    driver
        .create(&spec("vps-vm", "qemu:9000"))
        .await
        .expect("clone");
    let stopped = Resources {
        cores: Some(2),
        memory_mb: Some(2048),
        disk_gb: None,
    };
    driver
        .resize("vps-vm", stopped)
        .await
        .expect("resize while stopped");
    driver.start("vps-vm").await.expect("start");
    assert_eq!(
        driver.state("vps-vm").await.expect("state"),
        PowerState::Running
    );
    let usage = driver.usage().await.expect("usage");
    assert_eq!(
        usage
            .iter()
            .find(|u| u.name == "vps-vm")
            .and_then(|u| u.memory_limit_bytes),
        Some(2048 * 1024 * 1024)
    );
    let running = Resources {
        cores: None,
        memory_mb: Some(4096),
        disk_gb: None,
    };
    let notes = driver
        .resize("vps-vm", running)
        .await
        .expect("resize while running");
    assert!(notes.iter().any(|n| n.contains("next start")), "{notes:?}");
    driver.console_proxy("vps-vm").await.expect("vncproxy");
    driver.delete("vps-vm").await.expect("delete");
    for bad in ["busybox", "qemu:abc"] {
        assert!(driver.create(&spec("vps-bad", bad)).await.is_err(), "{bad}");
    }
}

#[tokio::test]
async fn an_unreachable_node_says_so() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let config = ProxmoxConfig {
        base_url: format!("https://127.0.0.1:{port}"),
        node: "pve1".into(),
        auth: Auth::Token("root@pam!x=y".into()),
        ca_file: None,
        insecure: true,
        storage: "local-lvm".into(),
        bridge: "vmbr0".into(),
        backup_storage: "local".into(),
    };
    let driver = ProxmoxDriver::new(config).expect("driver");
    assert!(matches!(
        driver.probe().await,
        Err(DriverError::Unreachable(_))
    ));
    assert!(matches!(
        driver.state("vps-1").await,
        Err(DriverError::Unreachable(_))
    ));
}

#[test]
fn every_request_matches_the_published_api_schema() {
    let schema_script = r#"
import gzip, json, os, sys, fakepve
paths = json.load(gzip.open(os.path.join(os.path.dirname(fakepve.__file__), 'data/pve-api.json.gz')))['paths']
out = {}
for path, methods in paths.items():
    out[path] = {m: sorted(((info.get('parameters') or {}).get('properties') or {}).keys()) for m, info in methods.items()}
json.dump(out, sys.stdout)
"#;
    let output = Command::new("python3")
        .args(["-c", schema_script])
        .output()
        .expect("python3 with fakepve");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let schema: Value = serde_json::from_slice(&output.stdout).expect("schema");
    for (method, path, params) in API {
        let methods = &schema[*path];
        assert!(methods.is_object(), "{path} is not in PVE's API");
        let known = methods[*method]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} is not in PVE's API"));
        for param in *params {
            // Numbered parameters (net0, mp1) appear in the schema as `net[n]`, `mp[n]`.
            let numbered = format!(
                "{}[n]",
                param.trim_end_matches(|c: char| c.is_ascii_digit())
            );
            assert!(
                known.iter().any(|k| k == param || *k == numbered),
                "{method} {path}: PVE has no parameter {param}"
            );
        }
    }
}

#[tokio::test]
async fn the_console_is_relayed_through_termproxy() {
    let pve = FakePve::start();
    let driver = ProxmoxDriver::new(pve.config(pve.token())).expect("driver");
    driver
        .create(&spec("vps-con", "qemu:9000"))
        .await
        .expect("clone");
    assert!(
        matches!(
            driver.console("vps-con").await,
            Err(DriverError::Conflict(_))
        ),
        "stopped"
    );
    driver.start("vps-con").await.expect("start");
    let mut console = driver.console("vps-con").await.expect("console");
    console
        .input
        .send(b"hello proxmox".to_vec())
        .await
        .expect("type");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("hello proxmox") {
        let chunk = tokio::time::timeout_at(deadline, console.output.recv())
            .await
            .unwrap_or_else(|_| panic!("no echo: {seen:?}"))
            .expect("open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        seen.contains("serial terminal"),
        "the terminal's greeting came through: {seen:?}"
    );
}

#[tokio::test]
async fn an_expired_ticket_is_renewed() {
    let pve = FakePve::start_with_ticket_ttl(1.0);
    let driver = ProxmoxDriver::new(pve.config(pve.password())).expect("driver");
    driver
        .create(&spec("vps-renew", DEBIAN))
        .await
        .expect("create");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The ticket has expired: the driver logs in again and the call goes through.
    driver
        .start("vps-renew")
        .await
        .expect("start after renewal");
    assert_eq!(
        driver.state("vps-renew").await.expect("state"),
        PowerState::Running
    );
}

#[tokio::test]
async fn backups_through_vzdump_restores_and_deletes_through_the_api() {
    let pve = FakePve::start();
    let driver = ProxmoxDriver::new(pve.config(pve.token())).expect("driver");
    driver
        .create(&spec("vps-bak", DEBIAN))
        .await
        .expect("create");

    let (sink, mut bytes) = tokio::sync::mpsc::channel(4);
    let facts = driver.backup("vps-bak", sink).await.expect("vzdump");
    assert!(
        bytes.try_recv().is_err(),
        "no bytes stream: the hypervisor keeps the archive"
    );
    assert_eq!(facts.format, "vzdump");
    let volume = facts.volume.clone().expect("the volume");
    assert!(volume.starts_with("local:backup/vzdump-lxc-"), "{volume}");
    assert!(!facts.was_running);
    let second = driver
        .backup("vps-bak", tokio::sync::mpsc::channel(1).0)
        .await
        .expect("another");
    assert_ne!(second.volume, facts.volume, "each backup is its own volume");

    // Restoring needs the guest stopped; it stays ours (found by its tag) afterwards.
    driver.start("vps-bak").await.expect("start");
    let (_, none) = tokio::sync::mpsc::channel(1);
    assert!(matches!(
        driver.restore("vps-bak", Some(&volume), none).await,
        Err(DriverError::Conflict(_))
    ));
    driver.stop("vps-bak", GRACE).await.expect("stop");
    let (_, none) = tokio::sync::mpsc::channel(1);
    driver
        .restore("vps-bak", Some(&volume), none)
        .await
        .expect("restore");
    assert_eq!(
        driver.state("vps-bak").await.expect("still ours"),
        PowerState::Stopped
    );
    let (_, none) = tokio::sync::mpsc::channel(1);
    assert!(matches!(
        driver.restore("vps-bak", Some("local:x,y=z"), none).await,
        Err(DriverError::Conflict(_))
    ));

    driver.delete_backup(&volume).await.expect("delete");
    driver
        .delete_backup(&volume)
        .await
        .expect("deleting twice is fine");
    assert!(matches!(
        driver.delete_backup("no-storage-here").await,
        Err(DriverError::Conflict(_))
    ));
}
