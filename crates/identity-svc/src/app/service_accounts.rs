//! Service accounts: scoped, revocable credentials for other teams' services that call the
//! gRPC API directly. An administrator creates one for a user; the service trades its key
//! for a caller token (a minute long) for one service at a time.

use std::time::Duration;

use platform::auth::{Caller, Scopes, Service, TOKEN_TTL};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};

use super::{Identity, ROLE_ADMIN, ServiceAccount, now};
use crate::domain::credential as secret;
use crate::domain::validate;
use crate::error::{IdentityError, Result};
use crate::store::entity::{service_account, user};

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
        if user::Entity::find_by_id(owner)
            .one(&self.db)
            .await?
            .is_none()
        {
            return Err(IdentityError::NotFound("user"));
        }
        let active = service_account::Entity::find()
            .filter(service_account::Column::RevokedAt.is_null())
            .count(&self.db)
            .await?;
        if active >= MAX_ACCOUNTS {
            return Err(IdentityError::Conflict(format!(
                "at most {MAX_ACCOUNTS} active service accounts; revoke one first"
            )));
        }
        let key = secret::generate(KEY_PREFIX);
        let row = service_account::ActiveModel {
            user_id: Set(owner),
            name: Set(name),
            scopes: Set(scopes.names().join(" ")),
            key_digest: Set(secret::digest(&key)),
            hint: Set(secret::hint(&key)),
            created_at: Set(now()),
            last_used_at: Set(None),
            revoked_at: Set(None),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok((row.into(), key))
    }

    pub async fn list_service_accounts(&self, caller: Caller) -> Result<Vec<ServiceAccount>> {
        super::require_admin(caller)?;
        let rows = service_account::Entity::find()
            .filter(service_account::Column::RevokedAt.is_null())
            .order_by_asc(service_account::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(ServiceAccount::from).collect())
    }

    /// Revokes an account: it gets no new tokens; those it holds expire within a minute.
    pub async fn revoke_service_account(&self, caller: Caller, id: i64) -> Result<()> {
        super::require_admin(caller)?;
        let done = service_account::Entity::update_many()
            .col_expr(service_account::Column::RevokedAt, Expr::value(now()))
            .filter(service_account::Column::Id.eq(id))
            .filter(service_account::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        if done.rows_affected == 0 {
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
        let row = service_account::Entity::find()
            .filter(service_account::Column::KeyDigest.eq(secret::digest(key)))
            .filter(service_account::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?
            .ok_or(IdentityError::Unauthenticated)?;
        let owner = user::Entity::find_by_id(row.user_id)
            .one(&self.db)
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
        if row
            .last_used_at
            .is_none_or(|last| at - last >= LAST_USED_GRANULARITY)
        {
            let touched = service_account::Entity::update_many()
                .col_expr(service_account::Column::LastUsedAt, Expr::value(at))
                .filter(service_account::Column::Id.eq(row.id))
                .exec(&self.db)
                .await;
            if let Err(e) = touched {
                tracing::warn!(error = %e, "recording a service account's use failed");
            }
        }
        Ok(IssuedToken {
            token,
            ttl: TOKEN_TTL,
        })
    }
}
