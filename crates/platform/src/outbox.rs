//! The transactional outbox: a service writes its state change and an outbox row in one
//! transaction ([`enqueue`]); a [`Relay`] publishes the rows to JetStream with `Nats-Msg-Id`
//! set to the event id and marks them published. A process that dies between publishing
//! and marking publishes again, and JetStream's duplicate window drops the repeat; consumers
//! drop duplicates by the same id. No event is lost.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use chrono::Utc;
use sea_orm::sea_query::{Expr, Index, Table};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, FromQueryResult, Statement};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use tracing::Instrument as _;

use crate::Shutdown;

/// The stream every business event goes to, and its subjects.
pub const STREAM: &str = "VPS_EVENTS";
pub const SUBJECTS: &str = "vps.events.>";
/// The stream of threshold alerts (`vps.alerts.<server_id>`), kept so none is lost on the
/// way to email and webhooks.
pub const ALERTS_STREAM: &str = "VPS_ALERTS";
pub const ALERT_SUBJECTS: &str = "vps.alerts.>";

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Seq,
    EventId,
    Subject,
    Payload,
    CreatedAt,
    PublishedAt,
    TraceParent,
}

/// The migration that creates the `outbox` table; each service that emits events lists it
/// in its migrator.
pub struct CreateOutbox;

impl MigrationName for CreateOutbox {
    fn name(&self) -> &str {
        "m20261122_900000_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOutbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Outbox::Seq))
                    .col(string_uniq(Outbox::EventId))
                    .col(string(Outbox::Subject))
                    .col(text(Outbox::Payload))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(Outbox::PublishedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_unpublished")
                    .table(Outbox::Table)
                    .col(Outbox::PublishedAt)
                    .col(Outbox::Seq)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}

/// The migration that keeps each event's trace context (W3C `traceparent`) with it, so the
/// relay carries it into the NATS headers and the consumer's work joins the producer's
/// trace; listed after [`CreateOutbox`].
pub struct AddTraceParent;

impl MigrationName for AddTraceParent {
    fn name(&self) -> &str {
        "m20261130_900000_outbox_trace_parent"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddTraceParent {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.has_column("outbox", "trace_parent").await? {
            return Ok(());
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(string_null(Outbox::TraceParent))
                    .to_owned(),
            )
            .await
    }
}

/// Adds an event (published as its JSON) to the outbox inside the caller's transaction.
/// `event_id` is what consumers deduplicate by.
pub async fn enqueue<C: ConnectionTrait, E: serde::Serialize>(
    db: &C,
    subject: &str,
    event_id: uuid::Uuid,
    payload: &E,
) -> Result<(), DbErr> {
    let payload = serde_json::to_string(payload)
        .map_err(|e| DbErr::Custom(format!("encoding the event for {subject}: {e}")))?;
    let insert = Query::insert()
        .into_table(Outbox::Table)
        .columns([
            Outbox::EventId,
            Outbox::Subject,
            Outbox::Payload,
            Outbox::CreatedAt,
            Outbox::TraceParent,
        ])
        .values_panic([
            event_id.to_string().into(),
            subject.into(),
            payload.into(),
            Utc::now().into(),
            crate::telemetry::current_traceparent().into(),
        ])
        .to_owned();
    db.execute(&insert).await.map(drop)
}

/// Whether an event with this id is in the outbox (published or not): lets a producer emit
/// an event with a derived id at most once.
pub async fn contains<C: ConnectionTrait>(db: &C, event_id: uuid::Uuid) -> Result<bool, DbErr> {
    let select = Query::select()
        .expr(Expr::val(1))
        .from(Outbox::Table)
        .and_where(Expr::col(Outbox::EventId).eq(event_id.to_string()))
        .to_owned();
    Ok(db.query_one(&select).await?.is_some())
}

#[derive(Debug, FromQueryResult)]
struct Pending {
    seq: i64,
    event_id: String,
    subject: String,
    payload: String,
    created_at: chrono::DateTime<Utc>,
    trace_parent: Option<String>,
}

/// Seconds since `at`.
fn age(at: chrono::DateTime<Utc>) -> f64 {
    (Utc::now() - at).to_std().unwrap_or_default().as_secs_f64()
}

/// Creates (or keeps) the events and alerts streams, with a duplicate window that covers a
/// relay's restart. On a NATS cluster they are replicated on up to three servers (raised on
/// an existing stream that has fewer), so a server lost loses no event.
///
/// A cluster electing a leader (a server just restarted) answers nothing for a few seconds:
/// the request is tried again for up to 30 s before the error is given up on.
pub async fn ensure_stream(js: &jetstream::Context) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        match try_ensure_stream(js).await {
            Ok(()) => return Ok(()),
            Err(error) if started.elapsed() < Duration::from_secs(30) => {
                tracing::warn!(error = %format!("{error:#}"), "JetStream does not answer yet; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(4));
            }
            Err(error) => return Err(error),
        }
    }
}

async fn try_ensure_stream(js: &jetstream::Context) -> anyhow::Result<()> {
    let replicas = stream_replicas(&js.client().server_info());
    for (name, subjects) in [(STREAM, SUBJECTS), (ALERTS_STREAM, ALERT_SUBJECTS)] {
        let config = jetstream::stream::Config {
            name: name.to_owned(),
            subjects: vec![subjects.to_owned()],
            duplicate_window: Duration::from_secs(120),
            num_replicas: replicas,
            ..Default::default()
        };
        let mut stream = js
            .get_or_create_stream(config.clone())
            .await
            .map_err(|e| anyhow::anyhow!("creating stream {name}: {e}"))?;
        let info = stream
            .info()
            .await
            .map_err(|e| anyhow::anyhow!("reading stream {name}: {e}"))?;
        if info.config.num_replicas < replicas {
            let raised = jetstream::stream::Config {
                num_replicas: replicas,
                ..info.config.clone()
            };
            js.update_stream(raised)
                .await
                .map_err(|e| anyhow::anyhow!("replicating stream {name}: {e}"))?;
        }
    }
    Ok(())
}

/// How many servers keep each stream: up to three on a cluster, one on a lone server.
pub fn stream_replicas(server: &async_nats::ServerInfo) -> usize {
    if server.cluster.is_some() {
        server.connect_urls.len().clamp(1, 3)
    } else {
        1
    }
}

/// Publishes outbox rows in order until shutdown.
pub struct Relay {
    db: DatabaseConnection,
    js: jetstream::Context,
    poll: Duration,
}

impl Relay {
    pub fn new(db: DatabaseConnection, js: jetstream::Context) -> Self {
        Self {
            db,
            js,
            poll: Duration::from_millis(200),
        }
    }

    /// Publishes what is pending now; returns how many were published.
    pub async fn publish_pending(&self) -> anyhow::Result<usize> {
        let backend = self.db.get_database_backend();
        let select = Query::select()
            .columns([
                Outbox::Seq,
                Outbox::EventId,
                Outbox::Subject,
                Outbox::Payload,
                Outbox::CreatedAt,
                Outbox::TraceParent,
            ])
            .from(Outbox::Table)
            .and_where(Expr::col(Outbox::PublishedAt).is_null())
            .order_by(Outbox::Seq, Order::Asc)
            .limit(100)
            .to_owned();
        let rows = Pending::find_by_statement(backend_statement(backend, &select))
            .all(&self.db)
            .await?;
        let oldest = rows.first().map_or(0.0, |row| age(row.created_at));
        metrics::gauge!("vps_outbox_oldest_unpublished_seconds").set(oldest);
        for row in &rows {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", row.event_id.as_str());
            // The hop onto NATS is a span of the event's trace, and the consumer's parent.
            // (An event made outside any trace stays outside: no trace of its own.)
            let span = match &row.trace_parent {
                Some(trace_parent) => {
                    let span = tracing::info_span!("publish", otel.kind = "producer",
                        messaging.system = "nats", messaging.destination = %row.subject);
                    crate::telemetry::adopt_traceparent(&span, trace_parent);
                    if let Some(context) = span.in_scope(crate::telemetry::current_traceparent) {
                        headers.insert("traceparent", context.as_str());
                    }
                    span
                }
                None => tracing::Span::none(),
            };
            async {
                self.js
                    .publish_with_headers(row.subject.clone(), headers, row.payload.clone().into())
                    .await
                    .map_err(|e| anyhow::anyhow!("publishing {}: {e}", row.event_id))?
                    .await
                    .map_err(|e| anyhow::anyhow!("no acknowledgement for {}: {e}", row.event_id))
            }
            .instrument(span)
            .await?;
            let mark = Query::update()
                .table(Outbox::Table)
                .value(Outbox::PublishedAt, Utc::now())
                .and_where(Expr::col(Outbox::Seq).eq(row.seq))
                .to_owned();
            self.db
                .execute(&mark)
                .await
                .context("marking an event published")?;
            metrics::counter!("vps_outbox_published_total").increment(1);
            metrics::histogram!("vps_outbox_publish_delay_seconds").record(age(row.created_at));
        }
        Ok(rows.len())
    }

    /// Runs until shutdown, publishing as rows appear; errors are logged and retried.
    pub async fn run(self, shutdown: Shutdown) {
        let mut backoff = self.poll;
        loop {
            let wait = match self.publish_pending().await {
                Ok(n) if n > 0 => {
                    backoff = self.poll;
                    Duration::ZERO
                }
                Ok(_) => self.poll,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "outbox relay: will retry");
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    backoff
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.wait() => break,
            }
        }
    }
}

fn backend_statement(backend: DbBackend, query: &SelectStatement) -> Statement {
    backend.build(query)
}

/// Connects to NATS at `url`, which may carry a user and password (`nats://user:pass@host:port`;
/// both taken literally, so no percent-encoding), or to any of several servers of one cluster
/// (`nats://user:pass@a:4222,nats://b:4222`: one set of credentials for all). Errors name the
/// servers, never the password.
pub async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    let mut credentials = None;
    let mut servers = Vec::new();
    for one in url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let (scheme, rest) = one.split_once("://").unwrap_or(("nats", one));
        let host = match rest.rsplit_once('@') {
            Some((given, host)) => {
                credentials.get_or_insert(given);
                host
            }
            None => rest,
        };
        servers.push(format!("{scheme}://{host}"));
    }
    let options = match credentials.and_then(|c| c.split_once(':')) {
        Some((user, password)) => {
            async_nats::ConnectOptions::with_user_and_password(user.to_owned(), password.to_owned())
        }
        None => async_nats::ConnectOptions::new(),
    };
    let named = servers.join(",");
    let addresses = servers
        .iter()
        .map(|s| s.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("invalid NATS server address in {named}"))?;
    options
        .connect(addresses)
        .await
        .with_context(|| format!("connecting to NATS at {named}"))
}
