//! The `proxmox` driver: Proxmox VE's REST API (`/api2/json`) with reqwest, for LXC and QEMU
//! guests. API-token (`PVEAPIToken=USER@REALM!TOKENID=SECRET`) or ticket login (cookie plus
//! `CSRFPreventionToken`, renewed before it expires); `{"data": ...}` envelopes; errors read
//! from `message` and `errors`, with the HTTP status as fallback; UPID tasks polled until
//! they stop (`OK` or `WARNINGS: ...` is success). Our guests carry the tag `vps-<name>`,
//! which is how a name is found again (and how creating twice is recognised).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::Mutex;

use super::Console;
use super::{
    BackupFacts, ChunkSink, Chunks, DriverError, DriverResult, GuestSpec, Hypervisor, Notes,
    PowerState, Resources, SnapshotInfo, Usage,
};
use client::urlencoding;

mod api;
mod client;
mod tls;

pub use api::API;

/// A ticket is valid for two hours; renew well before.
const TICKET_RENEW_AFTER: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone)]
pub enum Auth {
    /// `USER@REALM!TOKENID=SECRET`.
    Token(String),
    Password {
        username: String,
        password: String,
    },
}

#[derive(Debug, Clone)]
pub struct ProxmoxConfig {
    /// `https://host:port`.
    pub base_url: String,
    /// The PVE node name.
    pub node: String,
    pub auth: Auth,
    /// A PEM file with the CA (or the self-signed certificate) to trust.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. For labs only.
    pub insecure: bool,
    /// Storage for container root file systems.
    pub storage: String,
    /// Bridge for the guests' first network interface.
    pub bridge: String,
    /// Storage vzdump writes backups to (content type `backup`).
    pub backup_storage: String,
}

struct Ticket {
    cookie: String,
    csrf: String,
    at: Instant,
}

pub struct ProxmoxDriver {
    http: reqwest::Client,
    /// TLS for the console websocket, with the same trust as `http`.
    tls: std::sync::Arc<rustls::ClientConfig>,
    base: String,
    config: ProxmoxConfig,
    ticket: Mutex<Option<Ticket>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Lxc,
    Qemu,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Self::Lxc => "lxc",
            Self::Qemu => "qemu",
        }
    }
}

#[derive(Debug, Clone)]
struct Guest {
    vmid: u64,
    kind: Kind,
}

/// The tag that marks a guest as ours and carries its name.
fn tag(name: &str) -> String {
    format!("vps-{}", name.to_ascii_lowercase())
}

/// PVE sends some numbers as strings (`nextid`, `port`); accept both.
fn number(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

fn float(value: &Value) -> f64 {
    value
        .as_f64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0.0)
}

fn unreachable(error: impl Into<anyhow::Error>) -> DriverError {
    DriverError::Unreachable(error.into())
}

/// The error a PVE answer describes.
fn error_from(status: StatusCode, body: &Value) -> DriverError {
    let mut message = body["message"].as_str().unwrap_or("").trim().to_owned();
    if let Some(errors) = body["errors"].as_object() {
        let detail: Vec<String> = errors
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("invalid").trim()))
            .collect();
        message = format!("{message} {}", detail.join("; ")).trim().to_owned();
    }
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_owned();
    }
    match status.as_u16() {
        401 | 403 => DriverError::Failed(format!("Proxmox refused the credentials: {message}")),
        502..=504 | 595 | 596 => {
            unreachable(anyhow::anyhow!("Proxmox answered {status}: {message}"))
        }
        _ if message.contains("does not exist") || message.contains("no such") => {
            DriverError::NotFound(message)
        }
        _ => DriverError::Failed(format!("Proxmox: {message}")),
    }
}

/// `lxc:STORAGE:vztmpl/FILE` (a container template) or `qemu:VMID` (a VM template to clone).
enum Template {
    Lxc(String),
    Qemu(u64),
}

fn template(raw: &str) -> DriverResult<Template> {
    let bad = || {
        DriverError::Conflict(format!(
            "unknown Proxmox template {raw:?}: use lxc:STORAGE:vztmpl/FILE or qemu:VMID"
        ))
    };
    match raw.split_once(':') {
        Some(("lxc", volume)) if volume.contains(':') && !volume.contains([',', '=', ' ']) => {
            Ok(Template::Lxc(volume.to_owned()))
        }
        Some(("qemu", vmid)) => vmid.parse().map(Template::Qemu).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

#[async_trait]
impl Hypervisor for ProxmoxDriver {
    async fn probe(&self) -> DriverResult<()> {
        self.call(
            Method::GET,
            &format!("/nodes/{}/status", self.config.node),
            &[],
        )
        .await
        .map(drop)
    }

    async fn create(&self, spec: &GuestSpec) -> DriverResult<Notes> {
        if self.find(&spec.name).await?.is_some() {
            return Ok(vec!["the guest already existed; nothing to do".to_owned()]);
        }
        let template = template(&spec.template)?;
        let hostname = if spec.hostname.is_empty() {
            spec.name.clone()
        } else {
            spec.hostname.clone()
        };
        let mut notes = Notes::new();
        for attempt in 0..3 {
            let vmid = number(&self.call(Method::GET, "/cluster/nextid", &[]).await?)
                .ok_or_else(|| DriverError::Failed("nextid answered no number".into()))?;
            let result = match &template {
                Template::Lxc(ostemplate) => {
                    let mut params = vec![
                        ("vmid", vmid.to_string()),
                        ("ostemplate", ostemplate.clone()),
                        ("hostname", hostname.clone()),
                        ("tags", tag(&spec.name)),
                        ("unprivileged", "1".to_owned()),
                        (
                            "net0",
                            format!("name=eth0,bridge={},ip=dhcp", self.config.bridge),
                        ),
                        (
                            "rootfs",
                            format!(
                                "{}:{}",
                                self.config.storage,
                                spec.resources.disk_gb.unwrap_or(8)
                            ),
                        ),
                    ];
                    if let Some(cores) = spec.resources.cores {
                        params.push(("cores", cores.to_string()));
                    }
                    if let Some(memory) = spec.resources.memory_mb {
                        params.push(("memory", memory.to_string()));
                    }
                    if let Some(password) = &spec.root_password {
                        params.push(("password", password.clone()));
                    }
                    self.act(
                        Method::POST,
                        &format!("/nodes/{}/lxc", self.config.node),
                        &params,
                    )
                    .await
                }
                Template::Qemu(source) => {
                    let params = [
                        ("newid", vmid.to_string()),
                        ("name", hostname.replace('_', "-")),
                        ("full", "1".to_owned()),
                    ];
                    let cloned = self
                        .act(
                            Method::POST,
                            &format!("/nodes/{}/qemu/{source}/clone", self.config.node),
                            &params,
                        )
                        .await;
                    match cloned {
                        Ok(()) => {
                            let guest = Guest {
                                vmid,
                                kind: Kind::Qemu,
                            };
                            let mut config = vec![("tags", tag(&spec.name))];
                            if let Some(cores) = spec.resources.cores {
                                config.push(("cores", cores.to_string()));
                            }
                            if let Some(memory) = spec.resources.memory_mb {
                                config.push(("memory", memory.to_string()));
                            }
                            self.act(
                                Method::PUT,
                                &format!("{}/config", self.prefix(&guest)),
                                &config,
                            )
                            .await
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match result {
                Ok(()) => {
                    notes.push(format!("created as vmid {vmid}"));
                    if spec.root_password.is_some() && matches!(template, Template::Lxc(_)) {
                        notes.push(super::ROOT_PASSWORD_SET.to_owned());
                    }
                    return Ok(notes);
                }
                Err(DriverError::Failed(message))
                    if message.contains("already exists") && attempt < 2 =>
                {
                    // Another client took this vmid between nextid and create: try the next.
                    notes.push(format!("vmid {vmid} was taken meanwhile"));
                }
                Err(e) => return Err(e),
            }
        }
        Err(DriverError::Failed("could not find a free vmid".into()))
    }

    async fn state(&self, name: &str) -> DriverResult<PowerState> {
        let guest = self.guest(name).await?;
        self.power(&guest).await
    }

    async fn start(&self, name: &str) -> DriverResult<()> {
        let guest = self.guest(name).await?;
        if self.power(&guest).await? == PowerState::Running {
            return Ok(());
        }
        self.act(
            Method::POST,
            &format!("{}/status/start", self.prefix(&guest)),
            &[],
        )
        .await
    }

    async fn stop(&self, name: &str, grace: Duration) -> DriverResult<()> {
        let guest = self.guest(name).await?;
        if self.power(&guest).await? == PowerState::Stopped {
            return Ok(());
        }
        let params = [
            ("timeout", grace.as_secs().max(1).to_string()),
            ("forceStop", "1".to_owned()),
        ];
        self.act(
            Method::POST,
            &format!("{}/status/shutdown", self.prefix(&guest)),
            &params,
        )
        .await
    }

    async fn reboot(&self, name: &str, grace: Duration) -> DriverResult<Notes> {
        let guest = self.guest(name).await?;
        if self.power(&guest).await? != PowerState::Running {
            return Err(DriverError::Conflict("the server is not running".into()));
        }
        let params = [("timeout", grace.as_secs().max(1).to_string())];
        self.act(
            Method::POST,
            &format!("{}/status/reboot", self.prefix(&guest)),
            &params,
        )
        .await?;
        Ok(Notes::new())
    }

    async fn delete(&self, name: &str) -> DriverResult<()> {
        let Some(guest) = self.find(name).await? else {
            return Ok(());
        };
        if self.power(&guest).await? != PowerState::Stopped {
            self.act(
                Method::POST,
                &format!("{}/status/stop", self.prefix(&guest)),
                &[],
            )
            .await?;
        }
        self.act(
            Method::DELETE,
            &self.prefix(&guest),
            &[("purge", "1".to_owned())],
        )
        .await
    }

    async fn set_password(&self, name: &str, user: &str, password: &str) -> DriverResult<()> {
        let guest = self.guest(name).await?;
        match guest.kind {
            Kind::Qemu => {
                let params = [("username", user.to_owned()), ("password", password.to_owned())];
                self.call(Method::POST, &format!("{}/agent/set-user-password", self.prefix(&guest)), &params)
                    .await
                    .map(drop)
            }
            Kind::Lxc => Err(DriverError::Conflict(
                "Proxmox sets a container's password only when it is created; reinstall to change it".into(),
            )),
        }
    }

    async fn resize(&self, name: &str, resources: Resources) -> DriverResult<Notes> {
        let guest = self.guest(name).await?;
        let mut notes = Notes::new();
        let mut config = Vec::new();
        if let Some(cores) = resources.cores {
            config.push(("cores", cores.to_string()));
        }
        if let Some(memory) = resources.memory_mb {
            config.push(("memory", memory.to_string()));
        }
        if !config.is_empty() {
            self.act(
                Method::PUT,
                &format!("{}/config", self.prefix(&guest)),
                &config,
            )
            .await?;
            if guest.kind == Kind::Qemu && self.power(&guest).await? == PowerState::Running {
                notes.push("a running VM takes the new CPU and memory at its next start (pending in Proxmox)".to_owned());
            }
        }
        if let Some(disk) = resources.disk_gb {
            let volume = if guest.kind == Kind::Lxc {
                "rootfs"
            } else {
                "scsi0"
            };
            let params = [("disk", volume.to_owned()), ("size", format!("{disk}G"))];
            self.act(
                Method::PUT,
                &format!("{}/resize", self.prefix(&guest)),
                &params,
            )
            .await?;
        }
        Ok(notes)
    }

    async fn snapshot_create(
        &self,
        name: &str,
        snapshot: &str,
        description: &str,
    ) -> DriverResult<Notes> {
        let guest = self.guest(name).await?;
        if self
            .snapshots_of(&guest)
            .await?
            .iter()
            .any(|s| s.name == snapshot)
        {
            return Ok(vec![
                "the snapshot already existed; nothing to do".to_owned(),
            ]);
        }
        let params = [
            ("snapname", snapshot.to_owned()),
            ("description", description.to_owned()),
        ];
        self.act(
            Method::POST,
            &format!("{}/snapshot", self.prefix(&guest)),
            &params,
        )
        .await?;
        Ok(Notes::new())
    }

    async fn snapshot_list(&self, name: &str) -> DriverResult<Vec<SnapshotInfo>> {
        let guest = self.guest(name).await?;
        self.snapshots_of(&guest).await
    }

    async fn snapshot_rollback(&self, name: &str, snapshot: &str) -> DriverResult<Notes> {
        let guest = self.guest(name).await?;
        if !self
            .snapshots_of(&guest)
            .await?
            .iter()
            .any(|s| s.name == snapshot)
        {
            return Err(DriverError::NotFound(format!("snapshot {snapshot}")));
        }
        let path = format!("{}/snapshot/{snapshot}/rollback", self.prefix(&guest));
        self.act(Method::POST, &path, &[]).await?;
        Ok(Notes::new())
    }

    async fn snapshot_delete(&self, name: &str, snapshot: &str) -> DriverResult<()> {
        let guest = self.guest(name).await?;
        if !self
            .snapshots_of(&guest)
            .await?
            .iter()
            .any(|s| s.name == snapshot)
        {
            return Ok(());
        }
        self.act(
            Method::DELETE,
            &format!("{}/snapshot/{snapshot}", self.prefix(&guest)),
            &[],
        )
        .await
    }

    async fn backup(&self, name: &str, _sink: ChunkSink) -> DriverResult<BackupFacts> {
        let guest = self.guest(name).await?;
        let was_running = self.power(&guest).await? == PowerState::Running;
        let storage = self.config.backup_storage.clone();
        let before = self.backups_of(&guest, &storage).await?;
        // Snapshot mode: a running guest keeps running, the archive is consistent.
        let params = [
            ("vmid", guest.vmid.to_string()),
            ("storage", storage.clone()),
            ("mode", "snapshot".to_owned()),
            ("compress", "zstd".to_owned()),
        ];
        self.act(
            Method::POST,
            &format!("/nodes/{}/vzdump", self.config.node),
            &params,
        )
        .await?;
        let volume = self
            .backups_of(&guest, &storage)
            .await?
            .into_iter()
            .filter(|(volid, _)| !before.iter().any(|(old, _)| old == volid))
            .max_by_key(|(_, ctime)| *ctime)
            .map(|(volid, _)| volid)
            .ok_or_else(|| {
                DriverError::Failed(format!(
                    "vzdump finished but no new backup of {} is on storage {storage}",
                    guest.vmid
                ))
            })?;
        Ok(BackupFacts {
            format: "vzdump".to_owned(),
            volume: Some(volume),
            id_map: Vec::new(),
            was_running,
            config: String::new(),
        })
    }

    async fn restore(
        &self,
        name: &str,
        volume: Option<&str>,
        _source: Chunks,
    ) -> DriverResult<Notes> {
        let volume = volume.ok_or_else(|| {
            DriverError::Conflict("a Proxmox node restores from a volume it keeps".into())
        })?;
        if volume.contains([',', '=', ' ']) || !volume.contains(':') {
            return Err(DriverError::Conflict(format!(
                "not a backup volume: {volume:?}"
            )));
        }
        let guest = self.guest(name).await?;
        if self.power(&guest).await? != PowerState::Stopped {
            return Err(DriverError::Conflict(
                "the guest must be stopped for a restore".into(),
            ));
        }
        let params = match guest.kind {
            // The tag is given again: it is how the guest is found after the restore.
            Kind::Lxc => vec![
                ("vmid", guest.vmid.to_string()),
                ("ostemplate", volume.to_owned()),
                ("restore", "1".to_owned()),
                ("force", "1".to_owned()),
                ("storage", self.config.storage.clone()),
                ("tags", tag(name)),
                ("unprivileged", "1".to_owned()),
            ],
            Kind::Qemu => vec![
                ("vmid", guest.vmid.to_string()),
                ("archive", volume.to_owned()),
                ("force", "1".to_owned()),
            ],
        };
        let path = format!("/nodes/{}/{}", self.config.node, guest.kind.path());
        self.act(Method::POST, &path, &params).await?;
        Ok(vec![format!("restored from {volume}")])
    }

    async fn delete_backup(&self, volume: &str) -> DriverResult<()> {
        let Some((storage, _)) = volume.split_once(':') else {
            return Err(DriverError::Conflict(format!(
                "not a backup volume: {volume:?}"
            )));
        };
        let path = format!(
            "/nodes/{}/storage/{storage}/content/{}",
            self.config.node,
            client::urlencoding(volume)
        );
        match self.act(Method::DELETE, &path, &[]).await {
            Err(DriverError::NotFound(_)) => Ok(()),
            other => other,
        }
    }

    async fn console(&self, name: &str) -> DriverResult<Console> {
        let guest = self.guest(name).await?;
        if self.power(&guest).await? != PowerState::Running {
            return Err(DriverError::Conflict(
                "the server must be running to open its console".into(),
            ));
        }
        let proxy = self
            .call(
                Method::POST,
                &format!("{}/termproxy", self.prefix(&guest)),
                &[],
            )
            .await?;
        let port = number(&proxy["port"])
            .ok_or_else(|| DriverError::Failed("termproxy answered no port".into()))?;
        let ticket = proxy["ticket"].as_str().unwrap_or("").to_owned();
        let user = proxy["user"].as_str().unwrap_or("").to_owned();
        let url = format!(
            "{}{}/vncwebsocket?port={port}&vncticket={}",
            self.base.replacen("https://", "wss://", 1),
            self.prefix(&guest),
            urlencoding(&ticket)
        );
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                url.as_str(),
            )
            .map_err(|e| DriverError::Failed(format!("console URL: {e}")))?;
        let headers = request.headers_mut();
        let header = |v: String| {
            v.parse()
                .map_err(|_| DriverError::Failed("bad header".into()))
        };
        match &self.config.auth {
            Auth::Token(token) => {
                headers.insert("Authorization", header(format!("PVEAPIToken={token}"))?);
            }
            Auth::Password { .. } => {
                let cookie = self
                    .ticket
                    .lock()
                    .await
                    .as_ref()
                    .map(|t| t.cookie.clone())
                    .unwrap_or_default();
                headers.insert("Cookie", header(format!("PVEAuthCookie={cookie}"))?);
            }
        }
        headers.insert("Sec-WebSocket-Protocol", header("binary".to_owned())?);
        let connector = tokio_tungstenite::Connector::Rustls(self.tls.clone());
        let (mut socket, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector))
                .await
                .map_err(|e| unreachable(anyhow::anyhow!("console websocket: {e}")))?;
        use futures_util::{SinkExt as _, StreamExt as _};
        use tokio_tungstenite::tungstenite::Message;
        socket
            .send(Message::text(format!("{user}:{ticket}\n")))
            .await
            .map_err(|e| DriverError::Failed(format!("console handshake: {e}")))?;
        match socket.next().await {
            Some(Ok(Message::Binary(ok))) if ok.as_ref() == b"OK" => {}
            other => return Err(DriverError::Failed(format!("console refused: {other:?}"))),
        }
        let (mut sink, mut stream) = socket.split();
        let (input, mut typed) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
        let (printed, output) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let bytes = match message {
                    Message::Binary(b) => b.to_vec(),
                    Message::Text(t) => t.as_bytes().to_vec(),
                    Message::Close(_) => break,
                    _ => continue,
                };
                if printed.send(bytes).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            // termproxy's framing: `0:LENGTH:DATA` for input.
            while let Some(bytes) = typed.recv().await {
                let text = String::from_utf8_lossy(&bytes);
                let frame = format!("0:{}:{text}", text.len());
                if sink.send(Message::text(frame)).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        Ok(Console { input, output })
    }

    async fn usage(&self) -> DriverResult<Vec<Usage>> {
        Ok(self
            .resources()
            .await?
            .iter()
            .filter_map(|entry| {
                let name = self.ours(entry)?.to_owned();
                let state = match entry["status"].as_str() {
                    Some("running") => PowerState::Running,
                    Some("stopped") => PowerState::Stopped,
                    _ => PowerState::Unknown,
                };
                Some(Usage {
                    name,
                    state,
                    cpu_time_ns: 0,
                    cpu_fraction: Some(float(&entry["cpu"])),
                    memory_bytes: number(&entry["mem"]).unwrap_or(0),
                    memory_limit_bytes: number(&entry["maxmem"]),
                    disk_bytes: number(&entry["disk"]).unwrap_or(0),
                    net_rx_bytes: number(&entry["netin"]).unwrap_or(0),
                    net_tx_bytes: number(&entry["netout"]).unwrap_or(0),
                    disk_read_bytes: number(&entry["diskread"]).unwrap_or(0),
                    disk_write_bytes: number(&entry["diskwrite"]).unwrap_or(0),
                    uptime_secs: number(&entry["uptime"]).unwrap_or(0),
                })
            })
            .collect())
    }

    async fn set_network_limit(&self, name: &str, mbit: u32) -> DriverResult<Notes> {
        // PVE limits a network device with its `rate` option, in MB/s.
        let guest = self.guest(name).await?;
        let path = format!("{}/config", self.prefix(&guest));
        let config = self.call(Method::GET, &path, &[]).await?;
        let Some(net0) = config["net0"].as_str() else {
            return Ok(vec!["the guest has no network device to limit".to_owned()]);
        };
        let value = with_rate(net0, mbit);
        if value != net0 {
            self.act(Method::PUT, &path, &[("net0", value)]).await?;
        }
        Ok(Notes::new())
    }
}

/// A PVE network device string with its `rate` (MB/s) set for `mbit`, or removed for 0.
fn with_rate(net: &str, mbit: u32) -> String {
    let mut parts: Vec<String> = net
        .split(',')
        .filter(|p| !p.starts_with("rate=") && !p.is_empty())
        .map(str::to_owned)
        .collect();
    if mbit > 0 {
        parts.push(format!("rate={}", f64::from(mbit) / 8.0));
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rate_replaces_the_old_one_or_goes() {
        let net = "name=eth0,bridge=vmbr0,rate=5,ip=dhcp";
        assert_eq!(
            super::with_rate(net, 80),
            "name=eth0,bridge=vmbr0,ip=dhcp,rate=10"
        );
        assert_eq!(super::with_rate(net, 0), "name=eth0,bridge=vmbr0,ip=dhcp");
    }

    use super::*;

    #[test]
    fn numbers_arrive_as_strings_or_numbers() {
        assert_eq!(number(&serde_json::json!("100")), Some(100));
        assert_eq!(number(&serde_json::json!(101)), Some(101));
        assert_eq!(number(&serde_json::json!("x")), None);
    }

    #[test]
    fn errors_read_message_and_field_errors() {
        let body = serde_json::json!({"data": null, "message": "Parameter verification failed.\n", "errors": {"vmid": "type check failed"}});
        let error = error_from(StatusCode::BAD_REQUEST, &body);
        assert!(
            matches!(&error, DriverError::Failed(m) if m.contains("vmid: type check failed")),
            "{error:?}"
        );
        let missing = serde_json::json!({"message": "Configuration file 'nodes/pve1/lxc/999.conf' does not exist\n"});
        assert!(matches!(
            error_from(StatusCode::INTERNAL_SERVER_ERROR, &missing),
            DriverError::NotFound(_)
        ));
        assert!(matches!(
            error_from(StatusCode::from_u16(595).expect("code"), &Value::Null),
            DriverError::Unreachable(_)
        ));
        assert!(
            matches!(error_from(StatusCode::UNAUTHORIZED, &Value::Null), DriverError::Failed(m) if m.contains("Unauthorized"))
        );
    }

    #[test]
    fn templates_and_tags() {
        assert!(
            matches!(template("lxc:local:vztmpl/debian-12.tar.zst"), Ok(Template::Lxc(v)) if v == "local:vztmpl/debian-12.tar.zst")
        );
        assert!(matches!(template("qemu:9000"), Ok(Template::Qemu(9000))));
        for bad in ["busybox", "lxc:nocolon", "qemu:x", "lxc:local:a,b=c"] {
            assert!(template(bad).is_err(), "{bad}");
        }
        assert_eq!(tag("VPS-42"), "vps-vps-42");
        assert_eq!(
            urlencoding("UPID:pve1:0001:root@pam!t:"),
            "UPID%3Apve1%3A0001%3Aroot%40pam%21t%3A"
        );
    }
}
