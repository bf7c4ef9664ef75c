//! `vps-stack`: the embedded default. Starts a child `nats-server -js` and every service in
//! this process on loopback, with SQLite files and generated secrets under the data
//! directory, prints where the gateway listens and how to log in, and stops cleanly on
//! Ctrl-C or SIGTERM.

/// mimalloc (without transparent huge pages): under load glibc's allocator spent a tenth of
/// the stack's time waiting on its arena locks (`docs/operations.md`, "Memory").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod probe;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use platform::auth::{KeySet, Service};
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

/// Launcher settings: `VPS_DATA_DIR`, `VPS_HOST`, `VPS_GATEWAY_PORT`, ... (see docs/configuration.md).
#[derive(Debug, Deserialize)]
#[serde(default)]
struct StackConfig {
    data_dir: PathBuf,
    /// The gateway's address: the only one meant to be published.
    host: IpAddr,
    /// Where the internal services and NATS listen; loopback, so publishing the gateway
    /// publishes nothing else.
    internal_host: IpAddr,
    gateway_port: u16,
    identity_port: u16,
    server_port: u16,
    snapshot_port: u16,
    node_port: u16,
    monitor_port: u16,
    notify_port: u16,
    nats_port: u16,
    nats_server: String,
    admin_username: String,
    admin_email: String,
    /// Optionally, a Skyport API key (32+ characters) for the first administrator.
    admin_api_key: Option<SecretString>,
    /// Optionally, a PostgreSQL server for the services' databases instead of SQLite files in
    /// the data directory: each service gets its own database there, `vps_<service>`, made
    /// when missing (`VPS_POSTGRES_URL`, e.g. `postgres://vps:secret@127.0.0.1/postgres`).
    postgres_url: Option<SecretString>,
    /// Where the local LXC node keeps its containers: apart from the data directory, which
    /// no guest should be anywhere near.
    lxc_path: PathBuf,
    /// How often monitor-svc polls every node.
    monitor_interval_ms: u64,
    /// Where the stack serves Prometheus metrics (on `internal_host`): every service's, and
    /// the per-server ones; none when absent.
    metrics_port: Option<u16>,
    /// The earlier name of `metrics_port`, still read.
    monitor_metrics_port: Option<u16>,
    /// Socket.IO connections one user may hold open at once.
    live_max_sockets_per_user: usize,
    /// notify-svc's SMTP server (`VPS_SMTP__HOST` ...); seed 000's `SMTP_HOST`,
    /// `SMTP_PORT`, `SMTP_USER` and `SMTP_PASS` fill in what is unset. No host: mails wait.
    smtp: notify_svc::SmtpConfig,
    /// Who mails come from, and the panel's address for their links.
    mail_from: Option<String>,
    panel_url: Option<String>,
    /// The dashboard's built files (`web/dist`), served at `/` by the gateway; none when
    /// absent.
    web_dir: Option<PathBuf>,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            host: IpAddr::from([127, 0, 0, 1]),
            internal_host: IpAddr::from([127, 0, 0, 1]),
            gateway_port: Service::Gateway.default_port(),
            identity_port: Service::Identity.default_port(),
            server_port: Service::Server.default_port(),
            snapshot_port: Service::Snapshot.default_port(),
            node_port: Service::Node.default_port(),
            monitor_port: Service::Monitor.default_port(),
            notify_port: Service::Notify.default_port(),
            nats_port: 4222,
            nats_server: "nats-server".to_owned(),
            admin_username: "admin".to_owned(),
            admin_email: "admin@example.com".to_owned(),
            admin_api_key: None,
            postgres_url: None,
            lxc_path: PathBuf::from("/var/lib/vps/lxc"),
            monitor_interval_ms: monitor_svc::Config::default().interval_ms,
            metrics_port: None,
            monitor_metrics_port: None,
            live_max_sockets_per_user: gateway::config::LiveConfig::default().max_sockets_per_user,
            smtp: notify_svc::SmtpConfig::default(),
            mail_from: None,
            panel_url: None,
            web_dir: None,
        }
    }
}

/// The services' databases on the PostgreSQL server at `url`: `vps_<service>` each, made
/// when missing, reached with the same user and options as `url`.
async fn postgres_databases(url: &str) -> anyhow::Result<Vec<(Service, String)>> {
    use sea_orm::ConnectionTrait as _;
    let (address, options) = url
        .split_once('?')
        .map_or((url, String::new()), |(a, o)| (a, format!("?{o}")));
    let server = address
        .split_once("://")
        .and_then(|(_, rest)| {
            rest.rfind('/')
                .map(|at| &address[..address.len() - rest.len() + at])
        })
        .context("VPS_POSTGRES_URL names no database (postgres://user:password@host/database)")?;
    let admin = sea_orm::Database::connect(url)
        .await
        .context("connecting to VPS_POSTGRES_URL")?;
    let mut databases = Vec::new();
    for service in Service::ALL {
        if service == Service::Gateway {
            continue;
        }
        let name = format!("vps_{service}");
        let exists = admin
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT 1 FROM pg_database WHERE datname = $1",
                [name.clone().into()],
            ))
            .await
            .context("reading the databases on VPS_POSTGRES_URL")?
            .is_some();
        if !exists {
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .with_context(|| format!("creating the database {name}"))?;
            tracing::info!(database = %name, "created a service's database");
        }
        databases.push((service, format!("{server}/{name}{options}")));
    }
    admin.close().await.ok();
    Ok(databases)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [command, dir] = args.as_slice()
        && command == "keygen"
    {
        return keygen(Path::new(dir));
    }
    if let [command, url] = args.as_slice()
        && command == "probe"
    {
        return probe::probe(url).await;
    }
    anyhow::ensure!(
        args.is_empty(),
        "usage: vps-stack            (run the whole stack)\n       vps-stack keygen DIR  (caller-token keys for every service)\n       vps-stack probe URL   (a health check: gRPC health at URL, or HTTP 200 when URL has a path)"
    );
    let _telemetry = platform::telemetry::init("vps-stack");
    let config: StackConfig = platform::config::load()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let data_dir = config.data_dir.canonicalize()?;
    let shutdown = platform::Shutdown::new();
    shutdown.trigger_on_signals();

    let jwt_secret = kept_secret(&data_dir.join("secrets/jwt-secret"))?;
    // node-svc's key for hypervisor credentials; server-svc has its own for root passwords
    // and stored replies, so server-svc cannot read hypervisor credentials.
    let credentials_key = kept_secret(&data_dir.join("secrets/credentials-key"))?;
    // A data directory from before server-svc had its own key: what it sealed under the
    // shared key (replies, passwords of unfinished tasks) stays readable, from a copy kept
    // as server-svc's previous key.
    let previous_path = data_dir.join("secrets/server-key-previous");
    if data_dir.join("server.db").exists()
        && !data_dir.join("secrets/server-key").exists()
        && !previous_path.exists()
    {
        platform::config::write_private(&previous_path, &credentials_key)?;
    }
    let server_key_previous = std::fs::read_to_string(&previous_path)
        .ok()
        .map(|key| SecretString::from(key.trim().to_owned()));
    let server_key = kept_secret(&data_dir.join("secrets/server-key"))?;
    // notify-svc's own key, for webhooks' signing secrets.
    let notify_key = kept_secret(&data_dir.join("secrets/notify-key"))?;
    let (admin_password, fresh_password) = admin_password(&data_dir.join("admin-password"))?;
    // Each service signs its caller tokens with its own key and trusts the others' public keys.
    let keys = KeySet::kept_in(&data_dir.join("secrets/caller"))?;

    // The child nats-server takes clients with a user and password only.
    // The child nats-server has a user per service, with only the subjects it needs, and
    // `events` for other teams' consumers (read-only): the manifests' permission set.
    let nats_passwords = NATS_USERS
        .iter()
        .map(|user| {
            kept_secret_with(&data_dir.join(format!("secrets/nats-{user}")), |b| {
                hex::encode(b)
            })
            .map(|password| (*user, password))
        })
        .collect::<anyhow::Result<BTreeMap<&str, String>>>()?;
    let mut nats = start_nats(&config, &data_dir, &nats_passwords).await?;

    let gateway_addr = SocketAddr::new(config.host, config.gateway_port);
    let port = |service| match service {
        Service::Gateway => config.gateway_port,
        Service::Identity => config.identity_port,
        Service::Server => config.server_port,
        Service::Snapshot => config.snapshot_port,
        Service::Node => config.node_port,
        Service::Monitor => config.monitor_port,
        Service::Notify => config.notify_port,
    };
    let mut listeners = stack::Listeners::bind(gateway_addr, config.internal_host, port).await?;
    let mut configs = stack::Configs::default();
    let databases: Vec<(Service, String)> = match &config.postgres_url {
        Some(url) => postgres_databases(url.expose_secret()).await?,
        None => Service::ALL
            .into_iter()
            .map(|service| {
                let file = data_dir.join(format!("{service}.db"));
                (service, format!("sqlite://{}?mode=rwc", file.display()))
            })
            .collect(),
    };
    configs.wire(&listeners, &keys, |service| {
        databases
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, url)| url.clone())
            .unwrap_or_default()
    });
    configs.identity.jwt_secret = Some(SecretString::from(jwt_secret));
    configs.identity.admin = identity_svc::AdminBootstrap {
        username: config.admin_username.clone(),
        email: Some(config.admin_email.clone()),
        password: Some(SecretString::from(admin_password.clone())),
        api_key: config.admin_api_key.clone(),
    };
    let catalog_path = data_dir.join("catalog.toml");
    if !catalog_path.exists() {
        std::fs::write(&catalog_path, server_svc::domain::catalog::DEFAULT_CATALOG)
            .with_context(|| format!("writing {}", catalog_path.display()))?;
    }
    let nats_addr = SocketAddr::new(config.internal_host, config.nats_port);
    let nats_url = |user: &str| {
        Some(SecretString::from(format!(
            "nats://{user}:{}@{nats_addr}",
            nats_passwords[user]
        )))
    };
    configs.server.nats_url = nats_url("server");
    configs.snapshot.nats_url = nats_url("snapshot");
    configs.monitor.nats_url = nats_url("monitor");
    configs.notify.nats_url = nats_url("notify");
    configs.gateway.nats_url = nats_url("gateway");
    configs.gateway.live.max_sockets_per_user = config.live_max_sockets_per_user;
    configs.gateway.web_dir.clone_from(&config.web_dir);
    configs.monitor.interval_ms = config.monitor_interval_ms;
    configs.monitor.node_timeout_ms = configs
        .monitor
        .node_timeout_ms
        .min(config.monitor_interval_ms / 3 * 2)
        .max(1);
    // One process, one recorder: monitor-svc's page shows every service's metrics too.
    configs.monitor.metrics_listen = config
        .metrics_port
        .or(config.monitor_metrics_port)
        .map(|port| SocketAddr::new(config.internal_host, port));
    configs.notify.secrets_key = Some(SecretString::from(notify_key));
    configs.notify.smtp = config
        .smtp
        .clone()
        .with_seed_variables(|name| std::env::var(name).ok());
    if let Some(from) = &config.mail_from {
        configs.notify.mail.from.clone_from(from);
    }
    configs.notify.mail.panel_url = config
        .panel_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", listeners.addr(Service::Gateway)));
    configs.snapshot.backup_target.path = data_dir.join("backups");
    configs.server.catalog_path = Some(catalog_path);
    configs.server.secrets_key = Some(SecretString::from(server_key));
    configs.server.secrets_key_previous = server_key_previous;
    configs.node.credentials_key = Some(SecretString::from(credentials_key));
    configs.node.local_lxc = lxc_available().then(|| node_svc::LocalLxc {
        path: config.lxc_path.clone(),
        ..node_svc::LocalLxc::default()
    });
    if configs.node.local_lxc.is_none() {
        tracing::warn!("LXC is not installed (apt-get install lxc): no local node is registered");
    }
    // Where to reach them (loopback for a service bound to every address).
    let identity_addr = listeners.addr(Service::Identity);
    let gateway_reach = listeners.addr(Service::Gateway);
    let mut tasks = JoinSet::new();
    stack::spawn_all(&mut tasks, &configs, &mut listeners, &shutdown)?;

    let ready = wait_for_port(gateway_reach, Duration::from_secs(30));
    tokio::select! {
        result = ready => result.context("the gateway did not come up")?,
        Some(done) = tasks.join_next() => {
            shutdown.trigger();
            let _ = nats.kill().await;
            return Err(exit_error(done));
        }
    }
    wait_for_port(identity_addr, Duration::from_secs(30)).await?;

    let mut banner = String::new();
    banner.push_str("\n  VPS control plane is running.\n");
    banner.push_str(&format!(
        "  Gateway:   http://{gateway_addr}   (OpenAPI: http://{gateway_addr}/api/openapi.json)\n"
    ));
    if config.web_dir.is_some() {
        banner.push_str(&format!("  Dashboard: http://{gateway_addr}/\n"));
    }
    banner.push_str(&format!("  Data:      {}\n", data_dir.display()));
    banner.push_str(&format!(
        "  Log in:    username '{}' or email '{}'\n",
        config.admin_username, config.admin_email
    ));
    let password_file = data_dir.join("admin-password");
    if fresh_password {
        banner.push_str(&format!(
            "             password '{admin_password}' (generated; kept in {})\n",
            password_file.display()
        ));
    } else {
        banner.push_str(&format!(
            "             password in {}\n",
            password_file.display()
        ));
    }
    banner.push_str(&format!(
        "  Try:       curl -s http://{gateway_addr}/api/auth/login -H 'content-type: application/json' \\\n"
    ));
    banner.push_str(&format!(
        "               -d '{{\"login\":\"{}\",\"password\":\"<password>\"}}'\n",
        config.admin_username
    ));
    if configs.notify.smtp.host.is_empty() {
        banner.push_str("  Mail:      no SMTP server (set SMTP_HOST, SMTP_PORT, SMTP_USER, SMTP_PASS); mails wait\n");
    } else {
        banner.push_str(&format!(
            "  Mail:      through {}:{}\n",
            configs.notify.smtp.host,
            configs.notify.smtp.port()
        ));
    }
    banner.push_str(&format!(
        "  Events:    nats://events:<password>@{nats_addr} (read-only; password in {})\n",
        data_dir.join("secrets/nats-events").display()
    ));
    if let Some(addr) = configs.monitor.metrics_listen {
        banner.push_str(&format!("  Metrics:   http://{addr}/metrics\n"));
    }
    banner.push_str("  Stop:      Ctrl-C\n\n");
    // One write, and a closed stdout is no reason to stop serving.
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }

    let mut failure = None;
    tokio::select! {
        () = shutdown.wait() => {}
        Some(done) = tasks.join_next() => {
            if !shutdown.is_triggered() {
                failure = Some(exit_error(done));
                shutdown.trigger();
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok((service, Err(e))) = done {
            tracing::error!(%service, error = %format!("{e:#}"), "service stopped with an error");
        }
    }
    stop_nats(&mut nats).await;
    tracing::info!("stopped");
    failure.map_or(Ok(()), Err)
}

/// Writes a caller-token key pair for every service into `dir` (`<service>.key`, 0600;
/// `<service>.pub`), keeping keys that are already there.
fn keygen(dir: &Path) -> anyhow::Result<()> {
    let keys = KeySet::kept_in(dir)?;
    for service in Service::ALL {
        println!(
            "{service}: {} (public {})",
            dir.join(format!("{service}.key")).display(),
            keys.public[service.name()]
        );
    }
    Ok(())
}

fn exit_error(done: Result<stack::Ended, tokio::task::JoinError>) -> anyhow::Error {
    match done {
        Ok((service, Ok(()))) => anyhow::anyhow!("{service} stopped unexpectedly"),
        Ok((service, Err(e))) => e.context(format!("{service} failed")),
        Err(e) => anyhow::anyhow!("a service panicked: {e}"),
    }
}

/// A 256-bit secret kept in `path` (created 0600 on first start), base64.
fn kept_secret(path: &Path) -> anyhow::Result<String> {
    kept_secret_with(path, |bytes| {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    })
}

/// A 256-bit secret kept in `path` (created 0600 on first start), encoded by `encode`.
fn kept_secret_with(path: &Path, encode: fn(&[u8]) -> String) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim().to_owned();
        anyhow::ensure!(
            existing.len() >= 32,
            "{} is too short; delete it to regenerate",
            path.display()
        );
        return Ok(existing);
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = encode(&bytes);
    platform::config::write_private(path, &secret)?;
    Ok(secret)
}

/// Whether this host can run LXC containers (the tools are installed and we are root).
fn lxc_available() -> bool {
    let tools = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("lxc-create").is_file())
    });
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    tools && root
}

/// The first administrator's password: generated once, kept 0600 in the data directory.
fn admin_password(path: &Path) -> anyhow::Result<(String, bool)> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok((existing.trim().to_owned(), false));
    }
    let mut bytes = [0u8; 15];
    rand::rng().fill_bytes(&mut bytes);
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    platform::config::write_private(path, &password)?;
    Ok((password, true))
}

/// The URL the services use to reach the child nats-server, with its credentials (the
/// password is hex, so it needs no escaping).
/// NATS's users: one per service that uses it, and `events` for other teams' consumers.
const NATS_USERS: [&str; 6] = [
    "server", "snapshot", "monitor", "notify", "gateway", "events",
];

/// Who may do what on NATS, as the Kubernetes manifests and docker-compose.yml have it.
const NATS_PERMISSIONS: &str = include_str!("../../../deploy/k8s/base/nats-users.conf");

async fn start_nats(
    config: &StackConfig,
    data_dir: &Path,
    passwords: &BTreeMap<&str, String>,
) -> anyhow::Result<Child> {
    let store = data_dir.join("nats");
    std::fs::create_dir_all(&store)?;
    let conf = data_dir.join("secrets/nats.conf");
    let _ = std::fs::remove_file(&conf);
    platform::config::write_private(&conf, NATS_PERMISSIONS)?;
    let log = std::fs::File::create(data_dir.join("nats-server.log"))?;
    let mut command = Command::new(&config.nats_server);
    // The passwords go in its environment, not on the command line where `ps` shows them;
    // quoted, so nats-server's parser takes each as a string.
    for (user, password) in passwords {
        command.env(
            format!("{}_PASSWORD", user.to_uppercase()),
            format!("\"{password}\""),
        );
    }
    let child = command
        .arg("-c")
        .arg(&conf)
        .args(["-js", "-a"])
        .arg(config.internal_host.to_string())
        .arg("-p")
        .arg(config.nats_port.to_string())
        .arg("-sd")
        .arg(&store)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (install it with: apt-get install nats-server)",
                config.nats_server
            )
        })?;
    wait_for_port(
        SocketAddr::new(config.internal_host, config.nats_port),
        Duration::from_secs(15),
    )
    .await
    .context("nats-server did not come up; see nats-server.log in the data directory")?;
    tracing::info!(port = config.nats_port, "nats-server (JetStream) is up");
    Ok(child)
}

async fn stop_nats(nats: &mut Child) {
    #[cfg(unix)]
    if let Some(pid) = nats.id() {
        // SIGTERM lets JetStream flush; fall back to a kill.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(5), nats.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = nats.kill().await;
}

async fn wait_for_port(addr: SocketAddr, limit: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "nothing listens on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
