//! The end-to-end test harness: starts identity-svc, node-svc, server-svc and the gateway in
//! this process on
//! loopback ports (port 0), with a fresh database per test (a SQLite file, or a new
//! PostgreSQL database when `VPS_TEST_POSTGRES_URL` is set), and drives them over HTTP.

pub mod fleet;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use gateway::AppState;
use platform::Shutdown;
use platform::auth::{KeySet, Service, Sign};
use platform::grpc::Channel;
use reqwest::{Method, RequestBuilder, StatusCode};
use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use serde_json::{Value, json};
use tonic::service::interceptor::InterceptedService;

pub const ADMIN_USERNAME: &str = "admin";
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const ADMIN_API_KEY: &str = "sk_configured-admin-key-for-tests-0123456789";
pub const JWT_SECRET: &str = "test-jwt-secret-test-jwt-secret-0123456789";
pub const USER_PASSWORD: &str = "user-password-1";
/// base64 of 32 bytes.
pub const NODE_CREDENTIALS_KEY: &str = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdDE=";
/// server-svc's own sealing key (base64 of 32 bytes): not node-svc's.
pub const NOTIFY_SECRETS_KEY: &str = "bm90aWZ5LXNlY3JldHMta2V5LWZvci10ZXN0cy0wMDE=";
pub const SERVER_SECRETS_KEY: &str = "c2VydmVyLXNlY3JldHMta2V5LWZvci10ZXN0cy0wMDE=";
/// The first administrator's user id (the first user created).
pub const ADMIN_ID: i64 = 1;

/// Which database identity-svc runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// A server URL whose path is replaced by a fresh database name.
    Postgres(String),
}

impl Backend {
    /// PostgreSQL when `VPS_TEST_POSTGRES_URL` is set. Without it the PostgreSQL variants
    /// skip, unless `VPS_TEST_REQUIRE_POSTGRES=1` (as CI sets) makes that a failure.
    pub fn postgres() -> Option<Self> {
        match std::env::var("VPS_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(Self::Postgres(url)),
            _ => {
                assert!(
                    std::env::var("VPS_TEST_REQUIRE_POSTGRES").is_err(),
                    "VPS_TEST_REQUIRE_POSTGRES is set but VPS_TEST_POSTGRES_URL is not"
                );
                eprintln!("skipped: VPS_TEST_POSTGRES_URL is not set");
                None
            }
        }
    }

    async fn database_url(&self, dir: &std::path::Path, service: &str) -> String {
        match self {
            Self::Sqlite => format!(
                "sqlite://{}?mode=rwc",
                dir.join(format!("{service}.db")).display()
            ),
            Self::Postgres(server) => {
                let name = format!("vps_test_{}", uuid::Uuid::new_v4().simple());
                let admin = sea_orm::Database::connect(server.as_str())
                    .await
                    .expect("connect to PostgreSQL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create a test database");
                let base = server.split('?').next().unwrap_or(server);
                let cut = base
                    .rfind('/')
                    .filter(|i| *i > "postgres://".len())
                    .unwrap_or(base.len());
                format!("{}/{name}", &base[..cut])
            }
        }
    }
}

/// Runs each named `async fn(Backend)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::Backend::postgres() {
                        super::$name(backend).await
                    }
                }
            )*
        }
    };
}

/// Adjustments to a test stack.
pub struct Options {
    pub gateway: gateway::Config,
    pub identity: identity_svc::Config,
    pub node: node_svc::Config,
    pub server: server_svc::Config,
    pub snapshot: snapshot_svc::Config,
    pub monitor: monitor_svc::Config,
    pub notify: notify_svc::Config,
    /// Extra routes mounted on the gateway under its middleware.
    pub extra_routes: Router<AppState>,
}

impl Default for Options {
    fn default() -> Self {
        let gateway = gateway::Config {
            // Generous, so only the rate-limit test meets the limit.
            auth_rate_per_minute: 10_000,
            auth_rate_burst: 10_000,
            ..gateway::Config::default()
        };
        Self {
            gateway,
            identity: identity_svc::Config::default(),
            node: node_svc::Config::default(),
            server: server_svc::Config {
                stop_grace_secs: 1,
                ..server_svc::Config::default()
            },
            snapshot: snapshot_svc::Config {
                // A backup's first slot comes at once when a test asks for slots this short.
                schedule_tick_secs: 1,
                stop_grace_secs: 1,
                ..snapshot_svc::Config::default()
            },
            // A cycle a second, so tests see samples, state changes and alerts quickly.
            monitor: monitor_svc::Config {
                interval_ms: 1000,
                node_timeout_ms: 700,
                alerts: monitor_svc::AlertConfig {
                    consecutive: 2,
                    cooldown_secs: 0,
                    ..monitor_svc::AlertConfig::default()
                },
                ..monitor_svc::Config::default()
            },
            // Mail is looked for every 100 ms and retried after 200 ms, 400 ms ... 2 s.
            notify: notify_svc::Config {
                mail: notify_svc::MailConfig {
                    send_interval_ms: 100,
                    retry_base_ms: 200,
                    retry_max_secs: 2,
                    ..notify_svc::MailConfig::default()
                },
                ..notify_svc::Config::default()
            },
            extra_routes: Router::new(),
        }
    }
}

/// A gRPC channel whose calls carry signed caller tokens (see [`TestSign`]).
pub type Signed = InterceptedService<Channel, TestSign>;

/// Signs test calls as the real services would: a user caller through the gateway's key,
/// [`platform::grpc::Caller::SYSTEM`] (also assumed when a request names no caller) as the
/// service `system` stands for.
#[derive(Clone, Debug)]
pub struct TestSign {
    users: Sign,
    system: Sign,
}

impl tonic::service::Interceptor for TestSign {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if request
            .extensions()
            .get::<platform::grpc::Caller>()
            .is_none()
        {
            request
                .extensions_mut()
                .insert(platform::grpc::Caller::SYSTEM);
        }
        let is_user = request
            .extensions()
            .get::<platform::grpc::Caller>()
            .is_some_and(platform::grpc::Caller::is_user);
        if is_user {
            self.users.call(request)
        } else {
            self.system.call(request)
        }
    }
}

/// A running identity-svc and gateway. Dropping it shuts both down.
pub struct TestApp {
    pub base: String,
    /// Every service's caller-token keys, so tests can call the services directly.
    pub keys: KeySet,
    pub identity_url: String,
    pub node_url: String,
    pub server_url: String,
    pub snapshot_url: String,
    pub monitor_url: String,
    pub notify_url: String,
    pub http: reqwest::Client,
    pub database_url: String,
    /// server-svc's configuration, as started (tests restart it to test resumption).
    pub server_config: server_svc::Config,
    /// snapshot-svc's configuration, as started.
    pub snapshot_config: snapshot_svc::Config,
    /// monitor-svc's configuration, as started.
    pub monitor_config: monitor_svc::Config,
    /// notify-svc's configuration, as started.
    pub notify_config: notify_svc::Config,
    shutdown: Shutdown,
    server_shutdown: Shutdown,
    snapshot_shutdown: Shutdown,
    notify_shutdown: Shutdown,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.notify_shutdown.trigger();
        self.snapshot_shutdown.trigger();
        self.server_shutdown.trigger();
        self.shutdown.trigger();
    }
}

/// Whether an error body has the shape of the dialect that owns `path`.
pub fn error_shape_ok(path: &str, body: &Value) -> bool {
    if path.starts_with("/api/v1/") {
        body["detail"].is_string()
    } else if path.starts_with("/api/client/") {
        body["errors"].is_array()
    } else {
        body["error"].is_string()
    }
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Cred<'a> {
    None,
    Bearer(&'a str),
    ApiKey(&'a str),
    Cvm(&'a str, &'a str),
}

impl Cred<'_> {
    pub fn apply(self, request: RequestBuilder) -> RequestBuilder {
        match self {
            Self::None => request,
            Self::Bearer(token) => request.bearer_auth(token),
            Self::ApiKey(key) => request.header("x-api-key", key),
            Self::Cvm(public, private) => request
                .header("API-Public-Token", public)
                .header("API-Private-Token", private),
        }
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, Options::default()).await
    }

    pub async fn start_with(backend: Backend, options: Options) -> Self {
        let _telemetry = platform::telemetry::init_quiet("tests");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut databases = std::collections::HashMap::new();
        for service in [
            Service::Identity,
            Service::Node,
            Service::Server,
            Service::Snapshot,
            Service::Monitor,
            Service::Notify,
        ] {
            let url = backend.database_url(dir.path(), service.name()).await;
            databases.insert(service, url);
        }
        let catalog_path = dir.path().join("catalog.toml");
        std::fs::write(&catalog_path, server_svc::domain::catalog::DEFAULT_CATALOG)
            .expect("write the catalog");
        let shutdown = Shutdown::new();
        let keys = KeySet::generate().expect("caller-token keys");

        // The same wiring as the launcher's, on loopback port 0.
        let mut listeners = stack::Listeners::ephemeral().await.expect("listeners");
        let mut configs = stack::Configs {
            gateway: options.gateway,
            identity: identity_svc::Config {
                jwt_secret: Some(SecretString::from(JWT_SECRET)),
                admin: identity_svc::AdminBootstrap {
                    username: ADMIN_USERNAME.to_owned(),
                    email: Some(ADMIN_EMAIL.to_owned()),
                    password: Some(SecretString::from(ADMIN_PASSWORD)),
                    api_key: Some(SecretString::from(ADMIN_API_KEY)),
                },
                ..options.identity
            },
            node: node_svc::Config {
                credentials_key: Some(SecretString::from(NODE_CREDENTIALS_KEY)),
                ..options.node
            },
            server: server_svc::Config {
                catalog_path: Some(catalog_path),
                secrets_key: Some(SecretString::from(SERVER_SECRETS_KEY)),
                ..options.server
            },
            snapshot: snapshot_svc::Config {
                backup_target: snapshot_svc::TargetConfig {
                    path: dir.path().join("backups"),
                    ..options.snapshot.backup_target.clone()
                },
                ..options.snapshot
            },
            monitor: options.monitor,
            notify: notify_svc::Config {
                secrets_key: Some(SecretString::from(NOTIFY_SECRETS_KEY)),
                ..options.notify
            },
        };
        configs.wire(&listeners, &keys, |service| {
            databases.get(&service).cloned().unwrap_or_default()
        });
        let peers = listeners.peers();
        let identity_url = peers.identity.clone();
        let node_url = peers.node.clone();
        let server_url = peers.server.clone();
        let snapshot_url = peers.snapshot.clone();
        let monitor_url = peers.monitor.clone();
        let notify_url = peers.notify.clone();
        let database_url = configs.identity.database_url.clone();

        // server-svc runs under its own shutdown (tests restart it), and the gateway with
        // the test's extra routes; the rest as the launcher starts them.
        let server_listener = listeners.take(Service::Server).expect("server-svc");
        let server_shutdown = Shutdown::new();
        spawn_server_svc(
            server_listener,
            configs.server.clone(),
            server_shutdown.clone(),
        );
        // So does snapshot-svc (its scheduler is tested across restarts).
        let snapshot_listener = listeners.take(Service::Snapshot).expect("snapshot-svc");
        let snapshot_shutdown = Shutdown::new();
        spawn_snapshot_svc(
            snapshot_listener,
            configs.snapshot.clone(),
            snapshot_shutdown.clone(),
        );
        // So does notify-svc (tests stop it mid-way).
        let notify_listener = listeners.take(Service::Notify).expect("notify-svc");
        let notify_shutdown = Shutdown::new();
        spawn_notify_svc(
            notify_listener,
            configs.notify.clone(),
            notify_shutdown.clone(),
        );
        let gateway_listener = listeners.take(Service::Gateway).expect("gateway");
        let base = start_gateway(
            gateway_listener,
            configs.gateway.clone(),
            options.extra_routes,
            shutdown.clone(),
        );
        let mut services = tokio::task::JoinSet::new();
        stack::spawn_all(&mut services, &configs, &mut listeners, &shutdown)
            .expect("start the services");
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            while let Some(ended) = services.join_next().await {
                if let Ok((service, Err(e))) = ended {
                    eprintln!("{service} stopped: {e:#}");
                    if service == Service::Identity
                        && let Some(tx) = ready_tx.take()
                    {
                        let _ = tx.send(Err(format!("{e:#}")));
                    }
                }
            }
        });
        let server_config = configs.server;
        let snapshot_config = configs.snapshot;
        let monitor_config = configs.monitor;
        let notify_config = configs.notify;
        let app = Self {
            base,
            keys,
            identity_url,
            node_url,
            server_url,
            snapshot_url,
            monitor_url,
            notify_url,
            http: reqwest::Client::new(),
            database_url,
            server_config,
            snapshot_config,
            monitor_config,
            notify_config,
            shutdown,
            server_shutdown,
            snapshot_shutdown,
            notify_shutdown,
            _dir: dir,
        };
        app.wait_until_ready(ready_rx).await;
        app
    }

    /// A second gateway replica sharing this identity-svc.
    pub async fn another_gateway(&self, config: gateway::Config) -> String {
        let config = gateway::Config {
            peers: platform::peers::Peers {
                identity: self.identity_url.clone(),
                node: self.node_url.clone(),
                server: self.server_url.clone(),
                ..platform::peers::Peers::default()
            },
            caller: self.keys.config_for(Service::Gateway),
            ..config
        };
        start_gateway(bind().await, config, Router::new(), self.shutdown.clone())
    }

    /// Stops server-svc (as a crash would: sagas stop where they are) and starts it again on
    /// the same address and database with `change` applied to its configuration.
    pub async fn restart_server_svc(&mut self, change: impl FnOnce(&mut server_svc::Config)) {
        self.server_shutdown.trigger();
        let mut config = self.server_config.clone();
        change(&mut config);
        let listener = rebind(config.listen, "server-svc").await;
        self.server_shutdown = Shutdown::new();
        spawn_server_svc(listener, config.clone(), self.server_shutdown.clone());
        self.server_config = config;
        self.wait_for_server_svc().await;
    }

    /// Another notify-svc replica on the same database and NATS, with `change` applied to
    /// its configuration: its shutdown.
    pub async fn another_notify_svc(
        &self,
        change: impl FnOnce(&mut notify_svc::Config),
    ) -> Shutdown {
        let listener = bind().await;
        let mut config = self.notify_config.clone();
        config.listen = listener.local_addr().expect("addr");
        change(&mut config);
        let shutdown = Shutdown::new();
        spawn_notify_svc(listener, config, shutdown.clone());
        shutdown
    }

    /// Stops notify-svc (as a deployment does: it drains and stops consuming).
    pub fn stop_notify_svc(&self) {
        self.notify_shutdown.trigger();
    }

    /// Starts notify-svc again (after [`TestApp::stop_notify_svc`], or in place of the
    /// running one) on the same address and database, with `change` applied.
    pub async fn restart_notify_svc(&mut self, change: impl FnOnce(&mut notify_svc::Config)) {
        self.notify_shutdown.trigger();
        let mut config = self.notify_config.clone();
        change(&mut config);
        let listener = rebind(config.listen, "notify-svc").await;
        self.notify_shutdown = Shutdown::new();
        spawn_notify_svc(listener, config.clone(), self.notify_shutdown.clone());
        self.notify_config = config;
    }

    /// Stops snapshot-svc (its sagas stop at their next step boundary, its scheduler with
    /// them).
    pub fn stop_snapshot_svc(&self) {
        self.snapshot_shutdown.trigger();
    }

    /// Starts snapshot-svc again (after [`TestApp::stop_snapshot_svc`]) on the same address
    /// and database, with `change` applied to its configuration.
    pub async fn restart_snapshot_svc(&mut self, change: impl FnOnce(&mut snapshot_svc::Config)) {
        self.snapshot_shutdown.trigger();
        let mut config = self.snapshot_config.clone();
        change(&mut config);
        let listener = rebind(config.listen, "snapshot-svc").await;
        self.snapshot_shutdown = Shutdown::new();
        spawn_snapshot_svc(listener, config.clone(), self.snapshot_shutdown.clone());
        self.snapshot_config = config;
    }

    /// Another snapshot-svc replica on the same database and backup target, with `change`
    /// applied to its configuration: its shutdown.
    pub async fn another_snapshot_svc(
        &self,
        change: impl FnOnce(&mut snapshot_svc::Config),
    ) -> Shutdown {
        let listener = bind().await;
        let mut config = self.snapshot_config.clone();
        config.listen = listener.local_addr().expect("addr");
        change(&mut config);
        let shutdown = Shutdown::new();
        spawn_snapshot_svc(listener, config, shutdown.clone());
        shutdown
    }

    /// Another monitor-svc replica on the same database, with `change` applied to its
    /// configuration: its URL and its shutdown.
    pub async fn another_monitor_svc(
        &self,
        change: impl FnOnce(&mut monitor_svc::Config),
    ) -> (String, Shutdown) {
        let listener = bind().await;
        let mut config = self.monitor_config.clone();
        config.listen = listener.local_addr().expect("addr");
        change(&mut config);
        let url = format!("http://{}", config.listen);
        let shutdown = Shutdown::new();
        let stopped = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = monitor_svc::serve_on(listener, config, stopped).await {
                eprintln!("monitor-svc stopped: {e:#}");
            }
        });
        (url, shutdown)
    }

    /// Stops server-svc (its sagas stop at their next step boundary).
    pub fn stop_server_svc(&self) {
        self.server_shutdown.trigger();
    }

    /// Another server-svc replica on the same database, with `change` applied to its
    /// configuration: its URL and its shutdown.
    pub async fn another_server_svc(
        &self,
        change: impl FnOnce(&mut server_svc::Config),
    ) -> (String, Shutdown) {
        let listener = bind().await;
        let mut config = self.server_config.clone();
        config.listen = listener.local_addr().expect("addr");
        change(&mut config);
        let url = format!("http://{}", config.listen);
        let shutdown = Shutdown::new();
        spawn_server_svc(listener, config, shutdown.clone());
        (url, shutdown)
    }

    async fn wait_for_server_svc(&self) {
        let mut client = self.servers_client(Service::Gateway);
        for _ in 0..400 {
            let request =
                platform::grpc::Caller::admin(1).request(proto::server::v1::GetCatalogRequest {});
            if client.get_catalog(request).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("server-svc did not become ready");
    }

    async fn wait_until_ready(
        &self,
        mut failed: tokio::sync::oneshot::Receiver<Result<(), String>>,
    ) {
        for _ in 0..400 {
            if let Ok(result) = failed.try_recv() {
                panic!("identity-svc stopped during start-up: {result:?}");
            }
            let login = self
                .call(
                    Method::POST,
                    "/api/auth/login",
                    Cred::None,
                    Some(json!({"login": "nobody", "password": "x"})),
                )
                .await;
            if login.status == StatusCode::UNAUTHORIZED {
                self.wait_for_server_svc().await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the test stack did not become ready");
    }

    /// A channel to `url` for `audience` whose user callers the gateway signs and whose
    /// `Caller::SYSTEM` is `system`.
    pub fn signed(&self, url: &str, system: Service, audience: Service) -> Signed {
        let channel = platform::grpc::channel(url).expect("service URL");
        let sign = |issuer| Sign::new(self.keys.minter(issuer).expect("minter"), audience);
        InterceptedService::new(
            channel,
            TestSign {
                users: sign(Service::Gateway),
                system: sign(system),
            },
        )
    }

    pub fn identity_client(
        &self,
        system: Service,
    ) -> proto::identity::v1::identity_client::IdentityClient<Signed> {
        proto::identity::v1::identity_client::IdentityClient::new(self.signed(
            &self.identity_url,
            system,
            Service::Identity,
        ))
    }

    pub fn nodes_client(
        &self,
        system: Service,
    ) -> proto::node::v1::nodes_client::NodesClient<Signed> {
        proto::node::v1::nodes_client::NodesClient::new(self.signed(
            &self.node_url,
            system,
            Service::Node,
        ))
    }

    pub fn guests_client(
        &self,
        system: Service,
    ) -> proto::node::v1::guests_client::GuestsClient<Signed> {
        proto::node::v1::guests_client::GuestsClient::new(self.signed(
            &self.node_url,
            system,
            Service::Node,
        ))
    }

    pub fn consoles_client(
        &self,
        system: Service,
    ) -> proto::node::v1::consoles_client::ConsolesClient<Signed> {
        proto::node::v1::consoles_client::ConsolesClient::new(self.signed(
            &self.node_url,
            system,
            Service::Node,
        ))
    }

    pub fn servers_client(
        &self,
        system: Service,
    ) -> proto::server::v1::servers_client::ServersClient<Signed> {
        proto::server::v1::servers_client::ServersClient::new(self.signed(
            &self.server_url,
            system,
            Service::Server,
        ))
    }

    pub fn snapshots_client(
        &self,
        system: Service,
    ) -> proto::snapshot::v1::snapshots_client::SnapshotsClient<Signed> {
        proto::snapshot::v1::snapshots_client::SnapshotsClient::new(self.signed(
            &self.snapshot_url,
            system,
            Service::Snapshot,
        ))
    }

    pub fn monitor_client(
        &self,
        url: &str,
        system: Service,
    ) -> proto::monitor::v1::monitor_client::MonitorClient<Signed> {
        proto::monitor::v1::monitor_client::MonitorClient::new(self.signed(
            url,
            system,
            Service::Monitor,
        ))
    }

    /// Where snapshot-svc keeps backup archives (a directory target).
    pub fn backup_dir(&self) -> std::path::PathBuf {
        self.snapshot_config.backup_target.path.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request to this app's gateway and reads the whole reply.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        cred: Cred<'_>,
        body: Option<Value>,
    ) -> Reply {
        call_at(&self.http, &self.base, method, path, cred, body).await
    }

    /// A POST with an `Idempotency-Key` header.
    pub async fn post_keyed(&self, path: &str, cred: Cred<'_>, body: Value, key: &str) -> Reply {
        let request = cred
            .apply(self.http.post(self.url(path)))
            .header("Idempotency-Key", key)
            .json(&body);
        read_reply(request.send().await.expect("request reaches the gateway")).await
    }

    pub async fn get(&self, path: &str, cred: Cred<'_>) -> Reply {
        self.call(Method::GET, path, cred, None).await
    }

    pub async fn post(&self, path: &str, cred: Cred<'_>, body: Value) -> Reply {
        self.call(Method::POST, path, cred, Some(body)).await
    }

    pub async fn delete(&self, path: &str, cred: Cred<'_>) -> Reply {
        self.call(Method::DELETE, path, cred, None).await
    }

    /// Logs in and returns the session reply.
    pub async fn login(&self, login: &str, password: &str) -> Value {
        let reply = self
            .post(
                "/api/auth/login",
                Cred::None,
                json!({"login": login, "password": password}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "login as {login}: {}",
            reply.text
        );
        reply.json
    }

    /// The administrator's access token.
    pub async fn admin_token(&self) -> String {
        token_of(&self.login(ADMIN_USERNAME, ADMIN_PASSWORD).await)
    }

    /// Registers a user (password [`USER_PASSWORD`]) and returns (user id, access token).
    pub async fn user(&self, username: &str) -> (i64, String) {
        let reply = self
            .post(
                "/api/auth/register",
                Cred::None,
                json!({"username": username, "email": format!("{username}@example.com"), "password": USER_PASSWORD}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "register {username}: {}",
            reply.text
        );
        let id = reply.json["id"].as_i64().expect("numeric id");
        (id, token_of(&self.login(username, USER_PASSWORD).await))
    }

    /// Mints a credential with an access token; returns the reply body.
    pub async fn mint(&self, access_token: &str, kind: &str, client_api: bool) -> Value {
        let body =
            json!({"type": kind, "name": format!("{kind} for tests"), "clientApi": client_api});
        let reply = self
            .post("/api/tokens", Cred::Bearer(access_token), body)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "mint {kind}: {}",
            reply.text
        );
        reply.json
    }
}

pub fn token_of(session: &Value) -> String {
    session["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_owned()
}

/// Sends a request to any gateway and reads the whole reply.
pub async fn call_at(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    cred: Cred<'_>,
    body: Option<Value>,
) -> Reply {
    let mut request = cred.apply(http.request(method, format!("{base}{path}")));
    if let Some(body) = body {
        request = request.json(&body);
    }
    read_reply(request.send().await.expect("request reaches the gateway")).await
}

async fn read_reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

fn spawn_snapshot_svc(
    listener: tokio::net::TcpListener,
    config: snapshot_svc::Config,
    shutdown: Shutdown,
) {
    tokio::spawn(async move {
        if let Err(e) = snapshot_svc::serve_on(listener, config, shutdown).await {
            eprintln!("snapshot-svc stopped: {e:#}");
        }
    });
}

/// Binds `addr` again once the service that had it let it go (5 s at most).
async fn rebind(addr: std::net::SocketAddr, service: &str) -> tokio::net::TcpListener {
    for _ in 0..200 {
        if let Ok(bound) = tokio::net::TcpListener::bind(addr).await {
            return bound;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{service}'s address {addr} is not free again");
}

fn spawn_notify_svc(
    listener: tokio::net::TcpListener,
    config: notify_svc::Config,
    shutdown: Shutdown,
) {
    tokio::spawn(async move {
        if let Err(e) = notify_svc::serve_on(listener, config, shutdown).await {
            eprintln!("notify-svc stopped: {e:#}");
        }
    });
}

fn spawn_server_svc(
    listener: tokio::net::TcpListener,
    config: server_svc::Config,
    shutdown: Shutdown,
) {
    tokio::spawn(async move {
        if let Err(e) = server_svc::serve_on(listener, config, shutdown).await {
            eprintln!("server-svc stopped: {e:#}");
        }
    });
}

async fn bind() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind loopback")
}

/// Serves a gateway (with `extra` routes) on `listener`; its base URL.
fn start_gateway(
    listener: tokio::net::TcpListener,
    config: gateway::Config,
    extra: Router<AppState>,
    shutdown: Shutdown,
) -> String {
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let state = AppState::new(config).expect("gateway state");
    tokio::spawn(async move {
        if let Err(e) = gateway::serve_app(listener, state, extra, shutdown).await {
            eprintln!("gateway stopped: {e:#}");
        }
    });
    base
}
