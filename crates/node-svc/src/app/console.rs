//! Console tickets: short-lived, single-use, bound to one user and one guest. Stored as
//! digests in node-svc's database, so any replica can redeem them.

use chrono::{TimeDelta, Utc};
use proto::ids::{NodeId, UserId};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

use super::Nodes;
use crate::error::{NodeError, Result};
use crate::store;

/// How long a ticket may wait to be used.
pub const TICKET_TTL_SECS: u32 = 60;

fn digest(ticket: &str) -> String {
    hex::encode(Sha256::digest(ticket.as_bytes()))
}

/// What a redeemed ticket grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleGrant {
    pub node_id: NodeId,
    pub guest: String,
    pub user_id: UserId,
}

impl Nodes {
    pub async fn issue_console_ticket(
        &self,
        node: NodeId,
        guest: &str,
        user: UserId,
    ) -> Result<String> {
        self.node_by_id(node).await?;
        let (node_id, user_id) = (node.get(), user.get());
        let now = Utc::now();
        // Expired tickets are swept here, so the table stays small.
        store::tickets::sweep(&self.db, now).await?;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let ticket = format!("vct_{}", hex::encode(bytes));
        let expires_at = now + TimeDelta::seconds(i64::from(TICKET_TTL_SECS));
        store::tickets::insert(
            &self.db,
            digest(&ticket),
            node_id,
            guest,
            user_id,
            expires_at,
        )
        .await?;
        Ok(ticket)
    }

    /// Uses a ticket up. Unknown, used and expired tickets are all refused alike.
    pub async fn redeem_console_ticket(&self, ticket: &str) -> Result<ConsoleGrant> {
        if !ticket.starts_with("vct_") || ticket.len() > 100 {
            return Err(NodeError::BadTicket);
        }
        let Some(row) = store::tickets::take(&self.db, &digest(ticket), Utc::now()).await? else {
            return Err(NodeError::BadTicket);
        };
        Ok(ConsoleGrant {
            node_id: NodeId::stored(row.node_id),
            guest: row.guest,
            user_id: UserId::stored(row.user_id),
        })
    }
}
