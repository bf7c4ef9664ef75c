//! Service accounts (administrators): scoped, revocable credentials for other teams'
//! services that call the gRPC API directly (docs/grpc.md).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use proto::identity::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Panel, PanelError, Result, StatusReply, timestamp};
use crate::extract::{Admin, Body, PathId};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_accounts, create_account))
        .routes(routes!(revoke_account))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAccountBody {
    /// 1-64 printable characters.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
    /// The user the account acts for; the calling administrator when absent.
    #[schema(minimum = 1)]
    user_id: Option<i64>,
    /// At least one of `servers:read`, `servers:write`, `account:read`, `account:write`,
    /// `nodes:read`, `nodes:write`.
    #[schema(min_items = 1)]
    scopes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccount {
    id: i64,
    name: String,
    user_id: i64,
    scopes: Vec<String>,
    /// A non-secret beginning of the key.
    hint: String,
    created_at: Option<String>,
    last_used_at: Option<String>,
}

impl From<pb::ServiceAccount> for ServiceAccount {
    fn from(a: pb::ServiceAccount) -> Self {
        Self {
            id: a.id,
            name: a.name,
            user_id: a.user_id,
            scopes: a.scopes,
            hint: a.hint,
            created_at: timestamp(a.created_at_ms),
            last_used_at: timestamp(a.last_used_at_ms),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAccount {
    #[serde(flatten)]
    account: ServiceAccount,
    /// The key, shown only here: trade it for caller tokens with `CallerTokens/Issue`.
    key: String,
}

/// Create a service account (administrators). The key is shown once.
#[utoipa::path(post, path = "/api/admin/service-accounts", tag = "service accounts",
    security(("bearerJwt" = [])),
    request_body = NewAccountBody,
    responses(
        (status = 201, description = "Created; the key is in this reply only", body = CreatedAccount),
        (status = 400, description = "Invalid name or scopes", body = PanelError),
        (status = 401, description = "Missing or invalid access token", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
        (status = 404, description = "No such user", body = PanelError),
        (status = 409, description = "Too many active service accounts", body = PanelError),
    ))]
async fn create_account(
    State(state): State<AppState>,
    admin: Admin<Panel>,
    Body(body, _): Body<Panel, NewAccountBody>,
) -> Result<impl IntoResponse> {
    let request = pb::CreateServiceAccountRequest {
        name: body.name,
        user_id: body.user_id.unwrap_or(0),
        scopes: body.scopes,
    };
    let created = state
        .identity()
        .create_service_account(admin.principal.caller().request(request))
        .await?
        .into_inner();
    let account = ServiceAccount::from(created.account.unwrap_or_default());
    Ok((
        StatusCode::CREATED,
        Json(CreatedAccount {
            account,
            key: created.key,
        }),
    ))
}

/// The active service accounts (administrators).
#[utoipa::path(get, path = "/api/admin/service-accounts", tag = "service accounts",
    security(("bearerJwt" = [])),
    responses(
        (status = 200, description = "Active service accounts", body = [ServiceAccount]),
        (status = 401, description = "Missing or invalid access token", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
    ))]
async fn list_accounts(
    State(state): State<AppState>,
    admin: Admin<Panel>,
) -> Result<Json<Vec<ServiceAccount>>> {
    let reply = state
        .identity()
        .list_service_accounts(
            admin
                .principal
                .caller()
                .request(pb::ListServiceAccountsRequest {}),
        )
        .await?
        .into_inner();
    Ok(Json(
        reply
            .accounts
            .into_iter()
            .map(ServiceAccount::from)
            .collect(),
    ))
}

/// Revoke a service account (administrators): it gets no new caller tokens, and those it
/// holds expire within a minute.
#[utoipa::path(delete, path = "/api/admin/service-accounts/{id}", tag = "service accounts",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Service account id", minimum = 1)),
    responses(
        (status = 200, description = "Revoked", body = StatusReply),
        (status = 400, description = "Malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid access token", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
        (status = 404, description = "No such active service account", body = PanelError),
    ))]
async fn revoke_account(
    State(state): State<AppState>,
    admin: Admin<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<StatusReply>> {
    state
        .identity()
        .revoke_service_account(
            admin
                .principal
                .caller()
                .request(pb::RevokeServiceAccountRequest { id }),
        )
        .await?;
    Ok(Json(StatusReply { status: "success" }))
}
