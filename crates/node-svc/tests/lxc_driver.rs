//! The `lxc` driver against real containers on this machine (busybox template). Each test
//! has its own container path and removes its containers. Needs root, LXC and `lxc-net`
//! (deploy/test.sh installs and starts them). Containers are driven only through the
//! `lxc-*` tools; no traffic is sent to their addresses.

use std::time::Duration;

use node_svc::driver::lxc::LxcDriver;
use node_svc::driver::{DriverError, GuestSpec, Hypervisor, PowerState, Resources};

struct Sandbox {
    driver: LxcDriver,
    names: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vps-lxc-test")
            .tempdir_in("/var/tmp")
            .expect("temp dir");
        let driver = LxcDriver::new(dir.path()).with_internal_grace(Duration::from_secs(1));
        Self {
            driver,
            names: Vec::new(),
            _dir: dir,
        }
    }

    fn spec(&mut self, name: &str) -> GuestSpec {
        self.names.push(name.to_owned());
        GuestSpec {
            name: name.to_owned(),
            template: "busybox".to_owned(),
            hostname: format!("{name}.example.test"),
            resources: Resources {
                cores: Some(1),
                memory_mb: Some(256),
                disk_gb: Some(1),
            },
            root_password: None,
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = std::process::Command::new("lxc-destroy")
                .arg("-P")
                .arg(self.driver.container_path())
                .args(["-n", name, "-f", "-s"])
                .output();
        }
    }
}

const GRACE: Duration = Duration::from_secs(2);

#[tokio::test]
async fn lifecycle_is_idempotent() {
    let mut sandbox = Sandbox::new();
    let spec = sandbox.spec("vps-life");
    let driver = &sandbox.driver;
    driver.probe().await.expect("the node answers");

    driver.create(&spec).await.expect("create");
    let again = driver.create(&spec).await.expect("creating again succeeds");
    assert!(again.iter().any(|n| n.contains("already existed")));
    assert_eq!(
        driver.state("vps-life").await.expect("state"),
        PowerState::Stopped
    );

    driver.start("vps-life").await.expect("start");
    driver
        .start("vps-life")
        .await
        .expect("starting a running container succeeds");
    assert_eq!(
        driver.state("vps-life").await.expect("state"),
        PowerState::Running
    );
    let hostname = driver
        .attach_output("vps-life", &["/bin/hostname"])
        .await
        .expect("hostname");
    assert_eq!(hostname.trim(), "vps-life.example.test");

    let notes = driver.reboot("vps-life", GRACE).await.expect("reboot");
    assert!(!notes.is_empty());
    assert_eq!(
        driver.state("vps-life").await.expect("state"),
        PowerState::Running
    );

    let running = driver.usage().await.expect("usage");
    assert_eq!(
        running
            .iter()
            .find(|u| u.name == "vps-life")
            .map(|u| u.state),
        Some(PowerState::Running)
    );
    assert!(
        running
            .iter()
            .find(|u| u.name == "vps-life")
            .is_some_and(|u| u.uptime_secs < 3600)
    );
    driver.stop("vps-life", GRACE).await.expect("stop");
    let stopped = driver.usage().await.expect("usage");
    assert_eq!(
        stopped
            .iter()
            .find(|u| u.name == "vps-life")
            .map(|u| u.state),
        Some(PowerState::Stopped)
    );
    driver
        .stop("vps-life", GRACE)
        .await
        .expect("stopping a stopped container succeeds");
    assert_eq!(
        driver.state("vps-life").await.expect("state"),
        PowerState::Stopped
    );

    driver.delete("vps-life").await.expect("delete");
    driver
        .delete("vps-life")
        .await
        .expect("deleting a missing container succeeds");
    assert!(matches!(
        driver.state("vps-life").await,
        Err(DriverError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_create_cut_short_is_made_again_and_two_at_once_make_one_guest() {
    let mut sandbox = Sandbox::new();
    let spec = sandbox.spec("vps-cut");
    let driver = &sandbox.driver;
    let dir = driver.container_path().join("vps-cut");
    // The call is dropped (its caller died) as soon as `lxc-create` has begun the container
    // on disk: a directory with its `partial` file, no config yet.
    tokio::select! {
        made = driver.create(&spec) => panic!("the create ended before it could be cut: {made:?}"),
        () = async {
            while !dir.join("partial").exists() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        } => {}
    }
    assert!(dir.exists(), "a half-made container is left behind");
    let notes = driver.create(&spec).await.expect("the retry makes it");
    assert!(
        !notes.iter().any(|n| n.contains("already existed")),
        "made again, not taken as it was: {notes:?}"
    );
    driver.start("vps-cut").await.expect("the guest starts");
    let hostname = driver
        .attach_output("vps-cut", &["/bin/hostname"])
        .await
        .expect("hostname");
    assert_eq!(hostname.trim(), "vps-cut.example.test");
    driver.delete("vps-cut").await.expect("delete");

    // Two processes (replicas on one host) asked to make one guest at once: one makes it,
    // the other waits and finds it made.
    let spec = sandbox.spec("vps-twice");
    let other = LxcDriver::new(sandbox.driver.container_path());
    let (one, two) = tokio::join!(sandbox.driver.create(&spec), other.create(&spec));
    let notes = [one.expect("one create"), two.expect("the other")];
    assert_eq!(
        notes
            .iter()
            .filter(|n| n.iter().any(|n| n.contains("already existed")))
            .count(),
        1,
        "{notes:?}"
    );
    sandbox.driver.delete("vps-twice").await.expect("delete");
    assert!(!sandbox.driver.container_path().join("vps-twice").exists());
}

#[tokio::test]
async fn foreign_containers_and_bad_names_are_refused() {
    let mut sandbox = Sandbox::new();
    let spec = sandbox.spec("vps-foreign");
    let path = sandbox.driver.container_path().to_owned();
    let made = std::process::Command::new("lxc-create")
        .arg("-P")
        .arg(&path)
        .args(["-n", "vps-foreign", "-t", "busybox"])
        .output()
        .expect("lxc-create");
    assert!(made.status.success());
    let refused = sandbox.driver.create(&spec).await.expect_err("not ours");
    assert!(matches!(refused, DriverError::Conflict(_)), "{refused:?}");
    for bad in ["", "9abc", "a;b", "../etc"] {
        assert!(sandbox.driver.state(bad).await.is_err(), "{bad}");
        assert!(sandbox.driver.delete(bad).await.is_err(), "{bad}");
    }
    let template = GuestSpec {
        template: "busybox; reboot".into(),
        ..sandbox.spec("vps-bad-template")
    };
    assert!(sandbox.driver.create(&template).await.is_err());
    let injected = GuestSpec {
        hostname: "x\nlxc.hook.pre-start = /bin/false".into(),
        ..sandbox.spec("vps-injected")
    };
    assert!(
        matches!(
            sandbox.driver.create(&injected).await,
            Err(DriverError::Conflict(_))
        ),
        "no config injection"
    );
    assert!(
        !sandbox
            .driver
            .container_path()
            .join("vps-injected")
            .exists(),
        "and nothing was created"
    );
}

#[tokio::test]
async fn password_resize_and_usage() {
    let mut sandbox = Sandbox::new();
    let spec = sandbox.spec("vps-pw");
    let driver = &sandbox.driver;
    driver.create(&spec).await.expect("create");
    let refused = driver
        .set_password("vps-pw", "root", "Sekret-42")
        .await
        .expect_err("stopped");
    assert!(matches!(refused, DriverError::Conflict(_)));
    driver.start("vps-pw").await.expect("start");

    driver
        .set_password("vps-pw", "root", "Sekret-42")
        .await
        .expect("set password");
    let shadow = driver
        .attach_output("vps-pw", &["/bin/cat", "/etc/shadow"])
        .await
        .expect("shadow");
    let hash = shadow
        .lines()
        .find_map(|l| l.strip_prefix("root:"))
        .expect("root entry")
        .split(':')
        .next()
        .expect("hash");
    assert!(hash.starts_with("$6$"), "a SHA-512 crypt hash: {hash}");
    assert!(!shadow.contains("Sekret-42"));
    let passwd = driver
        .attach_output("vps-pw", &["/bin/cat", "/etc/passwd"])
        .await
        .expect("passwd");
    assert!(passwd.lines().any(|l| l.starts_with("root:x:")));
    driver
        .set_password("vps-pw", "root", "Another-43")
        .await
        .expect("change again");
    let shadow2 = driver
        .attach_output("vps-pw", &["/bin/cat", "/etc/shadow"])
        .await
        .expect("shadow");
    assert_ne!(shadow, shadow2);
    assert_eq!(
        shadow2.lines().filter(|l| l.starts_with("root:")).count(),
        1
    );

    let notes = driver
        .resize(
            "vps-pw",
            Resources {
                cores: Some(2),
                memory_mb: Some(384),
                disk_gb: None,
            },
        )
        .await
        .expect("resize live");
    assert!(notes.is_empty(), "{notes:?}");
    let usage = driver.usage().await.expect("usage");
    let mine = usage.iter().find(|u| u.name == "vps-pw").expect("listed");
    assert_eq!(mine.state, PowerState::Running);
    assert_eq!(
        mine.memory_limit_bytes,
        Some(384 * 1024 * 1024),
        "the live limit changed"
    );
    assert!(
        mine.memory_bytes > 0 && mine.cpu_time_ns > 0 && mine.disk_bytes > 0,
        "{mine:?}"
    );
    let config =
        std::fs::read_to_string(driver.container_path().join("vps-pw/config")).expect("config");
    assert!(
        config.contains("384") || config.contains(&(384u64 * 1024 * 1024).to_string()),
        "persisted"
    );
}

#[tokio::test]
async fn snapshots_stop_roll_back_and_restart() {
    let mut sandbox = Sandbox::new();
    let spec = sandbox.spec("vps-snap");
    let driver = &sandbox.driver;
    driver.create(&spec).await.expect("create");
    driver.start("vps-snap").await.expect("start");

    let notes = driver
        .snapshot_create("vps-snap", "before", "before the change")
        .await
        .expect("snapshot");
    assert!(
        notes.iter().any(|n| n.contains("stopped")),
        "the driver says it stopped the container: {notes:?}"
    );
    assert_eq!(
        driver.state("vps-snap").await.expect("state"),
        PowerState::Running,
        "and started it again"
    );
    let again = driver
        .snapshot_create("vps-snap", "before", "x")
        .await
        .expect("idempotent");
    assert!(again.iter().any(|n| n.contains("already existed")));

    driver
        .attach_output("vps-snap", &["/bin/touch", "/root-marker"])
        .await
        .expect("change the file system");
    let listed = driver.snapshot_list("vps-snap").await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "before");
    assert_eq!(listed[0].description, "before the change");

    driver
        .snapshot_rollback("vps-snap", "before")
        .await
        .expect("rollback");
    assert_eq!(
        driver.state("vps-snap").await.expect("state"),
        PowerState::Running
    );
    let after = driver
        .attach_output("vps-snap", &["/bin/ls", "/"])
        .await
        .expect("ls");
    assert!(
        !after.contains("root-marker"),
        "the change is gone after the rollback"
    );
    assert!(matches!(
        driver.snapshot_rollback("vps-snap", "nope").await,
        Err(DriverError::NotFound(_))
    ));

    driver
        .snapshot_delete("vps-snap", "before")
        .await
        .expect("delete snapshot");
    driver
        .snapshot_delete("vps-snap", "before")
        .await
        .expect("deleting again succeeds");
    assert!(
        driver
            .snapshot_list("vps-snap")
            .await
            .expect("list")
            .is_empty()
    );
    // A container with snapshots is deleted whole.
    driver
        .snapshot_create("vps-snap", "last", "")
        .await
        .expect("snapshot");
    driver
        .delete("vps-snap")
        .await
        .expect("delete with snapshots");
}

#[tokio::test]
async fn the_console_is_a_terminal_in_the_container() {
    let mut sandbox = Sandbox::new();
    let spec = sandbox.spec("vps-tty");
    let driver = &sandbox.driver;
    driver.create(&spec).await.expect("create");
    assert!(
        matches!(
            driver.console("vps-tty").await,
            Err(DriverError::Conflict(_))
        ),
        "stopped"
    );
    driver.start("vps-tty").await.expect("start");
    let mut console = driver.console("vps-tty").await.expect("console");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut typed = false;
    while !seen.contains("marker-42") {
        let chunk = tokio::time::timeout_at(deadline, console.output.recv())
            .await
            .unwrap_or_else(|_| panic!("no answer from the console: {seen:?}"))
            .expect("open");
        let text = String::from_utf8_lossy(&chunk);
        if text.contains("\u{1b}[6n") {
            // The shell asks where the cursor is, as line editors do; answer as a terminal.
            console
                .input
                .send(b"\x1b[1;1R".to_vec())
                .await
                .expect("answer");
        }
        seen.push_str(&text);
        if !typed && seen.contains("# ") {
            console
                .input
                .send(b"echo marker-$((6*7))\r".to_vec())
                .await
                .expect("type");
            typed = true;
        }
    }
    drop(console.input);
}

/// Runs a backup of `name` and gathers the archive's bytes.
async fn archive_of(
    driver: &node_svc::driver::lxc::LxcDriver,
    name: &str,
) -> (node_svc::driver::BackupFacts, Vec<bytes::Bytes>) {
    let (sink, mut chunks) = tokio::sync::mpsc::channel(8);
    let gather = async {
        let mut all = Vec::new();
        while let Some(chunk) = chunks.recv().await {
            all.push(chunk);
        }
        all
    };
    let (facts, all) = tokio::join!(driver.backup(name, sink), gather);
    (facts.expect("backup"), all)
}

/// Feeds `chunks` to a restore of `name`, optionally cut short by an error.
async fn restore_from(
    driver: &node_svc::driver::lxc::LxcDriver,
    name: &str,
    chunks: Vec<bytes::Bytes>,
    cut: bool,
) -> Result<Vec<String>, DriverError> {
    let (feed, source) = tokio::sync::mpsc::channel(8);
    let send = async move {
        let half = chunks.len() / 2;
        for (i, chunk) in chunks.into_iter().enumerate() {
            if cut && i == half {
                let _ = feed.send(Err("the sender went away".to_owned())).await;
                return;
            }
            if feed.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
    };
    let (result, ()) = tokio::join!(driver.restore(name, None, source), send);
    result
}

#[tokio::test]
async fn backups_are_whole_archives_and_restores_replace_the_disk_only_when_whole() {
    let mut sandbox = Sandbox::new();
    let spec = sandbox.spec("vps-arc");
    let driver = &sandbox.driver;
    driver.create(&spec).await.expect("create");
    driver.start("vps-arc").await.expect("start");
    driver
        .attach_output("vps-arc", &["/bin/sh", "-c", "echo kept > /root/data"])
        .await
        .expect("write");

    // A running guest is frozen meanwhile and left running.
    let (facts, chunks) = archive_of(driver, "vps-arc").await;
    assert_eq!(facts.format, "tar+zstd");
    assert!(facts.was_running);
    assert!(facts.config.contains("lxc.rootfs.path"));
    assert!(
        facts.id_map.iter().any(|m| m.starts_with("u 0 ")),
        "{facts:?}"
    );
    assert!(!chunks.is_empty());
    assert_eq!(
        driver.state("vps-arc").await.expect("state"),
        PowerState::Running
    );

    driver
        .attach_output("vps-arc", &["/bin/sh", "-c", "echo changed > /root/data"])
        .await
        .expect("change");
    assert!(
        matches!(
            restore_from(driver, "vps-arc", chunks.clone(), false).await,
            Err(DriverError::Conflict(_))
        ),
        "a running guest is not restored into"
    );
    driver
        .stop("vps-arc", Duration::from_secs(1))
        .await
        .expect("stop");

    // An archive cut short changes nothing.
    assert!(
        restore_from(driver, "vps-arc", chunks.clone(), true)
            .await
            .is_err()
    );
    driver.start("vps-arc").await.expect("start");
    let data = driver
        .attach_output("vps-arc", &["/bin/cat", "/root/data"])
        .await
        .expect("read");
    assert_eq!(data.trim(), "changed", "the disk is as it was");
    driver
        .stop("vps-arc", Duration::from_secs(1))
        .await
        .expect("stop");

    restore_from(driver, "vps-arc", chunks, false)
        .await
        .expect("restore");
    driver.start("vps-arc").await.expect("start");
    let data = driver
        .attach_output("vps-arc", &["/bin/cat", "/root/data"])
        .await
        .expect("read");
    assert_eq!(data.trim(), "kept", "the archive's files are back");
    driver.delete("vps-arc").await.expect("delete");
}
