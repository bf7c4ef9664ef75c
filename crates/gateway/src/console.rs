//! The console WebSocket: `GET /api/console/ws?ticket=...`. The ticket (short-lived,
//! single-use, bound to a user and a server) is the only credential, since browsers cannot
//! set headers on WebSockets. The gateway bridges the socket to node-svc's console stream;
//! no hypervisor session ever reaches the browser.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use platform::grpc::Caller;
use proto::node::v1 as pb;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Credential;
use crate::dialects::{DialectKind, bearer};
use crate::error::ApiError;
use crate::state::AppState;

/// The largest WebSocket message or frame a console accepts (node-svc has its own limit).
const MAX_FRAME_BYTES: usize = 64 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(console))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsoleQuery {
    /// The console ticket (`vct_...`), valid for 60 seconds and one connection.
    ticket: Option<String>,
}

/// Open a server's console as a WebSocket terminal. Binary or text frames in are keystrokes;
/// binary frames out are what the terminal prints.
#[utoipa::path(get, path = "/api/console/ws", tag = "console", operation_id = "console_socket",
    params(ConsoleQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket terminal"),
        (status = 400, description = "No ticket, or not a WebSocket request"),
        (status = 401, description = "Invalid, used or expired ticket, or another user's"),
        (status = 409, description = "The server is not running"),
        (status = 429, description = "Too many open consoles for this user or this server"),
        (status = 503, description = "The node is unreachable"),
    ))]
async fn console(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ConsoleQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let fail = |e: ApiError| e.render(DialectKind::Panel);
    let Some(ticket) = query
        .ok()
        .and_then(|Query(q)| q.ticket)
        .filter(|t| !t.is_empty())
    else {
        return fail(ApiError::invalid("ticket", "a console ticket is required"));
    };
    let upgrade = match upgrade {
        // Keystrokes come in small frames; anything large is refused by the socket itself.
        Ok(upgrade) => upgrade
            .max_message_size(MAX_FRAME_BYTES)
            .max_frame_size(MAX_FRAME_BYTES),
        Err(_) => return fail(ApiError::bad_request("this endpoint speaks WebSocket only")),
    };
    // A client that also sends its access token gets only its own tickets redeemed.
    let user_id = match bearer(&headers) {
        Some(token) => match state
            .auth
            .authenticate(Credential::AccessToken(token.to_owned()))
            .await
        {
            Ok(principal) => principal.user_id,
            Err(e) => return fail(e),
        },
        None => 0,
    };
    let (keys, typed) = tokio::sync::mpsc::channel::<pb::ConsoleInput>(64);
    let first = pb::ConsoleInput {
        input: Some(pb::console_input::Input::Ticket(ticket)),
        user_id,
    };
    if keys.send(first).await.is_err() {
        return fail(ApiError::internal());
    }
    // The ticket is redeemed and the console opened before the upgrade, so failures are
    // ordinary HTTP errors.
    let printed = match state
        .consoles
        .clone()
        .attach(Caller::SYSTEM.request(tokio_stream::wrappers::ReceiverStream::new(typed)))
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => {
            let mut error = ApiError::from_status(&status);
            if status.code() == tonic::Code::FailedPrecondition {
                error.status = StatusCode::CONFLICT;
            }
            return fail(error);
        }
    };
    upgrade
        .on_upgrade(move |socket| bridge(socket, keys, printed))
        .into_response()
}

async fn bridge(
    socket: WebSocket,
    keys: tokio::sync::mpsc::Sender<pb::ConsoleInput>,
    mut printed: tonic::Streaming<pb::ConsoleOutput>,
) {
    use futures_util::{SinkExt as _, StreamExt as _};
    let (mut to_browser, mut from_browser) = socket.split();
    let upstream = tokio::spawn(async move {
        while let Some(Ok(message)) = from_browser.next().await {
            let data = match message {
                Message::Binary(bytes) => bytes.to_vec(),
                Message::Text(text) => text.as_bytes().to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            let input = pb::ConsoleInput {
                input: Some(pb::console_input::Input::Data(data)),
                user_id: 0,
            };
            if keys.send(input).await.is_err() {
                break;
            }
        }
    });
    while let Ok(Some(output)) = printed.message().await {
        if to_browser
            .send(Message::Binary(output.data.into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = to_browser.close().await;
    upstream.abort();
}
