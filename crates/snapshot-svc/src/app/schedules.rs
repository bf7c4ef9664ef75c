//! Backup schedules: per server, daily or weekly at a time in a time zone, with retention.
//! The scheduler runs under a lease (one replica at a time) and claims each slot by moving
//! the schedule on to its next one, so a slot fires once however many replicas look; a slot
//! missed while the service was down fires once when it is back.

use std::sync::Arc;

use chrono::Utc;
use platform::grpc::Caller;

use super::backups::Origin;
use super::{App, now_ms};
use crate::domain::schedule::{Timing, next_every, weekday_name};
use crate::error::{Result, SnapshotError};
use crate::store;
use crate::store::entity::schedule;

/// A schedule as a caller gives it.
#[derive(Debug, Clone, Default)]
pub struct ScheduleSpec {
    pub frequency: String,
    pub weekday: String,
    pub time: String,
    pub time_zone: String,
    pub keep_last: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    pub enabled: bool,
}

/// The most any keep-* may say.
const MAX_KEEP: u32 = 1000;

/// The schedule VPS.org's `backups_enabled` turns on: daily at 03:00 UTC, seven days kept.
fn automatic() -> ScheduleSpec {
    ScheduleSpec {
        frequency: "daily".to_owned(),
        weekday: String::new(),
        time: "03:00".to_owned(),
        time_zone: "UTC".to_owned(),
        keep_last: 0,
        keep_daily: 7,
        keep_weekly: 0,
        keep_monthly: 0,
        enabled: true,
    }
}

impl App {
    pub async fn schedule(&self, caller: Caller, server_id: i64) -> Result<schedule::Model> {
        self.server_of(caller, server_id).await?;
        store::schedules::find(&self.db, server_id)
            .await?
            .ok_or(SnapshotError::NotFound("schedule"))
    }

    pub async fn put_schedule(
        &self,
        caller: Caller,
        server_id: i64,
        spec: ScheduleSpec,
    ) -> Result<schedule::Model> {
        let server = self.server_of(caller, server_id).await?;
        self.write_schedule(server.id, server.owner_id, spec, "custom")
            .await
    }

    async fn write_schedule(
        &self,
        server_id: i64,
        owner_id: i64,
        spec: ScheduleSpec,
        origin: &str,
    ) -> Result<schedule::Model> {
        let timing = Timing::parse(&spec.frequency, &spec.weekday, &spec.time, &spec.time_zone)?;
        for (field, keep) in [
            ("keep_last", spec.keep_last),
            ("keep_daily", spec.keep_daily),
            ("keep_weekly", spec.keep_weekly),
            ("keep_monthly", spec.keep_monthly),
        ] {
            if keep > MAX_KEEP {
                return Err(SnapshotError::invalid(field, format!("at most {MAX_KEEP}")));
            }
        }
        let now = Utc::now();
        let row = schedule::Model {
            server_id,
            owner_id,
            frequency: spec.frequency.trim().to_owned(),
            weekday: match timing.frequency {
                crate::domain::schedule::Frequency::Weekly(day) => weekday_name(day).to_owned(),
                crate::domain::schedule::Frequency::Daily => String::new(),
            },
            time: timing.at.format("%H:%M").to_string(),
            time_zone: timing.zone.name().to_owned(),
            keep_last: i32::try_from(spec.keep_last).unwrap_or(0),
            keep_daily: i32::try_from(spec.keep_daily).unwrap_or(0),
            keep_weekly: i32::try_from(spec.keep_weekly).unwrap_or(0),
            keep_monthly: i32::try_from(spec.keep_monthly).unwrap_or(0),
            enabled: spec.enabled,
            origin: origin.to_owned(),
            next_run_at: self.next_slot(&timing, now).timestamp_millis(),
            last_run_at: 0,
            updated_at: now.timestamp_millis(),
        };
        store::schedules::put(&self.db, row).await?;
        store::schedules::find(&self.db, server_id)
            .await?
            .ok_or(SnapshotError::NotFound("schedule"))
    }

    pub async fn delete_schedule(&self, caller: Caller, server_id: i64) -> Result<()> {
        self.server_of(caller, server_id).await?;
        if store::schedules::delete(&self.db, server_id).await? {
            Ok(())
        } else {
            Err(SnapshotError::NotFound("schedule"))
        }
    }

    /// VPS.org's `backups_enabled`: on puts the automatic daily schedule in place unless the
    /// server has a schedule of its own; off removes the automatic one (a custom schedule is
    /// the owner's, and stays).
    pub async fn set_automatic_backups(&self, server_id: i64, enabled: bool) -> Result<()> {
        let server = self.server_of(Caller::SYSTEM, server_id).await?;
        let existing = store::schedules::find(&self.db, server_id).await?;
        match (enabled, existing) {
            (true, None) => {
                self.write_schedule(server.id, server.owner_id, automatic(), "automatic")
                    .await?;
            }
            (false, Some(s)) if s.origin == "automatic" => {
                store::schedules::delete(&self.db, server_id).await?;
            }
            _ => {}
        }
        Ok(())
    }

    fn next_slot(&self, timing: &Timing, after: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
        match self.config.schedule_every_secs {
            Some(every) => next_every(after, every),
            None => timing.next_after(after),
        }
    }

    /// Looks for due schedules every `schedule_tick_secs`, one replica at a time, until
    /// shutdown.
    pub fn scheduler(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        let app = self.clone();
        async move {
            let every = std::time::Duration::from_secs(app.config.schedule_tick_secs.max(1));
            let leases = app.leases.clone();
            let shutdown = app.shutdown.clone();
            leases
                .run_singleton("snapshot-svc:scheduler", every, shutdown, || {
                    let app = app.clone();
                    async move { app.fire_due().await }
                })
                .await;
        }
    }

    /// Fires every schedule whose slot has come: claims the slot, then starts its backup.
    pub async fn fire_due(self: &Arc<Self>) {
        let due = match store::schedules::due(&self.db, now_ms(), 100).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "reading due schedules failed");
                return;
            }
        };
        for s in due {
            let Ok(timing) = Timing::parse(&s.frequency, &s.weekday, &s.time, &s.time_zone) else {
                tracing::error!(
                    server = s.server_id,
                    "a stored schedule does not parse; skipped"
                );
                continue;
            };
            let now = Utc::now();
            let next = self.next_slot(&timing, now).timestamp_millis();
            match store::schedules::claim_slot(
                &self.db,
                s.server_id,
                s.next_run_at,
                next,
                now.timestamp_millis(),
            )
            .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    tracing::warn!(server = s.server_id, %error, "claiming a schedule slot failed");
                    continue;
                }
            }
            match self
                .create_backup(Caller::SYSTEM, s.server_id, "", false, Origin::Scheduled)
                .await
            {
                Ok(work) => {
                    tracing::info!(server = s.server_id, task = %work.task_id, "scheduled backup started")
                }
                Err(SnapshotError::NotFound(_)) => {
                    // The server is gone: so is its schedule.
                    let _ = store::schedules::delete(&self.db, s.server_id).await;
                }
                Err(error) => {
                    tracing::warn!(server = s.server_id, error = %platform::grpc::chain(&error), "a scheduled backup did not start; the next slot will try again");
                }
            }
        }
    }
}
