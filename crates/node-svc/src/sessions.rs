//! Open console sessions: at most so many per user and per server, closed after a spell
//! without input or at the end of their lifetime, and closed when their server stops, is
//! suspended, rebooted or deleted, or when their user logs out.

use proto::ids::{NodeId, UserId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;

use crate::error::{NodeError, Result};

/// Console limits (`console.*` in node-svc's configuration).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default)]
pub struct ConsoleLimits {
    /// Open sessions one user may have across all servers.
    pub max_per_user: usize,
    /// Open sessions on one server.
    pub max_per_server: usize,
    /// A session without input for this long is closed.
    pub idle_timeout_secs: u64,
    /// No session lasts longer.
    pub max_lifetime_secs: u64,
    /// The largest piece of input accepted at once; a larger one closes the session.
    pub max_frame_bytes: usize,
}

impl Default for ConsoleLimits {
    fn default() -> Self {
        Self {
            max_per_user: 4,
            max_per_server: 2,
            idle_timeout_secs: 15 * 60,
            max_lifetime_secs: 8 * 3600,
            max_frame_bytes: 64 * 1024,
        }
    }
}

impl ConsoleLimits {
    pub fn idle(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(self.max_lifetime_secs.max(1))
    }
}

struct Open {
    user_id: UserId,
    node_id: NodeId,
    guest: String,
    close: watch::Sender<bool>,
}

/// The sessions this node-svc holds open.
pub struct Sessions {
    limits: ConsoleLimits,
    open: Mutex<HashMap<u64, Open>>,
    next: AtomicU64,
}

/// One open session; dropping it frees its place.
pub struct Session {
    sessions: Arc<Sessions>,
    id: u64,
    closed: watch::Receiver<bool>,
}

impl Session {
    /// Resolves when the session is closed from outside (its server stopped, its user
    /// logged out).
    pub async fn closed(&mut self) {
        let _ = self.closed.wait_for(|closed| *closed).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(mut open) = self.sessions.open.lock() {
            open.remove(&self.id);
        }
    }
}

impl Sessions {
    pub fn new(limits: ConsoleLimits) -> Self {
        Self {
            limits,
            open: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        }
    }

    pub fn limits(&self) -> ConsoleLimits {
        self.limits
    }

    /// Opens a session for `user_id` on a guest, unless the user or the server has as many
    /// as allowed.
    pub fn open(
        self: &Arc<Self>,
        user_id: UserId,
        node_id: NodeId,
        guest: &str,
    ) -> Result<Session> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| NodeError::Internal(anyhow::anyhow!("console sessions poisoned")))?;
        let by_user = open.values().filter(|o| o.user_id == user_id).count();
        if by_user >= self.limits.max_per_user {
            return Err(NodeError::TooManySessions(format!(
                "at most {} open consoles per user; close one first",
                self.limits.max_per_user
            )));
        }
        let on_server = open
            .values()
            .filter(|o| o.node_id == node_id && o.guest == guest)
            .count();
        if on_server >= self.limits.max_per_server {
            return Err(NodeError::TooManySessions(format!(
                "at most {} open consoles per server; close one first",
                self.limits.max_per_server
            )));
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (close, closed) = watch::channel(false);
        open.insert(
            id,
            Open {
                user_id,
                node_id,
                guest: guest.to_owned(),
                close,
            },
        );
        Ok(Session {
            sessions: self.clone(),
            id,
            closed,
        })
    }

    /// Closes every session on a guest; the number closed.
    pub fn close_guest(&self, node_id: NodeId, guest: &str) -> usize {
        self.close_where(|o| o.node_id == node_id && o.guest == guest)
    }

    /// Closes every session of a user; the number closed.
    pub fn close_user(&self, user_id: UserId) -> usize {
        self.close_where(|o| o.user_id == user_id)
    }

    fn close_where(&self, matches: impl Fn(&Open) -> bool) -> usize {
        let Ok(open) = self.open.lock() else {
            return 0;
        };
        open.values()
            .filter(|o| matches(o))
            .map(|o| {
                let _ = o.close.send(true);
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConsoleLimits {
        ConsoleLimits {
            max_per_user: 2,
            max_per_server: 1,
            ..ConsoleLimits::default()
        }
    }

    #[test]
    fn caps_hold_per_user_and_per_server_and_free_on_drop() {
        let sessions = Arc::new(Sessions::new(limits()));
        let first = sessions
            .open(UserId::stored(7), NodeId::stored(1), "vps-a")
            .expect("first");
        assert!(matches!(
            sessions.open(UserId::stored(8), NodeId::stored(1), "vps-a"),
            Err(NodeError::TooManySessions(_))
        ));
        let _second = sessions
            .open(UserId::stored(7), NodeId::stored(1), "vps-b")
            .expect("another server");
        assert!(matches!(
            sessions.open(UserId::stored(7), NodeId::stored(1), "vps-c"),
            Err(NodeError::TooManySessions(_))
        ));
        drop(first);
        sessions
            .open(UserId::stored(8), NodeId::stored(1), "vps-a")
            .expect("the place is free again");
    }

    #[tokio::test]
    async fn closing_a_guest_or_a_user_reaches_their_sessions() {
        let sessions = Arc::new(Sessions::new(limits()));
        let mut on_a = sessions
            .open(UserId::stored(7), NodeId::stored(1), "vps-a")
            .expect("open");
        let mut on_b = sessions
            .open(UserId::stored(8), NodeId::stored(1), "vps-b")
            .expect("open");
        assert_eq!(sessions.close_guest(NodeId::stored(1), "vps-a"), 1);
        tokio::time::timeout(Duration::from_secs(1), on_a.closed())
            .await
            .expect("closed");
        assert_eq!(sessions.close_user(UserId::stored(8)), 1);
        tokio::time::timeout(Duration::from_secs(1), on_b.closed())
            .await
            .expect("closed");
        assert_eq!(sessions.close_user(UserId::stored(99)), 0);
    }
}
