//! Service accounts: scoped, revocable credentials for other teams' services that call the
//! gRPC API directly. An administrator creates one for a user; the service trades its key
//! for a caller token (a minute long) for one service at a time.

use std::time::Duration;

use super::{Identity, ROLE_ADMIN, ServiceAccount, now};
use crate::domain::credential as secret;
use crate::domain::validate;
use crate::error::{IdentityError, Result};
use crate::store;
use platform::auth::{Caller, Scopes, Service, TOKEN_TTL};

/// Prefix of service account keys, so a leaked one is recognisable.
pub const KEY_PREFIX: &str = "vsa_";
/// Active service accounts in the whole installation.
const MAX_ACCOUNTS: u64 = 1000;
/// `last_used_at` is written at most this often per account.
const LAST_USED_GRANULARITY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// A new account for `user_id` (the calling administrator when `None`) with `scopes`.
pub struct NewServiceAccount<'a> {
    pub name: &'a str,
    pub user_id: Option<super::UserId>,
    pub scopes: &'a [String],
}

/// A caller token and how long it lives.
pub struct IssuedToken {
    pub token: String,
    pub ttl: Duration,
}

impl Identity {
    pub async fn create_service_account(
        &self,
        caller: Caller,
        new: NewServiceAccount<'_>,
    ) -> Result<(ServiceAccount, String)> {
        super::require_admin(caller)?;
        let name = validate::label("name", new.name, 64)?;
        if new.scopes.is_empty() {
            return Err(IdentityError::invalid("scopes", "name at least one scope"));
        }
        let scopes = Scopes::parse(new.scopes.iter().map(String::as_str)).map_err(|unknown| {
            IdentityError::invalid(
                "scopes",
                format!(
                    "unknown scope {unknown:?}; the scopes are {}",
                    Scopes::known().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        let owner = new.user_id.map_or(caller.user_id, super::UserId::get);
        if store::users::by_id(&self.db, owner).await?.is_none() {
            return Err(IdentityError::NotFound("user"));
        }
        let active = store::service_accounts::count_active(&self.db).await?;
        if active >= MAX_ACCOUNTS {
            return Err(IdentityError::Conflict(format!(
                "at most {MAX_ACCOUNTS} active service accounts; revoke one first"
            )));
        }
        let key = secret::generate(KEY_PREFIX);
        let new = store::service_accounts::NewRow {
            user_id: owner,
            name,
            scopes: scopes.names().join(" "),
            key_digest: secret::digest(&key),
            hint: secret::hint(&key),
        };
        let row = store::service_accounts::insert(&self.db, new, now()).await?;
        Ok((row.into(), key))
    }

    pub async fn list_service_accounts(&self, caller: Caller) -> Result<Vec<ServiceAccount>> {
        super::require_admin(caller)?;
        let rows = store::service_accounts::active(&self.db).await?;
        Ok(rows.into_iter().map(ServiceAccount::from).collect())
    }

    /// Revokes an account: it gets no new tokens; those it holds expire within a minute.
    pub async fn revoke_service_account(&self, caller: Caller, id: i64) -> Result<()> {
        super::require_admin(caller)?;
        if !store::service_accounts::revoke(&self.db, id, now()).await? {
            return Err(IdentityError::NotFound("service account"));
        }
        Ok(())
    }

    /// Trades an account key for a caller token for `audience`, acting for the account's
    /// user with that user's current role and the account's scopes.
    pub async fn issue_caller_token(&self, key: &str, audience: &str) -> Result<IssuedToken> {
        let audience = Service::parse(audience)
            .filter(|s| *s != Service::Gateway)
            .ok_or_else(|| {
                IdentityError::invalid(
                    "audience",
                    "audience must be one of identity, server, node, snapshot, monitor, notify",
                )
            })?;
        if !key.starts_with(KEY_PREFIX) || key.len() > 128 {
            return Err(IdentityError::Unauthenticated);
        }
        let row = store::service_accounts::by_key(&self.db, secret::digest(key))
            .await?
            .ok_or(IdentityError::Unauthenticated)?;
        let owner = store::users::by_id(&self.db, row.user_id)
            .await?
            .ok_or(IdentityError::Unauthenticated)?;
        let scopes = Scopes::parse(row.scopes.split_whitespace())
            .map_err(|_| IdentityError::Internal(anyhow::anyhow!("stored scopes unreadable")))?;
        let caller = Caller {
            user_id: owner.id,
            admin: owner.role == ROLE_ADMIN,
            service: None,
            scopes,
            account: Some(row.id),
        };
        let token = self
            .minter
            .mint(&caller, audience, TOKEN_TTL)
            .map_err(IdentityError::Internal)?;
        let at = now();
        let due = row
            .last_used_at
            .is_none_or(|last| at - last >= LAST_USED_GRANULARITY);
        if due && let Err(e) = store::service_accounts::touch(&self.db, row.id, at).await {
            tracing::warn!(error = %e, "recording a service account's use failed");
        }
        Ok(IssuedToken {
            token,
            ttl: TOKEN_TTL,
        })
    }
}
