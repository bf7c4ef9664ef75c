//! The gRPC edge of notify-svc: decode, check the caller, call `app`, encode.

use std::sync::Arc;

use platform::auth::Caller;
use platform::grpc::to_status;
use proto::notify::v1 as pb;
use proto::notify::v1::notify_server::{Notify as NotifyRpc, NotifyServer};
use proto::notify::v1::tickets_server::{Tickets as TicketsRpc, TicketsServer};
use proto::notify::v1::webhooks_server::{Webhooks as WebhooksRpc, WebhooksServer};
use tonic::{Request, Response, Status};

use crate::app::{App, READ, WRITE};

#[derive(Clone)]
pub struct NotifyService {
    app: Arc<App>,
}

impl NotifyService {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    pub fn into_server(self) -> NotifyServer<Self> {
        NotifyServer::new(self)
    }

    pub fn into_tickets(self) -> TicketsServer<Self> {
        TicketsServer::new(self)
    }

    pub fn into_webhooks(self) -> WebhooksServer<Self> {
        WebhooksServer::new(self)
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn admin(caller: Caller) -> Result<Caller, Status> {
    if caller.admin {
        Ok(caller)
    } else {
        Err(Status::permission_denied("administrators only"))
    }
}

fn ticket_status(value: i32) -> Result<pb::TicketStatus, Status> {
    pb::TicketStatus::try_from(value).map_err(|_| Status::invalid_argument("unknown ticket status"))
}

#[tonic::async_trait]
impl NotifyRpc for NotifyService {
    async fn get_preferences(
        &self,
        request: Request<pb::GetPreferencesRequest>,
    ) -> Reply<pb::Preferences> {
        let caller = Caller::required(&request)?.require_user(READ)?;
        let preferences = self
            .app
            .preferences(caller)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::Preferences { preferences }))
    }

    async fn set_preferences(
        &self,
        request: Request<pb::SetPreferencesRequest>,
    ) -> Reply<pb::Preferences> {
        let caller = Caller::required(&request)?.require_user(WRITE)?;
        let wanted = request.into_inner().preferences;
        let preferences = self
            .app
            .set_preferences(caller, &wanted)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::Preferences { preferences }))
    }

    async fn list_mails(
        &self,
        request: Request<pb::ListMailsRequest>,
    ) -> Reply<pb::ListMailsResponse> {
        admin(Caller::required(&request)?.require_user(READ)?)?;
        let r = request.into_inner();
        let (mails, next_page_token) = self
            .app
            .list_mails(&r.state, r.limit, &r.page_token, r.newest_first)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::ListMailsResponse {
            mails,
            next_page_token,
        }))
    }

    async fn resend_mail(&self, request: Request<pb::ResendMailRequest>) -> Reply<pb::Mail> {
        admin(Caller::required(&request)?.require_user(WRITE)?)?;
        let id = request.into_inner().id;
        self.app
            .resend(id)
            .await
            .map(Response::new)
            .map_err(|e| to_status(&e))
    }
}

#[tonic::async_trait]
impl TicketsRpc for NotifyService {
    async fn create_ticket(&self, request: Request<pb::CreateTicketRequest>) -> Reply<pb::Ticket> {
        let caller = Caller::required(&request)?.require_user(WRITE)?;
        let r = request.into_inner();
        self.app
            .create_ticket(caller, &r.subject, &r.body, r.server_id)
            .await
            .map(Response::new)
            .map_err(|e| to_status(&e))
    }

    async fn list_tickets(
        &self,
        request: Request<pb::ListTicketsRequest>,
    ) -> Reply<pb::ListTicketsResponse> {
        let caller = Caller::required(&request)?.require_user(READ)?;
        let r = request.into_inner();
        let status = ticket_status(r.status)?;
        let (tickets, next_page_token) = self
            .app
            .list_tickets(
                caller,
                r.all,
                status,
                r.limit,
                &r.page_token,
                r.newest_first,
            )
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::ListTicketsResponse {
            tickets,
            next_page_token,
        }))
    }

    async fn get_ticket(&self, request: Request<pb::TicketRef>) -> Reply<pb::Ticket> {
        let caller = Caller::required(&request)?.require_user(READ)?;
        let id = request.into_inner().id;
        self.app
            .get_ticket(caller, id)
            .await
            .map(Response::new)
            .map_err(|e| to_status(&e))
    }

    async fn reply_ticket(&self, request: Request<pb::ReplyTicketRequest>) -> Reply<pb::Ticket> {
        let caller = Caller::required(&request)?.require_user(WRITE)?;
        let r = request.into_inner();
        self.app
            .reply_ticket(caller, r.id, &r.body)
            .await
            .map(Response::new)
            .map_err(|e| to_status(&e))
    }

    async fn set_ticket_status(
        &self,
        request: Request<pb::SetTicketStatusRequest>,
    ) -> Reply<pb::Ticket> {
        let caller = Caller::required(&request)?.require_user(WRITE)?;
        let r = request.into_inner();
        let status = ticket_status(r.status)?;
        self.app
            .set_ticket_status(caller, r.id, status)
            .await
            .map(Response::new)
            .map_err(|e| to_status(&e))
    }
}

#[tonic::async_trait]
impl WebhooksRpc for NotifyService {
    async fn create_webhook(
        &self,
        request: Request<pb::CreateWebhookRequest>,
    ) -> Reply<pb::CreatedWebhook> {
        let caller = Caller::required(&request)?.require_user(WRITE)?;
        let r = request.into_inner();
        self.app
            .create_webhook(caller, &r.url, &r.event_types, r.all)
            .await
            .map(Response::new)
            .map_err(|e| to_status(&e))
    }

    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Reply<pb::ListWebhooksResponse> {
        let caller = Caller::required(&request)?.require_user(READ)?;
        let r = request.into_inner();
        let (webhooks, next_page_token) = self
            .app
            .list_webhooks(caller, r.limit, &r.page_token)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::ListWebhooksResponse {
            webhooks,
            next_page_token,
        }))
    }

    async fn get_webhook(&self, request: Request<pb::WebhookRef>) -> Reply<pb::Webhook> {
        let caller = Caller::required(&request)?.require_user(READ)?;
        let id = request.into_inner().id;
        self.app
            .get_webhook(caller, id)
            .await
            .map(Response::new)
            .map_err(|e| to_status(&e))
    }

    async fn update_webhook(
        &self,
        request: Request<pb::UpdateWebhookRequest>,
    ) -> Reply<pb::Webhook> {
        let caller = Caller::required(&request)?.require_user(WRITE)?;
        let r = request.into_inner();
        self.app
            .update_webhook(caller, r)
            .await
            .map(Response::new)
            .map_err(|e| to_status(&e))
    }

    async fn delete_webhook(
        &self,
        request: Request<pb::WebhookRef>,
    ) -> Reply<pb::DeleteWebhookResponse> {
        let caller = Caller::required(&request)?.require_user(WRITE)?;
        let id = request.into_inner().id;
        self.app
            .delete_webhook(caller, id)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::DeleteWebhookResponse {}))
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Reply<pb::ListDeliveriesResponse> {
        let caller = Caller::required(&request)?.require_user(READ)?;
        let r = request.into_inner();
        let (deliveries, next_page_token) = self
            .app
            .list_deliveries(caller, r.webhook_id, r.limit, &r.page_token)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::ListDeliveriesResponse {
            deliveries,
            next_page_token,
        }))
    }

    async fn replay_delivery(&self, request: Request<pb::DeliveryRef>) -> Reply<pb::Delivery> {
        let caller = Caller::required(&request)?.require_user(WRITE)?;
        let id = request.into_inner().id;
        self.app
            .replay_delivery(caller, id)
            .await
            .map(Response::new)
            .map_err(|e| to_status(&e))
    }
}
