//! The saga engine: long work as an ordered list of idempotent steps, each with an undo.
//!
//! - A saga is a type implementing [`Saga`]: its kind, a step enum (declaration order is run
//!   order), typed parameters, and what each step does and undoes.
//! - Progress lives in the owning service's task table, behind [`Host`]: the step begun, the
//!   steps done and the parameters are persisted after every step, so a process that dies
//!   mid-saga resumes where it stopped.
//! - A failing step is tried again while its error says [`SagaError::retryable`] (every error,
//!   for a forward-only saga), then the saga unwinds: the failed step's undo (it may have
//!   half happened), then the done steps' undos in reverse, each persisted.
//! - A replica drives a saga only under its lease (`task:<id>`), renewed while it runs; a
//!   lost lease stops the saga at its next step boundary, and shutdown does too. Unfinished
//!   sagas nobody holds are taken over by [`Engine::resume`].
//! - A stored kind, step or parameter the engine cannot read is an error, never a default.
//!
//! Faults can be injected at any step (tests): `kind:step` fails the step, `kind:step:halt`
//! runs it and stops before recording it (as if the process died), `kind:step:undo-fail`
//! fails the step's first undo, `kind:step:undo-halt` runs its undo and stops before
//! recording it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Shutdown;
use crate::lease::LeaseHolder;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A saga's steps: an enum whose declaration order is the order they run in, named in
/// storage by `snake_case` strings (derive `strum::EnumIter`, `strum::IntoStaticStr` and
/// `strum::EnumString`).
pub trait Step:
    Copy + Eq + fmt::Debug + Send + Sync + 'static + strum::IntoEnumIterator + Into<&'static str>
{
    fn name(self) -> &'static str {
        self.into()
    }
}

impl<T> Step for T where
    T: Copy
        + Eq
        + fmt::Debug
        + Send
        + Sync
        + 'static
        + strum::IntoEnumIterator
        + Into<&'static str>
{
}

/// What the engine needs of a service's error.
pub trait SagaError: std::error::Error + Send + Sync + Sized + 'static {
    /// Whether the same step may succeed if tried again (a passing fault: a busy database, a
    /// peer restarting), as opposed to an answer (no capacity, no credits).
    fn retryable(&self) -> bool;

    /// A saga record the engine cannot read (unknown kind or step, corrupt parameters), or
    /// a lease it could not take.
    fn corrupt(message: String) -> Self;

    /// A fault a test injected; the message names the saga and the step.
    fn injected(message: String) -> Self;
}

/// Where a saga stands, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Going forward.
    Running,
    /// A step failed; undoing.
    Unwinding,
    /// Not driven (waiting to start, or ended).
    Idle,
}

/// A saga's stored record.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub kind: String,
    /// What the saga works on (a server id).
    pub subject: i64,
    pub phase: Phase,
    /// The step begun last; it may have half happened.
    pub step: String,
    pub done: Vec<String>,
    /// The parameters, as JSON.
    pub params: String,
}

/// A running saga as its steps see it.
#[derive(Debug)]
pub struct Run<P> {
    pub id: String,
    pub subject: i64,
    /// Steps may change these (a fact learned on the way); the change is persisted with the
    /// step.
    pub params: P,
}

/// The service a saga runs in: it stores saga records and ends sagas.
pub trait Host: Send + Sync + Sized + 'static {
    type Error: SagaError;

    fn engine(&self) -> &Engine<Self>;

    fn load(&self, id: &str) -> impl Future<Output = Result<Record, Self::Error>> + Send;

    /// Notes the step about to run.
    fn begin_step(
        &self,
        id: &str,
        step: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Stores the steps done (after a step or an undo) and the parameters.
    fn progress(
        &self,
        id: &str,
        done: &[String],
        params: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Marks the saga as unwinding after `step` failed with `error`.
    fn failed(
        &self,
        id: &str,
        step: &str,
        error: &Self::Error,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Ends a saga (all steps done, or all undone after a failure); the answer names a
    /// saga that starts next.
    fn finish(
        &self,
        id: &str,
        failed: bool,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send;

    /// The sagas that are running or unwinding.
    fn open(&self) -> impl Future<Output = Result<Vec<String>, Self::Error>> + Send;
}

/// One kind of saga.
pub trait Saga<H: Host>: Send + Sync + 'static {
    /// The kind, as stored.
    const KIND: &'static str;
    /// A saga whose steps cannot be undone (a deletion): every failing step is tried again
    /// a few times before the saga gives up.
    const FORWARD_ONLY: bool = false;

    type Step: Step;
    type Params: Serialize + DeserializeOwned + Send + Sync;

    fn run(
        host: &H,
        run: &mut Run<Self::Params>,
        step: Self::Step,
    ) -> impl Future<Output = Result<(), H::Error>> + Send;

    /// Undoes `step`; safe when the step did nothing or half of it, and when repeated.
    fn undo(
        host: &H,
        run: &Run<Self::Params>,
        step: Self::Step,
    ) -> impl Future<Output = Result<(), H::Error>> + Send;

    /// Asked before every step: `Some(error)` stops the saga there and unwinds it.
    fn cancelled(
        host: &H,
        run: &Run<Self::Params>,
    ) -> impl Future<Output = Result<Option<H::Error>, H::Error>> + Send {
        let _ = (host, run);
        async { Ok(None) }
    }
}

/// The steps of a saga, in order.
pub fn steps_of<H: Host, S: Saga<H>>() -> Vec<&'static str> {
    <S::Step as strum::IntoEnumIterator>::iter()
        .map(Step::name)
        .collect()
}

/// How far [`Engine::advance`] got.
#[derive(Debug)]
pub enum Progress<E> {
    /// Every step is done.
    Done,
    /// Stopped before the step it was asked to stop before.
    Paused,
    /// Stopped without finishing (shutdown, a lost lease, a halt fault): resumed later.
    Halted,
    /// A step failed; the saga is now unwinding.
    Failed(E),
    /// The saga was found unwinding (a step failed before a restart).
    Unwinding,
    /// The saga is not running (it ended, here or on another replica, or waits to start).
    Idle,
}

/// A saga kind with its types erased, so one engine drives every kind a service has.
trait Erased<H: Host>: Send + Sync {
    fn steps(&self) -> Vec<&'static str>;
    fn forward_only(&self) -> bool;
    fn run<'a>(
        &'a self,
        host: &'a H,
        record: &'a mut Record,
        step: &'a str,
    ) -> BoxFuture<'a, Result<(), H::Error>>;
    fn undo<'a>(
        &'a self,
        host: &'a H,
        record: &'a Record,
        step: &'a str,
    ) -> BoxFuture<'a, Result<(), H::Error>>;
    fn cancelled<'a>(
        &'a self,
        host: &'a H,
        record: &'a Record,
    ) -> BoxFuture<'a, Result<Option<H::Error>, H::Error>>;
}

struct Typed<S>(PhantomData<fn() -> S>);

fn step_of<S: Step, E: SagaError>(kind: &str, name: &str) -> Result<S, E> {
    S::iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| E::corrupt(format!("saga {kind} has no step {name:?}")))
}

fn run_of<P: DeserializeOwned, E: SagaError>(record: &Record) -> Result<Run<P>, E> {
    let params = serde_json::from_str(&record.params).map_err(|e| {
        E::corrupt(format!(
            "saga {} ({}) has unreadable parameters: {e}",
            record.id, record.kind
        ))
    })?;
    Ok(Run {
        id: record.id.clone(),
        subject: record.subject,
        params,
    })
}

impl<H: Host, S: Saga<H>> Erased<H> for Typed<S> {
    fn steps(&self) -> Vec<&'static str> {
        steps_of::<H, S>()
    }

    fn forward_only(&self) -> bool {
        S::FORWARD_ONLY
    }

    fn run<'a>(
        &'a self,
        host: &'a H,
        record: &'a mut Record,
        step: &'a str,
    ) -> BoxFuture<'a, Result<(), H::Error>> {
        Box::pin(async move {
            let step = step_of::<S::Step, H::Error>(S::KIND, step)?;
            let mut run = run_of::<S::Params, H::Error>(record)?;
            S::run(host, &mut run, step).await?;
            record.params = serde_json::to_string(&run.params)
                .map_err(|e| H::Error::corrupt(format!("saga parameters: {e}")))?;
            Ok(())
        })
    }

    fn undo<'a>(
        &'a self,
        host: &'a H,
        record: &'a Record,
        step: &'a str,
    ) -> BoxFuture<'a, Result<(), H::Error>> {
        Box::pin(async move {
            let step = step_of::<S::Step, H::Error>(S::KIND, step)?;
            let run = run_of::<S::Params, H::Error>(record)?;
            S::undo(host, &run, step).await
        })
    }

    fn cancelled<'a>(
        &'a self,
        host: &'a H,
        record: &'a Record,
    ) -> BoxFuture<'a, Result<Option<H::Error>, H::Error>> {
        Box::pin(async move {
            let run = run_of::<S::Params, H::Error>(record)?;
            S::cancelled(host, &run).await
        })
    }
}

/// A fault injected at a step (tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fault {
    Fail,
    Halt,
    UndoFail,
    UndoHalt,
}

/// How the engine retries and resumes.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How often a failing step (or undo) is tried again before the saga gives up on it.
    pub retries: u32,
    /// The first pause between tries; each further pause doubles.
    pub backoff: Duration,
    /// How often unfinished sagas nobody drives are looked for.
    pub resume_every: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            retries: 3,
            backoff: Duration::from_millis(1000),
            resume_every: Duration::from_secs(15),
        }
    }
}

/// Drives a service's sagas.
pub struct Engine<H: Host> {
    sagas: HashMap<&'static str, Box<dyn Erased<H>>>,
    leases: LeaseHolder,
    /// Sagas driven in this process, so none is driven twice.
    active: Mutex<HashSet<String>>,
    /// Sagas whose lease this replica lost: they stop at the next step boundary.
    lost: Arc<Mutex<HashSet<String>>>,
    faults: HashSet<(String, String, Fault)>,
    /// `undo-fail` faults already fired (each fires once).
    fired: Mutex<HashSet<(String, String)>>,
    timing: Timing,
    shutdown: Shutdown,
}

/// The lease a saga's driver holds (sagas are tasks to their users).
fn lease_of(id: &str) -> String {
    format!("task:{id}")
}

/// A saga this replica is driving: while it lives, nobody else here drives it (the
/// resumer's pass skips it). Dropping it lets the saga be driven again.
#[derive(Debug)]
pub struct ActiveGuard<'a>(&'a Mutex<HashSet<String>>, String);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut active) = self.0.lock() {
            active.remove(&self.1);
        }
    }
}

impl<H: Host> Engine<H> {
    /// An engine with no sagas yet; `leases` hold the sagas it drives (their time-to-live
    /// bounds how long a dead replica's sagas wait).
    /// An engine as a service configures one: leases on `db` lasting `lease_ttl_secs` (at
    /// least 3), a resumer pass every `resume_interval_secs` (at least 1), default retries.
    pub fn for_service(
        db: &sea_orm::DatabaseConnection,
        lease_ttl_secs: u64,
        resume_interval_secs: u64,
        shutdown: Shutdown,
    ) -> Self {
        let leases = LeaseHolder::new(db.clone(), Duration::from_secs(lease_ttl_secs.max(3)));
        let timing = Timing {
            resume_every: Duration::from_secs(resume_interval_secs.max(1)),
            ..Timing::default()
        };
        Self::new(leases, timing, shutdown)
    }

    pub fn new(leases: LeaseHolder, timing: Timing, shutdown: Shutdown) -> Self {
        Self {
            sagas: HashMap::new(),
            leases,
            active: Mutex::new(HashSet::new()),
            lost: Arc::new(Mutex::new(HashSet::new())),
            faults: HashSet::new(),
            fired: Mutex::new(HashSet::new()),
            timing,
            shutdown,
        }
    }

    /// Adds a kind of saga.
    #[must_use]
    pub fn with<S: Saga<H>>(mut self) -> Self {
        self.sagas
            .insert(S::KIND, Box::new(Typed::<S>(PhantomData)));
        self
    }

    /// Injects faults (see the module's documentation); each must name a real saga step.
    pub fn with_faults(mut self, faults: &[String]) -> anyhow::Result<Self> {
        for spec in faults {
            let mut parts = spec.splitn(3, ':');
            let (Some(kind), Some(step)) = (parts.next(), parts.next()) else {
                anyhow::bail!("fault {spec:?} is not kind:step[:halt|:undo-fail|:undo-halt]");
            };
            let fault = match parts.next() {
                None => Fault::Fail,
                Some("halt") => Fault::Halt,
                Some("undo-fail") => Fault::UndoFail,
                Some("undo-halt") => Fault::UndoHalt,
                Some(other) => anyhow::bail!("fault {spec:?}: unknown kind of fault {other:?}"),
            };
            let steps = self
                .steps(kind)
                .ok_or_else(|| anyhow::anyhow!("fault {spec:?}: no saga {kind:?}"))?;
            anyhow::ensure!(
                steps.contains(&step),
                "fault {spec:?}: saga {kind} has no step {step:?} (it has {steps:?})"
            );
            self.faults
                .insert((kind.to_owned(), step.to_owned(), fault));
        }
        Ok(self)
    }

    /// The kinds of saga this engine drives.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.sagas.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }

    /// The steps of a kind of saga, in order; `None` for a kind it does not know.
    pub fn steps(&self, kind: &str) -> Option<Vec<&'static str>> {
        self.sagas.get(kind).map(|s| s.steps())
    }

    fn saga(&self, kind: &str) -> Result<&dyn Erased<H>, H::Error> {
        self.sagas
            .get(kind)
            .map(AsRef::as_ref)
            .ok_or_else(|| H::Error::corrupt(format!("no saga of kind {kind:?}")))
    }

    fn fault(&self, kind: &str, step: &str, fault: Fault) -> bool {
        self.faults
            .contains(&(kind.to_owned(), step.to_owned(), fault))
    }

    /// Marks a saga as driven here by the caller (a service driving a new saga's first steps
    /// before its reply), so the resumer does not drive it too; `None` if it already is.
    pub fn claim(&self, id: &str) -> Option<ActiveGuard<'_>> {
        let claimed = self
            .active
            .lock()
            .is_ok_and(|mut active| active.insert(id.to_owned()));
        claimed.then(|| ActiveGuard(&self.active, id.to_owned()))
    }

    /// Takes (or renews) a saga's lease: true when this replica may drive it.
    pub async fn hold(&self, id: &str) -> Result<bool, sea_orm::DbErr> {
        self.leases.acquire(&lease_of(id)).await
    }

    fn lease_lost(&self, id: &str) -> bool {
        self.lost.lock().map(|l| l.contains(id)).unwrap_or(false)
    }

    /// Drives a saga to its end in the background.
    pub fn spawn(host: &Arc<H>, id: String) {
        let host = host.clone();
        // The saga's work joins the trace of the call that started it, if any.
        let span = tracing::info_span!("saga", saga = %id);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                // Steps are idempotent, so a saga stopped by a passing error (a busy database, a
                // dropped connection) is driven again after a pause.
                for attempt in 1..=5u32 {
                    match Self::drive(&host, &id).await {
                        Ok(Some(next)) => {
                            Self::spawn(&host, next);
                            return;
                        }
                        Ok(None) => return,
                        Err(error) if attempt < 5 && !host.engine().shutdown.is_triggered() => {
                            tracing::warn!(saga = %id, attempt, error = %crate::grpc::chain(&error), "saga interrupted; driving it again");
                            tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt)))
                                .await;
                        }
                        Err(error) => {
                            tracing::error!(saga = %id, error = %crate::grpc::chain(&error), "saga stopped; it is taken up again later");
                            return;
                        }
                    }
                }
            },
            span,
        ));
    }

    /// Drives a saga to its end if no other replica holds its lease; the answer names a saga
    /// that starts next.
    pub async fn drive(host: &H, id: &str) -> Result<Option<String>, H::Error> {
        let engine = host.engine();
        let claimed = engine
            .active
            .lock()
            .is_ok_and(|mut active| active.insert(id.to_owned()));
        if !claimed {
            return Ok(None);
        }
        let _guard = ActiveGuard(&engine.active, id.to_owned());
        let held = engine
            .hold(id)
            .await
            .map_err(|e| H::Error::corrupt(format!("taking the lease of saga {id}: {e}")))?;
        if !held {
            return Ok(None);
        }
        tracing::debug!(saga = %id, "driving a saga");
        let renewing = engine.keep_lease(id);
        let outcome = match Self::advance(host, id, None).await {
            Ok(Progress::Done) => Self::finish(host, id, false).await,
            Ok(Progress::Paused | Progress::Halted | Progress::Idle) => Ok(None),
            Ok(Progress::Failed(_) | Progress::Unwinding) => match Self::unwind(host, id).await {
                Ok(true) => Self::finish(host, id, true).await,
                Ok(false) => Ok(None),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        renewing.abort();
        if let Ok(mut lost) = engine.lost.lock() {
            lost.remove(id);
        }
        // Whatever happened, the saga is free for whoever drives it next.
        if let Err(error) = engine.leases.release(&lease_of(id)).await {
            tracing::warn!(saga = %id, error = %crate::grpc::chain(&error), "releasing a saga's lease failed");
        }
        outcome
    }

    /// Ends a saga and counts it in `vps_saga_finished_total`.
    async fn finish(host: &H, id: &str, unwound: bool) -> Result<Option<String>, H::Error> {
        let kind = host.load(id).await.map(|record| record.kind);
        let next = host.finish(id, unwound).await?;
        if let Ok(kind) = kind {
            let outcome = if unwound { "unwound" } else { "done" };
            metrics::counter!("vps_saga_finished_total", "kind" => kind, "outcome" => outcome)
                .increment(1);
        }
        Ok(next)
    }

    /// Renews a saga's lease while it is driven; a lost lease marks the saga to stop at its
    /// next step boundary.
    fn keep_lease(&self, id: &str) -> tokio::task::JoinHandle<()> {
        let leases = self.leases.clone();
        let lost = self.lost.clone();
        let id = id.to_owned();
        let every = (leases.ttl() / 3).max(Duration::from_millis(200));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if !leases.acquire(&lease_of(&id)).await.unwrap_or(true) {
                    tracing::warn!(saga = %id, "lost a saga's lease; stopping it at the next step");
                    if let Ok(mut lost) = lost.lock() {
                        lost.insert(id.clone());
                    }
                    return;
                }
            }
        })
    }

    /// Runs the saga's remaining steps, persisting each, until done, failed, halted, or the
    /// step named `stop_before`. The caller holds the saga's lease.
    pub async fn advance(
        host: &H,
        id: &str,
        stop_before: Option<&str>,
    ) -> Result<Progress<H::Error>, H::Error> {
        let engine = host.engine();
        loop {
            let mut record = host.load(id).await?;
            let saga = engine.saga(&record.kind)?;
            match record.phase {
                Phase::Unwinding => return Ok(Progress::Unwinding),
                Phase::Idle => return Ok(Progress::Idle),
                Phase::Running => {}
            }
            let Some(next) = saga
                .steps()
                .into_iter()
                .find(|s| !record.done.iter().any(|d| d == s))
            else {
                return Ok(Progress::Done);
            };
            if stop_before == Some(next) {
                return Ok(Progress::Paused);
            }
            if engine.shutdown.is_triggered() || engine.lease_lost(id) {
                return Ok(Progress::Halted);
            }
            host.begin_step(id, next).await?;
            let halt = engine.fault(&record.kind, next, Fault::Halt);
            let outcome = match saga.cancelled(host, &record).await? {
                Some(why) => Err(why),
                None if engine.fault(&record.kind, next, Fault::Fail) => Err(H::Error::injected(
                    format!("injected fault at {}:{next}", record.kind),
                )),
                None => engine.run_with_retries(host, saga, &mut record, next).await,
            };
            match outcome {
                Ok(()) if halt => {
                    tracing::warn!(saga = %id, step = next, "halting the saga here (fault injection)");
                    return Ok(Progress::Halted);
                }
                Ok(()) => {
                    record.done.push(next.to_owned());
                    host.progress(id, &record.done, &record.params).await?;
                }
                Err(error) => {
                    tracing::warn!(saga = %id, step = next, error = %crate::grpc::chain(&error), "saga step failed; unwinding");
                    host.failed(id, next, &error).await?;
                    return Ok(Progress::Failed(error));
                }
            }
        }
    }

    async fn run_with_retries(
        &self,
        host: &H,
        saga: &dyn Erased<H>,
        record: &mut Record,
        step: &str,
    ) -> Result<(), H::Error> {
        let mut attempt = 0;
        loop {
            match saga.run(host, record, step).await {
                Err(error)
                    if (saga.forward_only() || error.retryable())
                        && attempt < self.timing.retries
                        && !self.shutdown.is_triggered() =>
                {
                    attempt += 1;
                    tracing::warn!(saga = %record.id, step, attempt, error = %crate::grpc::chain(&error), "step failed; trying it again");
                    tokio::time::sleep(self.timing.backoff * (1 << (attempt - 1))).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// Undoes the failed step (it may have half happened) and then the done steps in
    /// reverse, persisting each; `false` when stopped by shutdown or a lost lease (taken up
    /// again later). An undo that keeps failing stops the unwind with an error, to be taken
    /// up again later: nothing is forgotten.
    pub async fn unwind(host: &H, id: &str) -> Result<bool, H::Error> {
        let engine = host.engine();
        let record = host.load(id).await?;
        let saga = engine.saga(&record.kind)?;
        let mut done = record.done.clone();
        if !record.step.is_empty()
            && !done.contains(&record.step)
            && engine
                .undo_with_retries(host, saga, &record, &record.step)
                .await?
        {
            return Ok(false);
        }
        while let Some(step) = done.last().cloned() {
            if engine.shutdown.is_triggered() || engine.lease_lost(id) {
                return Ok(false);
            }
            if engine.undo_with_retries(host, saga, &record, &step).await? {
                return Ok(false);
            }
            done.pop();
            host.progress(id, &done, &record.params).await?;
        }
        Ok(true)
    }

    /// Runs an undo, trying it again a few times; true when a halt fault stops the saga.
    async fn undo_with_retries(
        &self,
        host: &H,
        saga: &dyn Erased<H>,
        record: &Record,
        step: &str,
    ) -> Result<bool, H::Error> {
        let key = (record.kind.clone(), step.to_owned());
        let fails_once = self.fault(&record.kind, step, Fault::UndoFail);
        let halt = self.fault(&record.kind, step, Fault::UndoHalt);
        let mut attempt = 0;
        loop {
            let fail_now = fails_once
                && self
                    .fired
                    .lock()
                    .is_ok_and(|mut fired| fired.insert(key.clone()));
            let outcome = if fail_now {
                Err(H::Error::injected(format!(
                    "injected fault at the undo of {}:{step}",
                    record.kind
                )))
            } else {
                saga.undo(host, record, step).await
            };
            match outcome {
                Ok(()) if halt => {
                    tracing::warn!(saga = %record.id, step, "halting the unwind here (fault injection)");
                    return Ok(true);
                }
                Ok(()) => return Ok(false),
                Err(error) if attempt < self.timing.retries => {
                    attempt += 1;
                    tracing::warn!(saga = %record.id, step, attempt, error = %crate::grpc::chain(&error), "undo failed; trying it again");
                    tokio::time::sleep(self.timing.backoff * (1 << (attempt - 1))).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Offers every open saga this replica does not drive to [`Engine::drive`], which takes
    /// it only if no other replica holds its lease. Run at start and then every
    /// `resume_every`, so the sagas of a replica that died are taken over once their leases
    /// expire.
    pub async fn resume(host: &Arc<H>) -> Result<usize, H::Error> {
        let engine = host.engine();
        let mut offered = 0;
        for id in host.open().await? {
            let here = engine
                .active
                .lock()
                .map(|active| active.contains(&id))
                .unwrap_or(true);
            if !here {
                Self::spawn(host, id);
                offered += 1;
            }
        }
        Ok(offered)
    }

    /// Looks for sagas nobody drives every `resume_every`, until shutdown.
    pub async fn resume_until_shutdown(host: Arc<H>) {
        let engine = host.engine();
        let every = engine.timing.resume_every.max(Duration::from_millis(100));
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = engine.shutdown.wait() => break,
            }
            if let Err(error) = Self::resume(&host).await {
                tracing::warn!(error = %crate::grpc::chain(&error), "looking for unfinished sagas failed");
            }
        }
    }

    /// Waits (at most `limit`) for the sagas this replica drives to stop, after shutdown.
    pub async fn drain(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let running = self.active.lock().map_or(0, |active| active.len());
            if running == 0 {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    running,
                    "stopping with sagas still running; they are taken up elsewhere"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
