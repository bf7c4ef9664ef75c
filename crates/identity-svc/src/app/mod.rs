//! identity-svc's rules: who may create whom, how sessions rotate, how credentials resolve to
//! a principal, how credits move. Transport-agnostic; persistence through sea-orm entities.

mod authenticate;
mod credentials;
mod credits;
pub mod jwt;
pub mod password;
mod service_accounts;
mod sessions;
mod users;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use platform::auth::{Caller, Minter};
use sea_orm::{DatabaseConnection, DbErr, SqlErr, TransactionTrait};
use secrecy::ExposeSecret;

use self::jwt::Signer;
use crate::config::{AdminBootstrap, Config};
use crate::domain::credential::{
    self as secret, CVM_PRIVATE_PREFIX, CVM_PUBLIC_PREFIX, REFRESH_PREFIX,
};
use crate::domain::validate::{self, Email, Username};
use crate::error::{IdentityError, Result};
use crate::store;
use crate::store::entity::{credential, ledger, session, user};
use crate::store::migration::Migrator;
pub use proto::ids::UserId;

pub use crate::domain::account::{
    Credential, CredentialKind, LedgerEntry, ROLE_ADMIN, ROLE_USER, ServiceAccount, User,
};

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
    pub user: User,
}

pub struct Adjustment {
    pub entry: LedgerEntry,
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
        let existing_admin = store::users::first_admin(&self.db).await?;
        let admin_user = match (existing_admin, &admin.email, &admin.password) {
            (Some(found), _, _) => Some(found),
            (None, Some(email), Some(password)) => {
                let inserted = self
                    .insert_user(NewUser {
                        username: admin.username.clone(),
                        email: email.clone(),
                        password: password.expose_secret().to_owned(),
                        admin: true,
                        skyport_id: None,
                    })
                    .await;
                match inserted {
                    Ok(created) => {
                        tracing::info!(username = %created.username, "created the first administrator");
                        Some(created)
                    }
                    // Replicas starting together: another one made it a moment ago.
                    Err(IdentityError::Conflict(_)) => Some(
                        store::users::first_admin(&self.db)
                            .await?
                            .context("creating the first administrator: the user exists but is no administrator")?,
                    ),
                    Err(e) => anyhow::bail!("creating the first administrator: {e}"),
                }
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
            if store::credentials::by_lookup(&self.db, &lookup)
                .await?
                .is_none()
            {
                let row = store::credentials::NewRow {
                    user_id: owner.id,
                    kind: CredentialKind::SkyportApiKey.as_str(),
                    name: "configured key".to_owned(),
                    lookup: lookup.clone(),
                    secret_digest: lookup.clone(),
                    hint: secret::hint(key),
                    public_token: None,
                    client_api: false,
                };
                match store::credentials::insert(&self.db, row, now()).await {
                    Ok(_) => tracing::info!("registered the configured Skyport API key"),
                    // Another replica registered it meanwhile.
                    Err(_)
                        if store::credentials::by_lookup(&self.db, &lookup)
                            .await?
                            .is_some() => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
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
