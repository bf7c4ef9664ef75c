//! Reinstall: stop the server, remove its guest, make a new one from the image asked for,
//! start it and set the new root password. A failure leaves the server in `error` (the old
//! guest is gone); a new guest made before the failure is removed.

use platform::saga::{Run, Saga};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::domain::task::TaskKind;
use crate::error::{Result, ServerError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Step {
    PowerOff,
    RemoveGuest,
    Guest,
    Start,
    Password,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub prior_status: String,
    /// The image to install.
    pub image_id: i64,
    /// The new root password, sealed.
    pub password: String,
    /// The driver set the root password as it made the guest (nothing left to set).
    #[serde(default)]
    pub password_set: bool,
}

pub struct Reinstall;

impl Saga<App> for Reinstall {
    const KIND: &'static str = TaskKind::Reinstall.as_str();
    type Step = Step;
    type Params = Params;

    async fn run(app: &App, run: &mut Run<Params>, step: Step) -> Result<()> {
        let s = app.server_row(run.subject).await?;
        match step {
            Step::PowerOff => app.power_off(&s).await,
            Step::RemoveGuest => app.remove_guest(&s).await,
            Step::Guest => {
                run.params.password_set = app
                    .make_guest(&s, run.params.image_id, Some(&run.params.password))
                    .await?;
                Ok(())
            }
            Step::Start => app.start_guest(&s).await,
            Step::Password if run.params.password_set => Ok(()),
            Step::Password => app.set_root_password(&s, Some(&run.params.password)).await,
        }
    }

    async fn undo(app: &App, run: &Run<Params>, step: Step) -> Result<()> {
        match step {
            Step::Guest => {
                let s = app.server_row(run.subject).await?;
                app.remove_guest(&s).await
            }
            // The old guest cannot come back; starting and a password go with the guest.
            Step::PowerOff | Step::RemoveGuest | Step::Start | Step::Password => Ok(()),
        }
    }

    async fn cancelled(app: &App, run: &Run<Params>) -> Result<Option<ServerError>> {
        app.cancelled_build(run.subject).await
    }
}
