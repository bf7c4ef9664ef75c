//! Servers: create, read, update and act. Every action is checked against the state machine
//! in one place (`domain::state`), claimed with a conditional update (two concurrent actions
//! cannot both win), recorded as a task with its event, and carried out by a saga.

use std::collections::HashMap;
use std::sync::Arc;

use platform::grpc::Caller;
use proto::identity::v1 as idpb;
use proto::node::v1 as nodepb;
use rand::Rng as _;
use sea_orm::{IntoActiveModel, Set};

use super::catalog::require_admin;
use super::saga::{
    CreateParams, DeleteParams, PasswordParams, PowerParams, ReinstallParams, ResizeParams, to_json,
};
use super::{App, NodeId, ServerKey, TaskId, UserId, events, now_ms};
use crate::domain::catalog::{Image, Plan};
use crate::domain::server::{Server, Task};
use crate::domain::state::{Action, Refusal, ServerState};
use crate::domain::task::{TaskKind, TaskState};
use crate::domain::validate::{Hostname, ServerName};
use crate::error::{Result, ServerError};
use crate::store;
use crate::store::entity::server;
use platform::saga::{Engine, Progress};

const MAX_CORES: u32 = 256;
const MIN_MEMORY_MB: u64 = 64;
const MAX_MEMORY_MB: u64 = 4 * 1024 * 1024;
const MAX_DISK_GB: u64 = 64 * 1024;
/// Disk of a server with a custom size (no plan) when none is given.
const CUSTOM_DISK_GB: u64 = 10;

#[derive(Debug, Clone, Default)]
pub struct NewServer {
    /// None: the caller.
    pub owner: Option<UserId>,
    pub name: String,
    pub hostname: String,
    pub plan_id: i64,
    pub image_id: i64,
    /// Instead of `image_id`: the image's name, or its id as text.
    pub image_name: String,
    pub location: String,
    pub backups: bool,
    /// Administrators only: pin to a node.
    pub node: Option<NodeId>,
    pub cores: u32,
    pub memory_mb: u64,
    pub ports: String,
    pub primary_port: String,
    pub variables_json: String,
    pub traffic_combined: bool,
    pub traffic_limit_bytes: u64,
    /// Starts from this backup of the owner's (0: from the image).
    pub from_backup: i64,
}

#[derive(Debug, Clone, Default)]
pub struct Update {
    pub name: Option<String>,
    pub hostname: Option<String>,
    pub backups: Option<bool>,
}

/// What an action asks for beyond the action itself.
#[derive(Debug, Clone, Default)]
pub struct ActParams {
    pub cores: Option<u32>,
    pub memory_mb: Option<u64>,
    pub disk_gb: Option<u64>,
    pub image_id: i64,
    pub reason: String,
}

/// A server with the catalog entries it refers to.
#[derive(Debug, Clone)]
pub struct ServerView {
    pub server: Server,
    pub plan: Option<Plan>,
    pub image: Option<Image>,
}

/// What a listing asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListServers<'a> {
    /// Administrators: only this owner's servers. Ignored for anyone else.
    pub owner: Option<UserId>,
    /// A status name, or empty for any.
    pub status: &'a str,
    /// A location code, or empty for any.
    pub location: &'a str,
    /// The version of the listing the caller already holds (empty: none).
    pub if_none_match: &'a str,
    /// Only these servers.
    pub ids: Option<&'a [i64]>,
}

/// A page of a listing, and its version (empty where none is kept).
#[derive(Debug, Clone, Default)]
pub struct ServerPage {
    pub servers: Vec<ServerView>,
    pub next: String,
    pub version: String,
    pub not_modified: bool,
}

#[derive(Debug, Clone)]
pub struct ActionReply {
    pub view: ServerView,
    pub task_id: String,
    /// Only when this call generated it.
    pub root_password: Option<String>,
}

fn new_task_id() -> String {
    format!("task_{}", uuid::Uuid::now_v7().simple())
}

fn new_password() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

fn check_cores(cores: u32) -> Result<()> {
    if (1..=MAX_CORES).contains(&cores) {
        Ok(())
    } else {
        Err(ServerError::invalid(
            "cores",
            format!("cores must be between 1 and {MAX_CORES}"),
        ))
    }
}

fn check_memory(memory_mb: u64) -> Result<()> {
    if (MIN_MEMORY_MB..=MAX_MEMORY_MB).contains(&memory_mb) {
        Ok(())
    } else {
        Err(ServerError::invalid(
            "memory",
            format!("memory must be between {MIN_MEMORY_MB} and {MAX_MEMORY_MB} MB"),
        ))
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl App {
    pub async fn create_server(
        self: &Arc<Self>,
        caller: Caller,
        new: NewServer,
    ) -> Result<ActionReply> {
        let owner_id = match new.owner {
            Some(owner) if owner.get() != caller.user_id => {
                require_admin(caller)?;
                owner.get()
            }
            _ => caller.user_id,
        };
        if owner_id <= 0 {
            return Err(ServerError::invalid("owner_id", "a server needs an owner"));
        }
        if owner_id != caller.user_id {
            let found = self
                .identity
                .clone()
                .get_user(Caller::SYSTEM.request(idpb::GetUserRequest {
                    by: Some(idpb::get_user_request::By::Id(owner_id)),
                }))
                .await;
            match found {
                Ok(_) => {}
                Err(status) if status.code() == tonic::Code::NotFound => {
                    return Err(ServerError::invalid("owner_id", "no such user"));
                }
                Err(status) => return Err(status.into()),
            }
        }
        let uuid = uuid::Uuid::new_v4();
        let name = if new.name.trim().is_empty() {
            format!("server-{}", &uuid.simple().to_string()[..8])
        } else {
            new.name.clone()
        };
        let name = ServerName::parse(&name).map_err(|m| ServerError::invalid("name", m))?;
        let hostname = if new.hostname.trim().is_empty() {
            Hostname::parse(&format!(
                "{}.{}",
                name.as_str().to_ascii_lowercase(),
                self.config.default_domain
            ))
        } else {
            Hostname::parse(&new.hostname)
        }
        .map_err(|m| ServerError::invalid("hostname", m))?;
        let image = self.image_for(new.image_id, &new.image_name).await?;
        let location = new.location.trim().to_owned();
        if !location.is_empty() && !store::catalog::location_exists(&self.db, &location).await? {
            return Err(ServerError::invalid("location", "no such location"));
        }
        if new.node.is_some() && !caller.admin {
            return Err(ServerError::invalid(
                "node_id",
                "only administrators choose the node",
            ));
        }
        if (new.cores != 0 || new.memory_mb != 0) && !caller.admin {
            return Err(ServerError::invalid(
                "plan_id",
                "sizes come from the plan; only administrators set them directly",
            ));
        }
        let plan = if new.plan_id == 0 {
            if !caller.admin {
                return Err(ServerError::invalid("plan_id", "a plan is required"));
            }
            None
        } else {
            Some(
                store::catalog::plan(&self.db, new.plan_id)
                    .await?
                    .ok_or_else(|| ServerError::invalid("plan_id", "no such plan"))?,
            )
        };
        let cores = match (new.cores, &plan) {
            (0, Some(p)) => p.vcpus,
            (0, None) => 1,
            (c, _) => c,
        };
        let memory_mb = match (new.memory_mb, &plan) {
            (0, Some(p)) => p.memory_mb,
            (0, None) => 512,
            (m, _) => m,
        };
        check_cores(cores)?;
        check_memory(memory_mb)?;
        let disk_gb = plan.as_ref().map_or(CUSTOM_DISK_GB, |p| p.disk_gb);
        if new.ports.len() > 512 {
            return Err(ServerError::invalid(
                "ports",
                "ports must be at most 512 characters",
            ));
        }
        if new.primary_port.len() > 64 {
            return Err(ServerError::invalid(
                "primary",
                "the primary port must be at most 64 characters",
            ));
        }
        let variables = if new.variables_json.trim().is_empty() {
            "{}".to_owned()
        } else {
            let parsed: serde_json::Value =
                serde_json::from_str(&new.variables_json).map_err(|_| {
                    ServerError::invalid("variables", "variables must be a JSON object")
                })?;
            if !parsed.is_object() || new.variables_json.len() > 16 * 1024 {
                return Err(ServerError::invalid(
                    "variables",
                    "variables must be a JSON object of at most 16 KiB",
                ));
            }
            parsed.to_string()
        };
        let traffic_limit = if new.traffic_limit_bytes > 0 {
            new.traffic_limit_bytes
        } else {
            plan.as_ref()
                .map_or(0, |p| p.bandwidth_gb.saturating_mul(1_000_000_000))
        };

        if new.from_backup < 0 {
            return Err(ServerError::invalid("backup_id", "a backup id is positive"));
        }
        if new.from_backup > 0 {
            self.check_backup(new.from_backup, owner_id).await?;
        }
        let (password, sealed) = self.fresh_password()?;
        let task_id = new_task_id();
        let at = now_ms();
        // A debt (what deleted servers used and the balance did not cover) blocks new orders,
        // priced or not.
        let balance = self.balance_of(owner_id).await?;
        if balance < 0 {
            return Err(ServerError::InsufficientCredits {
                needed: plan.as_ref().map_or(0, Plan::hourly_price),
                balance,
            });
        }
        let txn = platform::db::begin_write(&self.db).await?;
        self.check_quota(
            &txn,
            owner_id,
            super::quotas::Want {
                servers: 1,
                cores,
                memory_mb,
            },
        )
        .await?;
        let row = store::servers::insert(
            &txn,
            server::ActiveModel {
                uuid: Set(uuid.to_string()),
                owner_id: Set(owner_id),
                name: Set(name.as_str().to_owned()),
                hostname: Set(hostname.as_str().to_owned()),
                plan_id: Set(plan.as_ref().map_or(0, |p| p.id)),
                image_id: Set(image.id),
                location: Set(location),
                node_id: Set(new.node.map(NodeId::get)),
                reservation_id: Set(None),
                guest_name: Set(format!("vps-{}", uuid.simple())),
                ipv4: Set(None),
                ipv6: Set(None),
                status: Set(ServerState::Creating.as_str().to_owned()),
                status_reason: Set(String::new()),
                cores: Set(i64::from(cores)),
                memory_mb: Set(to_i64(memory_mb)),
                disk_gb: Set(to_i64(disk_gb)),
                backups: Set(new.backups),
                ports: Set(new.ports.trim().to_owned()),
                primary_port: Set(new.primary_port.trim().to_owned()),
                variables: Set(variables),
                traffic_combined: Set(new.traffic_combined),
                traffic_limit: Set(to_i64(traffic_limit)),
                traffic_in: Set(0),
                traffic_out: Set(0),
                traffic_exceeded: Set(String::new()),
                root_password: Set(Some(sealed)),
                hourly_price: Set(plan.as_ref().map_or(0, Plan::hourly_price)),
                paid_until: Set(0),
                ran_in_period: Set(false),
                overdue_since: Set(None),
                task_id: Set(Some(task_id.clone())),
                created_at: Set(at),
                updated_at: Set(at),
                deleted_at: Set(None),
                ..Default::default()
            },
        )
        .await?;
        let params = to_json(&CreateParams {
            from_backup: new.from_backup,
            ..CreateParams::default()
        })?;
        let running = TaskState::Running;
        store::tasks::insert(&txn, &task_id, &row, TaskKind::Create, running, params, at).await?;
        Self::record_change(&txn, &task_id).await?;
        txn.commit().await?;

        // Credits and placement run before the reply, so a short balance is a 402 and a
        // full fleet a 507 at once; the rest of the saga runs in the background.
        // Driven here until the reply, then in the background: no other replica takes it.
        self.sagas.hold(&task_id).await?;
        let refused = {
            // Driven here until the reply: the resumer must not drive it meanwhile.
            let _driving = self.sagas.claim(&task_id);
            match Engine::advance(
                self.as_ref(),
                &task_id,
                Some(super::saga::create_reply_before()),
            )
            .await?
            {
                Progress::Failed(error) => {
                    Some((Engine::unwind(self.as_ref(), &task_id).await, error))
                }
                Progress::Done
                | Progress::Paused
                | Progress::Halted
                | Progress::Unwinding
                | Progress::Idle => None,
            }
        };
        if let Some((unwound, error)) = refused {
            match unwound {
                Ok(true) => {
                    let txn = platform::db::begin_write(&self.db).await?;
                    // A delete asked for meanwhile has nothing left to do: it is done.
                    if let Some(queued) = store::servers::find(&txn, row.id)
                        .await?
                        .and_then(|s| s.delete_task_id)
                    {
                        store::tasks::set_state(&txn, &queued, TaskState::Succeeded).await?;
                    }
                    store::tasks::delete(&txn, &task_id).await?;
                    store::servers::delete(&txn, row.id).await?;
                    // Refused: the key is free for another try, as with any refusal.
                    Self::forget_change(&txn).await?;
                    txn.commit().await?;
                }
                // An undo cannot be done now (identity-svc or node-svc away): the saga
                // keeps unwinding in the background and the server ends in `error`. The key
                // is given back too; if that fails, the caller still hears the refusal, and
                // a repeat answers with this server as it ends.
                _ => {
                    self.spawn_drive(task_id.clone());
                    if let Err(forget) = Self::forget_change(&self.db).await {
                        tracing::warn!(task = %task_id, error = %forget, "a refused create's idempotency key was not given back");
                    }
                }
            }
            return Err(error);
        }
        let row = self.server_row(row.id).await?;
        let facts = events::TaskFacts {
            id: &task_id,
            kind: Some(TaskKind::Create),
            failed: false,
        };
        events::server_event(&self.db, events::CREATED, &row, facts).await?;
        self.spawn_drive(task_id.clone());
        let image = Some(image);
        Ok(ActionReply {
            view: ServerView {
                server: row.into(),
                plan,
                image,
            },
            task_id,
            root_password: Some(password),
        })
    }

    /// The image a create names: by id, or by name (any case) or id as text.
    async fn image_for(&self, id: i64, name: &str) -> Result<Image> {
        let name = name.trim();
        if id == 0 && !name.is_empty() {
            let by_id = name.parse::<i64>().ok().filter(|id| *id > 0);
            let found = match by_id {
                Some(id) => store::catalog::image(&self.db, id).await?,
                None => store::catalog::images(&self.db)
                    .await?
                    .into_iter()
                    .find(|i| i.name.eq_ignore_ascii_case(name)),
            };
            return found.ok_or_else(|| ServerError::invalid("image", "image not found"));
        }
        store::catalog::image(&self.db, id)
            .await?
            .ok_or_else(|| ServerError::invalid("image_id", "no such image"))
    }

    /// The hourly price of a server resized to `size`: the plan's, scaled by the largest
    /// ratio of the new size to the plan's (cores, memory or disk), rounded up. Servers
    /// without a plan stay unpriced.
    async fn price_of_size(&self, server: &server::Model, size: (i64, i64, i64)) -> Result<i64> {
        let Some(plan) = store::catalog::plan(&self.db, server.plan_id).await? else {
            return Ok(server.hourly_price);
        };
        let base = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let ratio = [
            (size.0, i64::from(plan.vcpus)),
            (size.1, base(plan.memory_mb)),
            (size.2, base(plan.disk_gb)),
        ]
        .into_iter()
        .map(|(want, base)| want as f64 / base.max(1) as f64)
        .fold(1.0_f64, f64::max);
        let monthly = (plan.monthly_price as f64 * ratio).ceil() as i64;
        Ok(crate::domain::catalog::hourly_price(monthly))
    }

    /// A new root password, and the same sealed for storage.
    fn fresh_password(&self) -> Result<(String, String)> {
        let plain = new_password();
        let sealed = self
            .sealer
            .seal(plain.as_bytes())
            .map_err(ServerError::Internal)?;
        Ok((plain, sealed))
    }

    /// A page of the servers the caller sees. With `if_none_match` naming the version the
    /// caller holds and nothing changed since, no page: `not_modified`.
    pub async fn list_servers(
        &self,
        caller: Caller,
        query: ListServers<'_>,
        page: platform::page::Page,
    ) -> Result<ServerPage> {
        let status = query.status.trim();
        let status = if status.is_empty() {
            None
        } else {
            Some(
                ServerState::parse(status)
                    .ok_or_else(|| ServerError::invalid("status", "unknown status"))?,
            )
        };
        let location = query.location.trim();
        let listing = store::servers::Listing {
            visible_to: Self::visible_to(caller),
            owner: query.owner.filter(|_| caller.admin).map(UserId::get),
            status,
            location: (!location.is_empty()).then_some(location),
            ids: query.ids,
        };
        // The version is read before the page, so the page is at least as new as the version
        // it goes out with.
        let version = match listing.visible_to.or(listing.owner) {
            Some(owner) => store::versions::of_owner(&self.db, owner).await?,
            None => store::versions::of_all(&self.db).await?,
        };
        if version == query.if_none_match {
            return Ok(ServerPage {
                version,
                not_modified: true,
                ..ServerPage::default()
            });
        }
        // The page and the (small) catalog at once, each on a connection of its own.
        let (rows, plans, images) = tokio::try_join!(
            store::servers::page(&self.db, listing, page.after, page.fetch()),
            store::catalog::plans(&self.db),
            store::catalog::images(&self.db),
        )?;
        let (rows, next) = page.finish(rows, |s| s.id);
        let plans: HashMap<i64, Plan> = plans.into_iter().map(|p| (p.id, p)).collect();
        let images: HashMap<i64, Image> = images.into_iter().map(|i| (i.id, i)).collect();
        let servers = rows
            .into_iter()
            .map(|server| ServerView {
                plan: plans.get(&server.plan_id).cloned(),
                image: images.get(&server.image_id).cloned(),
                server: server.into(),
            })
            .collect();
        Ok(ServerPage {
            servers,
            next,
            version,
            not_modified: false,
        })
    }

    pub async fn get_server(&self, caller: Caller, key: &ServerKey) -> Result<ServerView> {
        let server = self.visible_server(caller, key).await?;
        self.view(server).await
    }

    pub(super) async fn view(&self, server: server::Model) -> Result<ServerView> {
        let (plan, image) = self.plan_and_image(&server).await?;
        Ok(ServerView {
            plan,
            image,
            server: server.into(),
        })
    }

    pub async fn update_server(
        &self,
        caller: Caller,
        key: &ServerKey,
        update: Update,
    ) -> Result<ServerView> {
        let server = self.visible_server(caller, key).await?;
        let mut am = server.clone().into_active_model();
        if let Some(name) = &update.name {
            let name = ServerName::parse(name).map_err(|m| ServerError::invalid("name", m))?;
            am.name = Set(name.as_str().to_owned());
        }
        if let Some(hostname) = &update.hostname {
            let hostname =
                Hostname::parse(hostname).map_err(|m| ServerError::invalid("hostname", m))?;
            am.hostname = Set(hostname.as_str().to_owned());
        }
        if let Some(backups) = update.backups {
            // snapshot-svc first: a flag that says on has its schedule.
            if backups != server.backups {
                self.automatic_backups(server.id, backups).await?;
            }
            am.backups = Set(backups);
        }
        am.updated_at = Set(now_ms());
        let updated = store::servers::update(&self.db, am).await?;
        self.view(updated).await
    }

    pub async fn act(
        self: &Arc<Self>,
        caller: Caller,
        key: &ServerKey,
        action: Action,
        p: ActParams,
    ) -> Result<ActionReply> {
        if matches!(action, Action::Suspend | Action::Unsuspend) {
            require_admin(caller)?;
        }
        let server = self.visible_server(caller, key).await?;
        if let Some(queued) = &server.delete_task_id {
            // Already on its way out: a repeated delete gets the same task.
            return if action == Action::Delete {
                Ok(ActionReply {
                    view: self.view(server.clone()).await?,
                    task_id: queued.clone(),
                    root_password: None,
                })
            } else {
                Err(ServerError::WrongState(Refusal::DeletePending))
            };
        }
        let current = ServerState::parse(&server.status).unwrap_or(ServerState::Unknown);
        let next = match current.begin(action) {
            Ok(next) => next,
            // A delete never waits on the owner: it runs when the current task ends.
            Err(Refusal::Busy(_)) if action == Action::Delete => {
                return self.queue_delete(caller, server).await;
            }
            Err(refusal) => return Err(ServerError::WrongState(refusal)),
        };
        // One task at a time per server, whatever the state says (a password change or a
        // resize keeps the state it began in).
        if let Some(previous) = &server.task_id
            && let Some(running) = store::tasks::find(&self.db, previous).await?
            && TaskState::parse(&running.state).is_some_and(TaskState::is_open)
        {
            if action == Action::Delete {
                return self.queue_delete(caller, server).await;
            }
            return Err(ServerError::WrongState(Refusal::TaskUnderway));
        }
        let prior_status = current.as_str().to_owned();
        let power = || PowerParams {
            prior_status: prior_status.clone(),
        };
        let task_id = new_task_id();
        let mut password = None;
        let mut growth = None;
        let mut next_price = None;
        let (kind, params) = match action {
            Action::Start => {
                // Starting needs the next period covered at the server's price.
                next_price = Some(server.hourly_price);
                (TaskKind::Start, to_json(&power())?)
            }
            Action::Stop => (TaskKind::Stop, to_json(&power())?),
            Action::Reboot => (TaskKind::Reboot, to_json(&power())?),
            Action::Delete => (
                TaskKind::Delete,
                to_json(&DeleteParams {
                    prior_status: prior_status.clone(),
                })?,
            ),
            Action::Suspend => (TaskKind::Suspend, to_json(&power())?),
            Action::Unsuspend => (TaskKind::Unsuspend, to_json(&power())?),
            Action::SetPassword => {
                let (plain, sealed) = self.fresh_password()?;
                password = Some(plain);
                (
                    TaskKind::Password,
                    to_json(&PasswordParams {
                        prior_status: prior_status.clone(),
                        password: sealed,
                    })?,
                )
            }
            Action::Reinstall => {
                let image_id = if p.image_id > 0 {
                    p.image_id
                } else {
                    server.image_id
                };
                if store::catalog::image(&self.db, image_id).await?.is_none() {
                    return Err(ServerError::invalid("image_id", "no such image"));
                }
                let (plain, sealed) = self.fresh_password()?;
                password = Some(plain);
                (
                    TaskKind::Reinstall,
                    to_json(&ReinstallParams {
                        prior_status: prior_status.clone(),
                        image_id,
                        password: sealed,
                        password_set: false,
                    })?,
                )
            }
            Action::Resize => {
                if p.cores.is_none() && p.memory_mb.is_none() && p.disk_gb.is_none() {
                    return Err(ServerError::invalid(
                        "cores",
                        "give at least one of cores, memory and disk",
                    ));
                }
                if let Some(cores) = p.cores {
                    check_cores(cores)?;
                }
                if let Some(memory_mb) = p.memory_mb {
                    check_memory(memory_mb)?;
                }
                if let Some(disk_gb) = p.disk_gb {
                    let now = u64::try_from(server.disk_gb).unwrap_or(0);
                    if disk_gb < now || disk_gb > MAX_DISK_GB {
                        return Err(ServerError::invalid(
                            "disk",
                            format!("disk can only grow: between {now} and {MAX_DISK_GB} GB"),
                        ));
                    }
                }
                let old = (server.cores, server.memory_mb, server.disk_gb);
                let new = (
                    p.cores.map_or(old.0, i64::from),
                    p.memory_mb.map_or(old.1, to_i64),
                    p.disk_gb.map_or(old.2, to_i64),
                );
                if new == old {
                    return Err(ServerError::invalid("cores", "that is the current size"));
                }
                let price = self.price_of_size(&server, new).await?;
                // Growing needs the next period covered at the price it will run at.
                next_price = Some(price);
                growth = Some((old, new));
                (
                    TaskKind::Resize,
                    to_json(&ResizeParams {
                        prior_status: prior_status.clone(),
                        old_size: old,
                        new_size: new,
                        new_reservation: format!("{}:{task_id}", server.uuid),
                        old_reservation: server.reservation_id.clone(),
                        new_hourly_price: price,
                    })?,
                )
            }
            Action::Snapshot | Action::Restore => {
                return Err(ServerError::invalid(
                    "action",
                    "snapshots belong to snapshot-svc",
                ));
            }
        };
        // A debt (a negative balance) covers nothing.
        if let Some(needed) = next_price.filter(|p| *p > 0) {
            let balance = self.balance_of(server.owner_id).await?;
            if balance < needed {
                return Err(ServerError::InsufficientCredits { needed, balance });
            }
        }
        let txn = platform::db::begin_write(&self.db).await?;
        if let Some((old, new)) = growth {
            // Growing counts against the vCPU and memory quotas, like an order.
            let grow = |from: i64, to: i64| (to - from).max(0);
            self.check_quota(
                &txn,
                server.owner_id,
                super::quotas::Want {
                    servers: 0,
                    cores: u32::try_from(grow(old.0, new.0)).unwrap_or(u32::MAX),
                    memory_mb: u64::try_from(grow(old.1, new.1)).unwrap_or(u64::MAX),
                },
            )
            .await?;
        }
        // Conditional on the state and the task read: of two actions that both saw this
        // state, one wins.
        let claimed = store::servers::swap_status(
            &txn,
            server.id,
            current.as_str(),
            server.task_id.as_deref(),
            next.as_str(),
            &task_id,
            now_ms(),
        )
        .await?;
        if !claimed {
            txn.rollback().await?;
            let now = self.visible_server(caller, &ServerKey::of(&server)).await?;
            if action == Action::Delete {
                // A task began meanwhile: the delete waits for it.
                return self.queue_delete(caller, now).await;
            }
            let state = ServerState::parse(&now.status).unwrap_or(ServerState::Unknown);
            return Err(ServerError::WrongState(
                state.begin(action).err().unwrap_or(Refusal::Busy(state)),
            ));
        }
        if action == Action::Suspend {
            let why = if p.reason.trim().is_empty() {
                "suspended by an administrator".to_owned()
            } else {
                p.reason.trim().chars().take(200).collect()
            };
            store::servers::set_status_reason(&txn, server.id, why).await?;
        }
        store::tasks::insert(
            &txn,
            &task_id,
            &server,
            kind,
            TaskState::Running,
            params,
            now_ms(),
        )
        .await?;
        let updated = store::servers::find(&txn, server.id)
            .await?
            .ok_or(ServerError::NotFound("server"))?;
        let subject = if action == Action::Suspend {
            events::SUSPENDED
        } else {
            events::STATE
        };
        events::server_event(
            &txn,
            subject,
            &updated,
            events::TaskFacts {
                id: &task_id,
                kind: Some(kind),
                failed: false,
            },
        )
        .await?;
        Self::record_change(&txn, &task_id).await?;
        txn.commit().await?;
        let updated = if super::saga::steps(kind).is_empty() {
            // Nothing for a node to do (unsuspend): done before the reply.
            if let Some(queued) = self.end_task(&task_id, false).await? {
                self.spawn_drive(queued);
            }
            self.server_row(server.id).await?
        } else {
            self.spawn_drive(task_id.clone());
            updated
        };
        Ok(ActionReply {
            view: self.view(updated).await?,
            task_id,
            root_password: password,
        })
    }

    /// The reply to a create or an action whose request died after its change committed: the
    /// server as it is now and the task the change made, whatever became of the task since
    /// (as the lost reply would have named it; the task tells how it ended). The root
    /// password is not shown again. `None` when the change was undone since (a create
    /// refused before its reply and unwound).
    pub async fn answer_for_task(&self, task_id: &str) -> Result<Option<ActionReply>> {
        let Some(task) = store::tasks::find(&self.db, task_id).await? else {
            return Ok(None);
        };
        let Some(server) = store::servers::find(&self.db, task.server_id).await? else {
            return Ok(None);
        };
        Ok(Some(ActionReply {
            view: self.view(server).await?,
            task_id: task.id,
            root_password: None,
        }))
    }

    /// Accepts a delete while another task runs: the delete task waits on the server row
    /// and starts when that task ends (a create or reinstall stops building and unwinds
    /// first). The reply names the delete task.
    async fn queue_delete(
        self: &Arc<Self>,
        caller: Caller,
        server: server::Model,
    ) -> Result<ActionReply> {
        let task_id = new_task_id();
        let txn = platform::db::begin_write(&self.db).await?;
        let claimed = store::servers::queue_delete(
            &txn,
            server.id,
            &task_id,
            &server.status,
            server.task_id.as_deref(),
        )
        .await?;
        if !claimed {
            // The running task ended (or another delete came) meanwhile: decide again.
            txn.rollback().await?;
            return Box::pin(self.act(
                caller,
                &ServerKey::of(&server),
                Action::Delete,
                ActParams::default(),
            ))
            .await;
        }
        // Queued: it starts when the running task ends.
        let params = to_json(&DeleteParams::default())?;
        let queued = TaskState::Queued;
        store::tasks::insert(
            &txn,
            &task_id,
            &server,
            TaskKind::Delete,
            queued,
            params,
            now_ms(),
        )
        .await?;
        Self::record_change(&txn, &task_id).await?;
        txn.commit().await?;
        // The task may have ended just before the claim; if it did, nothing will start the
        // delete: look once more.
        let now = self.server_row(server.id).await?;
        let still_running = match &now.task_id {
            Some(t) => store::tasks::find(&self.db, t)
                .await?
                .is_some_and(|t| TaskState::parse(&t.state).is_some_and(TaskState::is_open)),
            None => false,
        };
        if !still_running && now.delete_task_id.as_deref() == Some(task_id.as_str()) {
            self.start_queued_delete(&now).await?;
        }
        Ok(ActionReply {
            view: self.view(now).await?,
            task_id,
            root_password: None,
        })
    }

    /// Starts a queued delete on a server whose task has ended.
    async fn start_queued_delete(self: &Arc<Self>, server: &server::Model) -> Result<()> {
        let Some(queued) = server.delete_task_id.clone() else {
            return Ok(());
        };
        let txn = platform::db::begin_write(&self.db).await?;
        let started = store::servers::start_queued_delete(
            &txn,
            server.id,
            &queued,
            server.task_id.as_deref(),
        )
        .await?;
        if !started {
            // finish() promoted it first.
            txn.rollback().await?;
            return Ok(());
        }
        let params = DeleteParams {
            prior_status: server.status.clone(),
        };
        store::tasks::start(&txn, &queued, to_json(&params)?, now_ms()).await?;
        txn.commit().await?;
        self.spawn_drive(queued);
        Ok(())
    }

    pub async fn open_console(
        &self,
        caller: Caller,
        key: &ServerKey,
    ) -> Result<nodepb::ConsoleTicket> {
        let server = self.visible_server(caller, key).await?;
        if server.status != ServerState::Running.as_str() {
            return Err(ServerError::WrongState(Refusal::NotRunning));
        }
        let guest = nodepb::GuestRef {
            node_id: server.node_id.unwrap_or(0),
            name: server.guest_name.clone(),
        };
        Ok(self
            .consoles
            .clone()
            .issue_ticket(Caller::SYSTEM.request(nodepb::IssueConsoleTicketRequest {
                guest: Some(guest),
                user_id: caller.user_id,
            }))
            .await?
            .into_inner())
    }

    pub async fn get_task(&self, caller: Caller, id: &TaskId) -> Result<Task> {
        let task = store::tasks::find(&self.db, id.as_str())
            .await?
            .ok_or(ServerError::NotFound("task"))?;
        if !caller.admin && task.owner_id != caller.user_id {
            return Err(ServerError::NotFound("task"));
        }
        Ok(task.into())
    }
}
