//! The gRPC edge of server-svc: decode, call `app`, encode. Root passwords leave only in
//! the reply of the call that generated them.

use std::sync::Arc;

use platform::auth::{Scopes, Service};
use platform::grpc::{Caller, to_status};
use proto::monitor::v1 as monpb;
use proto::server::v1 as pb;
use proto::server::v1::servers_server::{Servers as ServersRpc, ServersServer};
use tonic::{Request, Response, Status};

use crate::app::{
    ActParams, ActionReply, App, ListServers, NewServer, NodeId, ServerKey, ServerView, TaskId,
    Update, UsageView, UserId,
};
use crate::domain::catalog::{Image, Location, Plan, TrafficAction};
use crate::domain::server::Task;
use crate::domain::state::{Action, ServerState};
use crate::domain::task::{TaskKind, TaskState};
use crate::error::ServerError;

/// Metadata key of the client's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "x-vps-idempotency-key";

pub struct ServerService {
    app: Arc<App>,
}

impl ServerService {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    pub fn into_server(self) -> ServersServer<Self> {
        ServersServer::new(self)
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn status(error: ServerError) -> Status {
    to_status(&error)
}

/// Metadata key of an add-only catalog write (the gateway's `If-None-Match: *`): present,
/// an entry with the same id or code is not replaced but refused with ALREADY_EXISTS.
pub const ADD_ONLY: &str = "x-vps-add-only";

fn add_only<T>(request: &Request<T>) -> bool {
    request.metadata().contains_key(ADD_ONLY)
}

fn idempotency_key<T>(request: &Request<T>) -> Option<String> {
    request
        .metadata()
        .get(IDEMPOTENCY_KEY)
        .map(|v| v.to_str().unwrap_or("\u{1}").to_owned())
}

fn traffic_action_pb(a: TrafficAction) -> pb::TrafficAction {
    match a {
        TrafficAction::None => pb::TrafficAction::None,
        TrafficAction::Throttle => pb::TrafficAction::Throttle,
        TrafficAction::Suspend => pb::TrafficAction::Suspend,
    }
}

fn plan_pb(p: &Plan) -> pb::Plan {
    pb::Plan {
        id: p.id,
        name: p.name.clone(),
        vcpus: p.vcpus,
        memory_mb: p.memory_mb,
        disk_gb: p.disk_gb,
        bandwidth_gb: p.bandwidth_gb,
        monthly_price: p.monthly_price,
        hourly_price: p.hourly_price(),
        snapshot_limit: p.snapshot_limit,
        backup_limit: p.backup_limit,
        traffic_action: traffic_action_pb(p.traffic_action).into(),
        throttle_mbit: p.throttle_mbit,
    }
}

fn image_pb(i: &Image) -> pb::Image {
    pb::Image {
        id: i.id,
        name: i.name.clone(),
        r#type: i.kind.clone(),
        templates: i.templates.clone(),
    }
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub fn server_pb(v: ServerView) -> pb::Server {
    let s = v.server;
    pb::Server {
        id: s.id.get(),
        uuid: s.uuid,
        owner_id: s.owner.get(),
        name: s.name,
        hostname: s.hostname,
        plan: v.plan.as_ref().map(plan_pb),
        image: v.image.as_ref().map(image_pb),
        location: s.location,
        node_id: s.node.map_or(0, NodeId::get),
        guest_name: s.guest_name,
        hypervisor_id: s.id.get(),
        ipv4: s.ipv4.unwrap_or_default(),
        ipv6: s.ipv6.unwrap_or_default(),
        status: state_pb(s.status).into(),
        status_reason: s.status_reason,
        cores: s.cores,
        memory_mb: s.memory_mb,
        disk_gb: s.disk_gb,
        backups: s.backups,
        ports: s.ports,
        primary_port: s.primary_port,
        variables_json: s.variables,
        traffic_combined: s.traffic_combined,
        traffic_limit_bytes: s.traffic_limit_bytes,
        traffic_in_bytes: s.traffic_in_bytes,
        traffic_out_bytes: s.traffic_out_bytes,
        created_at_ms: s.created_at_ms,
        updated_at_ms: s.updated_at_ms,
        task_id: s.task.map(|t| t.to_string()).unwrap_or_default(),
    }
}

pub(crate) fn state_pb(state: ServerState) -> pb::ServerStatus {
    match state {
        ServerState::Creating => pb::ServerStatus::Creating,
        ServerState::Running => pb::ServerStatus::Running,
        ServerState::Stopped => pb::ServerStatus::Stopped,
        ServerState::Starting => pb::ServerStatus::Starting,
        ServerState::Stopping => pb::ServerStatus::Stopping,
        ServerState::Rebooting => pb::ServerStatus::Rebooting,
        ServerState::Restoring => pb::ServerStatus::Restoring,
        ServerState::Deleting => pb::ServerStatus::Deleting,
        ServerState::Suspended => pb::ServerStatus::Suspended,
        ServerState::Terminated => pb::ServerStatus::Terminated,
        ServerState::Error => pb::ServerStatus::Error,
        ServerState::Unknown => pb::ServerStatus::Unknown,
    }
}

/// A status from the contract (not `Unspecified`) as ours.
fn state_of(status: pb::ServerStatus) -> ServerState {
    ServerState::ALL
        .into_iter()
        .find(|s| state_pb(*s) == status)
        .unwrap_or(ServerState::Unknown)
}

fn kind_pb(kind: TaskKind) -> pb::TaskKind {
    match kind {
        TaskKind::Create => pb::TaskKind::Create,
        TaskKind::Delete => pb::TaskKind::Delete,
        TaskKind::Resize => pb::TaskKind::Resize,
        TaskKind::Reinstall => pb::TaskKind::Reinstall,
        TaskKind::Start => pb::TaskKind::Start,
        TaskKind::Stop => pb::TaskKind::Stop,
        TaskKind::Reboot => pb::TaskKind::Reboot,
        TaskKind::Password => pb::TaskKind::Password,
        TaskKind::Suspend => pb::TaskKind::Suspend,
        TaskKind::Unsuspend => pb::TaskKind::Unsuspend,
        TaskKind::Snapshot => pb::TaskKind::Snapshot,
        TaskKind::SnapshotRestore => pb::TaskKind::SnapshotRestore,
        TaskKind::Backup => pb::TaskKind::Backup,
        TaskKind::BackupRestore => pb::TaskKind::BackupRestore,
    }
}

fn task_state_pb(state: TaskState) -> pb::TaskState {
    match state {
        TaskState::Queued => pb::TaskState::Queued,
        // Unwinding is still running, as far as a client can tell.
        TaskState::Running | TaskState::Unwinding => pb::TaskState::Running,
        TaskState::Succeeded => pb::TaskState::Succeeded,
        TaskState::Failed => pb::TaskState::Failed,
    }
}

/// The reply for an idempotency key whose request died after its change committed.
async fn recovered(app: &Arc<App>, task: String) -> Result<Option<pb::ServerReply>, ServerError> {
    Ok(app.answer_for_task(&task).await?.map(reply_pb))
}

fn reply_pb(r: ActionReply) -> pb::ServerReply {
    pb::ServerReply {
        server: Some(server_pb(r.view)),
        task_id: r.task_id,
        root_password: r.root_password.unwrap_or_default(),
    }
}

fn task_pb(t: Task) -> pb::Task {
    pb::Task {
        id: t.id.to_string(),
        server_id: t.server.get(),
        kind: t.kind.map_or(pb::TaskKind::Unspecified, kind_pb).into(),
        state: t
            .state
            .map_or(pb::TaskState::Unspecified, task_state_pb)
            .into(),
        step: t.step,
        steps_done: t.steps_done,
        error: t.error,
        error_reason: platform::grpc::Reason::from_str_name(&t.error_reason)
            .unwrap_or(platform::grpc::Reason::Unspecified)
            .into(),
        created_at_ms: t.created_at_ms,
        updated_at_ms: t.updated_at_ms,
    }
}

fn usage_pb(u: UsageView) -> pb::Usage {
    let mib = 1024 * 1024;
    let Some(g) = u.sample else {
        return pb::Usage {
            status: state_pb(u.status).into(),
            cpu_percent: -1.0,
            memory_max_bytes: self::u(u.memory_mb) * mib,
            disk_max_bytes: self::u(u.disk_gb) * mib * 1024,
            live: u.live,
            points: u.points,
            ..pb::Usage::default()
        };
    };
    pb::Usage {
        status: state_pb(u.status).into(),
        uptime_secs: g.uptime_secs,
        cpu_percent: (g.cpu * 10_000.0).round() / 100.0,
        memory_used_bytes: g.memory_used_bytes,
        memory_max_bytes: g.memory_max_bytes,
        disk_used_bytes: g.disk_used_bytes,
        disk_max_bytes: g.disk_max_bytes,
        net_in_bytes: g.net_in_bytes,
        net_out_bytes: g.net_out_bytes,
        live: u.live,
        sampled_at_ms: g.at_ms,
        net_in_rate: g.net_in_rate,
        net_out_rate: g.net_out_rate,
        disk_read_rate: g.disk_read_rate,
        disk_write_rate: g.disk_write_rate,
        points: u.points,
    }
}

/// Runs `work` on its own task, so it finishes even if the call that started it is dropped.
async fn run_detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, ServerError>> + Send + 'static,
) -> Result<T, ServerError> {
    tokio::spawn(tracing::Instrument::in_current_span(work))
        .await
        .map_err(|e| ServerError::Internal(anyhow::anyhow!("the call's task failed: {e}")))?
}

/// How the request names a server: its id if positive, else its UUID.
fn server_key(r: Option<pb::ServerRef>) -> Result<ServerKey, ServerError> {
    let r = r.unwrap_or_default();
    if let Some(id) = crate::app::ServerId::new(r.id) {
        return Ok(ServerKey::Id(id));
    }
    let uuid = r.uuid.trim();
    if uuid.is_empty() {
        return Err(ServerError::invalid("id", "a server id is required"));
    }
    Ok(ServerKey::Uuid(uuid.to_owned()))
}

#[tonic::async_trait]
impl ServersRpc for ServerService {
    async fn get_catalog(&self, request: Request<pb::GetCatalogRequest>) -> Reply<pb::Catalog> {
        Caller::required(&request)?.require_user(Scopes::SERVERS_READ)?;
        let catalog = self.app.catalog().await.map_err(status)?;
        Ok(Response::new(pb::Catalog {
            plans: catalog.plans.iter().map(plan_pb).collect(),
            images: catalog.images.iter().map(image_pb).collect(),
            locations: catalog
                .locations
                .into_iter()
                .map(|l| pb::Location {
                    code: l.code,
                    name: l.name,
                })
                .collect(),
        }))
    }

    async fn put_plan(&self, request: Request<pb::Plan>) -> Reply<pb::Plan> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let add_only = add_only(&request);
        let p = request.into_inner();
        let plan = Plan {
            id: p.id,
            name: p.name.trim().to_owned(),
            vcpus: p.vcpus,
            memory_mb: p.memory_mb,
            disk_gb: p.disk_gb,
            bandwidth_gb: p.bandwidth_gb,
            monthly_price: p.monthly_price,
            snapshot_limit: p.snapshot_limit,
            backup_limit: p.backup_limit,
            traffic_action: match p.traffic_action() {
                pb::TrafficAction::None => TrafficAction::None,
                pb::TrafficAction::Throttle => TrafficAction::Throttle,
                pb::TrafficAction::Suspend => TrafficAction::Suspend,
            },
            throttle_mbit: p.throttle_mbit,
        };
        let saved = self
            .app
            .put_plan(caller, plan, add_only)
            .await
            .map_err(status)?;
        Ok(Response::new(plan_pb(&saved)))
    }

    async fn put_image(&self, request: Request<pb::Image>) -> Reply<pb::Image> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let add_only = add_only(&request);
        let i = request.into_inner();
        let image = Image {
            id: i.id,
            name: i.name.trim().to_owned(),
            kind: i.r#type.trim().to_owned(),
            templates: i.templates,
        };
        let saved = self
            .app
            .put_image(caller, image, add_only)
            .await
            .map_err(status)?;
        Ok(Response::new(image_pb(&saved)))
    }

    async fn put_location(&self, request: Request<pb::Location>) -> Reply<pb::Location> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let add_only = add_only(&request);
        let l = request.into_inner();
        let saved = self
            .app
            .put_location(
                caller,
                Location {
                    code: l.code.trim().to_owned(),
                    name: l.name.trim().to_owned(),
                },
                add_only,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::Location {
            code: saved.code,
            name: saved.name,
        }))
    }

    async fn create_server(
        &self,
        request: Request<pb::CreateServerRequest>,
    ) -> Reply<pb::ServerReply> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let key = idempotency_key(&request);
        let r = request.into_inner();
        if r.owner_id < 0 {
            return Err(status(ServerError::invalid(
                "owner_id",
                "a server needs an owner",
            )));
        }
        if r.node_id < 0 {
            return Err(status(ServerError::invalid(
                "node_id",
                "node id must be positive",
            )));
        }
        if r.from_backup_id < 0 {
            return Err(status(ServerError::invalid(
                "backup_id",
                "a backup id is positive",
            )));
        }
        let app = self.app.clone();
        // Spawned: a caller that goes away (a time-out, a closed connection) must not stop
        // a create half-way between its rows and its saga.
        let work = async move {
            app.idempotent(
                caller,
                key.as_deref(),
                "CreateServer",
                &r,
                || async {
                    let new = NewServer {
                        owner: UserId::new(r.owner_id),
                        name: r.name.clone(),
                        hostname: r.hostname.clone(),
                        plan_id: r.plan_id,
                        image_id: r.image_id,
                        image_name: r.image_name.clone(),
                        location: r.location.clone(),
                        backups: r.backups,
                        node: NodeId::new(r.node_id),
                        cores: r.cores,
                        memory_mb: r.memory_mb,
                        ports: r.ports.clone(),
                        primary_port: r.primary_port.clone(),
                        variables_json: r.variables_json.clone(),
                        traffic_combined: r.traffic_combined,
                        traffic_limit_bytes: r.traffic_limit_bytes,
                        from_backup: r.from_backup_id,
                    };
                    app.create_server(caller, new).await.map(reply_pb)
                },
                |task| recovered(&app, task),
            )
            .await
        };
        let reply = run_detached(work).await.map_err(status)?;
        Ok(Response::new(reply))
    }

    async fn list_servers(
        &self,
        request: Request<pb::ListServersRequest>,
    ) -> Reply<pb::ListServersResponse> {
        // snapshot-svc and notify-svc name the servers in their own listings.
        let caller = Caller::required(&request)?.user_or_service(
            Scopes::SERVERS_READ,
            &[
                platform::auth::Service::Snapshot,
                platform::auth::Service::Notify,
            ],
        )?;
        let r = request.into_inner();
        platform::page::check_batch(&r.ids)
            .map_err(|(field, message)| status(ServerError::invalid(field, message)))?;
        let wanted = match pb::ServerStatus::try_from(r.status) {
            Ok(pb::ServerStatus::Unspecified) => None,
            Ok(wanted) => Some(state_of(wanted)),
            Err(_) => {
                return Err(status(ServerError::invalid("status", "no such status")));
            }
        };
        let page = platform::page::Page::parse(r.limit, &r.page_token)
            .map_err(|(field, message)| status(ServerError::invalid(field, message)))?;
        // A version names a whole listing: only its first page is answered "not modified".
        let if_none_match = if r.page_token.is_empty() {
            r.if_none_match.as_str()
        } else {
            ""
        };
        let query = ListServers {
            owner: UserId::new(r.owner_id),
            status: wanted.map_or("", ServerState::as_str),
            location: &r.location,
            if_none_match,
            ids: (!r.ids.is_empty()).then_some(r.ids.as_slice()),
        };
        let page = self
            .app
            .list_servers(caller, query, page)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListServersResponse {
            servers: page.servers.into_iter().map(server_pb).collect(),
            next_page_token: page.next,
            version: page.version,
            not_modified: page.not_modified,
        }))
    }

    async fn get_server(&self, request: Request<pb::ServerRef>) -> Reply<pb::Server> {
        // snapshot-svc reads the servers whose snapshots it keeps, notify-svc those a ticket
        // is about; both check the owner.
        let caller = Caller::required(&request)?.user_or_service(
            Scopes::SERVERS_READ,
            &[
                platform::auth::Service::Snapshot,
                platform::auth::Service::Notify,
            ],
        )?;
        let key = server_key(Some(request.into_inner())).map_err(status)?;
        let view = self.app.get_server(caller, &key).await.map_err(status)?;
        Ok(Response::new(server_pb(view)))
    }

    async fn update_server(&self, request: Request<pb::UpdateServerRequest>) -> Reply<pb::Server> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let r = request.into_inner();
        let key = server_key(r.server).map_err(status)?;
        let view = self
            .app
            .update_server(
                caller,
                &key,
                Update {
                    name: r.name,
                    hostname: r.hostname,
                    backups: r.backups,
                },
            )
            .await
            .map_err(status)?;
        Ok(Response::new(server_pb(view)))
    }

    async fn act(&self, request: Request<pb::ActRequest>) -> Reply<pb::ServerReply> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let key = idempotency_key(&request);
        let r = request.into_inner();
        let action = match pb::Action::try_from(r.action).unwrap_or(pb::Action::Unspecified) {
            pb::Action::Start => Action::Start,
            pb::Action::Stop => Action::Stop,
            pb::Action::Reboot => Action::Reboot,
            pb::Action::Delete => Action::Delete,
            pb::Action::Resize => Action::Resize,
            pb::Action::Reinstall => Action::Reinstall,
            pb::Action::ResetPassword => Action::SetPassword,
            pb::Action::Suspend => Action::Suspend,
            pb::Action::Unsuspend => Action::Unsuspend,
            pb::Action::Unspecified => {
                return Err(status(ServerError::invalid("action", "unknown action")));
            }
        };
        let app = self.app.clone();
        let server = server_key(r.server.clone()).map_err(status)?;
        let work = async move {
            app.idempotent(
                caller,
                key.as_deref(),
                "Act",
                &r,
                || async {
                    let params = ActParams {
                        cores: r.cores,
                        memory_mb: r.memory_mb,
                        disk_gb: r.disk_gb,
                        image_id: r.image_id,
                        reason: r.reason.clone(),
                    };
                    app.act(caller, &server, action, params).await.map(reply_pb)
                },
                |task| recovered(&app, task),
            )
            .await
        };
        let reply = run_detached(work).await.map_err(status)?;
        Ok(Response::new(reply))
    }

    async fn get_usage(&self, request: Request<pb::UsageRequest>) -> Reply<pb::Usage> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_READ)?;
        let r = request.into_inner();
        let timeframe = monpb::Timeframe::try_from(r.timeframe)
            .map_err(|_| status(ServerError::invalid("timeframe", "unknown timeframe")))?;
        let cf = monpb::Consolidation::try_from(r.cf)
            .map_err(|_| status(ServerError::invalid("cf", "unknown consolidation")))?;
        let key = server_key(Some(pb::ServerRef {
            id: r.id,
            uuid: r.uuid,
        }))
        .map_err(status)?;
        let usage = self
            .app
            .usage(caller, &key, timeframe, cf)
            .await
            .map_err(status)?;
        Ok(Response::new(usage_pb(usage)))
    }

    async fn list_placements(
        &self,
        request: Request<pb::ListPlacementsRequest>,
    ) -> Reply<pb::Placements> {
        Caller::required(&request)?.require_service(&[Service::Monitor])?;
        let node_id = request.into_inner().node_id;
        let servers = self.app.placements(node_id).await.map_err(status)?;
        Ok(Response::new(pb::Placements { servers }))
    }

    async fn observe(&self, request: Request<pb::ObserveRequest>) -> Reply<pb::ObserveReply> {
        Caller::required(&request)?.require_service(&[Service::Monitor])?;
        let r = request.into_inner();
        let app = Arc::clone(&self.app);
        let (changed, over_limit) =
            run_detached(async move { app.observe(r.node_id, r.observations).await })
                .await
                .map_err(status)?;
        Ok(Response::new(pb::ObserveReply {
            changed,
            over_limit,
        }))
    }

    async fn get_task(&self, request: Request<pb::GetTaskRequest>) -> Reply<pb::Task> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_READ)?;
        let r = request.into_inner();
        let id = TaskId::new(&r.id).ok_or_else(|| status(ServerError::NotFound("task")))?;
        let task = self.app.get_task(caller, &id).await.map_err(status)?;
        Ok(Response::new(task_pb(task)))
    }

    async fn open_console(&self, request: Request<pb::ServerRef>) -> Reply<pb::ConsoleTicket> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let key = server_key(Some(request.into_inner())).map_err(status)?;
        let ticket = self.app.open_console(caller, &key).await.map_err(status)?;
        Ok(Response::new(pb::ConsoleTicket {
            ticket: ticket.ticket,
            expires_in_secs: ticket.expires_in_secs,
        }))
    }

    async fn get_quota(&self, request: Request<pb::GetQuotaRequest>) -> Reply<pb::Quota> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_READ)?;
        let view = self
            .app
            .quota(caller, UserId::new(request.into_inner().user_id))
            .await
            .map_err(status)?;
        Ok(Response::new(quota_pb(view)))
    }

    async fn set_quota(&self, request: Request<pb::SetQuotaRequest>) -> Reply<pb::Quota> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let r = request.into_inner();
        let limits = r.limits.map(|l| crate::config::QuotaDefaults {
            servers: l.servers,
            cores: l.cores,
            memory_mb: l.memory_mb,
            addresses: l.addresses,
        });
        let user = UserId::new(r.user_id)
            .ok_or_else(|| status(ServerError::invalid("user_id", "name a user")))?;
        let view = self
            .app
            .set_quota(caller, user, limits)
            .await
            .map_err(status)?;
        Ok(Response::new(quota_pb(view)))
    }

    async fn hold(&self, request: Request<pb::HoldRequest>) -> Reply<pb::HoldReply> {
        Caller::required(&request)?.require_service(&[platform::auth::Service::Snapshot])?;
        let r = request.into_inner();
        let kind = match r.kind() {
            pb::TaskKind::Snapshot => TaskKind::Snapshot,
            pb::TaskKind::SnapshotRestore => TaskKind::SnapshotRestore,
            pb::TaskKind::Backup => TaskKind::Backup,
            pb::TaskKind::BackupRestore => TaskKind::BackupRestore,
            _ => {
                return Err(status(ServerError::invalid(
                    "kind",
                    "only snapshot-svc's kinds of task hold a server",
                )));
            }
        };
        let task_id = TaskId::new(&r.task_id)
            .ok_or_else(|| status(ServerError::invalid("task_id", "a task id is required")))?;
        let app = self.app.clone();
        let held = run_detached(async move { app.hold(r.server_id, kind, task_id.as_str()).await })
            .await
            .map_err(status)?;
        Ok(Response::new(pb::HoldReply {
            prior_status: state_pb(held.prior).into(),
            server: Some(server_pb(held.view)),
        }))
    }

    async fn release(&self, request: Request<pb::ReleaseRequest>) -> Reply<pb::Server> {
        Caller::required(&request)?.require_service(&[platform::auth::Service::Snapshot])?;
        let r = request.into_inner();
        let task_id =
            TaskId::new(&r.task_id).ok_or_else(|| status(ServerError::NotFound("task")))?;
        let to = match r.status() {
            pb::ServerStatus::Unspecified => None,
            other => Some(state_of(other)),
        };
        let app = self.app.clone();
        let view = run_detached(async move {
            app.release(r.server_id, task_id.as_str(), r.failed, to, &r.error)
                .await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(server_pb(view)))
    }
}

fn limits_pb(l: crate::config::QuotaDefaults) -> pb::QuotaLimits {
    pb::QuotaLimits {
        servers: l.servers,
        cores: l.cores,
        memory_mb: l.memory_mb,
        addresses: l.addresses,
    }
}

fn quota_pb(view: crate::app::QuotaView) -> pb::Quota {
    pb::Quota {
        user_id: view.user_id,
        limits: Some(limits_pb(view.limits)),
        used: Some(limits_pb(view.used)),
        custom: view.custom,
    }
}
