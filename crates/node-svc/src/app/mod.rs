//! node-svc's rules: which nodes exist, where a server fits, which address it gets.

pub mod console;
mod placement;
mod pools;
mod registry;
pub mod validate;

use sea_orm::{DatabaseConnection, DbErr, SqlErr};

use platform::crypto::Sealer;

pub use placement::Size;
pub use pools::{NewPool, PoolView, netmask};
pub use registry::{NewNode, NodeState};

pub struct Nodes {
    db: DatabaseConnection,
    sealer: Option<Sealer>,
}

impl Nodes {
    pub fn new(db: DatabaseConnection, sealer: Option<Sealer>) -> Self {
        Self { db, sealer }
    }
}

/// Registry and pool management is for administrators.
fn require_admin(caller: platform::grpc::Caller) -> crate::error::Result<()> {
    if caller.admin {
        Ok(())
    } else {
        Err(crate::error::NodeError::Forbidden("administrators only"))
    }
}

fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
