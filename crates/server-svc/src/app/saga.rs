//! Sagas: every task is an ordered list of steps, each idempotent and each (where it changes
//! something another service owns) with an undo. Progress is persisted after every step, so
//! a process that dies mid-saga resumes where it stopped; a step that fails unwinds the
//! steps done before it in reverse (guest deleted, address and capacity released, credits
//! refunded) and leaves the server in `error` with the reason.

use std::sync::Arc;
use std::time::Duration;

use platform::grpc::{Caller, ServiceError as _, reason};
use proto::identity::v1 as idpb;
use proto::node::v1 as nodepb;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{App, Fault, events, now_ms};
use crate::domain::state::ServerState;
use crate::error::{Result, ServerError};
use crate::store::entity::{image, server, task};

/// The lease a saga's driver holds.
fn task_lease(task_id: &str) -> String {
    format!("task:{task_id}")
}

/// The steps of each kind of task, in order.
pub fn steps(kind: &str) -> &'static [&'static str] {
    match kind {
        "create" => &["credits", "place", "address", "guest", "start", "password"],
        "delete" => &[
            "power_off",
            "remove_guest",
            "release_address",
            "release_capacity",
        ],
        "resize" => &["reserve_new", "resize_guest", "swap_reservation"],
        "reinstall" => &["power_off", "remove_guest", "guest", "start", "password"],
        "start" => &["start"],
        "stop" => &["stop"],
        "reboot" => &["reboot"],
        "password" => &["password"],
        "suspend" => &["power_off"],
        _ => &[],
    }
}

/// What a saga needs beyond the server row.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Params {
    /// The status before the task began, for tasks that return to it.
    #[serde(default)]
    pub prior_status: String,
    /// A new sealed root password (create, reinstall, password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Resize: the size before and after, and the reservation that holds the new size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_size: Option<(i64, i64, i64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_size: Option<(i64, i64, i64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_reservation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_reservation: Option<String>,
    /// Resize: the hourly price of the new size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_hourly_price: Option<i64>,
    /// Reinstall: the image to install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<i64>,
    /// The driver set the root password as it made the guest (nothing left to set).
    #[serde(default)]
    pub password_set: bool,
}

/// How far [`App::advance`] got.
#[derive(Debug)]
pub enum Progress {
    /// Every step is done.
    Done,
    /// Stopped before the named step, as asked.
    Paused,
    /// Stopped without finishing (shutdown, or a halt fault): resumed on the next start.
    Halted,
    /// A step failed; the task is now unwinding.
    Failed(ServerError),
}

fn done_steps(task: &task::Model) -> Vec<String> {
    task.steps_done
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn params_of(task: &task::Model) -> Params {
    serde_json::from_str(&task.params).unwrap_or_default()
}

struct ActiveGuard<'a>(&'a App, String);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut active) = self.0.active.lock() {
            active.remove(&self.1);
        }
    }
}

impl App {
    /// Drives a task to its end in the background.
    pub fn spawn_drive(self: &Arc<Self>, task_id: String) {
        let app = self.clone();
        tokio::spawn(async move {
            // Steps are idempotent, so a saga stopped by a passing error (a busy database, a
            // dropped connection) is driven again after a pause.
            for attempt in 1..=5u32 {
                match app.drive(&task_id).await {
                    Ok(Some(queued)) => {
                        // A delete waited for this task: it runs now.
                        app.spawn_drive(queued);
                        return;
                    }
                    Ok(None) => return,
                    Err(error) if attempt < 5 && !app.shutdown.is_triggered() => {
                        tracing::warn!(task = %task_id, attempt, error = %platform::grpc::chain(&error), "saga interrupted; driving it again");
                        tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                    }
                    Err(error) => {
                        tracing::error!(task = %task_id, error = %platform::grpc::chain(&error), "saga stopped; it resumes on the next start");
                        return;
                    }
                }
            }
        });
    }

    /// Offers every unfinished task (running or unwinding) that this replica does not drive
    /// to [`App::drive`], which takes it only if no other replica holds its lease. Run at
    /// start and then every `resume_interval_secs`, so the sagas of a replica that died are
    /// taken over once their leases expire.
    pub async fn resume_tasks(self: &Arc<Self>) -> Result<usize> {
        let open = task::Entity::find()
            .filter(task::Column::State.is_in(["running", "unwinding"]))
            .all(&self.db)
            .await?;
        let mut offered = 0;
        for t in &open {
            let here = self
                .active
                .lock()
                .map(|active| active.contains(&t.id))
                .unwrap_or(true);
            if !here {
                self.spawn_drive(t.id.clone());
                offered += 1;
            }
        }
        Ok(offered)
    }

    /// Looks for sagas nobody drives every `resume_interval_secs`, until shutdown.
    pub fn spawn_resumer(self: &Arc<Self>) {
        let app = self.clone();
        tokio::spawn(async move {
            let every = Duration::from_secs(app.config.resume_interval_secs.max(1));
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = app.shutdown.wait() => break,
                }
                if let Err(error) = app.resume_tasks().await {
                    tracing::warn!(error = %platform::grpc::chain(&error), "looking for unfinished sagas failed");
                }
            }
        });
    }

    /// Waits (at most `limit`) for the sagas this replica drives to stop, after shutdown.
    pub async fn drain(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let running = self.active.lock().map_or(0, |active| active.len());
            if running == 0 {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    running,
                    "stopping with sagas still running; they resume elsewhere"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Holds the lease of a task's saga: true when this replica may drive it.
    pub(super) async fn hold_task(&self, task_id: &str) -> Result<bool> {
        Ok(self.task_leases.acquire(&task_lease(task_id)).await?)
    }

    /// Drives a task to its end, if no other replica holds its lease; the answer names a
    /// queued delete that starts next.
    async fn drive(&self, task_id: &str) -> Result<Option<String>> {
        if !self.claim(task_id) {
            return Ok(None);
        }
        let _guard = ActiveGuard(self, task_id.to_owned());
        if !self.hold_task(task_id).await? {
            return Ok(None);
        }
        tracing::debug!(task = %task_id, "driving a saga");
        let renewing = self.keep_lease(task_id);
        let outcome = match self.advance(task_id, None).await {
            Ok(Progress::Done) => self.finish(task_id, None).await,
            Ok(Progress::Paused | Progress::Halted) => Ok(None),
            Ok(Progress::Failed(error)) => match self.unwind(task_id).await {
                Ok(true) => self.finish(task_id, Some(error)).await,
                Ok(false) => Ok(None),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        renewing.abort();
        if let Ok(mut lost) = self.lost.lock() {
            lost.remove(task_id);
        }
        // Whatever happened, the saga is free for whoever drives it next (this replica's
        // retry, or another after a shutdown).
        if let Err(error) = self.task_leases.release(&task_lease(task_id)).await {
            tracing::warn!(task = %task_id, error = %error, "releasing a saga's lease failed");
        }
        outcome
    }

    /// Renews a saga's lease in the background while it is driven; a lost lease marks the
    /// saga to stop at its next step boundary.
    fn keep_lease(&self, task_id: &str) -> tokio::task::JoinHandle<()> {
        let leases = self.task_leases.clone();
        let lost = self.lost.clone();
        let id = task_id.to_owned();
        let every = Duration::from_secs((self.config.lease_ttl_secs.max(3) / 3).max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if !leases.acquire(&task_lease(&id)).await.unwrap_or(true) {
                    tracing::warn!(task = %id, "lost a saga's lease; stopping it at the next step");
                    if let Ok(mut lost) = lost.lock() {
                        lost.insert(id.clone());
                    }
                    return;
                }
            }
        })
    }

    fn lease_lost(&self, task_id: &str) -> bool {
        self.lost
            .lock()
            .map(|lost| lost.contains(task_id))
            .unwrap_or(false)
    }

    /// Marks a task as driven by this process; false when it already is.
    fn claim(&self, task_id: &str) -> bool {
        self.active
            .lock()
            .is_ok_and(|mut active| active.insert(task_id.to_owned()))
    }

    /// Runs the task's remaining steps, persisting each, until done, failed, or the step
    /// named `stop_before`.
    pub(super) async fn advance(
        &self,
        task_id: &str,
        stop_before: Option<&str>,
    ) -> Result<Progress> {
        loop {
            let task = self.task_row(task_id).await?;
            if task.state == "unwinding" {
                return Ok(Progress::Failed(ServerError::Conflict(task.error)));
            }
            if task.state != "running" {
                return Ok(Progress::Done);
            }
            let done = done_steps(&task);
            let Some(next) = steps(&task.kind)
                .iter()
                .copied()
                .find(|s| !done.iter().any(|d| d == s))
            else {
                return Ok(Progress::Done);
            };
            if stop_before == Some(next) {
                return Ok(Progress::Paused);
            }
            if self.shutdown.is_triggered() || self.lease_lost(task_id) {
                return Ok(Progress::Halted);
            }
            self.set_task(task_id, |t| t.step = Set(next.to_owned()))
                .await?;
            let fault = self.fault(&task.kind, next);
            // The owner deleted a server still being built: build no further, unwind.
            let cancelled = matches!(task.kind.as_str(), "create" | "reinstall")
                && self
                    .server_row(task.server_id)
                    .await?
                    .delete_task_id
                    .is_some();
            let outcome = if cancelled {
                Err(ServerError::Conflict(
                    "cancelled: the server was deleted while it was being built".to_owned(),
                ))
            } else if fault == Some(Fault::Fail) {
                Err(ServerError::Conflict(format!(
                    "injected fault at {}:{next}",
                    task.kind
                )))
            } else {
                self.step_with_retries(&task, next).await
            };
            match outcome {
                Ok(()) if fault == Some(Fault::Halt) => {
                    tracing::warn!(task = %task_id, step = next, "halting the saga here (fault injection)");
                    return Ok(Progress::Halted);
                }
                Ok(()) => {
                    let mut done = done;
                    done.push(next.to_owned());
                    let joined = done.join(",");
                    self.set_task(task_id, |t| t.steps_done = Set(joined))
                        .await?;
                }
                Err(error) => {
                    tracing::warn!(task = %task_id, step = next, error = %platform::grpc::chain(&error), "saga step failed; unwinding");
                    let message = step_message(next, &error);
                    let why = failure_reason(&error);
                    self.set_task(task_id, |t| {
                        t.state = Set("unwinding".to_owned());
                        t.error = Set(message);
                        t.error_reason = Set(why);
                    })
                    .await?;
                    return Ok(Progress::Failed(error));
                }
            }
        }
    }

    /// Runs a step; tasks with nothing to undo (delete, suspend) try a failing step a few
    /// times before giving up, since giving up leaves the work half done.
    async fn step_with_retries(&self, task: &task::Model, step: &str) -> Result<()> {
        let forward_only = matches!(task.kind.as_str(), "delete" | "suspend");
        let mut attempt = 0;
        loop {
            match self.do_step(task, step).await {
                Err(error) if forward_only && attempt < 3 && !self.shutdown.is_triggered() => {
                    attempt += 1;
                    tracing::warn!(task = %task.id, step, attempt, error = %platform::grpc::chain(&error), "step failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500 * (1 << attempt))).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// Undoes the failed step (it may have half happened: every undo is safe when its step
    /// did nothing) and then the done steps in reverse, persisting each; `false` when
    /// interrupted by shutdown (resumed on the next start). An undo that keeps failing stops
    /// the unwind with an error, to be resumed later: nothing is forgotten.
    pub(super) async fn unwind(&self, task_id: &str) -> Result<bool> {
        let task = self.task_row(task_id).await?;
        let mut done = done_steps(&task);
        if !task.step.is_empty() && !done.contains(&task.step) {
            self.undo_with_retries(&task, &task.step).await?;
        }
        while let Some(step) = done.last().cloned() {
            if self.shutdown.is_triggered() {
                return Ok(false);
            }
            self.undo_with_retries(&task, &step).await?;
            done.pop();
            let joined = done.join(",");
            self.set_task(task_id, |t| t.steps_done = Set(joined))
                .await?;
        }
        Ok(true)
    }

    async fn undo_with_retries(&self, task: &task::Model, step: &str) -> Result<()> {
        let mut attempt = 0;
        loop {
            match self.undo_step(task, step).await {
                Ok(()) => return Ok(()),
                Err(error) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(task = %task.id, step, attempt, error = %platform::grpc::chain(&error), "undo failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500 * (1 << attempt))).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Ends a task: the server's final state, the task's, and the event, in one transaction.
    /// A delete queued behind the task begins in the same transaction; its id is returned,
    /// for the caller to drive.
    pub(super) async fn finish(
        &self,
        task_id: &str,
        failure: Option<ServerError>,
    ) -> Result<Option<String>> {
        let task = self.task_row(task_id).await?;
        let params = params_of(&task);
        let txn = platform::db::begin_write(&self.db).await?;
        // Locked until commit on PostgreSQL, so a delete queued meanwhile is either seen
        // here (and promoted) or waits and then finds the task ended (SQLite's write
        // transactions run one at a time anyway).
        let mut find = server::Entity::find_by_id(task.server_id);
        if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            find = find.lock_exclusive();
        }
        let Some(row) = find.one(&txn).await? else {
            return Err(ServerError::NotFound("server"));
        };
        let prior = ServerState::parse(&params.prior_status).unwrap_or(ServerState::Stopped);
        let at = now_ms();
        let mut am = row.clone().into_active_model();
        am.updated_at = Set(at);
        let failed = failure.is_some();
        let (status, reason) = match (&failure, task.kind.as_str()) {
            (None, "create" | "reinstall" | "start" | "reboot") => {
                (ServerState::Running, String::new())
            }
            (None, "stop") => (ServerState::Stopped, String::new()),
            (None, "delete") => (ServerState::Terminated, String::new()),
            (None, "suspend") => (ServerState::Suspended, row.status_reason.clone()),
            (None, "unsuspend") => (ServerState::Stopped, String::new()),
            (None, _) => (prior, String::new()),
            (Some(_), "create" | "reinstall" | "delete") => {
                (ServerState::Error, task.error.clone())
            }
            (Some(_), "suspend") => (ServerState::Suspended, row.status_reason.clone()),
            (Some(_), _) if task.error_reason == reason::NODE_UNREACHABLE => {
                (ServerState::Unknown, task.error.clone())
            }
            (Some(_), _) => (prior, String::new()),
        };
        am.status = Set(status.as_str().to_owned());
        am.status_reason = Set(reason);
        if status == ServerState::Running {
            am.ran_in_period = Set(true);
        }
        if failure.is_none() {
            match task.kind.as_str() {
                "delete" => {
                    am.deleted_at = Set(Some(at));
                    am.node_id = Set(None);
                    am.reservation_id = Set(None);
                    am.ipv4 = Set(None);
                    am.ipv6 = Set(None);
                    am.root_password = Set(None);
                }
                "password" | "reinstall" => {
                    if let Some(sealed) = params.password.clone() {
                        am.root_password = Set(Some(sealed));
                    }
                    if let Some(image_id) = params.image_id {
                        am.image_id = Set(image_id);
                    }
                }
                _ => {}
            }
        }
        let queued = row
            .delete_task_id
            .clone()
            .filter(|queued| task.kind != "delete" && *queued != task.id);
        if let Some(queued) = &queued {
            am.status = Set(ServerState::Deleting.as_str().to_owned());
            am.task_id = Set(Some(queued.clone()));
            am.delete_task_id = Set(None);
            let mut delete = task::Entity::find_by_id(queued.clone())
                .one(&txn)
                .await?
                .ok_or(ServerError::NotFound("task"))?
                .into_active_model();
            delete.state = Set("running".to_owned());
            delete.params = Set(serde_json::to_string(&Params {
                prior_status: status.as_str().to_owned(),
                ..Params::default()
            })
            .map_err(|e| ServerError::Internal(e.into()))?);
            delete.updated_at = Set(at);
            delete.update(&txn).await?;
        }
        let updated = am.update(&txn).await?;
        let mut t = task.clone().into_active_model();
        t.state = Set(if failed { "failed" } else { "succeeded" }.to_owned());
        t.updated_at = Set(at);
        t.update(&txn).await?;
        let subject = if task.kind == "delete" && !failed {
            events::DELETED
        } else {
            events::STATE
        };
        events::server_event(
            &txn,
            subject,
            &updated,
            json!({"taskId": task.id, "task": task.kind, "failed": failed, "reason": updated.status_reason}),
        )
        .await?;
        txn.commit().await?;
        tracing::info!(task = %task.id, kind = %task.kind, server = updated.id, status = %updated.status, failed, "task finished");
        Ok(queued)
    }

    pub(super) async fn task_row(&self, task_id: &str) -> Result<task::Model> {
        task::Entity::find_by_id(task_id.to_owned())
            .one(&self.db)
            .await?
            .ok_or(ServerError::NotFound("task"))
    }

    async fn set_task(
        &self,
        task_id: &str,
        change: impl FnOnce(&mut task::ActiveModel),
    ) -> Result<()> {
        let mut am = task::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(task_id.to_owned()),
            updated_at: Set(now_ms()),
            ..Default::default()
        };
        change(&mut am);
        am.update(&self.db).await?;
        Ok(())
    }

    pub(super) async fn server_row(&self, id: i64) -> Result<server::Model> {
        server::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(ServerError::NotFound("server"))
    }

    async fn set_server(
        &self,
        id: i64,
        change: impl FnOnce(&mut server::ActiveModel),
    ) -> Result<()> {
        let mut am = server::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(id),
            updated_at: Set(now_ms()),
            ..Default::default()
        };
        change(&mut am);
        am.update(&self.db).await?;
        Ok(())
    }

    fn guest_ref(s: &server::Model) -> Result<nodepb::GuestRef> {
        let node_id = s
            .node_id
            .ok_or_else(|| ServerError::Conflict("the server has no node".to_owned()))?;
        Ok(nodepb::GuestRef {
            node_id,
            name: s.guest_name.clone(),
        })
    }

    async fn do_step(&self, task: &task::Model, step: &str) -> Result<()> {
        let s = self.server_row(task.server_id).await?;
        let params = params_of(task);
        let system = Caller::SYSTEM;
        match step {
            "credits" => {
                if s.hourly_price > 0 {
                    let reply = self
                        .identity
                        .clone()
                        .adjust_credits(system.request(idpb::AdjustCreditsRequest {
                            user_id: s.owner_id,
                            amount: -s.hourly_price,
                            reason: format!("server {} ({}): first hour", s.id, s.name),
                            reference: Some(format!("server:{}:first-hour", s.uuid)),
                            allow_debt: false,
                        }))
                        .await;
                    match reply {
                        Ok(_) => {}
                        Err(status)
                            if platform::grpc::error_reason(&status).as_deref()
                                == Some(reason::INSUFFICIENT_CREDITS) =>
                        {
                            let balance = self.balance_of(s.owner_id).await.unwrap_or(0);
                            return Err(ServerError::InsufficientCredits {
                                needed: s.hourly_price,
                                balance,
                            });
                        }
                        Err(status) => return Err(status.into()),
                    }
                }
                // The billing clock starts once, however often this step runs.
                let period = self.billing_period_ms();
                server::Entity::update_many()
                    .col_expr(server::Column::PaidUntil, Expr::value(now_ms() + period))
                    .filter(server::Column::Id.eq(s.id))
                    .filter(server::Column::PaidUntil.eq(0))
                    .exec(&self.db)
                    .await?;
                Ok(())
            }
            "place" => {
                let reply = self
                    .nodes
                    .clone()
                    .reserve(system.request(nodepb::ReserveRequest {
                        reservation_id: s.uuid.clone(),
                        size: Some(size_of(&s)),
                        location: s.location.clone(),
                        tags: Vec::new(),
                        node_id: s.node_id.unwrap_or(0),
                    }))
                    .await;
                let reservation = match reply {
                    Ok(r) => r.into_inner(),
                    Err(status)
                        if platform::grpc::error_reason(&status).as_deref()
                            == Some(reason::NO_CAPACITY) =>
                    {
                        return Err(ServerError::NoCapacity);
                    }
                    Err(status) => return Err(status.into()),
                };
                self.set_server(s.id, |a| {
                    a.node_id = Set(Some(reservation.node_id));
                    a.reservation_id = Set(Some(reservation.reservation_id));
                })
                .await
            }
            "address" => {
                let node_id = s.node_id.unwrap_or(0);
                if !self.node_has_pool(node_id, 4).await? {
                    // No address management for this node: the guest takes its address
                    // from the hypervisor's own network (e.g. DHCP on the LXC bridge).
                    return Ok(());
                }
                let v4 = self
                    .nodes
                    .clone()
                    .allocate_address(system.request(nodepb::AllocateAddressRequest {
                        owner: s.uuid.clone(),
                        family: 4,
                        node_id,
                    }))
                    .await?
                    .into_inner();
                // IPv6 where the node or its location has a pool; none is not a failure.
                let v6 = match self
                    .nodes
                    .clone()
                    .allocate_address(system.request(nodepb::AllocateAddressRequest {
                        owner: s.uuid.clone(),
                        family: 6,
                        node_id,
                    }))
                    .await
                {
                    Ok(a) => Some(a.into_inner().address),
                    Err(status) if status.code() == tonic::Code::ResourceExhausted => None,
                    Err(status) => return Err(status.into()),
                };
                self.set_server(s.id, |a| {
                    a.ipv4 = Set(Some(v4.address));
                    a.ipv6 = Set(v6);
                })
                .await
            }
            "guest" => {
                let guest = Self::guest_ref(&s)?;
                let node = self
                    .nodes
                    .clone()
                    .get_node(system.request(nodepb::GetNodeRequest {
                        by: Some(nodepb::get_node_request::By::Id(guest.node_id)),
                    }))
                    .await?
                    .into_inner();
                let image_id = params.image_id.unwrap_or(s.image_id);
                let image = image::Entity::find_by_id(image_id)
                    .one(&self.db)
                    .await?
                    .ok_or(ServerError::NotFound("image"))?;
                let templates = super::catalog::image_of(image).templates;
                let template = templates.get(&node.driver).cloned().ok_or_else(|| {
                    ServerError::Conflict(format!(
                        "image {image_id} has no template for {} nodes",
                        node.driver
                    ))
                })?;
                let root_password =
                    match params.password.clone().or_else(|| s.root_password.clone()) {
                        Some(sealed) => self.open_password(&sealed)?,
                        None => String::new(),
                    };
                let reply = self
                    .guests
                    .clone()
                    .create_guest(system.request(nodepb::CreateGuestRequest {
                        guest: Some(guest),
                        template,
                        hostname: s.hostname.clone(),
                        size: Some(size_of(&s)),
                        root_password,
                    }))
                    .await?
                    .into_inner();
                if reply.root_password_set {
                    let mut updated = params.clone();
                    updated.password_set = true;
                    let json = serde_json::to_string(&updated)
                        .map_err(|e| ServerError::Internal(e.into()))?;
                    self.set_task(&task.id, |t| t.params = Set(json)).await?;
                }
                Ok(())
            }
            "start" => {
                self.guests
                    .clone()
                    .start_guest(system.request(Self::guest_ref(&s)?))
                    .await?;
                Ok(())
            }
            "stop" => {
                self.guests
                    .clone()
                    .stop_guest(system.request(nodepb::StopGuestRequest {
                        guest: Some(Self::guest_ref(&s)?),
                        grace_secs: self.config.stop_grace_secs.max(1),
                    }))
                    .await?;
                Ok(())
            }
            "reboot" => {
                self.guests
                    .clone()
                    .reboot_guest(system.request(nodepb::StopGuestRequest {
                        guest: Some(Self::guest_ref(&s)?),
                        grace_secs: self.config.stop_grace_secs.max(1),
                    }))
                    .await?;
                Ok(())
            }
            "power_off" => {
                if task.kind == "delete" {
                    let prior =
                        ServerState::parse(&params.prior_status).unwrap_or(ServerState::Stopped);
                    self.settle(&s, prior).await?;
                }
                if s.node_id.is_none() {
                    return Ok(());
                }
                let stopped = self
                    .guests
                    .clone()
                    .stop_guest(system.request(nodepb::StopGuestRequest {
                        guest: Some(Self::guest_ref(&s)?),
                        grace_secs: self.config.stop_grace_secs.clamp(1, 10),
                    }))
                    .await;
                match stopped {
                    Err(status) if status.code() != tonic::Code::NotFound => Err(status.into()),
                    _ => Ok(()),
                }
            }
            "remove_guest" => {
                if s.node_id.is_none() {
                    return Ok(());
                }
                self.guests
                    .clone()
                    .delete_guest(system.request(Self::guest_ref(&s)?))
                    .await?;
                Ok(())
            }
            "password" => {
                if params.password_set {
                    return Ok(());
                }
                let sealed = params
                    .password
                    .clone()
                    .or_else(|| s.root_password.clone())
                    .ok_or_else(|| ServerError::Conflict("no root password to set".to_owned()))?;
                let password = self.open_password(&sealed)?;
                self.guests
                    .clone()
                    .set_guest_password(system.request(nodepb::SetGuestPasswordRequest {
                        guest: Some(Self::guest_ref(&s)?),
                        user: "root".to_owned(),
                        password,
                    }))
                    .await?;
                Ok(())
            }
            "release_address" => {
                self.nodes
                    .clone()
                    .release_address(system.request(nodepb::ReleaseAddressRequest {
                        owner: s.uuid.clone(),
                    }))
                    .await?;
                // Given back: the server must not show (or reuse) it any more.
                self.set_server(s.id, |a| {
                    a.ipv4 = Set(None);
                    a.ipv6 = Set(None);
                })
                .await
            }
            "release_capacity" => {
                if let Some(reservation_id) = s.reservation_id.clone() {
                    self.nodes
                        .clone()
                        .release(system.request(nodepb::ReleaseRequest { reservation_id }))
                        .await?;
                }
                Ok(())
            }
            "reserve_new" => {
                let (cores, memory_mb, disk_gb) = params
                    .new_size
                    .ok_or_else(|| ServerError::Conflict("resize without a size".to_owned()))?;
                let reservation_id = params.new_reservation.clone().ok_or_else(|| {
                    ServerError::Conflict("resize without a reservation".to_owned())
                })?;
                let reply = self
                    .nodes
                    .clone()
                    .reserve(system.request(nodepb::ReserveRequest {
                        reservation_id,
                        size: Some(capacity(cores, memory_mb, disk_gb)),
                        location: String::new(),
                        tags: Vec::new(),
                        node_id: s.node_id.unwrap_or(0),
                    }))
                    .await;
                match reply {
                    Ok(_) => Ok(()),
                    Err(status)
                        if platform::grpc::error_reason(&status).as_deref()
                            == Some(reason::NO_CAPACITY) =>
                    {
                        Err(ServerError::NoCapacity)
                    }
                    Err(status) => Err(status.into()),
                }
            }
            "resize_guest" => {
                let (cores, memory_mb, disk_gb) = params
                    .new_size
                    .ok_or_else(|| ServerError::Conflict("resize without a size".to_owned()))?;
                self.resize_guest(&s, cores, memory_mb, disk_gb).await?;
                self.set_server(s.id, |a| {
                    a.cores = Set(cores);
                    a.memory_mb = Set(memory_mb);
                    a.disk_gb = Set(disk_gb);
                })
                .await
            }
            "swap_reservation" => {
                // The old reservation was noted when the resize began, so a repeat never
                // releases the one now in use.
                let new = params.new_reservation.clone();
                let price = params.new_hourly_price.unwrap_or(s.hourly_price);
                self.set_server(s.id, |a| {
                    a.reservation_id = Set(new.clone());
                    a.hourly_price = Set(price);
                })
                .await?;
                if let Some(reservation_id) = params.old_reservation.clone()
                    && Some(&reservation_id) != new.as_ref()
                {
                    let released = self
                        .nodes
                        .clone()
                        .release(system.request(nodepb::ReleaseRequest {
                            reservation_id: reservation_id.clone(),
                        }))
                        .await;
                    if let Err(status) = released {
                        // The server already runs on the new reservation; undoing that
                        // would be worse than holding the old one until an operator looks.
                        tracing::error!(reservation = %reservation_id, error = %status.message(), "the old reservation was not released");
                    }
                }
                Ok(())
            }
            other => Err(ServerError::Internal(anyhow::anyhow!(
                "unknown step {other}"
            ))),
        }
    }

    async fn undo_step(&self, task: &task::Model, step: &str) -> Result<()> {
        let s = self.server_row(task.server_id).await?;
        let params = params_of(task);
        let system = Caller::SYSTEM;
        match (task.kind.as_str(), step) {
            ("create", "credits") => {
                if s.hourly_price > 0 && self.first_hour_charged(&s).await? {
                    self.identity
                        .clone()
                        .adjust_credits(system.request(idpb::AdjustCreditsRequest {
                            user_id: s.owner_id,
                            amount: s.hourly_price,
                            reason: format!(
                                "server {} ({}): refund, creation failed",
                                s.id, s.name
                            ),
                            reference: Some(format!("server:{}:first-hour-refund", s.uuid)),
                            allow_debt: false,
                        }))
                        .await?;
                }
                self.set_server(s.id, |a| a.paid_until = Set(0)).await
            }
            ("create", "place") => {
                // Keyed by the server's UUID: released even when the reply was lost.
                self.nodes
                    .clone()
                    .release(system.request(nodepb::ReleaseRequest {
                        reservation_id: s.uuid.clone(),
                    }))
                    .await?;
                self.set_server(s.id, |a| {
                    a.reservation_id = Set(None);
                    a.node_id = Set(None);
                })
                .await
            }
            ("create", "address") => {
                self.nodes
                    .clone()
                    .release_address(system.request(nodepb::ReleaseAddressRequest {
                        owner: s.uuid.clone(),
                    }))
                    .await?;
                self.set_server(s.id, |a| {
                    a.ipv4 = Set(None);
                    a.ipv6 = Set(None);
                })
                .await
            }
            ("create" | "reinstall", "guest") => {
                if s.node_id.is_some() {
                    self.guests
                        .clone()
                        .delete_guest(system.request(Self::guest_ref(&s)?))
                        .await?;
                }
                Ok(())
            }
            ("resize", "reserve_new") => {
                if let Some(reservation_id) = params.new_reservation.clone() {
                    self.nodes
                        .clone()
                        .release(system.request(nodepb::ReleaseRequest { reservation_id }))
                        .await?;
                }
                Ok(())
            }
            ("resize", "resize_guest") => {
                if let Some((cores, memory_mb, _)) = params.old_size {
                    // Disks only grow: the disk keeps whatever size it has now.
                    self.resize_guest(&s, cores, memory_mb, s.disk_gb).await?;
                    self.set_server(s.id, |a| {
                        a.cores = Set(cores);
                        a.memory_mb = Set(memory_mb);
                    })
                    .await?;
                }
                Ok(())
            }
            // Starting, stopping, setting a password and removing a guest on the way to a
            // reinstall or deletion have nothing to give back.
            _ => Ok(()),
        }
    }

    /// Whether the first hour of this server was charged (the charge may have committed even
    /// when its reply was lost), so a refund never pays out what was never taken.
    async fn first_hour_charged(&self, s: &server::Model) -> Result<bool> {
        let reference = format!("server:{}:first-hour", s.uuid);
        let ledger = self
            .identity
            .clone()
            .list_ledger(Caller::SYSTEM.request(idpb::ListLedgerRequest {
                user_id: s.owner_id,
                limit: 1000,
            }))
            .await?
            .into_inner();
        Ok(ledger.entries.iter().any(|e| e.reference == reference))
    }

    fn open_password(&self, sealed: &str) -> Result<String> {
        let password = self.sealer.open(sealed).map_err(ServerError::Internal)?;
        String::from_utf8(password).map_err(|e| ServerError::Internal(e.into()))
    }

    /// Whether any pool of `family` serves the node (its own, or its location's).
    async fn node_has_pool(&self, node_id: i64, family: u32) -> Result<bool> {
        let node = self
            .nodes
            .clone()
            .get_node(Caller::SYSTEM.request(nodepb::GetNodeRequest {
                by: Some(nodepb::get_node_request::By::Id(node_id)),
            }))
            .await?
            .into_inner();
        let pools = self
            .nodes
            .clone()
            .list_pools(Caller::SYSTEM.request(nodepb::ListPoolsRequest {}))
            .await?
            .into_inner()
            .pools;
        Ok(pools.iter().any(|p| {
            p.family == family
                && (p.node_id == node_id || (p.node_id == 0 && p.location == node.location))
        }))
    }

    async fn resize_guest(
        &self,
        s: &server::Model,
        cores: i64,
        memory_mb: i64,
        disk_gb: i64,
    ) -> Result<()> {
        // Cores and memory are always sent as targets, so a repeat after a crash asks for the
        // same thing again; the disk only when it grows beyond what the row says it has.
        let grow_disk = disk_gb > s.disk_gb;
        self.guests
            .clone()
            .resize_guest(Caller::SYSTEM.request(nodepb::ResizeGuestRequest {
                guest: Some(Self::guest_ref(s)?),
                cores: Some(u32::try_from(cores).unwrap_or(1)),
                memory_mb: Some(u64::try_from(memory_mb).unwrap_or(64)),
                disk_gb: grow_disk.then(|| u64::try_from(disk_gb).unwrap_or(1)),
            }))
            .await?;
        Ok(())
    }

    pub(super) async fn balance_of(&self, user_id: i64) -> Result<i64> {
        Ok(self
            .identity
            .clone()
            .get_balance(Caller::SYSTEM.request(idpb::GetBalanceRequest { user_id }))
            .await?
            .into_inner()
            .balance)
    }

    pub(super) fn billing_period_ms(&self) -> i64 {
        i64::try_from(self.config.billing_period_secs.max(1).saturating_mul(1000))
            .unwrap_or(i64::MAX)
    }

    /// Marks a server's status conditionally: only when it is still `from`.
    pub(super) async fn swap_status<C: sea_orm::ConnectionTrait>(
        db: &C,
        id: i64,
        from: &str,
        from_task: Option<&str>,
        to: &str,
        task_id: &str,
    ) -> Result<bool> {
        let mut update = server::Entity::update_many()
            .col_expr(server::Column::Status, Expr::value(to))
            .col_expr(server::Column::TaskId, Expr::value(task_id))
            .col_expr(server::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(server::Column::Id.eq(id))
            .filter(server::Column::Status.eq(from))
            .filter(server::Column::DeletedAt.is_null());
        // Also conditional on the task: of two actions that both saw this state, one wins.
        update = match from_task {
            Some(task) => update.filter(server::Column::TaskId.eq(task)),
            None => update.filter(server::Column::TaskId.is_null()),
        };
        let done = update.exec(db).await?;
        Ok(done.rows_affected == 1)
    }
}

pub fn size_of(s: &server::Model) -> nodepb::Capacity {
    capacity(s.cores, s.memory_mb, s.disk_gb)
}

fn capacity(cores: i64, memory_mb: i64, disk_gb: i64) -> nodepb::Capacity {
    nodepb::Capacity {
        cores: u32::try_from(cores).unwrap_or(0),
        memory_mb: u64::try_from(memory_mb).unwrap_or(0),
        disk_gb: u64::try_from(disk_gb).unwrap_or(0),
    }
}

/// What the task records of a failed step: what failed, without internal details.
fn step_message(step: &str, error: &ServerError) -> String {
    format!("{step} failed: {}", error.client_message())
}

fn failure_reason(error: &ServerError) -> String {
    error
        .reason()
        .map(str::to_owned)
        .or_else(|| error.upstream_reason())
        .unwrap_or_else(|| match error {
            ServerError::Upstream(_) | ServerError::Internal(_) => "HYPERVISOR".to_owned(),
            _ => "FAILED".to_owned(),
        })
}
