//! Idempotency keys: a call made again with the same key and the same request returns the
//! first reply and does nothing again; with a different request it is refused; while the
//! first still runs, the repeat waits for its reply.
//!
//! The first request holds its key by a lease it renews while it runs. A repeat that finds
//! the lease run out (its replica died mid-request) takes the key over: if the dead
//! request's change had committed (its transaction noted the task it made on the key), the
//! repeat answers with that task; otherwise it makes the change itself.

use std::future::Future;
use std::time::Duration;

use platform::grpc::Caller;
use sha2::{Digest, Sha256};

use super::{App, now_ms};
use crate::error::{Result, ServerError};
use crate::store;
use crate::store::idempotency::Claim;

/// How long a repeat waits for the first request's reply before giving up (within the
/// gateway's own call time-out).
const WAIT: Duration = Duration::from_secs(20);
/// How long a claim holds without being renewed: a repeat takes over a key whose claimer
/// has not renewed it for this long.
const LEASE_MS: i64 = 15_000;
/// How often a running request renews its claim.
const RENEW: Duration = Duration::from_secs(5);
/// A key without a reply or a change after this long belongs to a request that died: it is
/// freed. (Claims written before leases existed hold until then.)
const ABANDONED_MS: i64 = 10 * 60 * 1000;
const POLL: Duration = Duration::from_millis(50);

tokio::task_local! {
    /// The key the running request holds, for [`App::record_change`].
    static HELD: Claim;
}

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
    /// repeat gets the first reply as [`Replayable::for_replay`] shows it. `recover` answers
    /// for a request that died after its change committed, from the task that change made
    /// (`None`: the change was undone since, and `run` goes again).
    pub async fn idempotent<R, F, Fut, G, GFut>(
        &self,
        caller: Caller,
        key: Option<&str>,
        op: &str,
        request: &impl prost::Message,
        run: F,
        recover: G,
    ) -> Result<R>
    where
        R: Replayable,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<R>>,
        G: FnOnce(String) -> GFut,
        GFut: Future<Output = Result<Option<R>>>,
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
        let claim = Claim {
            scope: format!("{}:{key}", caller.user_id),
            token: uuid::Uuid::new_v4().simple().to_string(),
        };
        let mut hasher = Sha256::new();
        hasher.update(op.as_bytes());
        hasher.update([0]);
        hasher.update(request.encode_to_vec());
        let hash = hex::encode(hasher.finalize());

        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let now = now_ms();
            if store::idempotency::claim(&self.db, &claim, &hash, now, now + LEASE_MS).await? {
                return self.run_claimed(claim, run).await;
            }
            let Some(row) = store::idempotency::find(&self.db, &claim.scope).await? else {
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
            let lease_end = if row.claimed_until == 0 {
                row.created_at + ABANDONED_MS
            } else {
                row.claimed_until
            };
            if lease_end < now
                && store::idempotency::take_over(&self.db, &row, &claim, now + LEASE_MS).await?
            {
                tracing::info!(op, "taking over an idempotency key whose request died");
                return self.go_on_taken_over(claim, run, recover).await;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServerError::IdempotencyInProgress);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Goes on with a key taken over from a request that died: answers with the task its
    /// change made, or makes the change when it made none (or it was undone since).
    async fn go_on_taken_over<R, F, Fut, G, GFut>(
        &self,
        claim: Claim,
        run: F,
        recover: G,
    ) -> Result<R>
    where
        R: Replayable,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<R>>,
        G: FnOnce(String) -> GFut,
        GFut: Future<Output = Result<Option<R>>>,
    {
        // Read after the take-over: a change committing meanwhile noted its task first.
        let task = store::idempotency::find(&self.db, &claim.scope)
            .await?
            .and_then(|row| row.task_id);
        if let Some(task) = task {
            if let Some(reply) = recover(task).await? {
                self.keep_reply(&claim, &reply).await?;
                return Ok(reply);
            }
            store::idempotency::forget_task(&self.db, &claim).await?;
        }
        self.run_claimed(claim, run).await
    }

    /// Runs the request that holds `claim`, renewing the claim until it answers.
    async fn run_claimed<R, F, Fut>(&self, claim: Claim, run: F) -> Result<R>
    where
        R: Replayable,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<R>>,
    {
        let renewing = async {
            loop {
                tokio::time::sleep(RENEW).await;
                match store::idempotency::renew(&self.db, &claim, now_ms() + LEASE_MS).await {
                    Ok(true) => {}
                    Ok(false) => {
                        // Taken over (this request stalled past its claim): its change, if it
                        // gets that far, will be refused.
                        tracing::warn!("an idempotency key was taken over from a running request");
                        return std::future::pending().await;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "could not renew an idempotency key's claim");
                    }
                }
            }
        };
        let outcome = tokio::select! {
            outcome = HELD.scope(claim.clone(), run()) => outcome,
            () = renewing => unreachable!("renewing never ends"),
        };
        match outcome {
            Ok(reply) => {
                self.keep_reply(&claim, &reply).await?;
                Ok(reply)
            }
            Err(error) => {
                // Refused or failed before its change committed: the key may be used again.
                // After it (a failure reading the reply), a repeat answers from the task.
                store::idempotency::release(&self.db, &claim).await?;
                Err(error)
            }
        }
    }

    async fn keep_reply<R: Replayable>(&self, claim: &Claim, reply: &R) -> Result<()> {
        let sealed = self
            .sealer
            .seal(&reply.for_replay().encode_to_vec())
            .map_err(ServerError::Internal)?;
        store::idempotency::keep_reply(&self.db, claim, sealed).await?;
        Ok(())
    }

    /// Notes on the running request's key, in the transaction of its change, the task that
    /// change makes; a no-op without a key. Refused when another request took the key over
    /// meanwhile: the transaction must then roll back, so the change is made once (that
    /// request answers for the key; this one is told the key is busy).
    pub(super) async fn record_change<C: sea_orm::ConnectionTrait>(
        txn: &C,
        task_id: &str,
    ) -> Result<()> {
        let Ok(claim) = HELD.try_with(Claim::clone) else {
            return Ok(());
        };
        if store::idempotency::record_task(txn, &claim, task_id).await? {
            Ok(())
        } else {
            Err(ServerError::IdempotencyInProgress)
        }
    }

    /// Takes back what [`App::record_change`] noted, once the change is undone (a create
    /// refused before its reply), in the transaction that undoes it where there is one: the
    /// key is then given back like any refused request's.
    pub(super) async fn forget_change<C: sea_orm::ConnectionTrait>(db: &C) -> Result<()> {
        if let Ok(claim) = HELD.try_with(Claim::clone) {
            store::idempotency::forget_task(db, &claim).await?;
        }
        Ok(())
    }

    /// Forgets finished keys older than the configured time to live, and keys whose first
    /// request died before it changed anything.
    pub async fn expire_idempotency_keys(&self) -> Result<u64> {
        let now = now_ms();
        let cutoff = now
            - i64::try_from(self.config.idempotency_ttl_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX);
        Ok(store::idempotency::expire(&self.db, cutoff, now - ABANDONED_MS).await?)
    }
}
