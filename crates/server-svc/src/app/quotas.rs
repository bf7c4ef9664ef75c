//! Per-user quotas: how many servers, vCPUs, MB of memory and IPv4 addresses a user may
//! hold at once. Defaults come from configuration; an administrator may give a user their
//! own. A create checks them in its own transaction, queued behind the user's other creates.

use platform::grpc::Caller;
use sea_orm::ConnectionTrait;

use super::{App, UserId, now_ms};
use crate::config::QuotaDefaults;
use crate::error::{Result, ServerError};
use crate::store;

/// What a user may hold, and what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaView {
    pub user_id: i64,
    pub limits: QuotaDefaults,
    pub used: QuotaDefaults,
    pub custom: bool,
}

/// What an order or a resize adds to what the user holds.
#[derive(Debug, Clone, Copy)]
pub struct Want {
    /// 1 for a new server (and its address), 0 for a resize.
    pub servers: u32,
    pub cores: u32,
    pub memory_mb: u64,
}

fn clamp_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn clamp_u64(v: i64) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}

impl App {
    /// A user's quota and use: users their own, administrators anyone's.
    /// `None`: the caller's own.
    pub async fn quota(&self, caller: Caller, user: Option<UserId>) -> Result<QuotaView> {
        let user_id = target(caller, user)?;
        let limits = self.limits_of(&self.db, user_id).await?;
        let used = used_by(&self.db, user_id).await?;
        Ok(QuotaView {
            user_id,
            limits: limits.0,
            used,
            custom: limits.1,
        })
    }

    /// Sets a user's own limits, or (with `None`) returns them to the defaults.
    pub async fn set_quota(
        &self,
        caller: Caller,
        user: UserId,
        limits: Option<QuotaDefaults>,
    ) -> Result<QuotaView> {
        if !caller.admin {
            return Err(ServerError::Forbidden("administrators only"));
        }
        let user_id = user.get();
        let limits_row = limits.unwrap_or(self.config.quota);
        let row = store::quotas::Limits {
            servers: i64::from(limits_row.servers),
            cores: i64::from(limits_row.cores),
            memory_mb: i64::try_from(limits_row.memory_mb).unwrap_or(i64::MAX),
            addresses: i64::from(limits_row.addresses),
        };
        store::quotas::put(&self.db, user_id, row, limits.is_some(), now_ms()).await?;
        self.quota(caller, Some(user)).await
    }

    /// Within a create's (or a resize's) transaction: waits for the user's other creates
    /// and resizes (a lock on their quota row), then refuses if `want` more would exceed
    /// any limit.
    pub(super) async fn check_quota<C: ConnectionTrait>(
        &self,
        txn: &C,
        user_id: i64,
        want: Want,
    ) -> Result<()> {
        store::quotas::lock(txn, user_id, now_ms()).await?;
        let (limits, _) = self.limits_of(txn, user_id).await?;
        let used = used_by(txn, user_id).await?;
        let over = if used.servers.saturating_add(want.servers) > limits.servers {
            Some(format!("at most {} servers", limits.servers))
        } else if used.cores.saturating_add(want.cores) > limits.cores {
            Some(format!("at most {} vCPUs", limits.cores))
        } else if used.memory_mb.saturating_add(want.memory_mb) > limits.memory_mb {
            Some(format!("at most {} MB of memory", limits.memory_mb))
        } else if used.addresses.saturating_add(want.servers) > limits.addresses {
            Some(format!("at most {} IPv4 addresses", limits.addresses))
        } else {
            None
        };
        match over {
            Some(what) => Err(ServerError::QuotaExceeded(format!(
                "{what} per user; delete a server or ask for a higher quota"
            ))),
            None => Ok(()),
        }
    }

    async fn limits_of<C: ConnectionTrait>(
        &self,
        db: &C,
        user_id: i64,
    ) -> Result<(QuotaDefaults, bool)> {
        Ok(match store::quotas::custom(db, user_id).await? {
            Some(row) => (
                QuotaDefaults {
                    servers: clamp_u32(row.servers),
                    cores: clamp_u32(row.cores),
                    memory_mb: clamp_u64(row.memory_mb),
                    addresses: clamp_u32(row.addresses),
                },
                true,
            ),
            _ => (self.config.quota, false),
        })
    }
}

/// The user themselves, or (administrators) anyone.
fn target(caller: Caller, user: Option<UserId>) -> Result<i64> {
    match user.map(UserId::get) {
        None => Ok(caller.user_id),
        Some(id) if id == caller.user_id || caller.admin => Ok(id),
        Some(_) => Err(ServerError::NotFound("user")),
    }
}

/// What a user's live servers hold: each counts one server and one IPv4 address. (A user
/// holds few servers; they are summed here rather than in SQL, where PostgreSQL's SUM of a
/// BIGINT is a NUMERIC.)
async fn used_by<C: ConnectionTrait>(db: &C, user_id: i64) -> Result<QuotaDefaults> {
    let sizes = store::quotas::sizes_of(db, user_id).await?;
    let servers = u32::try_from(sizes.len()).unwrap_or(u32::MAX);
    Ok(QuotaDefaults {
        servers,
        cores: sizes
            .iter()
            .fold(0u32, |sum, (c, _)| sum.saturating_add(clamp_u32(*c))),
        memory_mb: sizes
            .iter()
            .fold(0u64, |sum, (_, m)| sum.saturating_add(clamp_u64(*m))),
        addresses: servers,
    })
}
