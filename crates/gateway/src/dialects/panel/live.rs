//! Seed 000's live feed over Socket.IO on the gateway's port: a client authenticates with
//! its access token (`auth: {token}` in the handshake, or an `Authorization: Bearer`
//! header), subscribes to servers it may see (`subscribe-server` / `unsubscribe-server`),
//! and receives `server-stats` and `server-alerts` for them. Without subscribing, every
//! socket receives `server-status` when one of its user's servers changes state (created,
//! a task begun or ended, suspended, deleted); administrators' sockets, for every server.
//!
//! One NATS subscription per gateway replica (`vps.stats.*`, `vps.alerts.*`) is fanned out
//! to one room per server; sockets are local to a replica, so long-polling clients behind
//! several replicas need sticky sessions (docs/live.md).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use proto::events::v1 as ev;
use proto::monitor::v1 as monpb;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use socketioxide::extract::{Data, Extension, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler as _;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{SocketIo, TransportType};

use super::replies::{Stats, UsageStats};
use crate::auth::{Credential, Principal};
use crate::servers::by_id;
use crate::state::AppState;

/// Who a socket belongs to, and the credential it came with (checked again periodically).
#[derive(Clone, Debug)]
struct Viewer {
    principal: Principal,
    token: Arc<str>,
}

/// Why a connection was refused: the client's `connect_error` message.
#[derive(Debug)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

fn user_room(user_id: i64) -> String {
    format!("user:{user_id}")
}

/// Administrators' sockets: they hear every server's state changes.
const ADMINS_ROOM: &str = "admins";

/// The last words of `vps.events.server.*` that are a server's state changes.
const STATUS_EVENTS: [&str; 4] = ["created", "state", "deleted", "suspended"];

fn server_room(server_id: i64) -> String {
    format!("server:{server_id}")
}

/// The Socket.IO layer and its handle, for the gateway's state.
pub fn layer(state: &AppState) -> (SocketIoLayer, SocketIo) {
    let live = &state.config.live;
    let (layer, io) = SocketIo::builder()
        .max_payload(live.max_payload_bytes as u64)
        .ws_max_message_size(live.max_payload_bytes)
        .ws_max_frame_size(live.max_payload_bytes)
        .connect_timeout(Duration::from_secs(10))
        .transports([TransportType::Polling, TransportType::Websocket])
        .with_state(state.clone())
        .build_layer();
    io.ns("/", on_connect.with(authenticate));
    (layer, io)
}

/// The handshake's credential: `auth.token`, else the `Authorization` header.
fn token_of(socket: &SocketRef, auth: Option<Value>) -> Option<String> {
    if let Some(token) = auth
        .as_ref()
        .and_then(|a| a.get("token"))
        .and_then(Value::as_str)
        .map(|t| t.strip_prefix("Bearer ").unwrap_or(t).trim())
        .filter(|t| !t.is_empty() && t.len() <= 4096)
    {
        return Some(token.to_owned());
    }
    crate::dialects::bearer(&socket.req_parts().headers).map(str::to_owned)
}

async fn authenticate(
    socket: SocketRef,
    TryData(auth): TryData<Value>,
    State(state): State<AppState>,
    io: SocketIo,
) -> Result<(), Refused> {
    let token = token_of(&socket, auth.ok()).ok_or(Refused("an access token is required"))?;
    let principal = state
        .auth
        .authenticate(Credential::AccessToken(token.clone()))
        .await
        .map_err(|_| Refused("invalid or expired access token"))?;
    let open = io.within(user_room(principal.user_id)).sockets().len();
    if open >= state.config.live.max_sockets_per_user {
        return Err(Refused("too many open connections for this user"));
    }
    socket.join(user_room(principal.user_id));
    if principal.admin {
        socket.join(ADMINS_ROOM);
    }
    socket.extensions.insert(Viewer {
        principal,
        token: token.into(),
    });
    // The handlers go on here, before the client hears it is connected: the connect
    // handler runs as a task of its own after that, and an event a client sends the moment
    // it connects (a subscription, as clients resubscribe on every connect) would find no
    // handler yet and be lost.
    socket.on_disconnect(on_disconnect);
    socket.on("subscribe-server", subscribe);
    socket.on("unsubscribe-server", unsubscribe);
    Ok(())
}

async fn on_connect() {
    metrics::gauge!("vps_socketio_open_sockets").increment(1.0);
}

async fn on_disconnect() {
    metrics::gauge!("vps_socketio_open_sockets").decrement(1.0);
}

/// A server id as clients send it: a number, or its digits as text.
fn server_id(raw: &Value) -> Option<i64> {
    match raw {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if s.len() <= 19 => s.parse().ok(),
        Value::Object(o) => o.get("serverId").and_then(server_id),
        _ => None,
    }
    .filter(|id| *id > 0)
}

fn refuse(socket: &SocketRef, event: &str, raw: &Value, message: &str) {
    let _ = socket.emit(
        "error",
        &json!({ "event": event, "serverId": raw, "message": message }),
    );
}

async fn subscribe(
    socket: SocketRef,
    Data(raw): Data<Value>,
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) {
    let Some(id) = server_id(&raw) else {
        return refuse(&socket, "subscribe-server", &raw, "a server id is required");
    };
    let rooms = socket.rooms();
    let room = server_room(id);
    if rooms.iter().any(|r| *r == room) {
        return;
    }
    let subscribed = rooms.iter().filter(|r| r.starts_with("server:")).count();
    if subscribed >= state.config.live.max_subscriptions_per_socket {
        return refuse(
            &socket,
            "subscribe-server",
            &raw,
            "too many subscriptions on this connection",
        );
    }
    // server-svc decides who may see the server: a foreign one is as unknown as a missing one.
    let seen = state
        .servers()
        .get_server(viewer.principal.caller().request(by_id(id)))
        .await;
    if seen.is_err() {
        return refuse(&socket, "subscribe-server", &raw, "server not found");
    }
    socket.join(room);
}

async fn unsubscribe(socket: SocketRef, Data(raw): Data<Value>) {
    if let Some(id) = server_id(&raw) {
        socket.leave(server_room(id));
    }
}

/// Closes a user's sockets on this replica (they logged out everywhere); other replicas'
/// close at their next credential check.
pub async fn disconnect_user(io: &SocketIo, user_id: i64) {
    if let Err(error) = io.within(user_room(user_id)).disconnect().await {
        tracing::warn!(%error, user_id, "closing the user's sockets failed");
    }
}

/// `server-stats` from a sample on `vps.stats.<id>` (`at`: when it was taken, Unix ms).
fn stats_event(sample: &monpb::Sample) -> Value {
    json!({
        "serverId": sample.server_id,
        "at": sample.at_ms,
        "stats": UsageStats::from(Stats {
            server_id: sample.server_id,
            status: &sample.state,
            live: true,
            uptime: sample.uptime_secs,
            cpu: sample.cpu,
            memory: (sample.memory_used_bytes, sample.memory_max_bytes),
            disk: (sample.disk_used_bytes, sample.disk_max_bytes),
            network: (sample.net_in_bytes, sample.net_out_bytes),
            points: &[],
        }),
    })
}

/// `server-alerts` from an alert change on `vps.alerts.<id>`.
fn alerts_event(alert: &ev::AlertEvent) -> Value {
    json!({
        "serverId": alert.server_id,
        "alerts": [{ "type": alert.metric, "message": alert.message, "level": alert.level }],
    })
}

/// `server-status` from a server event: the state after the change, and the task behind it.
/// A deleted server's status is `deleted`.
fn status_event(event: &ev::ServerEvent) -> Value {
    json!({
        "serverId": event.server_id,
        "userId": event.owner_id,
        "status": if event.r#type == "deleted" { "deleted" } else { event.status.as_str() },
        "name": event.name,
        "task": event.task,
        "taskId": event.task_id,
        "failed": event.failed,
        "reason": event.reason,
        "at": event.at,
    })
}

/// Fans samples and alerts out to the rooms of their servers, and closes the sockets whose
/// credential no longer holds, until shutdown.
pub async fn run(io: SocketIo, state: AppState, shutdown: platform::Shutdown) {
    let recheck = tokio::spawn(recheck(io.clone(), state.clone(), shutdown.clone()));
    if let Some(url) = &state.config.nats_url {
        match fan_out(&io, url.expose_secret(), &shutdown).await {
            Ok(()) => {}
            Err(error) => tracing::warn!(error = %error, "the live feed lost NATS"),
        }
    }
    shutdown.wait().await;
    let _ = recheck.await;
    io.close().await;
}

async fn fan_out(io: &SocketIo, url: &str, shutdown: &platform::Shutdown) -> anyhow::Result<()> {
    let client = platform::outbox::connect(url).await?;
    let mut stats = client.subscribe(ev::subject::STATS_ALL).await?;
    let mut alerts = client.subscribe(ev::subject::ALERTS_ALL).await?;
    let mut changes = client.subscribe("vps.events.server.*").await?;
    loop {
        tokio::select! {
            Some(message) = stats.next() => {
                let Ok(sample) = serde_json::from_slice::<monpb::Sample>(&message.payload) else { continue };
                let room = server_room(sample.server_id);
                if io.within(room.clone()).sockets().is_empty() {
                    continue;
                }
                let _ = io.to(room).emit("server-stats", &stats_event(&sample)).await;
            }
            Some(message) = alerts.next() => {
                let Ok(alert) = serde_json::from_slice::<ev::AlertEvent>(&message.payload) else { continue };
                let _ = io.to(server_room(alert.server_id)).emit("server-alerts", &alerts_event(&alert)).await;
            }
            Some(message) = changes.next() => {
                let kind = message.subject.rsplit('.').next().unwrap_or_default();
                if !STATUS_EVENTS.contains(&kind) {
                    continue;
                }
                let Ok(event) = serde_json::from_slice::<ev::ServerEvent>(&message.payload) else { continue };
                let body = status_event(&event);
                let _ = io.to([user_room(event.owner_id), ADMINS_ROOM.to_owned()]).emit("server-status", &body).await;
            }
            () = shutdown.wait() => return Ok(()),
            else => anyhow::bail!("the NATS subscriptions ended"),
        }
    }
}

/// Every `recheck_secs`, each socket's token is authenticated again (identity-svc, through
/// the gateway's short cache); a socket whose session was revoked or expired is closed.
async fn recheck(io: SocketIo, state: AppState, shutdown: platform::Shutdown) {
    let mut tick =
        tokio::time::interval(Duration::from_secs(state.config.live.recheck_secs.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        let Some(ns) = io.of("/") else { continue };
        for socket in ns.sockets() {
            let Some(viewer) = socket.extensions.get::<Viewer>() else {
                continue;
            };
            let still = state
                .auth
                .authenticate(Credential::AccessToken(viewer.token.to_string()))
                .await;
            if still.is_err() {
                let _ = socket.disconnect();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ids_come_as_numbers_or_digits() {
        assert_eq!(server_id(&json!(7)), Some(7));
        assert_eq!(server_id(&json!("12")), Some(12));
        assert_eq!(server_id(&json!({"serverId": 3})), Some(3));
        assert_eq!(server_id(&json!(-1)), None);
        assert_eq!(server_id(&json!("x")), None);
        assert_eq!(server_id(&json!(null)), None);
    }
}
