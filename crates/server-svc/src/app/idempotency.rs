//! Idempotency keys: a call made again with the same key and the same request returns the
//! first reply and does nothing again; with a different request it is refused; while the
//! first still runs, the repeat waits for its reply.

use std::future::Future;
use std::time::Duration;

use platform::grpc::Caller;
use sha2::{Digest, Sha256};

use super::{App, now_ms};
use crate::error::{Result, ServerError};
use crate::store;

/// How long a repeat waits for the first request's reply before giving up (within the
/// gateway's own call time-out).
const WAIT: Duration = Duration::from_secs(20);
/// A key still without a reply after this long belongs to a request that died: it is freed.
const ABANDONED_MS: i64 = 10 * 60 * 1000;
const POLL: Duration = Duration::from_millis(50);

/// What of a reply may be shown again. A root password is shown once, in the reply that
/// generated it: a replay answers without it.
pub trait Replayable: prost::Message + Default {
    #[must_use]
    fn for_replay(&self) -> Self;
}

impl Replayable for proto::server::v1::ServerReply {
    fn for_replay(&self) -> Self {
        Self {
            root_password: String::new(),
            ..self.clone()
        }
    }
}

impl App {
    /// Runs `run` once per (caller, key); `op` and `request` identify what was asked. A
    /// repeat gets the first reply as [`Replayable::for_replay`] shows it.
    pub async fn idempotent<R, F, Fut>(
        &self,
        caller: Caller,
        key: Option<&str>,
        op: &str,
        request: &impl prost::Message,
        run: F,
    ) -> Result<R>
    where
        R: Replayable,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<R>>,
    {
        let Some(key) = key else {
            return run().await;
        };
        let key_ok = (1..=255).contains(&key.len()) && key.chars().all(|c| c.is_ascii_graphic());
        if !key_ok {
            return Err(ServerError::invalid(
                "Idempotency-Key",
                "the Idempotency-Key header must be 1-255 visible ASCII characters",
            ));
        }
        let scope = format!("{}:{key}", caller.user_id);
        let mut hasher = Sha256::new();
        hasher.update(op.as_bytes());
        hasher.update([0]);
        hasher.update(request.encode_to_vec());
        let hash = hex::encode(hasher.finalize());

        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if store::idempotency::claim(&self.db, &scope, &hash, now_ms()).await? {
                return self.run_claimed(&scope, run).await;
            }
            let Some(row) = store::idempotency::find(&self.db, &scope).await? else {
                // The first request failed and let the key go: claim it again.
                continue;
            };
            if row.request_hash != hash {
                return Err(ServerError::IdempotencyMismatch);
            }
            if let Some(reply) = row.reply {
                // Stored sealed all the same: a reply is the customer's business alone.
                let bytes = self.sealer.open(&reply).map_err(ServerError::Internal)?;
                return R::decode(bytes.as_slice()).map_err(|e| ServerError::Internal(e.into()));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServerError::IdempotencyInProgress);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn run_claimed<R, F, Fut>(&self, scope: &str, run: F) -> Result<R>
    where
        R: Replayable,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<R>>,
    {
        match run().await {
            Ok(reply) => {
                let sealed = self
                    .sealer
                    .seal(&reply.for_replay().encode_to_vec())
                    .map_err(ServerError::Internal)?;
                store::idempotency::keep_reply(&self.db, scope, sealed).await?;
                Ok(reply)
            }
            Err(error) => {
                // A refused or failed request changed nothing: the key may be used again.
                store::idempotency::release(&self.db, scope).await?;
                Err(error)
            }
        }
    }

    /// Forgets finished keys older than the configured time to live, and keys whose first
    /// request died before it answered.
    pub async fn expire_idempotency_keys(&self) -> Result<u64> {
        let now = now_ms();
        let cutoff = now
            - i64::try_from(self.config.idempotency_ttl_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX);
        Ok(store::idempotency::expire(&self.db, cutoff, now - ABANDONED_MS).await?)
    }
}
