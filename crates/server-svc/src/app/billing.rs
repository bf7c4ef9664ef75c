//! Billing: running servers are charged one period (an hour by default) at a time from the
//! owner's ledger, each charge idempotent by its period. When the balance does not cover a
//! period the owner gets one payment reminder, and after the grace period the server is
//! suspended (stopped, power actions refused until an administrator unsuspends it).

use std::sync::Arc;
use std::time::Duration;

use platform::grpc::{Caller, Reason};
use proto::identity::v1 as idpb;
use proto::node::v1 as nodepb;

use super::servers::ActParams;
use super::{App, events, now_ms};
use crate::domain::state::{Action, ServerState};
use crate::error::Result;
use crate::store;
use crate::store::entity::server;

/// What one billing pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BillingPass {
    pub charged: usize,
    pub reminded: usize,
    pub suspended: usize,
}

impl App {
    /// Runs the billing pass every tick until shutdown, on one replica at a time (the
    /// `server-svc:billing` lease); each period's charge is idempotent besides.
    /// Billing, reconciliation and idempotency-key expiry, every `billing_tick_secs` on
    /// the one replica that holds the billing lease, until shutdown.
    pub fn billing(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        let app = self.clone();
        async move {
            let every = Duration::from_secs(app.config.billing_tick_secs.max(1));
            let leases = app.leases.clone();
            let shutdown = app.shutdown.clone();
            leases
                .run_singleton("server-svc:billing", every, shutdown, || {
                    let app = app.clone();
                    async move { app.billing_tick().await }
                })
                .await;
        }
    }

    async fn billing_tick(self: &Arc<Self>) {
        if let Err(error) = self.reconcile_unknown().await {
            tracing::warn!(error = %platform::grpc::chain(&error), "reconciling unknown servers failed");
        }
        if let Err(error) = self.bill_once().await {
            tracing::warn!(error = %platform::grpc::chain(&error), "billing pass failed; retrying next tick");
        }
        if let Err(error) = self.warn_low_balances().await {
            tracing::warn!(error = %platform::grpc::chain(&error), "checking balances failed; retrying next tick");
        }
        if let Err(error) = self.expire_idempotency_keys().await {
            tracing::warn!(error = %platform::grpc::chain(&error), "expiring idempotency keys failed");
        }
    }

    /// Charges every period that is due, once.
    pub async fn bill_once(self: &Arc<Self>) -> Result<BillingPass> {
        let now = now_ms();
        let period = self.billing_period_ms();
        let due = store::servers::due(&self.db, now).await?;
        let mut pass = BillingPass::default();
        for s in due {
            let state = ServerState::parse(&s.status).unwrap_or(ServerState::Unknown);
            // A period is charged when the server ran at any time in it (or runs now); a
            // server whose node does not answer is not charged for the silence.
            let running = matches!(
                state,
                ServerState::Running
                    | ServerState::Starting
                    | ServerState::Stopping
                    | ServerState::Rebooting
                    | ServerState::Restoring
            );
            let billable = (running || s.ran_in_period)
                && !matches!(state, ServerState::Suspended | ServerState::Unknown);
            if !billable || s.hourly_price == 0 {
                // Not charged: the clock moves on; a debt is not forgotten.
                if !matches!(state, ServerState::Creating | ServerState::Deleting) {
                    self.advance_clock(s.id, s.paid_until, now + period, running)
                        .await?;
                }
                continue;
            }
            let charged = self
                .identity
                .clone()
                .adjust_credits(Caller::SYSTEM.request(idpb::AdjustCreditsRequest {
                    user_id: s.owner_id,
                    amount: -s.hourly_price,
                    reason: format!("server {} ({}): usage", s.id, s.name),
                    reference: Some(format!("server:{}:period:{}", s.uuid, s.paid_until)),
                    allow_debt: false,
                }))
                .await;
            match charged {
                Ok(_) => {
                    self.paid(s.id, s.paid_until, s.paid_until + period, running)
                        .await?;
                    pass.charged += 1;
                }
                Err(status)
                    if platform::grpc::error_reason(&status)
                        == Some(Reason::InsufficientCredits) =>
                {
                    let since = match s.overdue_since {
                        Some(since) => since,
                        None => {
                            let since = self.overdue_episode(s.owner_id).await?.unwrap_or(now);
                            store::servers::set_overdue_since(&self.db, s.id, since).await?;
                            since
                        }
                    };
                    let balance = self.balance_of(s.owner_id).await.unwrap_or(0);
                    events::payment_reminder(&self.db, s.owner_id, since, balance, s.hourly_price)
                        .await?;
                    pass.reminded += 1;
                    let grace = i64::try_from(self.config.suspend_grace_secs.saturating_mul(1000))
                        .unwrap_or(i64::MAX);
                    if now.saturating_sub(since) >= grace
                        && matches!(state, ServerState::Running | ServerState::Stopped)
                    {
                        let suspended = self
                            .act(
                                Caller::SYSTEM,
                                &super::ServerKey::of(&s),
                                Action::Suspend,
                                ActParams {
                                    reason: "payment overdue".to_owned(),
                                    ..ActParams::default()
                                },
                            )
                            .await;
                        if suspended.is_ok() {
                            pass.suspended += 1;
                        }
                    }
                }
                Err(status) => return Err(status.into()),
            }
        }
        Ok(pass)
    }

    /// Reminds each user whose balance covers fewer than `low_balance_days` of their running
    /// servers, once per episode; the episode ends when the balance covers them again.
    /// Users already overdue are reminded as such by [`App::bill_once`]. How many were
    /// reminded (or re-confirmed) this pass.
    pub async fn warn_low_balances(&self) -> Result<usize> {
        let days = self.config.low_balance_days;
        if days == 0 {
            return Ok(0);
        }
        let periods_per_day = (86_400_000 / self.billing_period_ms()).max(1);
        let mut low = 0;
        for (owner_id, per_period) in store::servers::running_prices(&self.db).await? {
            let balance = self.balance_of(owner_id).await?;
            let per_day = per_period.saturating_mul(periods_per_day).max(1);
            let days_left = u32::try_from(balance.max(0) / per_day).unwrap_or(u32::MAX);
            if days_left >= days {
                store::servers::end_low_balance(&self.db, owner_id).await?;
                continue;
            }
            let txn = platform::db::begin_write(&self.db).await?;
            let since = store::servers::low_balance_since(&txn, owner_id, now_ms()).await?;
            events::low_balance(&txn, owner_id, since, balance, per_period, days_left).await?;
            txn.commit().await?;
            low += 1;
        }
        Ok(low)
    }

    /// When the owner's current overdue episode began (the earliest of their servers).
    async fn overdue_episode(&self, owner_id: i64) -> Result<Option<i64>> {
        Ok(store::servers::overdue_since(&self.db, owner_id).await?)
    }

    /// A period was paid: the clock moves on and any debt is settled.
    async fn paid(&self, id: i64, from: i64, to: i64, running: bool) -> Result<()> {
        Ok(store::servers::advance_clock(&self.db, id, from, to, running, true).await?)
    }

    /// A period with nothing to charge: the clock moves on, the debt (if any) stays.
    /// Before a server is deleted: the periods it used and has not paid for are charged now,
    /// taken into debt if the balance does not cover them (a debt blocks new orders), each
    /// with the billing loop's own reference so nothing is charged twice; then its billing
    /// clock stops.
    pub(super) async fn settle(&self, s: &server::Model, prior: ServerState) -> Result<i64> {
        let now = now_ms();
        let period = self.billing_period_ms();
        if s.paid_until == 0 || s.paid_until > now || s.hourly_price == 0 {
            self.stop_clock(s).await?;
            return Ok(0);
        }
        let running = matches!(
            prior,
            ServerState::Running
                | ServerState::Starting
                | ServerState::Stopping
                | ServerState::Rebooting
                | ServerState::Restoring
        );
        // The period due now was used if the server ran in it or runs; while running,
        // every period up to now was.
        let owed = if running {
            ((now - s.paid_until) / period + 1).min(10_000)
        } else if s.ran_in_period || s.overdue_since.is_some() {
            1
        } else {
            0
        };
        let mut charged = 0;
        for i in 0..owed {
            let start = s.paid_until + i * period;
            self.identity
                .clone()
                .adjust_credits(Caller::SYSTEM.request(idpb::AdjustCreditsRequest {
                    user_id: s.owner_id,
                    amount: -s.hourly_price,
                    reason: format!("server {} ({}): usage", s.id, s.name),
                    reference: Some(format!("server:{}:period:{start}", s.uuid)),
                    allow_debt: true,
                }))
                .await?;
            charged += s.hourly_price;
        }
        self.stop_clock(s).await?;
        if charged > 0 {
            tracing::info!(
                server = s.id,
                charged,
                "settled the unpaid periods of a deleted server"
            );
        }
        Ok(charged)
    }

    async fn stop_clock(&self, s: &server::Model) -> Result<()> {
        Ok(store::servers::stop_clock(&self.db, s.id, s.paid_until).await?)
    }

    async fn advance_clock(&self, id: i64, from: i64, to: i64, running: bool) -> Result<()> {
        Ok(store::servers::advance_clock(&self.db, id, from, to, running, false).await?)
    }

    /// Asks the node again about servers whose state is `unknown` (their node did not
    /// answer), so they do not stay unknown once it is back.
    pub async fn reconcile_unknown(&self) -> Result<usize> {
        let unknown = store::servers::unknown(&self.db).await?;
        let mut settled = 0;
        for s in unknown {
            let Some(node_id) = s.node_id else { continue };
            let reply = self
                .guests
                .clone()
                .get_guest_state(Caller::SYSTEM.request(nodepb::GuestRef {
                    node_id,
                    name: s.guest_name.clone(),
                }))
                .await;
            let Ok(reply) = reply else { continue };
            let state = match nodepb::PowerState::try_from(reply.into_inner().state) {
                Ok(nodepb::PowerState::Running) => ServerState::Running,
                Ok(nodepb::PowerState::Stopped) => ServerState::Stopped,
                _ => continue,
            };
            // The new state and its event commit together.
            let txn = platform::db::begin_write(&self.db).await?;
            if store::servers::settle_unknown(&txn, s.id, state, now_ms()).await?
                && let Some(updated) = store::servers::find(&txn, s.id).await?
            {
                events::server_event(&txn, events::STATE, &updated, events::TaskFacts::default())
                    .await?;
                settled += 1;
            }
            txn.commit().await?;
        }
        Ok(settled)
    }
}
