//! The Skyport dialect (seed 001): `x-api-key` (an administrator's key), errors as
//! `{"error": ...}`. Users now; instances, images and nodes arrive with their services.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use proto::identity::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Dialect, DialectKind, header_text};
use crate::auth::Credential;
use crate::error::{ApiError, Failure};
use crate::extract::{Auth, Body};
use crate::state::AppState;

pub struct Skyport;

impl Dialect for Skyport {
    const KIND: DialectKind = DialectKind::Skyport;

    fn credential(headers: &HeaderMap) -> Option<Credential> {
        header_text(headers, "x-api-key").map(|k| Credential::SkyportApiKey(k.to_owned()))
    }

    fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "API key is missing or invalid")
    }
}

type Result<T> = std::result::Result<T, Failure<Skyport>>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(get_user))
        .routes(routes!(create_user))
}

/// A user as Skyport clients know it. Never carries the password hash.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkyportUser {
    /// The Skyport string id (client-supplied at creation, or generated).
    user_id: String,
    username: String,
    email: String,
    admin: bool,
}

impl From<pb::User> for SkyportUser {
    fn from(u: pb::User) -> Self {
        Self {
            admin: u.role == i32::from(pb::Role::Admin),
            user_id: u.skyport_id,
            username: u.username,
            email: u.email,
        }
    }
}

/// Skyport's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct SkyportError {
    error: String,
}

/// List every user.
#[utoipa::path(get, path = "/api/users", tag = "skyport",
    security(("skyportApiKey" = [])),
    responses(
        (status = 200, description = "Every user", body = [SkyportUser]),
        (status = 401, description = "API key missing or invalid", body = SkyportError),
    ))]
async fn list_users(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
) -> Result<Json<Vec<SkyportUser>>> {
    let reply = state
        .identity()
        .list_users(auth.principal.caller().request(pb::ListUsersRequest {}))
        .await?
        .into_inner();
    Ok(Json(
        reply.users.into_iter().map(SkyportUser::from).collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct GetUserBody {
    /// `email` or `username`.
    #[serde(rename = "type")]
    kind: Option<String>,
    value: Option<String>,
}

/// Find a user by email or username. Answers 201 on success, as Skyport documents.
#[utoipa::path(post, path = "/api/getUser", tag = "skyport",
    security(("skyportApiKey" = [])),
    request_body = GetUserBody,
    responses(
        (status = 201, description = "The user", body = SkyportUser),
        (status = 400, description = "Missing or invalid parameters, or no such user", body = SkyportError),
        (status = 401, description = "API key missing or invalid", body = SkyportError),
    ))]
async fn get_user(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
    Body(body, _): Body<Skyport, GetUserBody>,
) -> Result<impl IntoResponse> {
    use pb::get_user_request::By;
    let value = body
        .value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 254)
        .ok_or_else(|| ApiError::invalid("value", "value is required"))?;
    let by = match body.kind.as_deref() {
        Some("email") => By::Email(value),
        Some("username") => By::Username(value),
        _ => return Err(ApiError::invalid("type", "type must be 'email' or 'username'").into()),
    };
    let reply = state
        .identity()
        .get_user(
            auth.principal
                .caller()
                .request(pb::GetUserRequest { by: Some(by) }),
        )
        .await
        .map_err(|status| match status.code() {
            tonic::Code::NotFound => ApiError::bad_request("user not found"),
            _ => ApiError::from_status(&status),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(SkyportUser::from(reply.into_inner())),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateUserBody {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
    /// Optional Skyport id; generated when absent.
    user_id: Option<String>,
    /// Whether the user is an administrator: `true`/`false` (strings accepted too).
    #[schema(value_type = Option<bool>)]
    admin: Option<serde_json::Value>,
}

/// Create a user.
#[utoipa::path(post, path = "/api/auth/create-user", tag = "skyport",
    security(("skyportApiKey" = [])),
    request_body = CreateUserBody,
    responses(
        (status = 201, description = "The new user", body = SkyportUser),
        (status = 400, description = "Missing or invalid parameters", body = SkyportError),
        (status = 401, description = "API key missing or invalid", body = SkyportError),
        (status = 409, description = "A user with this username, email or userId exists", body = SkyportError),
    ))]
async fn create_user(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
    Body(body, _): Body<Skyport, CreateUserBody>,
) -> Result<impl IntoResponse> {
    let (Some(username), Some(email), Some(password)) = (body.username, body.email, body.password)
    else {
        return Err(ApiError::bad_request("username, email and password are required").into());
    };
    let admin = match body.admin {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(serde_json::Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(_) => return Err(ApiError::invalid("admin", "admin must be true or false").into()),
    };
    let request = pb::CreateUserRequest {
        username,
        email,
        password,
        role: if admin {
            pb::Role::Admin
        } else {
            pb::Role::User
        }
        .into(),
        skyport_id: body.user_id,
    };
    let created = state
        .identity()
        .create_user(auth.principal.caller().request(request))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SkyportUser::from(created.into_inner())),
    ))
}
