//! notify-svc's application layer: events in (the durable consumer), mails out (the
//! sender), preferences, and tickets.

pub mod consume;
pub mod send;
pub mod templates;
pub mod tickets;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use lettre::AsyncSmtpTransport;
use lettre::Tokio1Executor;
use lettre::message::Mailbox;
use platform::Shutdown;
use platform::auth::{Caller, CallerAuth, Scopes, Service, Sign};
use platform::grpc::Channel;
use platform::lease::LeaseHolder;
use proto::notify::v1 as pb;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret as _;
use tonic::service::interceptor::InterceptedService;

use crate::config::{Config, Tls};
use crate::domain::Kind;
use crate::error::{NotifyError, Result};
use crate::store;

pub type IdentityClient =
    proto::identity::v1::identity_client::IdentityClient<InterceptedService<Channel, Sign>>;
pub type ServersClient =
    proto::server::v1::servers_client::ServersClient<InterceptedService<Channel, Sign>>;

pub struct App {
    db: DatabaseConnection,
    config: Arc<Config>,
    identity: IdentityClient,
    servers: ServersClient,
    templates: templates::Templates,
    /// None until an SMTP server is configured: mails wait, pending.
    mailer: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    /// Seals webhooks' signing secrets; none without `secrets_key`.
    sealer: Option<platform::crypto::Sealer>,
    /// Webhook deliveries go out through this.
    http: reqwest::Client,
    leases: LeaseHolder,
    /// Wakes the sender when this replica made a mail, and the deliverer when it planned a
    /// delivery, so neither waits for its next round.
    mail_made: tokio::sync::Notify,
    delivery_planned: tokio::sync::Notify,
    shutdown: Shutdown,
}

impl App {
    /// Seals webhook secrets sealed under the previous `secrets_key` again under the
    /// current one (when a previous key is configured).
    pub async fn reseal(&self) -> anyhow::Result<()> {
        if let Some(sealer) = self.sealer.as_ref().filter(|s| s.has_previous()) {
            let resealed =
                platform::crypto::reseal_column(&self.db, "webhooks", "id", "secret", sealer)
                    .await?;
            tracing::info!(
                webhooks = resealed,
                "webhook secrets sealed under the previous key are sealed under the current one"
            );
        }
        Ok(())
    }

    pub fn new(
        db: DatabaseConnection,
        auth: &CallerAuth,
        config: Arc<Config>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Arc<Self>> {
        let timeout = Duration::from_secs(30);
        let identity = proto::identity::v1::identity_client::IdentityClient::with_interceptor(
            config.peers.channel(Service::Identity, timeout)?,
            auth.sign_for(Service::Identity),
        );
        let servers = proto::server::v1::servers_client::ServersClient::with_interceptor(
            config.peers.channel(Service::Server, timeout)?,
            auth.sign_for(Service::Server),
        );
        Ok(Arc::new(Self {
            templates: templates::Templates::new(&config.mail.language)?,
            mailer: mailer(&config)?,
            from: config.mail.from.parse()?,
            sealer: platform::crypto::Sealer::configured(
                config.secrets_key.as_ref(),
                config.secrets_key_previous.as_ref(),
            )?,
            http: webhooks::http_client(
                config.webhooks.allow_internal_destinations,
                Duration::from_secs(config.webhooks.timeout_secs.max(1)),
            )?,
            leases: LeaseHolder::new(db.clone(), Duration::from_secs(30)),
            mail_made: tokio::sync::Notify::new(),
            delivery_planned: tokio::sync::Notify::new(),
            db,
            identity,
            servers,
            config,
            shutdown,
        }))
    }

    /// The kinds a user may turn off, and whether each is on.
    pub async fn preferences(&self, caller: Caller) -> Result<Vec<pb::Preference>> {
        let off = store::disabled_kinds(&self.db, caller.user_id).await?;
        Ok(Kind::optional_kinds()
            .map(|kind| pb::Preference {
                kind: kind.as_str().to_owned(),
                enabled: !off.iter().any(|k| k == kind.as_str()),
            })
            .collect())
    }

    pub async fn set_preferences(
        &self,
        caller: Caller,
        wanted: &[pb::Preference],
    ) -> Result<Vec<pb::Preference>> {
        for preference in wanted {
            let kind: Kind = preference.kind.parse().map_err(|_| {
                NotifyError::invalid(
                    "preferences",
                    format!("there is no kind of mail called {:?}", preference.kind),
                )
            })?;
            if !kind.optional() {
                return Err(NotifyError::invalid(
                    "preferences",
                    format!("{} mails are always sent", kind.as_str()),
                ));
            }
        }
        for preference in wanted {
            store::set_preference(
                &self.db,
                caller.user_id,
                &preference.kind,
                preference.enabled,
            )
            .await?;
        }
        self.preferences(caller).await
    }

    pub async fn list_mails(
        &self,
        state: &str,
        limit: u32,
        page_token: &str,
        newest_first: bool,
    ) -> Result<(Vec<pb::Mail>, String)> {
        let page = platform::page::Page::parse(limit, page_token)
            .map_err(|(field, message)| NotifyError::invalid(field, message))?;
        let state = match state {
            "" => None,
            store::PENDING | store::SENT | store::FAILED => Some(state),
            other => {
                return Err(NotifyError::invalid(
                    "state",
                    format!("state must be pending, sent or failed, not {other:?}"),
                ));
            }
        };
        let rows = store::list_mails(&self.db, state, page, newest_first).await?;
        let (rows, next) = page.finish(rows, |m| m.id);
        Ok((rows.into_iter().map(mail_pb).collect(), next))
    }

    /// Sends a failed mail again, from its first attempt.
    pub async fn resend(&self, id: i64) -> Result<pb::Mail> {
        let mail = store::get_mail(&self.db, id)
            .await?
            .ok_or(NotifyError::NotFound("mail"))?;
        if mail.state != store::FAILED {
            return Err(NotifyError::WrongState(format!(
                "only a failed mail is sent again; this one is {}",
                mail.state
            )));
        }
        store::resend(&self.db, id, now_ms()).await?;
        let mail = store::get_mail(&self.db, id)
            .await?
            .ok_or(NotifyError::NotFound("mail"))?;
        Ok(mail_pb(mail))
    }

    /// The user's address and name, from identity-svc.
    async fn user(&self, user_id: i64) -> Result<Option<proto::identity::v1::User>> {
        let request = Caller::SYSTEM.request(proto::identity::v1::GetUserRequest {
            by: Some(proto::identity::v1::get_user_request::By::Id(user_id)),
        });
        match self.identity.clone().get_user(request).await {
            Ok(user) => Ok(Some(user.into_inner())),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(NotifyError::Unavailable(status)),
        }
    }
}

/// The scopes the user-facing calls need.
pub const READ: Scopes = Scopes::ACCOUNT_READ;
pub const WRITE: Scopes = Scopes::ACCOUNT_WRITE;

fn mailer(config: &Config) -> anyhow::Result<Option<AsyncSmtpTransport<Tokio1Executor>>> {
    let smtp = &config.smtp;
    if smtp.host.is_empty() {
        return Ok(None);
    }
    use lettre::transport::smtp::client::{Certificate, Tls as Wire, TlsParameters};
    let tls = || -> anyhow::Result<TlsParameters> {
        let mut params = TlsParameters::builder(smtp.host.clone());
        if let Some(path) = &smtp.ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading smtp.ca_file {}", path.display()))?;
            params = params.add_root_certificate(Certificate::from_pem(&pem)?);
        }
        Ok(params.build_rustls()?)
    };
    let wire = match smtp.tls {
        Tls::Starttls => Wire::Required(tls()?),
        Tls::Implicit => Wire::Wrapper(tls()?),
        Tls::None => Wire::None,
    };
    let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host).tls(wire);
    let mut builder = builder
        .port(smtp.port())
        .timeout(Some(Duration::from_secs(smtp.timeout_secs)))
        .pool_config(
            lettre::transport::smtp::PoolConfig::new()
                .max_size(u32::try_from(send::CONCURRENCY).unwrap_or(u32::MAX)),
        );
    if let Some(user) = &smtp.user {
        let pass = smtp
            .pass
            .as_ref()
            .map(|p| p.expose_secret().to_owned())
            .unwrap_or_default();
        builder = builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
            user.clone(),
            pass,
        ));
    }
    Ok(Some(builder.build()))
}

pub fn mail_pb(m: store::entity::mail::Model) -> pb::Mail {
    pb::Mail {
        id: m.id,
        uuid: m.uuid,
        user_id: m.user_id,
        kind: m.kind,
        recipient: m.recipient,
        subject: m.subject,
        state: m.state,
        attempts: u32::try_from(m.attempts).unwrap_or(0),
        last_error: m.last_error,
        created_at_ms: m.created_at,
        sent_at_ms: m.sent_at.unwrap_or(0),
        event_id: m.event_id,
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
