//! Placement: find a node for a server and reserve its size there. A reservation is one
//! conditional update of the node's `reserved_*` counters (so concurrent placements can never
//! oversubscribe a node, on SQLite or PostgreSQL) plus a reservation row, in one transaction.

use chrono::Utc;
use proto::ids::NodeId;
use sea_orm::TransactionTrait;

use super::{Nodes, is_unique_violation};
use crate::error::{NodeError, Result};
use crate::store;
use crate::store::entity::{node, reservation};
use crate::store::reservations::Amount;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub cores: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: String,
    pub node_id: i64,
    pub size: Size,
}

impl From<reservation::Model> for Reservation {
    fn from(r: reservation::Model) -> Self {
        Self {
            size: Size {
                cores: u32::try_from(r.cores).unwrap_or(0),
                memory_mb: u64::try_from(r.memory_mb).unwrap_or(0),
                disk_gb: u64::try_from(r.disk_gb).unwrap_or(0),
            },
            id: r.id,
            node_id: r.node_id,
        }
    }
}

fn free_memory(n: &node::Model) -> f64 {
    n.memory_mb as f64 * n.memory_overcommit - n.reserved_memory_mb as f64
}

impl Nodes {
    /// Reserves `size` on the node with the most free memory that is online, healthy or not
    /// yet probed, in `location` (if given), carries every tag in `tags`, and fits after
    /// overcommit. The same reservation id returns the same reservation.
    pub async fn reserve(
        &self,
        id: &str,
        size: Size,
        location: Option<&str>,
        tags: &[String],
        pinned: Option<NodeId>,
    ) -> Result<Reservation> {
        if id.trim().is_empty() || id.len() > 128 {
            return Err(NodeError::invalid(
                "reservation_id",
                "reservation_id must be 1-128 characters",
            ));
        }
        if size.cores == 0 || size.memory_mb == 0 || size.disk_gb == 0 {
            return Err(NodeError::invalid(
                "size",
                "cores, memory and disk must be positive",
            ));
        }
        if let Some(existing) = store::reservations::find(&self.db, id).await? {
            return Ok(existing.into());
        }
        let amount = Amount {
            cores: i64::from(size.cores),
            memory_mb: i64::try_from(size.memory_mb)
                .map_err(|_| NodeError::invalid("size", "memory too large"))?,
            disk_gb: i64::try_from(size.disk_gb)
                .map_err(|_| NodeError::invalid("size", "disk too large"))?,
        };
        let mut candidates: Vec<node::Model> = store::reservations::placeable_nodes(&self.db)
            .await?
            .into_iter()
            .filter(|n| location.is_none_or(|l| n.location == l))
            .filter(|n| pinned.is_none_or(|p| n.id == p.get()))
            .filter(|n| {
                let have: Vec<&str> = n.tags.split(',').collect();
                tags.iter().all(|t| have.contains(&t.as_str()))
            })
            .collect();
        candidates.sort_by(|a, b| free_memory(b).total_cmp(&free_memory(a)));

        for candidate in candidates {
            let txn = self.db.begin().await?;
            if !store::reservations::take(&txn, candidate.id, amount).await? {
                txn.rollback().await?;
                continue;
            }
            let inserted =
                store::reservations::insert(&txn, id, candidate.id, amount, Utc::now()).await;
            return match inserted {
                Ok(row) => {
                    txn.commit().await?;
                    Ok(row.into())
                }
                Err(e) if is_unique_violation(&e) => {
                    // The same reservation id won a race elsewhere: undo ours, return theirs.
                    txn.rollback().await?;
                    store::reservations::find(&self.db, id)
                        .await?
                        .map(Reservation::from)
                        .ok_or(NodeError::Internal(anyhow::anyhow!("reservation vanished")))
                }
                Err(e) => Err(e.into()),
            };
        }
        Err(NodeError::NoCapacity)
    }

    /// Gives a reservation's capacity back. Releasing an unknown id is not an error.
    pub async fn release(&self, id: &str) -> Result<bool> {
        // A reservation never changes, so reading it first is safe; the transaction then
        // starts with a write, which SQLite needs to serialise concurrent releases.
        let Some(row) = store::reservations::find(&self.db, id).await? else {
            return Ok(false);
        };
        let txn = self.db.begin().await?;
        if !store::reservations::delete(&txn, id).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        let amount = Amount {
            cores: row.cores,
            memory_mb: row.memory_mb,
            disk_gb: row.disk_gb,
        };
        store::reservations::give_back(&txn, row.node_id, amount).await?;
        txn.commit().await?;
        Ok(true)
    }
}
