//! The gRPC edge of identity-svc: decode, call `app`, encode. No rules here.

use std::sync::Arc;

use platform::auth::{Caller, Scopes, Service};
use platform::grpc::to_status;
use proto::identity::v1 as pb;
use proto::identity::v1::caller_tokens_server::{
    CallerTokens as CallerTokensRpc, CallerTokensServer,
};
use proto::identity::v1::identity_server::{Identity as IdentityRpc, IdentityServer};
use tonic::{Request, Response, Status};

use crate::app::{
    self, CredentialKind, Identity, NewServiceAccount, NewUser, Presented, UserId, UserLookup,
};
use crate::domain::account::{Credential, LedgerEntry, Role, ServiceAccount, User};
use crate::error::IdentityError;

pub struct IdentityService {
    app: Arc<Identity>,
}

impl IdentityService {
    pub fn new(app: Arc<Identity>) -> Self {
        Self { app }
    }

    pub fn into_server(self) -> IdentityServer<Self> {
        IdentityServer::new(self)
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn status(error: IdentityError) -> Status {
    to_status(&error)
}

/// The services that read users and move credits for their own work.
const ACCOUNT_SERVICES: &[Service] = &[Service::Server];
const USER_READERS: &[Service] = &[Service::Server, Service::Notify];

/// Calls only the gateway makes, for clients it has not authenticated yet.
fn gateway_only<T>(request: &Request<T>) -> Result<(), Status> {
    Caller::required(request)?.require_service(&[Service::Gateway])
}

fn ms(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_millis()
}

fn user_pb(u: User) -> pb::User {
    let role = match u.role {
        Role::Admin => pb::Role::Admin,
        Role::User => pb::Role::User,
    };
    pb::User {
        id: u.id.get(),
        uuid: u.uuid,
        skyport_id: u.skyport_id,
        username: u.username,
        email: u.email,
        role: role.into(),
        created_at_ms: ms(u.created_at),
        updated_at_ms: ms(u.updated_at),
    }
}

fn kind_pb(kind: CredentialKind) -> pb::CredentialKind {
    match kind {
        CredentialKind::AccessToken => pb::CredentialKind::AccessToken,
        CredentialKind::SkyportApiKey => pb::CredentialKind::SkyportApiKey,
        CredentialKind::VpsorgToken => pb::CredentialKind::VpsorgToken,
        CredentialKind::CvmPair => pb::CredentialKind::CvmPair,
    }
}

fn kind_from_pb(raw: i32) -> Result<CredentialKind, Status> {
    match pb::CredentialKind::try_from(raw) {
        Ok(pb::CredentialKind::SkyportApiKey) => Ok(CredentialKind::SkyportApiKey),
        Ok(pb::CredentialKind::VpsorgToken) => Ok(CredentialKind::VpsorgToken),
        Ok(pb::CredentialKind::CvmPair) => Ok(CredentialKind::CvmPair),
        Ok(pb::CredentialKind::AccessToken) => Ok(CredentialKind::AccessToken),
        _ => Err(status(IdentityError::invalid(
            "type",
            "unknown credential type",
        ))),
    }
}

fn credential_pb(c: Credential) -> pb::Credential {
    let kind = c.kind.map_or(pb::CredentialKind::Unspecified, kind_pb);
    pb::Credential {
        id: c.id,
        kind: kind.into(),
        name: c.name,
        hint: c.hint,
        public_token: c.public_token.unwrap_or_default(),
        client_api: c.client_api,
        created_at_ms: ms(c.created_at),
        last_used_at_ms: c.last_used_at.map_or(0, ms),
    }
}

fn entry_pb(e: LedgerEntry) -> pb::LedgerEntry {
    pb::LedgerEntry {
        id: e.id,
        user_id: e.user_id.get(),
        amount: e.amount,
        balance_after: e.balance_after,
        reason: e.reason,
        reference: e.reference.unwrap_or_default(),
        created_at_ms: ms(e.created_at),
    }
}

fn session_pb(s: app::IssuedSession) -> pb::Session {
    pb::Session {
        access_token: s.access_token,
        access_expires_in_secs: i64::try_from(s.access_ttl.as_secs()).unwrap_or(i64::MAX),
        refresh_token: s.refresh_token,
        refresh_expires_in_secs: i64::try_from(s.refresh_ttl.as_secs()).unwrap_or(i64::MAX),
        user: Some(user_pb(s.user)),
    }
}

/// A user a request names, if any (0: the caller); a negative id is nobody.
fn optional_user(id: i64) -> Result<Option<UserId>, Status> {
    match id {
        0 => Ok(None),
        id => UserId::new(id)
            .map(Some)
            .ok_or_else(|| status(IdentityError::NotFound("user"))),
    }
}

#[tonic::async_trait]
impl IdentityRpc for IdentityService {
    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Reply<pb::User> {
        // The gateway registers people who have no account yet; users act as themselves.
        let caller = Caller::required(&request)?;
        let caller = if caller.is_service_in(&[Service::Gateway]) {
            None
        } else {
            // A new account with a password of its choosing is a new credential: no
            // service account may make one (nor, through it, an administrator).
            let user = caller.require_user(Scopes::ACCOUNT_WRITE)?;
            user.require_person()?;
            Some(user)
        };
        let r = request.into_inner();
        let new = NewUser {
            username: r.username,
            email: r.email,
            password: r.password,
            admin: r.role == i32::from(pb::Role::Admin),
            skyport_id: r.skyport_id,
        };
        let created = self.app.create_user(caller, new).await.map_err(status)?;
        Ok(Response::new(user_pb(created)))
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Reply<pb::User> {
        // notify-svc reads a user's address and name to write to them.
        let caller =
            Caller::required(&request)?.user_or_service(Scopes::ACCOUNT_READ, USER_READERS)?;
        let lookup = match request.into_inner().by {
            Some(pb::get_user_request::By::Id(id)) => UserLookup::Id(
                UserId::new(id).ok_or_else(|| status(IdentityError::NotFound("user")))?,
            ),
            Some(pb::get_user_request::By::SkyportId(id)) => UserLookup::SkyportId(id),
            Some(pb::get_user_request::By::Email(email)) => UserLookup::Email(email),
            Some(pb::get_user_request::By::Username(name)) => UserLookup::Username(name),
            None => {
                return Err(status(IdentityError::invalid(
                    "by",
                    "name a user to look up",
                )));
            }
        };
        let found = self.app.get_user(caller, lookup).await.map_err(status)?;
        Ok(Response::new(user_pb(found)))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Reply<pb::ListUsersResponse> {
        let caller = Caller::required(&request)?.require_user(Scopes::ACCOUNT_READ)?;
        let r = request.into_inner();
        let page = platform::page::Page::parse(r.limit, &r.page_token)
            .map_err(|(field, message)| status(IdentityError::invalid(field, message)))?;
        let (users, next_page_token) = self
            .app
            .list_users(caller, page, &r.ids)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.into_iter().map(user_pb).collect(),
            next_page_token,
        }))
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Reply<pb::Session> {
        gateway_only(&request)?;
        let r = request.into_inner();
        let issued = self
            .app
            .login(&r.login, &r.password)
            .await
            .map_err(status)?;
        Ok(Response::new(session_pb(issued)))
    }

    async fn refresh(&self, request: Request<pb::RefreshRequest>) -> Reply<pb::Session> {
        gateway_only(&request)?;
        let issued = self
            .app
            .refresh(&request.into_inner().refresh_token)
            .await
            .map_err(status)?;
        Ok(Response::new(session_pb(issued)))
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Reply<pb::LogoutResponse> {
        gateway_only(&request)?;
        let request = request.into_inner();
        self.app
            .logout(&request.access_token, request.everywhere)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Reply<pb::Principal> {
        use pb::authenticate_request::Credential as C;
        gateway_only(&request)?;
        let presented = match request.into_inner().credential {
            Some(C::AccessToken(t)) => Presented::AccessToken(t),
            Some(C::SkyportApiKey(k)) => Presented::SkyportApiKey(k),
            Some(C::VpsorgToken(t)) => Presented::VpsorgToken(t),
            Some(C::CvmPair(p)) => Presented::CvmPair {
                public: p.public_token,
                private: p.private_token,
            },
            None => return Err(status(IdentityError::Unauthenticated)),
        };
        let p = self.app.authenticate(presented).await.map_err(status)?;
        Ok(Response::new(pb::Principal {
            user_id: p.user_id,
            role: if p.admin {
                pb::Role::Admin
            } else {
                pb::Role::User
            }
            .into(),
            kind: kind_pb(p.kind).into(),
            scopes: p.scopes,
            credential_id: p.credential_id,
        }))
    }

    async fn create_credential(
        &self,
        request: Request<pb::CreateCredentialRequest>,
    ) -> Reply<pb::CreatedCredential> {
        let caller = Caller::required(&request)?.require_user(Scopes::ACCOUNT_WRITE)?;
        caller.require_person()?;
        let r = request.into_inner();
        let kind = kind_from_pb(r.kind)?;
        let (row, secret) = self
            .app
            .create_credential(caller, kind, &r.name, r.client_api)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreatedCredential {
            credential: Some(credential_pb(row)),
            secret,
        }))
    }

    async fn list_credentials(
        &self,
        request: Request<pb::ListCredentialsRequest>,
    ) -> Reply<pb::ListCredentialsResponse> {
        let caller = Caller::required(&request)?.require_user(Scopes::ACCOUNT_READ)?;
        let user_id = optional_user(request.into_inner().user_id)?;
        let rows = self
            .app
            .list_credentials(caller, user_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListCredentialsResponse {
            credentials: rows.into_iter().map(credential_pb).collect(),
        }))
    }

    async fn revoke_credential(
        &self,
        request: Request<pb::RevokeCredentialRequest>,
    ) -> Reply<pb::RevokeCredentialResponse> {
        let caller = Caller::required(&request)?.require_user(Scopes::ACCOUNT_WRITE)?;
        self.app
            .revoke_credential(caller, request.into_inner().id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RevokeCredentialResponse {}))
    }

    async fn get_balance(&self, request: Request<pb::GetBalanceRequest>) -> Reply<pb::Balance> {
        let caller =
            Caller::required(&request)?.user_or_service(Scopes::ACCOUNT_READ, ACCOUNT_SERVICES)?;
        let user_id = optional_user(request.into_inner().user_id)?;
        let (user, balance) = self.app.balance(caller, user_id).await.map_err(status)?;
        Ok(Response::new(pb::Balance {
            user_id: user.get(),
            balance,
        }))
    }

    async fn adjust_credits(
        &self,
        request: Request<pb::AdjustCreditsRequest>,
    ) -> Reply<pb::AdjustCreditsResponse> {
        let caller =
            Caller::required(&request)?.user_or_service(Scopes::ACCOUNT_WRITE, ACCOUNT_SERVICES)?;
        let r = request.into_inner();
        let done = self
            .app
            .adjust_credits(
                caller,
                UserId::new(r.user_id).ok_or_else(|| status(IdentityError::NotFound("user")))?,
                r.amount,
                &r.reason,
                r.reference.as_deref(),
                r.allow_debt,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AdjustCreditsResponse {
            entry: Some(entry_pb(done.entry)),
            replayed: done.replayed,
        }))
    }

    async fn list_ledger(
        &self,
        request: Request<pb::ListLedgerRequest>,
    ) -> Reply<pb::ListLedgerResponse> {
        let caller =
            Caller::required(&request)?.user_or_service(Scopes::ACCOUNT_READ, ACCOUNT_SERVICES)?;
        let r = request.into_inner();
        let (entries, balance) = self
            .app
            .ledger(caller, optional_user(r.user_id)?, r.limit)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListLedgerResponse {
            entries: entries.into_iter().map(entry_pb).collect(),
            balance,
        }))
    }

    async fn create_service_account(
        &self,
        request: Request<pb::CreateServiceAccountRequest>,
    ) -> Reply<pb::CreatedServiceAccount> {
        let caller = Caller::required(&request)?.require_user(Scopes::ACCOUNT_WRITE)?;
        caller.require_person()?;
        let r = request.into_inner();
        let (row, key) = self
            .app
            .create_service_account(
                caller,
                NewServiceAccount {
                    name: &r.name,
                    user_id: optional_user(r.user_id)?,
                    scopes: &r.scopes,
                },
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreatedServiceAccount {
            account: Some(account_pb(row)),
            key,
        }))
    }

    async fn list_service_accounts(
        &self,
        request: Request<pb::ListServiceAccountsRequest>,
    ) -> Reply<pb::ListServiceAccountsResponse> {
        let caller = Caller::required(&request)?.require_user(Scopes::ACCOUNT_READ)?;
        let rows = self
            .app
            .list_service_accounts(caller)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListServiceAccountsResponse {
            accounts: rows.into_iter().map(account_pb).collect(),
        }))
    }

    async fn revoke_service_account(
        &self,
        request: Request<pb::RevokeServiceAccountRequest>,
    ) -> Reply<pb::RevokeServiceAccountResponse> {
        let caller = Caller::required(&request)?.require_user(Scopes::ACCOUNT_WRITE)?;
        caller.require_person()?;
        self.app
            .revoke_service_account(caller, request.into_inner().id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RevokeServiceAccountResponse {}))
    }
}

fn account_pb(a: ServiceAccount) -> pb::ServiceAccount {
    pb::ServiceAccount {
        id: a.id,
        name: a.name,
        user_id: a.user_id.get(),
        scopes: a.scopes,
        hint: a.hint,
        created_at_ms: ms(a.created_at),
        last_used_at_ms: a.last_used_at.map_or(0, ms),
    }
}

/// `CallerTokens`: the one service without a caller token; the account key authenticates.
pub struct CallerTokensService {
    app: Arc<Identity>,
}

impl CallerTokensService {
    pub fn new(app: Arc<Identity>) -> Self {
        Self { app }
    }

    pub fn into_server(self) -> CallerTokensServer<Self> {
        CallerTokensServer::new(self)
    }
}

#[tonic::async_trait]
impl CallerTokensRpc for CallerTokensService {
    async fn issue(&self, request: Request<pb::IssueCallerTokenRequest>) -> Reply<pb::CallerToken> {
        let r = request.into_inner();
        let issued = self
            .app
            .issue_caller_token(&r.key, &r.audience)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CallerToken {
            token: issued.token,
            expires_in_secs: i64::try_from(issued.ttl.as_secs()).unwrap_or(i64::MAX),
        }))
    }
}
