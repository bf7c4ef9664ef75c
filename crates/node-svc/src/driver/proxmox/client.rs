//! The driver's transport: ticket login, calls with PVE's envelopes and errors, UPID task
//! polling, and finding our guests by their tag.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::Mutex;

use super::tls::tls_config;
use super::{
    Auth, DriverError, DriverResult, Guest, Kind, PowerState, ProxmoxConfig, ProxmoxDriver,
    SnapshotInfo, TICKET_RENEW_AFTER, Ticket, error_from, number, unreachable,
};
use crate::driver::valid_name;

impl ProxmoxDriver {
    pub fn new(config: ProxmoxConfig) -> anyhow::Result<Self> {
        let tls = std::sync::Arc::new(tls_config(config.ca_file.as_deref(), config.insecure)?);
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .danger_accept_invalid_certs(config.insecure);
        if let Some(file) = &config.ca_file {
            let pem = std::fs::read(file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        let base = format!("{}/api2/json", config.base_url.trim_end_matches('/'));
        Ok(Self {
            http: builder.build()?,
            tls,
            base,
            config,
            ticket: Mutex::new(None),
        })
    }

    pub(super) async fn login(&self) -> DriverResult<Ticket> {
        let Auth::Password { username, password } = &self.config.auth else {
            return Err(DriverError::Failed("no password configured".into()));
        };
        let response = self
            .http
            .post(format!("{}/access/ticket", self.base))
            .form(&[
                ("username", username.as_str()),
                ("password", password.as_str()),
            ])
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(error_from(status, &body));
        }
        let data = &body["data"];
        match (
            data["ticket"].as_str(),
            data["CSRFPreventionToken"].as_str(),
        ) {
            (Some(ticket), Some(csrf)) => Ok(Ticket {
                cookie: ticket.to_owned(),
                csrf: csrf.to_owned(),
                at: Instant::now(),
            }),
            _ => Err(DriverError::Failed(
                "Proxmox login answered without a ticket".into(),
            )),
        }
    }

    /// One API call; `data` of the envelope on success.
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
    ) -> DriverResult<Value> {
        let mut renewed = false;
        loop {
            let url = format!("{}{path}", self.base);
            let mut request = self.http.request(method.clone(), &url);
            request = if method == Method::GET || method == Method::DELETE {
                request.query(params)
            } else {
                request.form(params)
            };
            match &self.config.auth {
                Auth::Token(token) => {
                    request = request.header("Authorization", format!("PVEAPIToken={token}"))
                }
                Auth::Password { .. } => {
                    let mut ticket = self.ticket.lock().await;
                    if ticket
                        .as_ref()
                        .is_none_or(|t| t.at.elapsed() > TICKET_RENEW_AFTER)
                    {
                        *ticket = Some(self.login().await?);
                    }
                    let t = ticket
                        .as_ref()
                        .ok_or_else(|| DriverError::Failed("no ticket".into()))?;
                    request = request.header("Cookie", format!("PVEAuthCookie={}", t.cookie));
                    if method != Method::GET {
                        request = request.header("CSRFPreventionToken", t.csrf.clone());
                    }
                }
            }
            let response = request.send().await.map_err(unreachable)?;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(body.get("data").cloned().unwrap_or(Value::Null));
            }
            if status == StatusCode::UNAUTHORIZED
                && matches!(self.config.auth, Auth::Password { .. })
                && !renewed
            {
                // The ticket expired or was revoked: log in again, once.
                *self.ticket.lock().await = None;
                renewed = true;
                continue;
            }
            return Err(error_from(status, &body));
        }
    }

    /// Polls a UPID task until it stops.
    pub(super) async fn wait(&self, upid: &Value) -> DriverResult<()> {
        let Some(upid) = upid.as_str().filter(|u| u.starts_with("UPID:")) else {
            return Ok(()); // Synchronous call: nothing to wait for.
        };
        let node = upid
            .split(':')
            .nth(1)
            .unwrap_or(&self.config.node)
            .to_owned();
        let path = format!("/nodes/{node}/tasks/{}/status", urlencoding(upid));
        let mut pause = Duration::from_millis(50);
        loop {
            let status = self.call(Method::GET, &path, &[]).await?;
            if status["status"].as_str() == Some("stopped") {
                let exit = status["exitstatus"].as_str().unwrap_or("");
                return if exit == "OK" || exit.starts_with("WARNINGS") {
                    Ok(())
                } else {
                    Err(DriverError::Failed(format!("Proxmox task failed: {exit}")))
                };
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    pub(super) async fn resources(&self) -> DriverResult<Vec<Value>> {
        let data = self
            .call(Method::GET, "/cluster/resources", &[("type", "vm".into())])
            .await?;
        Ok(data.as_array().cloned().unwrap_or_default())
    }

    pub(super) fn ours<'a>(&self, entry: &'a Value) -> Option<&'a str> {
        if entry["node"].as_str() != Some(self.config.node.as_str()) {
            return None;
        }
        entry["tags"]
            .as_str()?
            .split([';', ',', ' '])
            .find(|t| t.starts_with("vps-"))
            .map(|t| &t[4..])
    }

    pub(super) async fn find(&self, name: &str) -> DriverResult<Option<Guest>> {
        if !valid_name(name) {
            return Err(DriverError::Conflict(format!(
                "invalid guest name {name:?}"
            )));
        }
        let wanted = name.to_ascii_lowercase();
        for entry in self.resources().await? {
            if self.ours(&entry) == Some(wanted.as_str()) {
                let kind = if entry["type"].as_str() == Some("qemu") {
                    Kind::Qemu
                } else {
                    Kind::Lxc
                };
                let vmid = number(&entry["vmid"])
                    .ok_or_else(|| DriverError::Failed("resource without vmid".into()))?;
                return Ok(Some(Guest { vmid, kind }));
            }
        }
        Ok(None)
    }

    pub(super) async fn guest(&self, name: &str) -> DriverResult<Guest> {
        self.find(name)
            .await?
            .ok_or_else(|| DriverError::NotFound(name.to_owned()))
    }

    pub(super) fn prefix(&self, guest: &Guest) -> String {
        format!(
            "/nodes/{}/{}/{}",
            self.config.node,
            guest.kind.path(),
            guest.vmid
        )
    }

    pub(super) async fn act(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
    ) -> DriverResult<()> {
        let upid = self.call(method, path, params).await?;
        self.wait(&upid).await
    }

    pub(super) async fn power(&self, guest: &Guest) -> DriverResult<PowerState> {
        let current = self
            .call(
                Method::GET,
                &format!("{}/status/current", self.prefix(guest)),
                &[],
            )
            .await?;
        Ok(match current["status"].as_str() {
            Some("running") => PowerState::Running,
            Some("stopped") => PowerState::Stopped,
            _ => PowerState::Unknown,
        })
    }

    /// A guest's snapshots, without PVE's `current` pseudo-entry.
    pub(super) async fn snapshots_of(&self, guest: &Guest) -> DriverResult<Vec<SnapshotInfo>> {
        let data = self
            .call(
                Method::GET,
                &format!("{}/snapshot", self.prefix(guest)),
                &[],
            )
            .await?;
        Ok(data
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s["name"].as_str().is_some_and(|n| n != "current"))
            .map(|s| SnapshotInfo {
                name: s["name"].as_str().unwrap_or("").to_owned(),
                description: s["description"].as_str().unwrap_or("").trim().to_owned(),
                created_at: number(&s["snaptime"])
                    .and_then(|t| i64::try_from(t).ok())
                    .unwrap_or(0),
                size_bytes: None,
            })
            .collect())
    }

    /// The backups of a guest on `storage`: their volume ids and creation times.
    pub(super) async fn backups_of(
        &self,
        guest: &Guest,
        storage: &str,
    ) -> DriverResult<Vec<(String, u64)>> {
        let data = self
            .call(
                Method::GET,
                &format!("/nodes/{}/storage/{storage}/content", self.config.node),
                &[
                    ("content", "backup".to_owned()),
                    ("vmid", guest.vmid.to_string()),
                ],
            )
            .await?;
        Ok(data
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| {
                let volid = v["volid"].as_str()?.to_owned();
                Some((volid, number(&v["ctime"]).unwrap_or(0)))
            })
            .collect())
    }

    /// RRD samples (`timeframe`: hour, day, week, month, year) for graphs.
    pub async fn rrddata(&self, name: &str, timeframe: &str) -> DriverResult<Vec<Value>> {
        let guest = self.guest(name).await?;
        let data = self
            .call(
                Method::GET,
                &format!("{}/rrddata", self.prefix(&guest)),
                &[("timeframe", timeframe.to_owned())],
            )
            .await?;
        Ok(data.as_array().cloned().unwrap_or_default())
    }

    /// Opens a console proxy: termproxy for containers, vncproxy (websocket) for VMs.
    /// Returns (port, ticket, user) for the relay; the ticket never goes to a browser.
    pub async fn console_proxy(&self, name: &str) -> DriverResult<(u64, String, String)> {
        let guest = self.guest(name).await?;
        let (path, params) = match guest.kind {
            Kind::Lxc => (format!("{}/termproxy", self.prefix(&guest)), vec![]),
            Kind::Qemu => (
                format!("{}/vncproxy", self.prefix(&guest)),
                vec![("websocket", "1".to_owned())],
            ),
        };
        let data = self.call(Method::POST, &path, &params).await?;
        Ok((
            number(&data["port"]).unwrap_or(0),
            data["ticket"].as_str().unwrap_or("").to_owned(),
            data["user"].as_str().unwrap_or("").to_owned(),
        ))
    }
}

/// Percent-encodes a path segment (UPIDs contain ':' and '@' and '!').
pub(super) fn urlencoding(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
