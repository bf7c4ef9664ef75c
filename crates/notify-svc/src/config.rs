//! notify-svc configuration.

use std::net::SocketAddr;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Where Prometheus metrics are served (`GET /metrics`); none when absent.
    pub metrics_listen: Option<SocketAddr>,
    pub database_url: String,
    pub database_max_connections: u32,
    /// Where identity-svc and server-svc are (`VPS_PEERS__*`).
    pub peers: platform::peers::Peers,
    /// NATS with JetStream: the events come from here, and ticket events go out here.
    /// Without it nothing is mailed (the service still keeps tickets).
    pub nats_url: Option<SecretString>,
    /// Caller-token keys (`VPS_CALLER__*`; see docs/grpc.md).
    pub caller: platform::auth::KeyConfig,
    pub smtp: SmtpConfig,
    pub mail: MailConfig,
    pub webhooks: WebhookConfig,
    /// 32 bytes, base64: seals webhooks' signing secrets at rest. Without it no webhook can
    /// be registered.
    pub secrets_key: Option<SecretString>,
    /// A previous `secrets_key`: what it sealed is sealed again under the current key at
    /// start, after which it can be dropped.
    pub secrets_key_previous: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebhookConfig {
    /// Lets endpoints reach loopback, private and link-local addresses, and plain http.
    /// For a deployment whose receivers live on its own network (and for tests); off, any
    /// such destination is refused at registration and at every attempt.
    pub allow_internal_destinations: bool,
    /// The waits between attempts, in seconds; when they are spent the delivery has failed.
    /// The default spans about three days.
    pub retry_schedule_secs: Vec<u64>,
    /// How long a receiver may take to answer.
    pub timeout_secs: u64,
    /// Endpoints one user may register.
    pub max_per_user: u32,
    /// How often the deliverer looks for due deliveries.
    pub deliver_interval_ms: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_internal_destinations: false,
            retry_schedule_secs: crate::domain::webhooks::DEFAULT_SCHEDULE.to_vec(),
            timeout_secs: 10,
            max_per_user: 20,
            deliver_interval_ms: 1000,
        }
    }
}

/// The SMTP server mail goes through. Seed 000's `SMTP_HOST`, `SMTP_PORT`, `SMTP_USER` and
/// `SMTP_PASS` fill in what `VPS_SMTP__*` leaves unset.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SmtpConfig {
    /// Empty: no mail is sent; mails wait, pending, until a server is configured.
    pub host: String,
    /// 0: by `tls` (587 for STARTTLS, 465 for implicit TLS, 25 for plain).
    pub port: u16,
    pub user: Option<String>,
    pub pass: Option<SecretString>,
    pub tls: Tls,
    /// How long one SMTP conversation may take.
    pub timeout_secs: u64,
    /// Lets `tls = none` reach a server that is not on loopback: for a development mail
    /// catcher on a private container network only.
    pub allow_plaintext_network: bool,
    /// A PEM file of root certificates to trust besides the web's (a relay whose
    /// certificate a private CA issued).
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Upgrade with STARTTLS, which the server must offer (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS: only to a server on loopback (a local relay or a test catcher).
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MailConfig {
    /// The sender: `"VPS Panel <noreply@example.com>"`.
    pub from: String,
    /// Where the panel is, for links in mails.
    pub panel_url: String,
    /// The language mails are written in (a directory of `templates/`).
    pub language: String,
    /// Attempts before a mail is kept as failed (for an administrator to re-send).
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles with each further one, up to
    /// `retry_max_secs`.
    pub retry_base_ms: u64,
    pub retry_max_secs: u64,
    /// Alert mails a user receives in 24 hours at most; those beyond are not sent.
    pub alert_daily_cap: u32,
    /// How often the sender looks for due mail.
    pub send_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50056)),
            metrics_listen: None,
            database_url: "sqlite://data/notify.db?mode=rwc".to_owned(),
            database_max_connections: 10,
            peers: platform::peers::Peers::default(),
            nats_url: None,
            caller: platform::auth::KeyConfig::default(),
            smtp: SmtpConfig::default(),
            mail: MailConfig::default(),
            webhooks: WebhookConfig::default(),
            secrets_key: None,
            secrets_key_previous: None,
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 0,
            user: None,
            pass: None,
            tls: Tls::Starttls,
            timeout_secs: 30,
            allow_plaintext_network: false,
            ca_file: None,
        }
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            from: "VPS <noreply@localhost>".to_owned(),
            panel_url: "http://localhost:5000".to_owned(),
            language: "en".to_owned(),
            max_attempts: 8,
            retry_base_ms: 30_000,
            retry_max_secs: 3600,
            alert_daily_cap: 10,
            send_interval_ms: 1000,
        }
    }
}

impl SmtpConfig {
    /// Fills what is unset from seed 000's variables (`SMTP_HOST` ...), read by `var`.
    pub fn with_seed_variables(mut self, var: impl Fn(&str) -> Option<String>) -> Self {
        if self.host.is_empty()
            && let Some(host) = var("SMTP_HOST")
        {
            self.host = host;
        }
        if self.port == 0
            && let Some(port) = var("SMTP_PORT").and_then(|p| p.trim().parse().ok())
        {
            self.port = port;
            if port == 465 {
                self.tls = Tls::Implicit;
            }
        }
        if self.user.is_none() {
            self.user = var("SMTP_USER").filter(|u| !u.is_empty());
        }
        if self.pass.is_none() {
            self.pass = var("SMTP_PASS").map(SecretString::from);
        }
        self
    }

    /// The port, by `tls` when unset.
    pub fn port(&self) -> u16 {
        match (self.port, self.tls) {
            (0, Tls::Starttls) => 587,
            (0, Tls::Implicit) => 465,
            (0, Tls::None) => 25,
            (port, _) => port,
        }
    }
}

impl Config {
    /// Refuses settings that cannot work, with the setting's name.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.mail.max_attempts >= 1,
            "mail.max_attempts must be at least 1"
        );
        anyhow::ensure!(
            self.mail.from.parse::<lettre::message::Mailbox>().is_ok(),
            "mail.from is not an address: {}",
            self.mail.from
        );
        if self.smtp.tls == Tls::None
            && !self.smtp.host.is_empty()
            && !self.smtp.allow_plaintext_network
        {
            let loopback = self.smtp.host == "localhost"
                || self
                    .smtp
                    .host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            anyhow::ensure!(
                loopback,
                "smtp.tls = none sends passwords and mail in the clear; it is allowed only to a server on loopback (or with smtp.allow_plaintext_network, for a development catcher), not {}",
                self.smtp.host
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_variables_fill_what_is_unset() {
        let seed = |name: &str| match name {
            "SMTP_HOST" => Some("smtp.gmail.com".to_owned()),
            "SMTP_PORT" => Some("465".to_owned()),
            "SMTP_USER" => Some("me@gmail.com".to_owned()),
            "SMTP_PASS" => Some("app-password".to_owned()),
            _ => None,
        };
        let smtp = SmtpConfig::default().with_seed_variables(seed);
        assert_eq!(smtp.host, "smtp.gmail.com");
        assert_eq!(smtp.port(), 465);
        assert_eq!(smtp.tls, Tls::Implicit);
        assert_eq!(smtp.user.as_deref(), Some("me@gmail.com"));

        let own = SmtpConfig {
            host: "mail.example.com".to_owned(),
            port: 2525,
            ..SmtpConfig::default()
        }
        .with_seed_variables(seed);
        assert_eq!(own.host, "mail.example.com");
        assert_eq!(own.port(), 2525);
        assert_eq!(own.tls, Tls::Starttls);
    }

    #[test]
    fn plain_smtp_only_to_loopback() {
        let mut config = Config::default();
        config.smtp.tls = Tls::None;
        config.smtp.host = "127.0.0.1".to_owned();
        config.check().expect("loopback is fine");
        config.smtp.host = "smtp.example.com".to_owned();
        assert!(config.check().is_err());
    }
}
