//! Delete: settle what the server used, stop it, remove the guest, give its addresses and
//! capacity back, and have snapshot-svc forget its snapshots and backups. Nothing here can be undone, so a failing step is tried again before
//! the saga gives up (the server then shows `error` with the reason).

use platform::saga::{Run, Saga};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::domain::state::ServerState;
use crate::domain::task::TaskKind;
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Step {
    PowerOff,
    RemoveGuest,
    ReleaseAddress,
    ReleaseCapacity,
    ForgetSnapshots,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Params {
    /// The status before the delete began (set when a queued delete starts).
    #[serde(default)]
    pub prior_status: String,
}

pub struct Delete;

impl Saga<App> for Delete {
    const KIND: &'static str = TaskKind::Delete.as_str();
    const FORWARD_ONLY: bool = true;
    type Step = Step;
    type Params = Params;

    async fn run(app: &App, run: &mut Run<Params>, step: Step) -> Result<()> {
        let s = app.server_row(run.subject).await?;
        match step {
            Step::PowerOff => {
                let prior =
                    ServerState::parse(&run.params.prior_status).unwrap_or(ServerState::Stopped);
                app.settle(&s, prior).await?;
                app.power_off(&s).await
            }
            Step::RemoveGuest => app.remove_guest(&s).await,
            Step::ReleaseAddress => app.release_addresses(&s).await,
            Step::ReleaseCapacity => match s.reservation_id.clone() {
                Some(reservation_id) => app.release_reservation(reservation_id).await,
                None => Ok(()),
            },
            Step::ForgetSnapshots => app.forget_snapshots(&s).await,
        }
    }

    async fn undo(_: &App, _: &Run<Params>, _: Step) -> Result<()> {
        Ok(())
    }
}
