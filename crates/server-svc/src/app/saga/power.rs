//! The one-step tasks on a running guest: start, stop, reboot and a new root password. None
//! has anything to undo; a failure returns the server to the status it had.

use platform::grpc::Caller;
use platform::saga::{Run, Saga};
use proto::node::v1 as nodepb;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::domain::task::TaskKind;
use crate::error::Result;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Params {
    pub prior_status: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PasswordParams {
    pub prior_status: String,
    /// The new root password, sealed.
    pub password: String,
}

macro_rules! one_step {
    ($step:ident) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
        #[strum(serialize_all = "snake_case")]
        pub enum $step {
            $step,
        }
    };
}

pub mod steps {
    one_step!(Start);
    one_step!(Stop);
    one_step!(Reboot);
    one_step!(Password);
}

pub struct Start;

impl Saga<App> for Start {
    const KIND: &'static str = TaskKind::Start.as_str();
    type Step = steps::Start;
    type Params = Params;

    async fn run(app: &App, run: &mut Run<Params>, _: steps::Start) -> Result<()> {
        let s = app.server_row(run.subject).await?;
        app.start_guest(&s).await
    }

    async fn undo(_: &App, _: &Run<Params>, _: steps::Start) -> Result<()> {
        Ok(())
    }
}

pub struct Stop;

impl Saga<App> for Stop {
    const KIND: &'static str = TaskKind::Stop.as_str();
    type Step = steps::Stop;
    type Params = Params;

    async fn run(app: &App, run: &mut Run<Params>, _: steps::Stop) -> Result<()> {
        let s = app.server_row(run.subject).await?;
        app.guests
            .clone()
            .stop_guest(Caller::SYSTEM.request(nodepb::StopGuestRequest {
                guest: Some(App::guest_ref(&s)?),
                grace_secs: app.config.stop_grace_secs.max(1),
            }))
            .await?;
        Ok(())
    }

    async fn undo(_: &App, _: &Run<Params>, _: steps::Stop) -> Result<()> {
        Ok(())
    }
}

pub struct Reboot;

impl Saga<App> for Reboot {
    const KIND: &'static str = TaskKind::Reboot.as_str();
    type Step = steps::Reboot;
    type Params = Params;

    async fn run(app: &App, run: &mut Run<Params>, _: steps::Reboot) -> Result<()> {
        let s = app.server_row(run.subject).await?;
        app.guests
            .clone()
            .reboot_guest(Caller::SYSTEM.request(nodepb::StopGuestRequest {
                guest: Some(App::guest_ref(&s)?),
                grace_secs: app.config.stop_grace_secs.max(1),
            }))
            .await?;
        Ok(())
    }

    async fn undo(_: &App, _: &Run<Params>, _: steps::Reboot) -> Result<()> {
        Ok(())
    }
}

pub struct Password;

impl Saga<App> for Password {
    const KIND: &'static str = TaskKind::Password.as_str();
    type Step = steps::Password;
    type Params = PasswordParams;

    async fn run(app: &App, run: &mut Run<PasswordParams>, _: steps::Password) -> Result<()> {
        let s = app.server_row(run.subject).await?;
        app.set_root_password(&s, Some(&run.params.password)).await
    }

    async fn undo(_: &App, _: &Run<PasswordParams>, _: steps::Password) -> Result<()> {
        Ok(())
    }
}
