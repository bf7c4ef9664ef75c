//! Create: charge the first hour, place the server on a node, give it addresses, make the
//! guest (and put a backup's files into it, for a server that starts from one), start it,
//! set its root password, and turn its automatic backups on if it asked. Credits and placement run before the reply
//! (a short balance is a 402 and a full fleet a 507 at once); the rest in the background.

use platform::grpc::{Caller, Reason};
use platform::saga::{Run, Saga};
use proto::identity::v1 as idpb;
use proto::node::v1 as nodepb;
use sea_orm::Set;
use serde::{Deserialize, Serialize};

use super::size_of;
use crate::app::{App, now_ms};
use crate::domain::task::TaskKind;
use crate::error::{Result, ServerError};
use crate::store::entity::server;

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Step {
    Credits,
    Place,
    Address,
    Guest,
    FromBackup,
    Start,
    Password,
    Backups,
}

/// The step the reply waits for: the ones before it run first.
pub const REPLY_BEFORE: Step = Step::Address;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Params {
    /// The driver set the root password as it made the guest (nothing left to set).
    #[serde(default)]
    pub password_set: bool,
    /// The backup the server starts from (0: none).
    #[serde(default)]
    pub from_backup: i64,
}

pub struct Create;

impl Saga<App> for Create {
    const KIND: &'static str = TaskKind::Create.as_str();
    type Step = Step;
    type Params = Params;

    async fn run(app: &App, run: &mut Run<Params>, step: Step) -> Result<()> {
        let s = app.server_row(run.subject).await?;
        match step {
            Step::Credits => app.charge_first_hour(&s).await,
            Step::Place => app.place(&s).await,
            Step::Address => app.assign_addresses(&s).await,
            Step::Guest => {
                run.params.password_set = app
                    .make_guest(&s, s.image_id, s.root_password.as_deref())
                    .await?;
                Ok(())
            }
            Step::FromBackup if run.params.from_backup > 0 => {
                app.restore_backup_into(&s, run.params.from_backup).await?;
                // The archive brought its own /etc/shadow: the new password is set after.
                run.params.password_set = false;
                Ok(())
            }
            Step::FromBackup => Ok(()),
            Step::Start => app.start_guest(&s).await,
            Step::Password if run.params.password_set => Ok(()),
            Step::Password => app.set_root_password(&s, None).await,
            Step::Backups if s.backups => app.automatic_backups(s.id, true).await,
            Step::Backups => Ok(()),
        }
    }

    async fn undo(app: &App, run: &Run<Params>, step: Step) -> Result<()> {
        let s = app.server_row(run.subject).await?;
        match step {
            Step::Credits => app.refund_first_hour(&s).await,
            Step::Place => {
                // Keyed by the server's UUID: released even when the reply was lost.
                app.release_reservation(s.uuid.clone()).await?;
                app.set_server(s.id, |a| {
                    a.reservation_id = Set(None);
                    a.node_id = Set(None);
                })
                .await
            }
            Step::Address => app.release_addresses(&s).await,
            Step::Guest => app.remove_guest(&s).await,
            // A started guest and its password go with the guest.
            // The restored files, a started guest and its password go with the guest.
            Step::FromBackup | Step::Start | Step::Password | Step::Backups => Ok(()),
        }
    }

    async fn cancelled(app: &App, run: &Run<Params>) -> Result<Option<ServerError>> {
        app.cancelled_build(run.subject).await
    }
}

impl App {
    async fn charge_first_hour(&self, s: &server::Model) -> Result<()> {
        if s.hourly_price > 0 {
            let reply = self
                .identity
                .clone()
                .adjust_credits(Caller::SYSTEM.request(idpb::AdjustCreditsRequest {
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
                    if platform::grpc::error_reason(&status)
                        == Some(Reason::InsufficientCredits) =>
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
        Ok(crate::store::servers::start_clock(&self.db, s.id, now_ms() + period).await?)
    }

    async fn refund_first_hour(&self, s: &server::Model) -> Result<()> {
        if s.hourly_price > 0 && self.first_hour_charged(s).await? {
            self.identity
                .clone()
                .adjust_credits(Caller::SYSTEM.request(idpb::AdjustCreditsRequest {
                    user_id: s.owner_id,
                    amount: s.hourly_price,
                    reason: format!("server {} ({}): refund, creation failed", s.id, s.name),
                    reference: Some(format!("server:{}:first-hour-refund", s.uuid)),
                    allow_debt: false,
                }))
                .await?;
        }
        self.set_server(s.id, |a| a.paid_until = Set(0)).await
    }

    async fn place(&self, s: &server::Model) -> Result<()> {
        let reply = self
            .nodes
            .clone()
            .reserve(Caller::SYSTEM.request(nodepb::ReserveRequest {
                reservation_id: s.uuid.clone(),
                size: Some(size_of(s)),
                location: s.location.clone(),
                tags: Vec::new(),
                node_id: s.node_id.unwrap_or(0),
            }))
            .await;
        let reservation = match reply {
            Ok(r) => r.into_inner(),
            Err(status) if platform::grpc::error_reason(&status) == Some(Reason::NoCapacity) => {
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

    async fn assign_addresses(&self, s: &server::Model) -> Result<()> {
        let node_id = s.node_id.unwrap_or(0);
        if !self.node_has_pool(node_id, 4).await? {
            // No address management for this node: the guest takes its address from the
            // hypervisor's own network (e.g. DHCP on the LXC bridge).
            return Ok(());
        }
        let v4 = self
            .nodes
            .clone()
            .allocate_address(Caller::SYSTEM.request(nodepb::AllocateAddressRequest {
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
            .allocate_address(Caller::SYSTEM.request(nodepb::AllocateAddressRequest {
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
}
