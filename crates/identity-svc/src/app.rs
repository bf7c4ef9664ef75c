//! identity-svc's rules: who may create whom, how sessions rotate, how credentials resolve to
//! a principal, how credits move. Transport-agnostic; persistence through sea-orm entities.

mod service_accounts;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use platform::auth::{Caller, Minter};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr, TransactionTrait,
};
use secrecy::ExposeSecret;

use crate::config::{AdminBootstrap, Config};
use crate::credential::{self as secret, CVM_PRIVATE_PREFIX, CVM_PUBLIC_PREFIX, REFRESH_PREFIX};
use crate::error::{IdentityError, Result};
use crate::jwt::Signer;
use crate::password;
use crate::store::entity::{
    balance, credential, ledger, login_throttle, refresh_token, session, user,
};
use crate::store::migration::Migrator;
use crate::validate::{self, Email, Username};
pub use proto::ids::UserId;

/// Roles as stored.
pub const ROLE_ADMIN: &str = "admin";
pub const ROLE_USER: &str = "user";

/// Wrong passwords allowed before a login is blocked.
pub const FREE_LOGIN_ATTEMPTS: i32 = 5;
/// The longest a login is blocked.
const MAX_LOGIN_BLOCK: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// How long a login is blocked after `failed` wrong passwords: none for the first few, then
/// one second, doubling with each further one.
fn login_block(failed: i32) -> Option<chrono::TimeDelta> {
    let beyond = failed.checked_sub(FREE_LOGIN_ATTEMPTS)?;
    let secs = 1i64
        .checked_shl(u32::try_from(beyond).ok()?)
        .unwrap_or(i64::MAX);
    Some(chrono::TimeDelta::seconds(
        secs.min(MAX_LOGIN_BLOCK.num_seconds()),
    ))
}

/// Active long-lived credentials one user may hold.
const MAX_CREDENTIALS_PER_USER: u64 = 100;
/// Largest single credit adjustment, in minor units.
const MAX_ADJUSTMENT: i64 = 1_000_000_000_000;
/// `last_used_at` is written at most this often per credential.
const LAST_USED_GRANULARITY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    AccessToken,
    SkyportApiKey,
    VpsorgToken,
    CvmPair,
}

impl CredentialKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::SkyportApiKey => "skyport_api_key",
            Self::VpsorgToken => "vpsorg_token",
            Self::CvmPair => "cvm_pair",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        [
            Self::AccessToken,
            Self::SkyportApiKey,
            Self::VpsorgToken,
            Self::CvmPair,
        ]
        .into_iter()
        .find(|k| k.as_str() == stored)
    }

    fn default_name(self) -> &'static str {
        match self {
            Self::AccessToken => "session",
            Self::SkyportApiKey => "API key",
            Self::VpsorgToken => "API token",
            Self::CvmPair => "token pair",
        }
    }
}

/// A credential presented for authentication.
pub enum Presented {
    AccessToken(String),
    SkyportApiKey(String),
    VpsorgToken(String),
    CvmPair { public: String, private: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub admin: bool,
    pub kind: CredentialKind,
    pub scopes: Vec<String>,
    pub credential_id: String,
}

pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password: String,
    pub admin: bool,
    pub skyport_id: Option<String>,
}

pub enum UserLookup {
    Id(UserId),
    SkyportId(String),
    Email(String),
    Username(String),
}

pub struct IssuedSession {
    pub access_token: String,
    pub access_ttl: Duration,
    pub refresh_token: String,
    pub refresh_ttl: Duration,
    pub user: user::Model,
}

pub struct Adjustment {
    pub entry: ledger::Model,
    pub replayed: bool,
}

pub use service_accounts::NewServiceAccount;

/// Frees an account's password-check slot when dropped.
struct CheckingGuard<'a>(&'a Identity, String);

impl Drop for CheckingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut checking) = self.0.checking.lock() {
            checking.remove(&self.1);
        }
    }
}

pub struct Identity {
    db: DatabaseConnection,
    /// Accounts with a password check running in this process.
    checking: std::sync::Mutex<std::collections::HashSet<String>>,
    signer: Signer,
    refresh_ttl: Duration,
    /// Signs caller tokens for service accounts.
    minter: Arc<Minter>,
    /// Whether people may open their own accounts.
    allow_registration: bool,
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

impl Identity {
    /// Connects, migrates and bootstraps the first administrator.
    pub async fn start(config: &Config, minter: Arc<Minter>) -> anyhow::Result<Self> {
        let jwt_secret = config
            .jwt_secret
            .as_ref()
            .context("jwt_secret is required (set VPS_JWT_SECRET to at least 32 random bytes)")?;
        anyhow::ensure!(
            jwt_secret.expose_secret().len() >= 32,
            "jwt_secret must be at least 32 bytes long"
        );
        anyhow::ensure!(
            config.access_token_ttl_secs > 0,
            "access_token_ttl_secs must be positive"
        );
        anyhow::ensure!(
            config.refresh_token_ttl_secs > 0,
            "refresh_token_ttl_secs must be positive"
        );
        let db = platform::db::connect_and_migrate::<Migrator>(
            &config.database_url,
            config.database_max_connections,
        )
        .await?;
        let identity = Self {
            db,
            signer: Signer::new(
                jwt_secret.expose_secret().as_bytes(),
                Duration::from_secs(config.access_token_ttl_secs),
            ),
            refresh_ttl: Duration::from_secs(config.refresh_token_ttl_secs),
            minter,
            allow_registration: config.allow_registration,
            checking: std::sync::Mutex::new(std::collections::HashSet::new()),
        };
        identity.bootstrap_admin(&config.admin).await?;
        Ok(identity)
    }

    async fn bootstrap_admin(&self, admin: &AdminBootstrap) -> anyhow::Result<()> {
        let existing_admin = user::Entity::find()
            .filter(user::Column::Role.eq(ROLE_ADMIN))
            .order_by_asc(user::Column::Id)
            .one(&self.db)
            .await?;
        let admin_user = match (existing_admin, &admin.email, &admin.password) {
            (Some(found), _, _) => Some(found),
            (None, Some(email), Some(password)) => {
                let created = self
                    .insert_user(NewUser {
                        username: admin.username.clone(),
                        email: email.clone(),
                        password: password.expose_secret().to_owned(),
                        admin: true,
                        skyport_id: None,
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("creating the first administrator: {e}"))?;
                tracing::info!(username = %created.username, "created the first administrator");
                Some(created)
            }
            (None, _, _) => {
                tracing::warn!(
                    "no administrator exists and none is configured (set admin.email and admin.password)"
                );
                None
            }
        };
        if let (Some(key), Some(owner)) = (&admin.api_key, admin_user) {
            let key = key.expose_secret();
            anyhow::ensure!(
                key.len() >= 32,
                "admin.api_key must be at least 32 characters"
            );
            let lookup = secret::digest(key);
            let known = credential::Entity::find()
                .filter(credential::Column::Lookup.eq(lookup.clone()))
                .one(&self.db)
                .await?;
            if known.is_none() {
                credential::ActiveModel {
                    user_id: Set(owner.id),
                    kind: Set(CredentialKind::SkyportApiKey.as_str().to_owned()),
                    name: Set("configured key".to_owned()),
                    lookup: Set(lookup.clone()),
                    secret_digest: Set(lookup),
                    hint: Set(secret::hint(key)),
                    public_token: Set(None),
                    client_api: Set(false),
                    created_at: Set(now()),
                    last_used_at: Set(None),
                    revoked_at: Set(None),
                    ..Default::default()
                }
                .insert(&self.db)
                .await?;
                tracing::info!("registered the configured Skyport API key");
            }
        }
        Ok(())
    }

    // ----- users -------------------------------------------------------------------------

    /// Creates a user. Only an administrator may create another administrator.
    /// Creates an account: for a caller (an administrator, or a user making one for someone
    /// else), or, without one, a person registering themselves while registration is open.
    pub async fn create_user(&self, caller: Option<Caller>, new: NewUser) -> Result<user::Model> {
        if caller.is_none() && !self.allow_registration {
            return Err(IdentityError::Forbidden("registration is closed"));
        }
        if new.admin && !caller.is_some_and(|c| c.admin) {
            return Err(IdentityError::Forbidden(
                "only an administrator may create administrators",
            ));
        }
        self.insert_user(new).await
    }

    async fn insert_user(&self, new: NewUser) -> Result<user::Model> {
        let username = Username::parse(&new.username)?;
        let email = Email::parse(&new.email)?;
        validate::new_password(&new.password)?;
        let skyport_id = match &new.skyport_id {
            Some(id) => validate::skyport_id(id)?,
            None => uuid::Uuid::new_v4().to_string(),
        };
        let taken = user::Entity::find()
            .filter(
                Condition::any()
                    .add(user::Column::Username.eq(username.as_str()))
                    .add(user::Column::Email.eq(email.as_str()))
                    .add(user::Column::SkyportId.eq(skyport_id.as_str())),
            )
            .one(&self.db)
            .await?;
        if let Some(taken) = taken {
            let what = if taken.username == username.as_str() {
                "username"
            } else if taken.email == email.as_str() {
                "email"
            } else {
                "userId"
            };
            return Err(IdentityError::Conflict(format!(
                "a user with this {what} already exists"
            )));
        }
        let password_hash = password::hash(new.password).await?;
        let at = now();
        let txn = self.db.begin().await?;
        let inserted = user::ActiveModel {
            uuid: Set(uuid::Uuid::new_v4().to_string()),
            skyport_id: Set(skyport_id),
            username: Set(username.as_str().to_owned()),
            email: Set(email.as_str().to_owned()),
            role: Set(if new.admin { ROLE_ADMIN } else { ROLE_USER }.to_owned()),
            password_hash: Set(password_hash),
            created_at: Set(at),
            updated_at: Set(at),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        let created = match inserted {
            Ok(created) => created,
            Err(e) if is_unique_violation(&e) => {
                return Err(IdentityError::Conflict(
                    "a user with these details already exists".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        balance::ActiveModel {
            user_id: Set(created.id),
            balance: Set(0),
            updated_at: Set(at),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(created)
    }

    /// A user the caller may see: themselves, or anyone for an administrator. Anything else
    /// is "not found", so ids of other users are not confirmed.
    pub async fn get_user(&self, caller: Caller, lookup: UserLookup) -> Result<user::Model> {
        let filter = match lookup {
            UserLookup::Id(id) => user::Column::Id.eq(id.get()),
            UserLookup::SkyportId(id) => user::Column::SkyportId.eq(id),
            UserLookup::Email(email) => user::Column::Email.eq(email.trim().to_ascii_lowercase()),
            UserLookup::Username(name) => user::Column::Username.eq(name),
        };
        let found = user::Entity::find().filter(filter).one(&self.db).await?;
        match found {
            Some(u) if caller.admin || u.id == caller.user_id => Ok(u),
            _ => Err(IdentityError::NotFound("user")),
        }
    }

    /// A page of users in id order, all of them or only `ids`; the next page's token.
    pub async fn list_users(
        &self,
        caller: Caller,
        page: platform::page::Page,
        ids: &[i64],
    ) -> Result<(Vec<user::Model>, String)> {
        require_admin(caller)?;
        if ids.len() > usize::try_from(platform::page::MAX_LIMIT).unwrap_or(usize::MAX) {
            return Err(IdentityError::invalid("ids", "at most 1000 ids at once"));
        }
        let mut query = user::Entity::find()
            .filter(user::Column::Id.gt(page.after))
            .order_by_asc(user::Column::Id)
            .limit(page.fetch());
        if !ids.is_empty() {
            query = query.filter(user::Column::Id.is_in(ids.iter().copied()));
        }
        Ok(page.finish(query.all(&self.db).await?, |u| u.id))
    }

    // ----- sessions ----------------------------------------------------------------------

    /// Password login with a username or an email address.
    pub async fn login(&self, login: &str, password: &str) -> Result<IssuedSession> {
        let login = login.trim();
        let filter = if login.contains('@') {
            user::Column::Email.eq(login.to_ascii_lowercase())
        } else {
            user::Column::Username.eq(login)
        };
        let found = if login.is_empty() || login.len() > 254 {
            None
        } else {
            user::Entity::find().filter(filter).one(&self.db).await?
        };
        // Wrong passwords are counted per account (per login name when there is no such
        // account, so both behave alike); past a few, no password is checked for a while.
        let throttle_key = match &found {
            Some(user) => format!("user:{}", user.id),
            None => format!("login:{}", secret::digest(&login.to_ascii_lowercase())),
        };
        self.login_allowed(&throttle_key).await?;
        // One password check at a time per account here, so a burst of guesses cannot all
        // pass the check above before the first failures are counted.
        let _checking = self.check_alone(&throttle_key)?;
        let phc = found.as_ref().map(|u| u.password_hash.clone());
        let password_ok =
            password.len() <= 1024 && password::verify(password.to_owned(), phc).await?;
        let user = match found {
            Some(user) if password_ok => user,
            _ => {
                self.login_failed(&throttle_key).await?;
                return Err(IdentityError::Unauthenticated);
            }
        };
        self.login_succeeded(&throttle_key).await?;
        let at = now();
        let session_id = uuid::Uuid::now_v7().to_string();
        let refresh = secret::generate(REFRESH_PREFIX);
        let txn = self.db.begin().await?;
        session::ActiveModel {
            id: Set(session_id.clone()),
            user_id: Set(user.id),
            created_at: Set(at),
            expires_at: Set(at + self.refresh_ttl_delta()),
            revoked_at: Set(None),
        }
        .insert(&txn)
        .await?;
        insert_refresh_token(&txn, &session_id, &refresh, at).await?;
        txn.commit().await?;
        self.issue(user, &session_id, refresh, at)
    }

    /// Claims the one password check an account may have running here at a time.
    fn check_alone(&self, key: &str) -> Result<CheckingGuard<'_>> {
        let mut checking = self
            .checking
            .lock()
            .map_err(|_| IdentityError::Internal(anyhow::anyhow!("login checks poisoned")))?;
        if !checking.insert(key.to_owned()) {
            return Err(IdentityError::TooManyAttempts {
                retry_after: Duration::from_secs(1),
            });
        }
        Ok(CheckingGuard(self, key.to_owned()))
    }

    /// `TooManyAttempts` while a login is blocked after repeated wrong passwords.
    async fn login_allowed(&self, key: &str) -> Result<()> {
        let row = login_throttle::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await?;
        let at = now();
        match row.and_then(|r| r.blocked_until) {
            Some(until) if until > at => Err(IdentityError::TooManyAttempts {
                retry_after: (until - at).to_std().unwrap_or(Duration::from_secs(1)),
            }),
            _ => Ok(()),
        }
    }

    /// Counts a wrong password; from the [`FREE_LOGIN_ATTEMPTS`]th on, the login is blocked
    /// for a time that doubles with each further one, up to [`MAX_LOGIN_BLOCK`].
    async fn login_failed(&self, key: &str) -> Result<()> {
        let at = now();
        // Counted in the database itself (`failed + 1`), so replicas never lose a count.
        login_throttle::Entity::insert(login_throttle::ActiveModel {
            key: Set(key.to_owned()),
            failed: Set(1),
            blocked_until: Set(None),
            updated_at: Set(at),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(login_throttle::Column::Key)
                .value(
                    login_throttle::Column::Failed,
                    sea_orm::sea_query::ExprTrait::add(
                        Expr::col((login_throttle::Entity, login_throttle::Column::Failed)),
                        1,
                    ),
                )
                .value(login_throttle::Column::UpdatedAt, Expr::value(at))
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        let failed = login_throttle::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await?
            .map_or(1, |r| r.failed);
        let blocked_until = login_block(failed).map(|block| at + block);
        if blocked_until.is_some() {
            login_throttle::Entity::update_many()
                .col_expr(
                    login_throttle::Column::BlockedUntil,
                    Expr::value(blocked_until),
                )
                .filter(login_throttle::Column::Key.eq(key))
                .exec(&self.db)
                .await?;
        }
        // Counters nobody has touched for a day are forgotten.
        login_throttle::Entity::delete_many()
            .filter(login_throttle::Column::UpdatedAt.lt(at - chrono::TimeDelta::days(1)))
            .exec(&self.db)
            .await?;
        if blocked_until.is_some() {
            tracing::warn!(failed, "login blocked after repeated wrong passwords");
        }
        Ok(())
    }

    async fn login_succeeded(&self, key: &str) -> Result<()> {
        login_throttle::Entity::delete_by_id(key.to_owned())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Rotates a refresh token. A token used twice means it leaked: its whole session is
    /// revoked.
    pub async fn refresh(&self, presented: &str) -> Result<IssuedSession> {
        let Some(row) = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenDigest.eq(secret::digest(presented)))
            .one(&self.db)
            .await?
        else {
            return Err(IdentityError::Unauthenticated);
        };
        let at = now();
        let session = self.live_session(&row.session_id, at).await?;
        let replacement = secret::generate(REFRESH_PREFIX);
        let txn = self.db.begin().await?;
        let marked = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(at))
            .filter(refresh_token::Column::Id.eq(row.id))
            .filter(refresh_token::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        if marked.rows_affected != 1 {
            txn.rollback().await?;
            tracing::warn!(session = %session.id, "refresh token reused; revoking its session");
            self.revoke_session(&session.id, at).await?;
            return Err(IdentityError::SessionRevoked {
                user_id: session.user_id,
            });
        }
        insert_refresh_token(&txn, &session.id, &replacement, at).await?;
        txn.commit().await?;
        let user = user::Entity::find_by_id(session.user_id)
            .one(&self.db)
            .await?
            .ok_or(IdentityError::Unauthenticated)?;
        self.issue(user, &session.id, replacement, at)
    }

    /// Revokes the session an access token belongs to.
    pub async fn logout(&self, access_token: &str) -> Result<()> {
        let claims = self
            .signer
            .verify(access_token)
            .ok_or(IdentityError::Unauthenticated)?;
        let at = now();
        let session = self.live_session(&claims.sid, at).await?;
        self.revoke_session(&session.id, at).await
    }

    fn issue(
        &self,
        user: user::Model,
        session_id: &str,
        refresh: String,
        at: DateTime<Utc>,
    ) -> Result<IssuedSession> {
        let access_token = self
            .signer
            .issue(user.id, session_id, at.timestamp())
            .map_err(IdentityError::Internal)?;
        Ok(IssuedSession {
            access_token,
            access_ttl: self.signer.ttl(),
            refresh_token: refresh,
            refresh_ttl: self.refresh_ttl,
            user,
        })
    }

    fn refresh_ttl_delta(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std(self.refresh_ttl).unwrap_or(chrono::TimeDelta::days(30))
    }

    async fn live_session(&self, id: &str, at: DateTime<Utc>) -> Result<session::Model> {
        match session::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
        {
            Some(s) if s.revoked_at.is_none() && s.expires_at > at => Ok(s),
            _ => Err(IdentityError::Unauthenticated),
        }
    }

    async fn revoke_session(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(at))
            .filter(session::Column::Id.eq(id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    // ----- authentication ----------------------------------------------------------------

    /// Resolves any credential to a principal, or `Unauthenticated`.
    pub async fn authenticate(&self, presented: Presented) -> Result<Principal> {
        let at = now();
        match presented {
            Presented::AccessToken(token) => {
                let claims = self
                    .signer
                    .verify(&token)
                    .ok_or(IdentityError::Unauthenticated)?;
                let session = self.live_session(&claims.sid, at).await?;
                if claims.user_id() != Some(session.user_id) {
                    return Err(IdentityError::Unauthenticated);
                }
                let user = self.user_by_id(session.user_id).await?;
                Ok(Principal {
                    user_id: user.id,
                    admin: user.role == ROLE_ADMIN,
                    kind: CredentialKind::AccessToken,
                    scopes: vec!["panel".to_owned()],
                    credential_id: session.id,
                })
            }
            Presented::SkyportApiKey(key) => {
                let row = self
                    .credential_by_secret(CredentialKind::SkyportApiKey, &key)
                    .await?;
                let user = self.user_by_id(row.user_id).await?;
                // Skyport keys are administrators' keys; a demoted owner's keys stop working.
                if user.role != ROLE_ADMIN {
                    return Err(IdentityError::Unauthenticated);
                }
                self.touch(&row, at).await;
                Ok(principal(
                    &user,
                    &row,
                    CredentialKind::SkyportApiKey,
                    vec!["skyport".into()],
                ))
            }
            Presented::VpsorgToken(token) => {
                let row = self
                    .credential_by_secret(CredentialKind::VpsorgToken, &token)
                    .await?;
                let user = self.user_by_id(row.user_id).await?;
                self.touch(&row, at).await;
                Ok(principal(
                    &user,
                    &row,
                    CredentialKind::VpsorgToken,
                    vec!["vpsorg".into()],
                ))
            }
            Presented::CvmPair { public, private } => {
                let row = self
                    .active_credential(CredentialKind::CvmPair, &public)
                    .await?;
                if !secret::matches(&private, &row.secret_digest) {
                    return Err(IdentityError::Unauthenticated);
                }
                let user = self.user_by_id(row.user_id).await?;
                self.touch(&row, at).await;
                let mut scopes = vec!["cvm".to_owned()];
                if row.client_api {
                    scopes.push("cvm:client".to_owned());
                }
                Ok(principal(&user, &row, CredentialKind::CvmPair, scopes))
            }
        }
    }

    async fn user_by_id(&self, id: i64) -> Result<user::Model> {
        user::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(IdentityError::Unauthenticated)
    }

    async fn credential_by_secret(
        &self,
        kind: CredentialKind,
        presented: &str,
    ) -> Result<credential::Model> {
        let row = self
            .active_credential(kind, &secret::digest(presented))
            .await?;
        if !secret::matches(presented, &row.secret_digest) {
            return Err(IdentityError::Unauthenticated);
        }
        Ok(row)
    }

    async fn active_credential(
        &self,
        kind: CredentialKind,
        lookup: &str,
    ) -> Result<credential::Model> {
        if lookup.is_empty() || lookup.len() > 512 {
            return Err(IdentityError::Unauthenticated);
        }
        credential::Entity::find()
            .filter(credential::Column::Lookup.eq(lookup))
            .filter(credential::Column::Kind.eq(kind.as_str()))
            .filter(credential::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?
            .ok_or(IdentityError::Unauthenticated)
    }

    /// Records use, at most once a minute per credential; a failure here never fails the call.
    async fn touch(&self, row: &credential::Model, at: DateTime<Utc>) {
        if row
            .last_used_at
            .is_some_and(|last| at - last < LAST_USED_GRANULARITY)
        {
            return;
        }
        let result = credential::Entity::update_many()
            .col_expr(credential::Column::LastUsedAt, Expr::value(at))
            .filter(credential::Column::Id.eq(row.id))
            .exec(&self.db)
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "recording credential use failed");
        }
    }

    // ----- long-lived credentials --------------------------------------------------------

    /// Mints a credential for the caller; the secret is returned once and stored only as a
    /// digest.
    pub async fn create_credential(
        &self,
        caller: Caller,
        kind: CredentialKind,
        name: &str,
        client_api: bool,
    ) -> Result<(credential::Model, String)> {
        let name = if name.trim().is_empty() {
            kind.default_name().to_owned()
        } else {
            validate::label("name", name, 64)?
        };
        if kind == CredentialKind::SkyportApiKey && !caller.admin {
            return Err(IdentityError::Forbidden(
                "only administrators may create Skyport API keys",
            ));
        }
        let active = credential::Entity::find()
            .filter(credential::Column::UserId.eq(caller.user_id))
            .filter(credential::Column::RevokedAt.is_null())
            .count(&self.db)
            .await?;
        if active >= MAX_CREDENTIALS_PER_USER {
            return Err(IdentityError::Conflict(format!(
                "at most {MAX_CREDENTIALS_PER_USER} active credentials per user; revoke one first"
            )));
        }
        let (lookup, secret_value, digest, public_token, client_api) = match kind {
            CredentialKind::SkyportApiKey | CredentialKind::VpsorgToken => {
                let prefix = if kind == CredentialKind::SkyportApiKey {
                    secret::SKYPORT_KEY_PREFIX
                } else {
                    secret::VPSORG_TOKEN_PREFIX
                };
                let value = secret::generate(prefix);
                let digest = secret::digest(&value);
                (digest.clone(), value, digest, None, false)
            }
            CredentialKind::CvmPair => {
                let public = secret::generate(CVM_PUBLIC_PREFIX);
                let private = secret::generate(CVM_PRIVATE_PREFIX);
                let digest = secret::digest(&private);
                (public.clone(), private, digest, Some(public), client_api)
            }
            CredentialKind::AccessToken => {
                return Err(IdentityError::invalid(
                    "type",
                    "access tokens come from login, not from here",
                ));
            }
        };
        let row = credential::ActiveModel {
            user_id: Set(caller.user_id),
            kind: Set(kind.as_str().to_owned()),
            name: Set(name),
            lookup: Set(lookup),
            secret_digest: Set(digest),
            hint: Set(secret::hint(&secret_value)),
            public_token: Set(public_token),
            client_api: Set(client_api),
            created_at: Set(now()),
            last_used_at: Set(None),
            revoked_at: Set(None),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok((row, secret_value))
    }

    pub async fn list_credentials(
        &self,
        caller: Caller,
        user: Option<UserId>,
    ) -> Result<Vec<credential::Model>> {
        let owner = self.target_user(caller, user)?;
        Ok(credential::Entity::find()
            .filter(credential::Column::UserId.eq(owner.get()))
            .filter(credential::Column::RevokedAt.is_null())
            .order_by_asc(credential::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// Revokes one of the caller's credentials (an administrator may revoke anyone's).
    /// Revoking an already revoked credential succeeds.
    pub async fn revoke_credential(&self, caller: Caller, id: i64) -> Result<()> {
        let row = credential::Entity::find_by_id(id).one(&self.db).await?;
        match row {
            Some(row) if caller.admin || row.user_id == caller.user_id => {
                credential::Entity::update_many()
                    .col_expr(credential::Column::RevokedAt, Expr::value(now()))
                    .filter(credential::Column::Id.eq(row.id))
                    .filter(credential::Column::RevokedAt.is_null())
                    .exec(&self.db)
                    .await?;
                Ok(())
            }
            _ => Err(IdentityError::NotFound("token")),
        }
    }

    // ----- credits -----------------------------------------------------------------------

    pub async fn balance(&self, caller: Caller, user: Option<UserId>) -> Result<(UserId, i64)> {
        let owner = self.target_user(caller, user)?;
        let row = balance::Entity::find_by_id(owner.get())
            .one(&self.db)
            .await?
            .ok_or(IdentityError::NotFound("user"))?;
        Ok((owner, row.balance))
    }

    /// Grants (positive) or charges (negative) credits, never below zero unless `allow_debt`
    /// (the control plane charging for what was already used). With a reference the call is
    /// idempotent: a repeat returns the first entry.
    pub async fn adjust_credits(
        &self,
        caller: Caller,
        user: UserId,
        amount: i64,
        reason: &str,
        reference: Option<&str>,
        allow_debt: bool,
    ) -> Result<Adjustment> {
        require_admin(caller)?;
        let user_id = user.get();
        if allow_debt && !caller.is_system() {
            return Err(IdentityError::Forbidden(
                "only the control plane may charge into debt",
            ));
        }
        if amount == 0 || amount.unsigned_abs() > MAX_ADJUSTMENT.unsigned_abs() {
            return Err(IdentityError::invalid(
                "amount",
                format!(
                    "amount must be a non-zero whole number of minor units, at most {MAX_ADJUSTMENT} either way"
                ),
            ));
        }
        let reason = validate::label("reason", reason, 200)?;
        let reference = reference
            .map(|r| validate::label("reference", r, 128))
            .transpose()?;
        if balance::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .is_none()
        {
            return Err(IdentityError::NotFound("user"));
        }
        if let Some(reference) = &reference
            && let Some(entry) = self.entry_by_reference(user_id, reference).await?
        {
            return replay(entry, amount);
        }
        let at = now();
        let txn = self.db.begin().await?;
        // One conditional update: concurrent charges can never take the balance below zero
        // (nor further below it, for a debt).
        let floor = if allow_debt || amount > 0 {
            i64::MIN
        } else {
            -amount
        };
        let updated = balance::Entity::update_many()
            .col_expr(
                balance::Column::Balance,
                sea_orm::sea_query::ExprTrait::add(Expr::col(balance::Column::Balance), amount),
            )
            .col_expr(balance::Column::UpdatedAt, Expr::value(at))
            .filter(balance::Column::UserId.eq(user_id))
            .filter(balance::Column::Balance.gte(floor))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            txn.rollback().await?;
            let (_, balance) = self.balance(caller, Some(user)).await?;
            return Err(IdentityError::InsufficientCredits {
                balance,
                needed: -amount,
            });
        }
        let balance_after = balance::Entity::find_by_id(user_id)
            .one(&txn)
            .await?
            .ok_or(IdentityError::NotFound("user"))?
            .balance;
        let inserted = ledger::ActiveModel {
            user_id: Set(user_id),
            amount: Set(amount),
            balance_after: Set(balance_after),
            reason: Set(reason),
            reference: Set(reference.clone()),
            created_at: Set(at),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        match inserted {
            Ok(entry) => {
                txn.commit().await?;
                Ok(Adjustment {
                    entry,
                    replayed: false,
                })
            }
            Err(e) if is_unique_violation(&e) => {
                // A concurrent call with the same reference won the race.
                txn.rollback().await?;
                let reference = reference.unwrap_or_default();
                let entry = self.entry_by_reference(user_id, &reference).await?.ok_or(
                    IdentityError::Internal(anyhow::anyhow!("ledger reference vanished")),
                )?;
                replay(entry, amount)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn entry_by_reference(
        &self,
        user_id: i64,
        reference: &str,
    ) -> Result<Option<ledger::Model>> {
        Ok(ledger::Entity::find()
            .filter(ledger::Column::UserId.eq(user_id))
            .filter(ledger::Column::Reference.eq(reference))
            .one(&self.db)
            .await?)
    }

    pub async fn ledger(
        &self,
        caller: Caller,
        user: Option<UserId>,
        limit: u32,
    ) -> Result<(Vec<ledger::Model>, i64)> {
        let (owner, balance) = self.balance(caller, user).await?;
        let owner = owner.get();
        let limit = if limit == 0 { 100 } else { limit.min(1000) };
        let entries = ledger::Entity::find()
            .filter(ledger::Column::UserId.eq(owner))
            .order_by_desc(ledger::Column::Id)
            .limit(u64::from(limit))
            .all(&self.db)
            .await?;
        Ok((entries, balance))
    }

    /// The user an operation targets: the caller, or (administrators only) another user.
    fn target_user(&self, caller: Caller, user: Option<UserId>) -> Result<UserId> {
        match user {
            None => Ok(UserId::stored(caller.user_id)),
            Some(id) if id.get() == caller.user_id || caller.admin => Ok(id),
            Some(_) => Err(IdentityError::NotFound("user")),
        }
    }
}

fn replay(entry: ledger::Model, amount: i64) -> Result<Adjustment> {
    if entry.amount != amount {
        return Err(IdentityError::Conflict(
            "this reference was already used for a different amount".to_owned(),
        ));
    }
    Ok(Adjustment {
        entry,
        replayed: true,
    })
}

fn require_admin(caller: Caller) -> Result<()> {
    if caller.admin {
        Ok(())
    } else {
        Err(IdentityError::Forbidden("administrators only"))
    }
}

fn principal(
    user: &user::Model,
    row: &credential::Model,
    kind: CredentialKind,
    scopes: Vec<String>,
) -> Principal {
    Principal {
        user_id: user.id,
        admin: user.role == ROLE_ADMIN,
        kind,
        scopes,
        credential_id: row.id.to_string(),
    }
}

async fn insert_refresh_token<C: sea_orm::ConnectionTrait>(
    db: &C,
    session_id: &str,
    token: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    refresh_token::ActiveModel {
        session_id: Set(session_id.to_owned()),
        token_digest: Set(secret::digest(token)),
        created_at: Set(at),
        used_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}
