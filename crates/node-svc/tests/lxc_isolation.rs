//! What a hostile tenant gets inside an LXC guest: an unprivileged root (guest uid 0 is a
//! high host uid), a process limit that stops a fork bomb, a disk that fills at its size,
//! nothing of the control plane's environment, and no view of its data directory. Needs
//! root, LXC and `lxc-net`, and root's subordinate ids (deploy/test.sh provides them).
//! Guests are driven only through the `lxc-*` tools and node-svc's own API.

use std::process::Stdio;
use std::time::Duration;

use node_svc::driver::lxc::{Backing, IdMap, LxcDriver, LxcOptions};
use node_svc::driver::{GuestSpec, Hypervisor, Resources};
use platform::auth::{Caller, KeySet, Service, Sign};
use proto::node::v1 as pb;
use tonic::service::interceptor::InterceptedService;

const PIDS_MAX: u32 = 64;

struct Guests {
    driver: LxcDriver,
    names: Vec<String>,
    dir: tempfile::TempDir,
}

impl Guests {
    fn new(backing: Backing) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vps-isolation")
            .tempdir_in("/var/tmp")
            .expect("temp dir");
        let options = LxcOptions {
            idmap: IdMap::default(),
            backing,
            pids_max: PIDS_MAX,
            ..LxcOptions::default()
        };
        Self {
            driver: LxcDriver::with_options(dir.path(), options),
            names: Vec::new(),
            dir,
        }
    }

    async fn running(&mut self, name: &str) {
        self.names.push(name.to_owned());
        let spec = GuestSpec {
            name: name.to_owned(),
            template: "busybox".to_owned(),
            hostname: format!("{name}.example.test"),
            resources: Resources {
                cores: Some(1),
                memory_mb: Some(256),
                disk_gb: Some(1),
            },
            root_password: None,
        };
        self.driver.create(&spec).await.expect("create");
        self.driver.start(name).await.expect("start");
    }

    async fn sh(&self, name: &str, script: &str) -> Result<String, String> {
        self.driver
            .attach_output(name, &["/bin/sh", "-c", script])
            .await
            .map_err(|e| e.to_string())
    }
}

impl Drop for Guests {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = std::process::Command::new("lxc-destroy")
                .arg("-P")
                .arg(self.dir.path())
                .args(["-n", name, "-f", "-s"])
                .output();
        }
    }
}

/// The directory of `controller` (v1) or the unified hierarchy (v2) for a process.
fn cgroup_dir(pid: u32, controller: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        let (Some(controllers), Some(path)) = (controllers, path) else {
            continue;
        };
        if controllers.split(',').any(|c| c == controller) {
            return std::path::PathBuf::from(format!("/sys/fs/cgroup/{controller}{path}"));
        }
    }
    let unified = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup");
    std::path::PathBuf::from(format!("/sys/fs/cgroup{unified}"))
}

#[tokio::test]
async fn guests_are_unprivileged_limited_and_blind_to_the_host() {
    let mut guests = Guests::new(Backing::Loop);
    guests.running("vps-iso").await;
    let pid = guests.driver.init_pid("vps-iso").await.expect("running");

    // Guest root is host uid 1000000.
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).expect("uid_map");
    let fields: Vec<&str> = uid_map.split_whitespace().collect();
    assert_eq!(fields[..3], ["0", "1000000", "65536"], "{uid_map}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let host_uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .expect("uid");
    assert_eq!(host_uid, "1000000");
    assert_eq!(
        guests.sh("vps-iso", "id -u").await.expect("id").trim(),
        "0",
        "root inside"
    );

    // A fork loop stops at pids.max, and the host counts the refusals.
    let pids = cgroup_dir(pid, "pids");
    assert_eq!(
        std::fs::read_to_string(pids.join("pids.max"))
            .expect("pids.max")
            .trim(),
        PIDS_MAX.to_string()
    );
    let bomb = guests
        .sh(
            "vps-iso",
            "i=0; while [ $i -lt 500 ]; do sleep 30 >/dev/null 2>&1 & i=$((i+1)); done; echo all-started",
        )
        .await;
    assert!(
        !bomb.as_deref().unwrap_or("").contains("all-started"),
        "500 processes started in a guest limited to {PIDS_MAX}: {bomb:?}"
    );
    let current: u32 = std::fs::read_to_string(pids.join("pids.current"))
        .expect("pids.current")
        .trim()
        .parse()
        .expect("number");
    assert!(current <= PIDS_MAX, "{current} processes");
    let events = std::fs::read_to_string(pids.join("pids.events")).expect("pids.events");
    let refused: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max "))
        .and_then(|n| n.trim().parse().ok())
        .expect("max counter");
    assert!(refused > 0, "{events}");
    // A restart clears the sleepers.
    guests
        .driver
        .stop("vps-iso", Duration::from_secs(1))
        .await
        .expect("stop");
    guests.driver.start("vps-iso").await.expect("start again");

    // The disk fills at its size (1 GB), not at the host's.
    let fill = guests
        .sh(
            "vps-iso",
            "dd if=/dev/zero of=/fill bs=1M count=1500 2>&1; df -k / | tail -n 1",
        )
        .await;
    let text = match &fill {
        Ok(out) => out.clone(),
        Err(e) => e.clone(),
    };
    assert!(
        text.contains("No space left"),
        "writing 1.5 GB into a 1 GB guest: {text}"
    );
    let _ = guests.sh("vps-iso", "rm -f /fill").await;

    // The control plane's data directory is nowhere to be seen.
    let data = tempfile::Builder::new()
        .prefix("vps-data")
        .tempdir_in("/var/tmp")
        .expect("data dir");
    let marker = data.path().join("secret-marker");
    std::fs::write(&marker, "control-plane-secret").expect("marker");
    let peek = guests
        .sh("vps-iso", &format!("cat {} 2>&1", marker.display()))
        .await
        .unwrap_or_else(|e| e);
    assert!(!peek.contains("control-plane-secret"), "{peek}");
    let mounts = guests
        .sh("vps-iso", "cat /proc/self/mountinfo")
        .await
        .expect("mountinfo");
    assert!(
        !mounts.contains("vps-data"),
        "a host path is mounted: {mounts}"
    );
    assert!(
        !mounts.contains("/var/tmp"),
        "a host path is mounted: {mounts}"
    );
    let static_busybox = std::process::Command::new("dpkg")
        .args(["-s", "busybox-static"])
        .output()
        .is_ok_and(|out| out.status.success());
    if static_busybox {
        // Nor the host's libraries, which a dynamic busybox would need.
        assert!(
            !mounts.lines().any(|l| l.contains(" /usr/lib ")),
            "the host's /usr/lib is mounted: {mounts}"
        );
    }

    // Attached processes start with only what the driver sets.
    let env = guests.sh("vps-iso", "env").await.expect("env");
    let names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    for name in &names {
        assert!(
            ["PATH", "TERM", "HOME", "container", "PWD", "SHLVL"].contains(name),
            "{name} reached the guest: {env}"
        );
    }
}

/// node-svc started as its own process with secrets and a marker in its environment: a
/// console session and the password path see none of it.
#[tokio::test]
async fn nothing_of_node_svc_s_environment_reaches_a_guest() {
    let keys = KeySet::generate().expect("keys");
    let work = tempfile::Builder::new()
        .prefix("vps-envtest")
        .tempdir_in("/var/tmp")
        .expect("dir");
    let containers = tempfile::Builder::new()
        .prefix("vps-envtest-lxc")
        .tempdir_in("/var/tmp")
        .expect("dir");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let public = |s: Service| keys.public[s.name()].clone();
    let signing = {
        use secrecy::ExposeSecret as _;
        keys.signing[&Service::Node].expose_secret().to_owned()
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_node-svc"))
        .env("VPS_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "VPS_DATABASE_URL",
            format!("sqlite://{}/node.db?mode=rwc", work.path().display()),
        )
        .env(
            "VPS_CREDENTIALS_KEY",
            "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdDE=",
        )
        .env("VPS_CALLER__SIGNING_KEY", signing)
        .env("VPS_CALLER__TRUSTED__GATEWAY", public(Service::Gateway))
        .env("VPS_CALLER__TRUSTED__SERVER", public(Service::Server))
        .env("VPS_ENV_MARKER", "marker-8d1c2f")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node-svc starts");

    let signed = |issuer: Service| {
        let channel = platform::grpc::channel(&url).expect("channel");
        InterceptedService::new(
            channel,
            Sign::new(keys.minter(issuer).expect("minter"), Service::Node),
        )
    };
    let mut nodes = proto::node::v1::nodes_client::NodesClient::new(signed(Service::Gateway));
    let mut guests = proto::node::v1::guests_client::GuestsClient::new(signed(Service::Server));
    let mut tickets =
        proto::node::v1::consoles_client::ConsolesClient::new(signed(Service::Server));
    let mut consoles =
        proto::node::v1::consoles_client::ConsolesClient::new(signed(Service::Gateway));

    let create_node = pb::CreateNodeRequest {
        name: "env-node".into(),
        driver: "lxc".into(),
        capacity: Some(pb::Capacity {
            cores: 2,
            memory_mb: 2048,
            disk_gb: 20,
        }),
        settings: [
            ("path".to_owned(), containers.path().display().to_string()),
            ("backing".to_owned(), "dir".to_owned()),
            ("unenforced_disk".to_owned(), "true".to_owned()),
        ]
        .into(),
        ..Default::default()
    };
    let mut node = None;
    for _ in 0..200 {
        match nodes
            .create_node(Caller::admin(1).request(create_node.clone()))
            .await
        {
            Ok(reply) => {
                node = Some(reply.into_inner().id);
                break;
            }
            Err(status) if status.code() == tonic::Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("create the node: {status:?}"),
        }
    }
    let node = node.expect("node-svc answered");
    let guest = || pb::GuestRef {
        node_id: node,
        name: "vps-env".into(),
    };
    let created = guests
        .create_guest(Caller::SYSTEM.request(pb::CreateGuestRequest {
            guest: Some(guest()),
            template: "busybox".into(),
            size: Some(pb::Capacity {
                cores: 1,
                memory_mb: 256,
                disk_gb: 1,
            }),
            ..Default::default()
        }))
        .await;
    let cleanup = Destroy(containers.path().to_owned(), "vps-env");
    created.expect("create the guest");
    guests
        .start_guest(Caller::SYSTEM.request(guest()))
        .await
        .expect("start");

    // A shell that notes its environment before doing its job, to catch the password path.
    let rootfs = containers.path().join("vps-env/rootfs");
    std::fs::rename(rootfs.join("bin/sh"), rootfs.join("bin/sh.real")).expect("move sh");
    std::fs::write(
        rootfs.join("bin/sh"),
        "#!/bin/busybox sh\nenv > /tmp/env.seen\nexec /bin/busybox sh \"$@\"\n",
    )
    .expect("spy shell");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            rootfs.join("bin/sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
    }
    guests
        .set_guest_password(Caller::SYSTEM.request(pb::SetGuestPasswordRequest {
            guest: Some(guest()),
            user: "root".into(),
            password: "a-new-root-password".into(),
        }))
        .await
        .expect("set the password");
    let seen = std::fs::read_to_string(rootfs.join("tmp/env.seen")).expect("the spy ran");
    assert!(!seen.contains("marker-8d1c2f"), "password path: {seen}");
    assert!(!seen.contains("VPS_"), "password path: {seen}");
    assert!(seen.contains("PATH="), "{seen}");

    // A console session, as the gateway opens it.
    let ticket = tickets
        .issue_ticket(Caller::SYSTEM.request(pb::IssueConsoleTicketRequest {
            guest: Some(guest()),
            user_id: 7,
        }))
        .await
        .expect("ticket")
        .into_inner()
        .ticket;
    let (keys_tx, keys_rx) = tokio::sync::mpsc::channel::<pb::ConsoleInput>(8);
    keys_tx
        .send(pb::ConsoleInput {
            input: Some(pb::console_input::Input::Ticket(ticket)),
            user_id: 7,
        })
        .await
        .expect("send");
    let mut printed = consoles
        .attach(Caller::SYSTEM.request(tokio_stream::wrappers::ReceiverStream::new(keys_rx)))
        .await
        .expect("attach")
        .into_inner();
    let data = |bytes: &[u8]| pb::ConsoleInput {
        input: Some(pb::console_input::Input::Data(bytes.to_vec())),
        user_id: 0,
    };
    let mut screen = String::new();
    let mut typed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !screen.contains("END-OF-42") {
        let chunk = tokio::time::timeout_at(deadline, printed.message())
            .await
            .unwrap_or_else(|_| panic!("no answer from the console: {screen:?}"))
            .expect("stream")
            .expect("output");
        let text = String::from_utf8_lossy(&chunk.data).into_owned();
        if text.contains("\u{1b}[6n") {
            // The shell asks where the cursor is; answer as a terminal does.
            keys_tx.send(data(b"\x1b[1;1R")).await.expect("answer");
        }
        screen.push_str(&text);
        if !typed && screen.contains("# ") {
            keys_tx
                .send(data(b"env; echo END-OF-$((40+2))\r"))
                .await
                .expect("type");
            typed = true;
        }
    }
    assert!(screen.contains("PATH="), "{screen}");
    assert!(!screen.contains("marker-8d1c2f"), "console: {screen}");
    assert!(!screen.contains("VPS_"), "console: {screen}");
    drop(keys_tx);
    drop(cleanup);
    let _ = child.kill().await;
}

/// Destroys a container when dropped.
struct Destroy(std::path::PathBuf, &'static str);

impl Drop for Destroy {
    fn drop(&mut self) {
        let _ = std::process::Command::new("lxc-destroy")
            .arg("-P")
            .arg(&self.0)
            .args(["-n", self.1, "-f", "-s"])
            .output();
    }
}
