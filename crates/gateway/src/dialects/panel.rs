//! The panel dialect (seed 000): `Authorization: Bearer <JWT access token>`, errors as
//! `{"error": ...}`. The account routes live here: registration, login, refresh, logout,
//! the caller's profile, API tokens, and credits; the server, task and catalog routes are in
//! `servers`.

mod admin;
mod browser;
pub mod live;
mod quotas;
mod replies;
mod servers;
mod service_accounts;
mod snapshots;
mod tickets;
mod webhooks;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::SecondsFormat;
use platform::grpc::Caller;
use proto::identity::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Dialect, DialectKind, bearer, header_text};
use crate::auth::Credential;
use crate::error::{ApiError, Failure};
use crate::extract::{Admin, Auth, Body, PathId};
use crate::state::AppState;

pub struct Panel;

impl Dialect for Panel {
    const KIND: DialectKind = DialectKind::Panel;

    fn credential(headers: &HeaderMap) -> Option<Credential> {
        bearer(headers).map(|t| Credential::AccessToken(t.to_owned()))
    }

    fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing, invalid or expired access token",
        )
    }

    fn error_body(error: &ApiError) -> serde_json::Value {
        serde_json::json!({ "error": error.message })
    }

    fn error_headers(error: &ApiError, headers: &mut HeaderMap) {
        super::bearer_challenge(error, headers);
    }
}

type Result<T> = std::result::Result<T, Failure<Panel>>;

/// Routes that mint credentials; the caller puts them behind the auth rate limit.
pub fn limited_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(create_token))
        .merge(browser::limited_routes())
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(logout))
        .merge(browser::routes())
        .routes(routes!(me))
        .routes(routes!(list_tokens))
        .routes(routes!(revoke_token))
        .routes(routes!(my_credits))
        .routes(routes!(user_credits, adjust_credits))
        .merge(servers::routes())
        .merge(snapshots::routes())
        .merge(service_accounts::routes())
        .merge(quotas::routes())
        .merge(admin::routes())
        .merge(tickets::routes())
        .merge(webhooks::routes())
}

pub fn timestamp(ms: i64) -> Option<String> {
    (ms > 0).then(|| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    })
}

/// The panel's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct PanelError {
    error: String,
}

/// Closes a user's open consoles (their session ended); a failure is logged, not fatal.
async fn close_consoles(state: &AppState, user_id: i64) {
    let closed = state
        .consoles
        .clone()
        .close_user_consoles(
            Caller::SYSTEM.request(proto::node::v1::CloseUserConsolesRequest { user_id }),
        )
        .await;
    if let Err(status) = closed {
        tracing::warn!(error = %status.message(), "closing the user's consoles failed");
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusReply {
    status: &'static str,
}

/// An account as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    id: i64,
    /// The Skyport-dialect id of the same user.
    user_id: String,
    username: String,
    email: String,
    /// `admin` or `user`.
    role: &'static str,
    created_at: Option<String>,
}

impl From<pb::User> for Account {
    fn from(u: pb::User) -> Self {
        Self {
            id: u.id,
            role: if u.role == i32::from(pb::Role::Admin) {
                "admin"
            } else {
                "user"
            },
            user_id: u.skyport_id,
            username: u.username,
            email: u.email,
            created_at: timestamp(u.created_at_ms),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"username": "alice", "email": "alice@example.com", "password": "correct-horse-9"}))]
pub struct RegisterBody {
    /// 3-32 letters, digits, `_`, `.` or `-`, starting with a letter or digit.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$")]
    username: String,
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(min_length = 8, max_length = 128)]
    password: String,
}

/// Open a user account (when registration is enabled).
#[utoipa::path(post, path = "/api/auth/register", tag = "account",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "The new account", body = Account),
        (status = 400, description = "Invalid input", body = PanelError),
        (status = 403, description = "Registration is closed", body = PanelError),
        (status = 409, description = "Username or email taken", body = PanelError),
        (status = 429, description = "Too many requests", body = PanelError),
    ))]
async fn register(
    State(state): State<AppState>,
    Body(body, _): Body<Panel, RegisterBody>,
) -> Result<impl IntoResponse> {
    let request = pb::CreateUserRequest {
        username: body.username,
        email: body.email,
        password: body.password,
        role: pb::Role::User.into(),
        skyport_id: None,
    };
    // Registration speaks as the gateway itself: the person has no account yet.
    let user = state
        .identity()
        .create_user(Caller::SYSTEM.request(request))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(Account::from(user))))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    /// A username or an email address (or give `username` or `email`).
    login: Option<String>,
    username: Option<String>,
    email: Option<String>,
    password: String,
}

/// A fresh session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionReply {
    access_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
    refresh_token: String,
    refresh_expires_in: i64,
    user: Account,
}

impl From<pb::Session> for SessionReply {
    fn from(s: pb::Session) -> Self {
        Self {
            access_token: s.access_token,
            token_type: "Bearer",
            expires_in: s.access_expires_in_secs,
            refresh_token: s.refresh_token,
            refresh_expires_in: s.refresh_expires_in_secs,
            user: Account::from(s.user.unwrap_or_default()),
        }
    }
}

/// Log in with a password; returns an access token and a refresh token.
#[utoipa::path(post, path = "/api/auth/login", tag = "account",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = SessionReply),
        (status = 400, description = "Malformed body", body = PanelError),
        (status = 401, description = "Wrong login or password", body = PanelError),
        (status = 429, description = "Too many requests", body = PanelError),
    ))]
async fn login(
    State(state): State<AppState>,
    Body(body, _): Body<Panel, LoginBody>,
) -> Result<Json<SessionReply>> {
    Ok(Json(SessionReply::from(open_session(&state, body).await?)))
}

/// A new session for a login and password, from identity-svc.
async fn open_session(
    state: &AppState,
    body: LoginBody,
) -> std::result::Result<pb::Session, ApiError> {
    let login = body
        .login
        .or(body.username)
        .or(body.email)
        .ok_or_else(|| ApiError::invalid("login", "login (a username or email) is required"))?;
    let session = state
        .identity()
        .login(Caller::SYSTEM.request(pb::LoginRequest {
            login,
            password: body.password,
        }))
        .await
        .map_err(|status| match status.code() {
            tonic::Code::Unauthenticated => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid login or password")
            }
            _ => ApiError::from_status(&status),
        })?;
    Ok(session.into_inner())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshBody {
    refresh_token: String,
}

/// Trade a refresh token for a new access token and a new refresh token. Each refresh token
/// works once; presenting a used one ends its whole session.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "account",
    request_body = RefreshBody,
    responses(
        (status = 400, description = "Malformed request body", body = PanelError),
        (status = 200, description = "Rotated", body = SessionReply),
        (status = 401, description = "Unknown, used, revoked or expired refresh token", body = PanelError),
        (status = 429, description = "Too many requests", body = PanelError),
    ))]
async fn refresh(
    State(state): State<AppState>,
    Body(body, _): Body<Panel, RefreshBody>,
) -> Result<Json<SessionReply>> {
    let session = rotate_session(&state, body.refresh_token).await?;
    Ok(Json(SessionReply::from(session)))
}

/// The next session for a refresh token, from identity-svc.
async fn rotate_session(
    state: &AppState,
    refresh_token: String,
) -> std::result::Result<pb::Session, ApiError> {
    let session = state
        .identity()
        .refresh(Caller::SYSTEM.request(pb::RefreshRequest { refresh_token }))
        .await;
    let session = match session {
        Ok(session) => session,
        Err(status) if status.code() == tonic::Code::Unauthenticated => {
            // A refused refresh may have revoked a whole session (token reuse): drop cached
            // principals so its access tokens stop working here at once, and close what
            // the session's user had open.
            state.auth.forget_all();
            if platform::grpc::error_reason(&status) == Some(platform::grpc::Reason::SessionRevoked)
                && let Some(user_id) = platform::grpc::error_fact(&status, "user_id")
                    .and_then(|id| id.parse::<i64>().ok())
            {
                close_consoles(state, user_id).await;
            }
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid or expired refresh token",
            ));
        }
        Err(status) => return Err(ApiError::from_status(&status)),
    };
    Ok(session.into_inner())
}

/// End the session of this access token (its refresh tokens stop working too).
#[utoipa::path(post, path = "/api/auth/logout", tag = "account",
    security(("bearerJwt" = [])),
    responses(
        (status = 200, description = "Logged out", body = StatusReply),
        (status = 401, description = "Missing or invalid access token", body = PanelError),
    ))]
async fn logout(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    headers: HeaderMap,
) -> Result<Json<StatusReply>> {
    let access_token = bearer(&headers).unwrap_or_default().to_owned();
    end_session(&state, access_token, auth.principal.user_id, false).await?;
    Ok(Json(StatusReply { status: "success" }))
}

/// Ends the session of `access_token` and closes its user's open consoles.
async fn end_session(
    state: &AppState,
    access_token: String,
    user_id: i64,
    everywhere: bool,
) -> std::result::Result<(), ApiError> {
    state
        .identity()
        .logout(Caller::SYSTEM.request(pb::LogoutRequest {
            access_token,
            everywhere,
        }))
        .await?;
    state.auth.forget_all();
    // The session is over: so are its user's open consoles.
    let closed = state
        .consoles
        .clone()
        .close_user_consoles(
            Caller::SYSTEM.request(proto::node::v1::CloseUserConsolesRequest { user_id }),
        )
        .await;
    if let Err(status) = closed {
        tracing::warn!(error = %status.message(), "closing the user's consoles failed");
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    #[serde(flatten)]
    account: Account,
    /// Credit balance in minor currency units.
    balance: i64,
}

/// The caller's account and credit balance.
#[utoipa::path(get, path = "/api/auth/me", tag = "account",
    security(("bearerJwt" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "Missing or invalid access token", body = PanelError),
    ))]
async fn me(State(state): State<AppState>, auth: Auth<Panel>) -> Result<Json<Me>> {
    let caller = auth.principal.caller();
    let (mut users, mut balances) = (state.identity(), state.identity());
    let by = pb::get_user_request::By::Id(caller.user_id);
    let (user, balance) = tokio::try_join!(
        users.get_user(caller.request(pb::GetUserRequest { by: Some(by) })),
        balances.get_balance(caller.request(pb::GetBalanceRequest { user_id: 0 })),
    )?;
    Ok(Json(Me {
        account: Account::from(user.into_inner()),
        balance: balance.into_inner().balance,
    }))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// A VPS.org API token (`Authorization: Bearer`).
    Vpsorg,
    /// A CVM token pair (`API-Public-Token` + `API-Private-Token`).
    Cvm,
    /// A Skyport API key (`x-api-key`); administrators only.
    Skyport,
}

impl TokenType {
    fn kind(self) -> pb::CredentialKind {
        match self {
            Self::Vpsorg => pb::CredentialKind::VpsorgToken,
            Self::Cvm => pb::CredentialKind::CvmPair,
            Self::Skyport => pb::CredentialKind::SkyportApiKey,
        }
    }
}

fn type_name(kind: i32) -> &'static str {
    match pb::CredentialKind::try_from(kind) {
        Ok(pb::CredentialKind::VpsorgToken) => "vpsorg",
        Ok(pb::CredentialKind::CvmPair) => "cvm",
        Ok(pb::CredentialKind::SkyportApiKey) => "skyport",
        _ => "unknown",
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTokenBody {
    #[serde(rename = "type")]
    kind: TokenType,
    /// Empty or absent: a default name.
    #[schema(max_length = 64)]
    name: Option<String>,
    /// CVM pairs only: may the pair use the client API (default true).
    client_api: Option<bool>,
}

/// A credential as listed: no secret, only a recognisable hint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    id: i64,
    /// `vpsorg`, `cvm` or `skyport`.
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    hint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_api: Option<bool>,
    created_at: Option<String>,
    last_used_at: Option<String>,
}

impl From<pb::Credential> for TokenInfo {
    fn from(c: pb::Credential) -> Self {
        let cvm = c.kind == i32::from(pb::CredentialKind::CvmPair);
        Self {
            id: c.id,
            kind: type_name(c.kind),
            name: c.name,
            hint: c.hint,
            public_token: cvm.then_some(c.public_token),
            client_api: cvm.then_some(c.client_api),
            created_at: timestamp(c.created_at_ms),
            last_used_at: timestamp(c.last_used_at_ms),
        }
    }
}

/// A new credential with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    #[serde(flatten)]
    info: TokenInfo,
    /// The API token or API key (`vpsorg`, `skyport`).
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// The private half of a CVM pair.
    #[serde(skip_serializing_if = "Option::is_none")]
    private_token: Option<String>,
}

/// Mint a VPS.org API token, a CVM token pair, or (administrators) a Skyport API key. The
/// secret is in this response only.
#[utoipa::path(post, path = "/api/tokens", tag = "account",
    security(("bearerJwt" = [])),
    request_body = CreateTokenBody,
    responses(
        (status = 201, description = "Created; the secret is shown only now", body = CreatedToken),
        (status = 400, description = "Invalid input", body = PanelError),
        (status = 401, description = "Missing or invalid access token", body = PanelError),
        (status = 403, description = "Skyport keys are for administrators", body = PanelError),
        (status = 429, description = "Too many requests", body = PanelError),
    ))]
async fn create_token(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    Body(body, _): Body<Panel, CreateTokenBody>,
) -> Result<impl IntoResponse> {
    let request = pb::CreateCredentialRequest {
        kind: body.kind.kind().into(),
        name: body.name.unwrap_or_default(),
        client_api: body.client_api.unwrap_or(true),
    };
    let created = state
        .identity()
        .create_credential(auth.principal.caller().request(request))
        .await?
        .into_inner();
    let info = TokenInfo::from(created.credential.unwrap_or_default());
    let (token, private_token) = match body.kind {
        TokenType::Cvm => (None, Some(created.secret)),
        TokenType::Vpsorg | TokenType::Skyport => (Some(created.secret), None),
    };
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            info,
            token,
            private_token,
        }),
    ))
}

/// The caller's active tokens and keys (without secrets).
#[utoipa::path(get, path = "/api/tokens", tag = "account",
    security(("bearerJwt" = [])),
    responses(
        (status = 200, description = "Active credentials", body = [TokenInfo]),
        (status = 401, description = "Missing or invalid access token", body = PanelError),
    ))]
async fn list_tokens(
    State(state): State<AppState>,
    auth: Auth<Panel>,
) -> Result<Json<Vec<TokenInfo>>> {
    let reply = state
        .identity()
        .list_credentials(
            auth.principal
                .caller()
                .request(pb::ListCredentialsRequest { user_id: 0 }),
        )
        .await?
        .into_inner();
    Ok(Json(
        reply.credentials.into_iter().map(TokenInfo::from).collect(),
    ))
}

/// Revoke one of the caller's tokens or keys. It stops working within seconds everywhere.
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "account",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Token id")),
    responses(
        (status = 200, description = "Revoked", body = StatusReply),
        (status = 400, description = "Malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid access token", body = PanelError),
        (status = 404, description = "No such token of yours", body = PanelError),
    ))]
async fn revoke_token(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<StatusReply>> {
    state
        .identity()
        .revoke_credential(
            auth.principal
                .caller()
                .request(pb::RevokeCredentialRequest { id }),
        )
        .await?;
    state.auth.forget_all();
    Ok(Json(StatusReply { status: "deleted" }))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerLine {
    id: i64,
    /// Positive for grants, negative for charges; minor units.
    amount: i64,
    balance_after: i64,
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    created_at: Option<String>,
}

impl From<pb::LedgerEntry> for LedgerLine {
    fn from(e: pb::LedgerEntry) -> Self {
        Self {
            id: e.id,
            amount: e.amount,
            balance_after: e.balance_after,
            reason: e.reason,
            reference: (!e.reference.is_empty()).then_some(e.reference),
            created_at: timestamp(e.created_at_ms),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credits {
    user_id: i64,
    balance: i64,
    /// Newest first.
    entries: Vec<LedgerLine>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// How many newest entries (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

async fn credits(
    state: &AppState,
    caller: platform::grpc::Caller,
    user_id: i64,
    limit: Option<u32>,
) -> Result<Json<Credits>> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be between 1 and 1000").into());
    }
    let request = pb::ListLedgerRequest { user_id, limit };
    let reply = state
        .identity()
        .list_ledger(caller.request(request))
        .await?
        .into_inner();
    Ok(Json(Credits {
        user_id: if user_id == 0 {
            caller.user_id
        } else {
            user_id
        },
        balance: reply.balance,
        entries: reply.entries.into_iter().map(LedgerLine::from).collect(),
    }))
}

/// The caller's credit balance and ledger.
#[utoipa::path(get, path = "/api/credits", tag = "credits",
    security(("bearerJwt" = [])),
    params(LedgerQuery),
    responses(
        (status = 200, description = "Balance and ledger", body = Credits),
        (status = 400, description = "A limit out of range", body = PanelError),
        (status = 401, description = "Missing or invalid access token", body = PanelError),
    ))]
async fn my_credits(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    query: std::result::Result<Query<LedgerQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Credits>> {
    let Query(query) =
        query.map_err(|_| ApiError::invalid("limit", "limit must be a whole number"))?;
    credits(&state, auth.principal.caller(), 0, query.limit).await
}

/// A user's credit balance and ledger (administrators).
#[utoipa::path(get, path = "/api/admin/users/{id}/credits", tag = "credits",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "User id"), LedgerQuery),
    responses(
        (status = 200, description = "Balance and ledger", body = Credits),
        (status = 400, description = "A malformed id, or a limit out of range", body = PanelError),
        (status = 401, description = "Missing or invalid access token", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
        (status = 404, description = "No such user", body = PanelError),
    ))]
async fn user_credits(
    State(state): State<AppState>,
    admin: Admin<Panel>,
    PathId(id, _): PathId<Panel>,
    query: std::result::Result<Query<LedgerQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Credits>> {
    let Query(query) =
        query.map_err(|_| ApiError::invalid("limit", "limit must be a whole number"))?;
    credits(&state, admin.principal.caller(), id, query.limit).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"amount": 10, "reason": "top-up"}))]
pub struct AdjustBody {
    /// Minor units: positive grants, negative charges.
    amount: i64,
    #[schema(min_length = 1, max_length = 200)]
    reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Adjusted {
    entry: LedgerLine,
    balance: i64,
    /// True when the Idempotency-Key had been used before and nothing changed.
    replayed: bool,
}

/// Grant or charge credits (administrators). With an `Idempotency-Key` header a retried
/// request changes nothing and returns the first entry (200 instead of 201).
#[utoipa::path(post, path = "/api/admin/users/{id}/credits", tag = "credits",
    security(("bearerJwt" = [])),
    params(
        ("id" = i64, Path, description = "User id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    request_body = AdjustBody,
    responses(
        (status = 201, description = "Adjusted", body = Adjusted),
        (status = 200, description = "Replayed: this Idempotency-Key was used before", body = Adjusted),
        (status = 400, description = "Invalid amount or reason", body = PanelError),
        (status = 401, description = "Missing or invalid access token", body = PanelError),
        (status = 402, description = "A charge larger than the balance", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
        (status = 404, description = "No such user", body = PanelError),
        (status = 409, description = "Idempotency-Key reused with another amount", body = PanelError),
    ))]
async fn adjust_credits(
    State(state): State<AppState>,
    admin: Admin<Panel>,
    PathId(id, _): PathId<Panel>,
    headers: HeaderMap,
    Body(body, _): Body<Panel, AdjustBody>,
) -> Result<impl IntoResponse> {
    let request = pb::AdjustCreditsRequest {
        user_id: id,
        amount: body.amount,
        reason: body.reason,
        reference: header_text(&headers, "idempotency-key").map(str::to_owned),
        allow_debt: false,
    };
    let reply = state
        .identity()
        .adjust_credits(admin.principal.caller().request(request))
        .await?
        .into_inner();
    let entry = reply.entry.unwrap_or_default();
    let status = if reply.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let balance = entry.balance_after;
    Ok((
        status,
        Json(Adjusted {
            entry: LedgerLine::from(entry),
            balance,
            replayed: reply.replayed,
        }),
    ))
}
