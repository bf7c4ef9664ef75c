//! Suspend (an administrator's, or billing's for an unpaid balance): the guest is stopped
//! and the server stays suspended, whatever the stop answers. Unsuspend has no step: the
//! server is simply stopped again, for its owner to start.

use platform::saga::{Run, Saga};

use super::power::Params;
use crate::app::App;
use crate::domain::task::TaskKind;
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Step {
    PowerOff,
}

pub struct Suspend;

impl Saga<App> for Suspend {
    const KIND: &'static str = TaskKind::Suspend.as_str();
    const FORWARD_ONLY: bool = true;
    type Step = Step;
    type Params = Params;

    async fn run(app: &App, run: &mut Run<Params>, _: Step) -> Result<()> {
        let s = app.server_row(run.subject).await?;
        app.power_off(&s).await
    }

    async fn undo(_: &App, _: &Run<Params>, _: Step) -> Result<()> {
        Ok(())
    }
}

/// No steps at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
pub enum NoStep {}

pub struct Unsuspend;

impl Saga<App> for Unsuspend {
    const KIND: &'static str = TaskKind::Unsuspend.as_str();
    type Step = NoStep;
    type Params = Params;

    async fn run(_: &App, _: &mut Run<Params>, step: NoStep) -> Result<()> {
        match step {}
    }

    async fn undo(_: &App, _: &Run<Params>, step: NoStep) -> Result<()> {
        match step {}
    }
}
