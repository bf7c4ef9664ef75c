//! The gRPC edge of monitor-svc: decode, check the caller, call `app`, encode.

use std::sync::Arc;

use platform::auth::{Caller, Scopes, Service};
use platform::grpc::to_status;
use proto::monitor::v1 as pb;
use proto::monitor::v1::monitor_server::{Monitor as MonitorRpc, MonitorServer};
use tonic::{Request, Response, Status};

use crate::app::App;

pub struct MonitorService {
    app: Arc<App>,
}

impl MonitorService {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    pub fn into_server(self) -> MonitorServer<Self> {
        MonitorServer::new(self)
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl MonitorRpc for MonitorService {
    async fn get_stats(&self, request: Request<pb::GetStatsRequest>) -> Reply<pb::Stats> {
        // server-svc has checked that its caller may see the server; nobody else asks here.
        Caller::required(&request)?.require_service(&[Service::Server])?;
        let r = request.into_inner();
        let timeframe = pb::Timeframe::try_from(r.timeframe)
            .map_err(|_| Status::invalid_argument("unknown timeframe"))?;
        let max = pb::Consolidation::try_from(r.cf)
            .map_err(|_| Status::invalid_argument("unknown consolidation"))?
            == pb::Consolidation::Max;
        self.app
            .stats(r.server_id, timeframe, max)
            .await
            .map(Response::new)
            .map_err(|e| to_status(&e))
    }

    async fn get_poll_status(
        &self,
        request: Request<pb::GetPollStatusRequest>,
    ) -> Reply<pb::PollStatus> {
        let caller = Caller::required(&request)?.require_user(Scopes::NODES_READ)?;
        if !caller.admin {
            return Err(Status::permission_denied("administrators only"));
        }
        Ok(Response::new(self.app.poll_status()))
    }
}
