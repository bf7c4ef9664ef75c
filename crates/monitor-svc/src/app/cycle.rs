//! One node's cycle: its guests in one batched call, matched with the servers placed on it,
//! turned into samples, traffic and alert changes, written in one transaction, published,
//! and reported to server-svc where a guest's power or a month's traffic changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::auth::Caller;
use proto::events::v1 as events;
use proto::monitor::v1 as pb;
use proto::node::v1 as nodepb;
use proto::server::v1 as serverpb;

use super::App;
use super::metrics::NodeReadings;
use crate::domain::alerts::{self, Metric, Rule};
use crate::domain::reading::{self, Counters};
use crate::domain::traffic;
use crate::error::{MonitorError, Result};
use crate::store::{self, Event, Reading, Values};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

impl App {
    /// Polls one node, within the node timeout; a node that does not answer in time leaves
    /// its servers' samples to go stale (their status then reads `unknown`, never
    /// `stopped`), and delays no other node.
    pub(super) async fn poll_node(self: Arc<Self>, node_id: i64) {
        let started = Instant::now();
        let limit = Duration::from_millis(self.config.node_timeout_ms);
        let result = match tokio::time::timeout(limit, self.read_node(node_id)).await {
            Ok(result) => result,
            Err(_) => Err(MonitorError::Internal(anyhow::anyhow!(
                "node {node_id} did not answer within {} ms",
                self.config.node_timeout_ms
            ))),
        };
        let took_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        let (samples, error) = match result {
            Ok(read) => match self.record(node_id, read).await {
                Ok(samples) => (Some(samples), String::new()),
                Err(error) => (None, platform::grpc::chain(&error)),
            },
            Err(error) => (None, platform::grpc::chain(&error)),
        };
        if !error.is_empty() {
            tracing::warn!(node = node_id, error = %error, "polling a node failed");
        }
        let outcome = if error.is_empty() { "ok" } else { "failed" };
        metrics::histogram!("vps_monitor_poll_seconds", "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        if let Ok(mut polled) = self.polled.write() {
            let entry = polled.entry(node_id).or_insert_with(|| NodeReadings {
                status: pb::PolledNode {
                    node_id,
                    ..pb::PolledNode::default()
                },
                samples: Vec::new(),
            });
            entry.status.last_cycle_at_ms = chrono::Utc::now().timestamp_millis();
            entry.status.took_ms = took_ms;
            entry.status.error = error;
            if let Some(samples) = samples {
                entry.status.servers = u32::try_from(samples.len()).unwrap_or(u32::MAX);
                entry.samples = samples;
            }
        }
    }

    /// The node's answer and the servers placed on it, asked at once.
    async fn read_node(&self, node_id: i64) -> Result<NodeRead> {
        let (mut guests, mut servers) = (self.guests.clone(), self.servers.clone());
        let (usage, placements) = tokio::join!(
            guests.node_usage(Caller::SYSTEM.request(nodepb::NodeUsageRequest { node_id })),
            servers.list_placements(
                Caller::SYSTEM.request(serverpb::ListPlacementsRequest { node_id })
            ),
        );
        let upstream = |what: &str, s: tonic::Status| {
            MonitorError::Internal(anyhow::anyhow!("{what}: {} ({:?})", s.message(), s.code()))
        };
        Ok(NodeRead {
            guests: usage
                .map_err(|s| upstream("node usage", s))?
                .into_inner()
                .guests,
            servers: placements
                .map_err(|s| upstream("placements", s))?
                .into_inner()
                .servers,
        })
    }

    fn rules(&self) -> [(Metric, Rule); 3] {
        rules(&self.config.alerts)
    }

    /// Turns a node's answer into samples and stores, publishes and reports them.
    async fn record(&self, node_id: i64, read: NodeRead) -> Result<Vec<(pb::Sample, String)>> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let ids: Vec<i64> = read.servers.iter().map(|s| s.server_id).collect();
        let known = store::known(&self.db, &ids, &traffic::month_of(now_ms)).await?;
        let cycle = compute(
            node_id,
            now_ms,
            &read.servers,
            &read.guests,
            known,
            &self.rules(),
        )?;
        store::write_cycle(&self.db, node_id, &cycle.readings, &cycle.events).await?;
        if let Some(nats) = &self.nats {
            for (sample, _, json) in &cycle.published {
                let subject = events::subject::stats(sample.server_id);
                if let Err(error) = nats.publish(subject, json.clone().into()).await {
                    tracing::debug!(error = %error, "publishing a sample failed");
                }
            }
        }
        if !cycle.observations.is_empty() {
            self.report(node_id, cycle.observations).await;
        }
        store::forget_gone(&self.db, node_id, &ids).await?;
        Ok(cycle
            .published
            .into_iter()
            .map(|(sample, name, _)| (sample, name))
            .collect())
    }

    /// Tells server-svc what the poll saw. A failure is logged and the next cycle reports
    /// again (traffic totals are absolute, so nothing is counted twice).
    async fn report(&self, node_id: i64, observations: Vec<serverpb::Observation>) {
        let reply = self
            .servers
            .clone()
            .observe(Caller::SYSTEM.request(serverpb::ObserveRequest {
                node_id,
                observations,
            }))
            .await;
        match reply {
            Ok(r) => {
                let r = r.into_inner();
                if r.changed > 0 || r.over_limit > 0 {
                    tracing::info!(
                        node = node_id,
                        changed = r.changed,
                        over_limit = r.over_limit,
                        "reported observations"
                    );
                }
            }
            Err(status) => {
                tracing::warn!(node = node_id, error = %status.message(), "reporting observations failed");
            }
        }
    }
}

/// The alert rule of each metric, from the configuration.
pub fn rules(a: &crate::AlertConfig) -> [(Metric, Rule); 3] {
    let rule = |threshold: f64| Rule {
        threshold,
        clear_below: threshold - a.clear_margin_percent,
        critical: a.critical_percent.max(threshold),
        consecutive: a.consecutive,
        cooldown_ms: i64::try_from(a.cooldown_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
    };
    [
        (Metric::Cpu, rule(a.cpu_percent)),
        (Metric::Memory, rule(a.memory_percent)),
        (Metric::Disk, rule(a.disk_percent)),
    ]
}

/// What one node's cycle makes of its answer: rows to write, events for the outbox,
/// observations for server-svc, and each sample (with the server's name and its JSON).
pub struct Cycle {
    pub readings: Vec<Reading>,
    pub events: Vec<Event>,
    pub observations: Vec<serverpb::Observation>,
    pub published: Vec<(pb::Sample, String, String)>,
}

/// Matches a node's guests with the servers placed on it and turns each into a sample,
/// the month's traffic and alert changes, against what was known from the cycle before.
pub fn compute(
    node_id: i64,
    now_ms: i64,
    servers: &[serverpb::Placement],
    guests: &[nodepb::GuestUsage],
    mut known: HashMap<i64, store::Known>,
    rules: &[(Metric, Rule); 3],
) -> Result<Cycle> {
    let by_name: HashMap<&str, &nodepb::GuestUsage> =
        guests.iter().map(|g| (g.name.as_str(), g)).collect();
    let mut cycle = Cycle {
        readings: Vec::with_capacity(servers.len()),
        events: Vec::new(),
        observations: Vec::new(),
        published: Vec::with_capacity(servers.len()),
    };
    for server in servers {
        let Some(guest) = by_name.get(server.guest_name.as_str()) else {
            continue;
        };
        let before = known.remove(&server.server_id).unwrap_or_default();
        let counters = Counters {
            at_ms: now_ms,
            cpu_time_ns: guest.cpu_time_ns,
            net_rx: guest.net_rx_bytes,
            net_tx: guest.net_tx_bytes,
            disk_read: guest.disk_read_bytes,
            disk_write: guest.disk_write_bytes,
            uptime_secs: guest.uptime_secs,
        };
        let cpu_fraction = (guest.cpu_fraction >= 0.0).then_some(guest.cpu_fraction);
        let rates = reading::rates(
            before.counters.as_ref(),
            &counters,
            server.cores,
            cpu_fraction,
        );
        let total = traffic::account(before.month.clone(), before.counters.as_ref(), &counters);
        let state = nodepb::PowerState::try_from(guest.state).unwrap_or_default();
        let memory_max = if guest.memory_limit_bytes > 0 {
            guest.memory_limit_bytes
        } else {
            server.memory_mb * MIB
        };
        let disk_max = server.disk_gb * GIB;
        let sample = pb::Sample {
            server_id: server.server_id,
            node_id,
            at_ms: now_ms,
            state: power_name(state).to_owned(),
            cpu: round(rates.cpu, 4),
            cores: server.cores,
            memory_used_bytes: guest.memory_bytes,
            memory_max_bytes: memory_max,
            disk_used_bytes: guest.disk_bytes,
            disk_max_bytes: disk_max,
            net_in_bytes: guest.net_rx_bytes,
            net_out_bytes: guest.net_tx_bytes,
            net_in_rate: round(rates.net_in, 1),
            net_out_rate: round(rates.net_out, 1),
            disk_read_rate: round(rates.disk_read, 1),
            disk_write_rate: round(rates.disk_write, 1),
            uptime_secs: guest.uptime_secs,
            month_in_bytes: total.in_bytes,
            month_out_bytes: total.out_bytes,
        };
        // Alerts watch running guests only; a stopped one clears them.
        let running = state == nodepb::PowerState::Running;
        let mut alert_changes = Vec::new();
        for (metric, rule) in rules {
            let value = if !running {
                0.0
            } else {
                match metric {
                    Metric::Cpu => rates.cpu * 100.0,
                    Metric::Memory => reading::percent(guest.memory_bytes, memory_max),
                    Metric::Disk => reading::percent(guest.disk_bytes, disk_max),
                }
            };
            let old = before.alerts.get(metric).copied().unwrap_or_default();
            let (new, change) = alerts::step(rule, old, value, now_ms);
            if new != old {
                alert_changes.push((*metric, new));
            }
            if let Some(change) = change {
                cycle.events.push(alert_event(
                    server,
                    *metric,
                    change,
                    value,
                    rule.threshold,
                    now_ms,
                ));
            }
        }
        // What server-svc should hear: a power state that differs from its record, or
        // traffic that moved.
        let observed = match (state, serverpb::ServerStatus::try_from(server.status)) {
            (nodepb::PowerState::Running, Ok(s)) if s != serverpb::ServerStatus::Running => {
                serverpb::ServerStatus::Running
            }
            (nodepb::PowerState::Stopped, Ok(s)) if s != serverpb::ServerStatus::Stopped => {
                serverpb::ServerStatus::Stopped
            }
            _ => serverpb::ServerStatus::Unspecified,
        };
        if observed != serverpb::ServerStatus::Unspecified || before.month.as_ref() != Some(&total)
        {
            cycle.observations.push(serverpb::Observation {
                server_id: server.server_id,
                observed: observed.into(),
                month: total.month.clone(),
                month_in_bytes: total.in_bytes,
                month_out_bytes: total.out_bytes,
            });
        }
        let sample_json =
            serde_json::to_string(&sample).map_err(|e| MonitorError::Internal(e.into()))?;
        cycle.readings.push(Reading {
            server_id: server.server_id,
            values: Values {
                time: now_ms / 1000,
                cpu: sample.cpu,
                mem: guest.memory_bytes as f64,
                maxmem: memory_max as f64,
                disk: guest.disk_bytes as f64,
                maxdisk: disk_max as f64,
                netin: sample.net_in_rate,
                netout: sample.net_out_rate,
                diskread: sample.disk_read_rate,
                diskwrite: sample.disk_write_rate,
            },
            at_ms: now_ms,
            sample_json: sample_json.clone(),
            counters,
            month: total,
            alerts: alert_changes,
        });
        cycle
            .published
            .push((sample, server.name.clone(), sample_json));
    }
    Ok(cycle)
}

struct NodeRead {
    guests: Vec<nodepb::GuestUsage>,
    servers: Vec<serverpb::Placement>,
}

fn power_name(state: nodepb::PowerState) -> &'static str {
    match state {
        nodepb::PowerState::Running => "running",
        nodepb::PowerState::Stopped => "stopped",
        nodepb::PowerState::Unknown => "unknown",
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

fn alert_event(
    server: &serverpb::Placement,
    metric: Metric,
    change: alerts::Change,
    value: f64,
    threshold: f64,
    now_ms: i64,
) -> Event {
    let id = uuid::Uuid::now_v7();
    let (kind, level) = match change {
        alerts::Change::Fired(level) => ("fired", level.as_str()),
        alerts::Change::Resolved => ("resolved", "resolved"),
    };
    let payload = events::AlertEvent {
        id: id.to_string(),
        version: events::VERSION,
        r#type: kind.to_owned(),
        at: chrono::DateTime::from_timestamp_millis(now_ms)
            .unwrap_or_default()
            .to_rfc3339(),
        server_id: server.server_id,
        owner_id: server.owner_id,
        server_name: server.name.clone(),
        metric: metric.as_str().to_owned(),
        level: level.to_owned(),
        value: round(value, 1),
        threshold,
        message: alerts::message(metric, change, value),
    };
    Event {
        subject: events::subject::alerts(server.server_id),
        id,
        payload: serde_json::to_value(payload).unwrap_or_default(),
    }
}
