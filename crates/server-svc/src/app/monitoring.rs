//! What monitor-svc's poll loop tells server-svc and asks of it: the servers on a node, the
//! power state and traffic it saw (a guest that stopped or started behind the platform's
//! back, a month's traffic over its limit), and status reads served from its samples.

use std::sync::Arc;

use platform::grpc::Caller;
use proto::events::v1 as ev;
use proto::monitor::v1 as monpb;
use proto::node::v1 as nodepb;
use proto::server::v1 as pb;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};

use super::servers::ActParams;
use super::{App, ServerKey, events, now_ms};
use crate::domain::catalog::TrafficAction;
use crate::domain::state::{Action, ServerState};
use crate::domain::task::TaskState;
use crate::error::Result;
use crate::store;
use crate::store::entity::server;

/// A server's usage as monitor-svc last sampled it.
#[derive(Debug, Clone)]
pub struct UsageView {
    pub status: ServerState,
    /// A fresh sample exists.
    pub live: bool,
    pub sample: Option<monpb::Sample>,
    pub points: Vec<monpb::Point>,
    pub cores: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
}

impl App {
    /// The server's status and latest sample (and history for `timeframe`), from
    /// monitor-svc: no hypervisor is asked. A stale sample (the node stopped answering)
    /// shows the server `unknown`, unless a task is changing it.
    pub async fn usage(
        &self,
        caller: Caller,
        key: &ServerKey,
        timeframe: monpb::Timeframe,
        cf: monpb::Consolidation,
    ) -> Result<UsageView> {
        let server = self.visible_server(caller, key).await?;
        let status = ServerState::parse(&server.status).unwrap_or(ServerState::Unknown);
        let mut view = UsageView {
            status,
            live: false,
            sample: None,
            points: Vec::new(),
            cores: server.cores,
            memory_mb: server.memory_mb,
            disk_gb: server.disk_gb,
        };
        if server.node_id.is_none() {
            return Ok(view);
        }
        let stats = self
            .monitor
            .clone()
            .get_stats(Caller::SYSTEM.request(monpb::GetStatsRequest {
                server_id: server.id,
                timeframe: timeframe.into(),
                cf: cf.into(),
            }))
            .await;
        let stats = match stats {
            Ok(stats) => stats.into_inner(),
            // Without monitor-svc the status is still the record's; the figures are absent.
            Err(status) => {
                tracing::warn!(error = %status.message(), "monitor-svc did not answer a status read");
                return Ok(view);
            }
        };
        view.points = stats.points;
        view.live = stats.latest.is_some() && !stats.stale;
        let settled = matches!(status, ServerState::Running | ServerState::Stopped);
        // A server never sampled is unknown only once it has had time to be (a new one
        // waits for its node's next cycle).
        let sampled_or_old = stats.latest.is_some() || now_ms() - server.updated_at > 60_000;
        if stats.stale && sampled_or_old && settled {
            view.status = ServerState::Unknown;
        }
        view.sample = stats.latest;
        Ok(view)
    }

    /// monitor-svc only: the live servers placed on `node_id`.
    pub async fn placements(&self, node_id: i64) -> Result<Vec<pb::Placement>> {
        let rows = server::Entity::find()
            .filter(server::Column::NodeId.eq(node_id))
            .filter(server::Column::DeletedAt.is_null())
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|s| pb::Placement {
                server_id: s.id,
                owner_id: s.owner_id,
                guest_name: s.guest_name,
                cores: u32::try_from(s.cores).unwrap_or(1),
                memory_mb: u64::try_from(s.memory_mb).unwrap_or(0),
                disk_gb: u64::try_from(s.disk_gb).unwrap_or(0),
                name: s.name,
                status: ServerState::parse(&s.status)
                    .map_or(pb::ServerStatus::Unspecified, crate::grpc::state_pb)
                    .into(),
            })
            .collect())
    }

    /// monitor-svc only: what one poll of `node_id` saw. Returns how many servers changed
    /// status and how many went over their traffic limit.
    pub async fn observe(
        self: &Arc<Self>,
        node_id: i64,
        observations: Vec<pb::Observation>,
    ) -> Result<(u32, u32)> {
        let (mut changed, mut over) = (0, 0);
        for o in observations {
            let Some(s) = store::servers::find(&self.db, o.server_id).await? else {
                continue;
            };
            if s.deleted_at.is_some() || s.node_id != Some(node_id) {
                continue;
            }
            if self.observe_power(&s, o.observed()).await? {
                changed += 1;
            }
            if self.observe_traffic(&s, &o).await? {
                over += 1;
            }
        }
        Ok((changed, over))
    }

    /// A guest found running or stopped when its server says otherwise changes the server,
    /// but only from a settled status (`running`, `stopped`, `unknown`) and never while a
    /// task is under way: a task's own changes are not "behind the platform's back".
    async fn observe_power(&self, s: &server::Model, observed: pb::ServerStatus) -> Result<bool> {
        let to = match observed {
            pb::ServerStatus::Running => ServerState::Running,
            pb::ServerStatus::Stopped => ServerState::Stopped,
            _ => return Ok(false),
        };
        let Some(from) = ServerState::parse(&s.status) else {
            return Ok(false);
        };
        if from == to
            || !matches!(
                from,
                ServerState::Running | ServerState::Stopped | ServerState::Unknown
            )
        {
            return Ok(false);
        }
        if let Some(task_id) = &s.task_id
            && let Some(task) = store::tasks::find(&self.db, task_id).await?
            && TaskState::parse(&task.state)
                .is_some_and(|t| !matches!(t, TaskState::Succeeded | TaskState::Failed))
        {
            return Ok(false);
        }
        let txn = platform::db::begin_write(&self.db).await?;
        let swapped =
            store::servers::observe_power(&txn, s.id, from, to, s.task_id.as_deref(), now_ms())
                .await?;
        if swapped && let Some(updated) = store::servers::find(&txn, s.id).await? {
            events::server_event(&txn, events::STATE, &updated, events::TaskFacts::default())
                .await?;
        }
        txn.commit().await?;
        if swapped {
            tracing::info!(
                server = s.id,
                from = from.as_str(),
                to = to.as_str(),
                "a guest changed state behind the platform's back"
            );
        }
        Ok(swapped)
    }

    /// Records the month's traffic; the first report over the limit in a month raises the
    /// event and applies the plan's action. A new month lifts a throttle.
    async fn observe_traffic(
        self: &Arc<Self>,
        s: &server::Model,
        o: &pb::Observation,
    ) -> Result<bool> {
        if o.month.is_empty() {
            return Ok(false);
        }
        let (rx, tx) = (
            i64::try_from(o.month_in_bytes).unwrap_or(i64::MAX),
            i64::try_from(o.month_out_bytes).unwrap_or(i64::MAX),
        );
        if rx != s.traffic_in || tx != s.traffic_out {
            store::servers::set_traffic(&self.db, s.id, rx, tx).await?;
        }
        let limit = u64::try_from(s.traffic_limit).unwrap_or(0);
        let over = limit > 0
            && if s.traffic_combined {
                o.month_in_bytes.saturating_add(o.month_out_bytes) > limit
            } else {
                o.month_in_bytes > limit || o.month_out_bytes > limit
            };
        let new_month = !s.traffic_exceeded.is_empty() && s.traffic_exceeded != o.month;
        let acting = over && s.traffic_exceeded != o.month;
        if !new_month && !acting {
            // The common case, every cycle: nothing to do beyond recording the totals.
            return Ok(false);
        }
        let plan = store::catalog::plan(&self.db, s.plan_id).await?;
        let action = plan
            .as_ref()
            .map_or(TrafficAction::None, |p| p.traffic_action);
        let mbit = plan.as_ref().map_or(0, |p| p.throttle_mbit);
        if new_month {
            // A new month: whatever throttle the last one brought ends.
            if action == TrafficAction::Throttle {
                self.limit_network(s, 0).await?;
            }
            store::servers::set_traffic_exceeded(&self.db, s.id, "").await?;
        }
        if !acting {
            return Ok(false);
        }
        // The event and the mark commit together, once per server and month.
        let txn = platform::db::begin_write(&self.db).await?;
        if !store::servers::set_traffic_exceeded(&txn, s.id, &o.month).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        events::traffic_exceeded(
            &txn,
            ev::TrafficExceeded {
                server_id: s.id,
                owner_id: s.owner_id,
                month: o.month.clone(),
                in_bytes: o.month_in_bytes,
                out_bytes: o.month_out_bytes,
                limit_bytes: limit,
                combined: s.traffic_combined,
                action: action.as_str().to_owned(),
                ..ev::TrafficExceeded::default()
            },
        )
        .await?;
        txn.commit().await?;
        tracing::info!(server = s.id, month = %o.month, action = action.as_str(), "traffic over the limit");
        match action {
            TrafficAction::None => {}
            TrafficAction::Throttle => {
                self.limit_network(s, TrafficAction::throttle_mbit(mbit))
                    .await?;
            }
            TrafficAction::Suspend => {
                let suspended = self
                    .act(
                        Caller::SYSTEM,
                        &ServerKey::of(s),
                        Action::Suspend,
                        ActParams {
                            reason: format!("traffic over the limit for {}", o.month),
                            ..ActParams::default()
                        },
                    )
                    .await;
                if let Err(error) = suspended {
                    tracing::warn!(server = s.id, error = %platform::grpc::chain(&error), "suspending a server over its traffic failed");
                }
            }
        }
        Ok(true)
    }

    async fn limit_network(&self, s: &server::Model, mbit: u32) -> Result<()> {
        let Some(node_id) = s.node_id else {
            return Ok(());
        };
        self.guests
            .clone()
            .set_network_limit(Caller::SYSTEM.request(nodepb::NetworkLimitRequest {
                guest: Some(nodepb::GuestRef {
                    node_id,
                    name: s.guest_name.clone(),
                }),
                mbit,
            }))
            .await?;
        Ok(())
    }
}
