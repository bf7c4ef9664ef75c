//! Resize: reserve the new size on the server's node, resize the guest, then move the server
//! onto the new reservation (and price) and give the old one back. A failure gives the new
//! reservation back and the guest its old cores and memory (disks only grow).

use platform::grpc::{Caller, Reason};
use platform::saga::{Run, Saga};
use proto::node::v1 as nodepb;
use sea_orm::Set;
use serde::{Deserialize, Serialize};

use super::capacity;
use crate::app::App;
use crate::domain::task::TaskKind;
use crate::error::{Result, ServerError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Step {
    ReserveNew,
    ResizeGuest,
    SwapReservation,
}

/// A size: cores, memory (MB) and disk (GB).
pub type Size = (i64, i64, i64);

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub prior_status: String,
    pub old_size: Size,
    pub new_size: Size,
    /// The reservation that holds the new size.
    pub new_reservation: String,
    /// The reservation held when the resize began, noted then, so a repeat never releases
    /// the one now in use.
    pub old_reservation: Option<String>,
    /// The hourly price at the new size.
    pub new_hourly_price: i64,
}

pub struct Resize;

impl Saga<App> for Resize {
    const KIND: &'static str = TaskKind::Resize.as_str();
    type Step = Step;
    type Params = Params;

    async fn run(app: &App, run: &mut Run<Params>, step: Step) -> Result<()> {
        let s = app.server_row(run.subject).await?;
        let p = &run.params;
        let (cores, memory_mb, disk_gb) = p.new_size;
        match step {
            Step::ReserveNew => {
                let reply = app
                    .nodes
                    .clone()
                    .reserve(Caller::SYSTEM.request(nodepb::ReserveRequest {
                        reservation_id: p.new_reservation.clone(),
                        size: Some(capacity(cores, memory_mb, disk_gb)),
                        location: String::new(),
                        tags: Vec::new(),
                        node_id: s.node_id.unwrap_or(0),
                    }))
                    .await;
                match reply {
                    Ok(_) => Ok(()),
                    Err(status)
                        if platform::grpc::error_reason(&status) == Some(Reason::NoCapacity) =>
                    {
                        Err(ServerError::NoCapacity)
                    }
                    Err(status) => Err(status.into()),
                }
            }
            Step::ResizeGuest => {
                app.resize_guest(&s, cores, memory_mb, disk_gb).await?;
                app.set_server(s.id, |a| {
                    a.cores = Set(cores);
                    a.memory_mb = Set(memory_mb);
                    a.disk_gb = Set(disk_gb);
                })
                .await
            }
            Step::SwapReservation => {
                let new = p.new_reservation.clone();
                let price = p.new_hourly_price;
                app.set_server(s.id, |a| {
                    a.reservation_id = Set(Some(new.clone()));
                    a.hourly_price = Set(price);
                })
                .await?;
                if let Some(old) = p.old_reservation.clone()
                    && old != new
                    && let Err(error) = app.release_reservation(old.clone()).await
                {
                    // The server already runs on the new reservation; undoing that would
                    // be worse than holding the old one until an operator looks.
                    tracing::error!(reservation = %old, error = %error, "the old reservation was not released");
                }
                Ok(())
            }
        }
    }

    async fn undo(app: &App, run: &Run<Params>, step: Step) -> Result<()> {
        match step {
            Step::ReserveNew => {
                app.release_reservation(run.params.new_reservation.clone())
                    .await
            }
            Step::ResizeGuest => {
                let s = app.server_row(run.subject).await?;
                let (cores, memory_mb, _) = run.params.old_size;
                // Disks only grow: the disk keeps whatever size it has now.
                app.resize_guest(&s, cores, memory_mb, s.disk_gb).await?;
                app.set_server(s.id, |a| {
                    a.cores = Set(cores);
                    a.memory_mb = Set(memory_mb);
                })
                .await
            }
            // Nothing follows the swap that could fail.
            Step::SwapReservation => Ok(()),
        }
    }
}
