//! The saga engine on a small host whose records live in memory and whose steps change a
//! shared set of resources: steps run in order, each persisted; a failure at any step
//! unwinds the done steps in reverse and leaves nothing held, even when undos fail once or
//! are interrupted and repeated; passing errors are retried; a record the engine cannot read
//! (corrupt parameters, an unknown kind or step) is an error, never a default.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use platform::Shutdown;
use platform::lease::{CreateLeases, LeaseHolder};
use platform::saga::{Engine, Host, Phase, Progress, Record, Run, Saga, SagaError, Timing};
use sea_orm_migration::prelude::*;
use serde::{Deserialize, Serialize};

struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateLeases)]
    }
}

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error("passing: {0}")]
    Passing(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("corrupt: {0}")]
    Corrupt(String),
    #[error("injected: {0}")]
    Injected(String),
}

impl SagaError for TestError {
    fn retryable(&self) -> bool {
        matches!(self, Self::Passing(_))
    }

    fn corrupt(message: String) -> Self {
        Self::Corrupt(message)
    }

    fn injected(message: String) -> Self {
        Self::Injected(message)
    }
}

#[derive(Default)]
struct State {
    records: HashMap<String, Record>,
    /// What the steps hold: `reservation`, `address`, `guest`.
    held: BTreeSet<String>,
    /// Every step and undo as it ran.
    log: Vec<String>,
    /// Failures still to come, per step: (step, passing?).
    failures: Vec<(String, bool)>,
    ended: Vec<(String, bool)>,
}

struct TestHost {
    engine: Engine<TestHost>,
    state: Mutex<State>,
}

impl Host for TestHost {
    type Error = TestError;

    fn engine(&self) -> &Engine<Self> {
        &self.engine
    }

    async fn load(&self, id: &str) -> Result<Record, TestError> {
        self.state
            .lock()
            .expect("state")
            .records
            .get(id)
            .cloned()
            .ok_or_else(|| TestError::Refused(format!("no record {id}")))
    }

    async fn begin_step(&self, id: &str, step: &str) -> Result<(), TestError> {
        let mut state = self.state.lock().expect("state");
        if let Some(r) = state.records.get_mut(id) {
            r.step = step.to_owned();
        }
        Ok(())
    }

    async fn progress(&self, id: &str, done: &[String], params: &str) -> Result<(), TestError> {
        let mut state = self.state.lock().expect("state");
        if let Some(r) = state.records.get_mut(id) {
            r.done = done.to_vec();
            r.params = params.to_owned();
        }
        Ok(())
    }

    async fn failed(&self, id: &str, _: &str, _: &TestError) -> Result<(), TestError> {
        let mut state = self.state.lock().expect("state");
        if let Some(r) = state.records.get_mut(id) {
            r.phase = Phase::Unwinding;
        }
        Ok(())
    }

    async fn finish(&self, id: &str, failed: bool) -> Result<Option<String>, TestError> {
        let mut state = self.state.lock().expect("state");
        if let Some(r) = state.records.get_mut(id) {
            r.phase = Phase::Idle;
        }
        state.ended.push((id.to_owned(), failed));
        Ok(None)
    }

    async fn open(&self) -> Result<Vec<String>, TestError> {
        Ok(self
            .state
            .lock()
            .expect("state")
            .records
            .values()
            .filter(|r| r.phase != Phase::Idle)
            .map(|r| r.id.clone())
            .collect())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
enum Step {
    Reserve,
    Address,
    Guest,
    Boot,
}

#[derive(Debug, Serialize, Deserialize)]
struct Params {
    name: String,
    #[serde(default)]
    booted: bool,
}

struct Build;

impl TestHost {
    fn act(&self, what: String, step: &str) -> Result<(), TestError> {
        let mut state = self.state.lock().expect("state");
        if let Some(at) = state.failures.iter().position(|(s, _)| s == step) {
            let (_, passing) = state.failures.remove(at);
            state.log.push(format!("{what} failed"));
            return Err(if passing {
                TestError::Passing(step.to_owned())
            } else {
                TestError::Refused(step.to_owned())
            });
        }
        state.log.push(what);
        Ok(())
    }

    fn hold(&self, resource: &str, on: bool) {
        let mut state = self.state.lock().expect("state");
        if on {
            state.held.insert(resource.to_owned());
        } else {
            state.held.remove(resource);
        }
    }
}

impl Saga<TestHost> for Build {
    const KIND: &'static str = "build";
    type Step = Step;
    type Params = Params;

    async fn run(host: &TestHost, run: &mut Run<Params>, step: Step) -> Result<(), TestError> {
        let name: &'static str = step.into();
        host.act(format!("run {name}"), name)?;
        match step {
            Step::Reserve => host.hold("reservation", true),
            Step::Address => host.hold("address", true),
            Step::Guest => host.hold("guest", true),
            Step::Boot => run.params.booted = true,
        }
        Ok(())
    }

    async fn undo(host: &TestHost, _: &Run<Params>, step: Step) -> Result<(), TestError> {
        let name: &'static str = step.into();
        host.act(format!("undo {name}"), &format!("undo {name}"))?;
        match step {
            Step::Reserve => host.hold("reservation", false),
            Step::Address => host.hold("address", false),
            Step::Guest => host.hold("guest", false),
            Step::Boot => {}
        }
        Ok(())
    }
}

async fn host(faults: &[&str]) -> (Arc<TestHost>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("saga.db").display());
    let db = platform::db::connect_and_migrate::<Migrator>(&url, 4)
        .await
        .expect("sqlite");
    let timing = Timing {
        retries: 2,
        backoff: Duration::from_millis(10),
        resume_every: Duration::from_millis(100),
    };
    let faults: Vec<String> = faults.iter().map(|f| (*f).to_owned()).collect();
    let engine = Engine::new(
        LeaseHolder::new(db, Duration::from_secs(5)),
        timing,
        Shutdown::new(),
    )
    .with::<Build>()
    .with_faults(&faults)
    .expect("faults");
    let host = Arc::new(TestHost {
        engine,
        state: Mutex::new(State::default()),
    });
    (host, dir)
}

fn record(id: &str, kind: &str, params: &str) -> Record {
    Record {
        id: id.to_owned(),
        kind: kind.to_owned(),
        subject: 1,
        phase: Phase::Running,
        step: String::new(),
        done: Vec::new(),
        params: params.to_owned(),
    }
}

fn add(host: &TestHost, r: Record) {
    host.state
        .lock()
        .expect("state")
        .records
        .insert(r.id.clone(), r);
}

const PARAMS: &str = r#"{"name":"web"}"#;

#[tokio::test]
async fn steps_run_in_order_and_changed_parameters_are_kept() {
    let (host, _dir) = host(&[]).await;
    assert_eq!(
        host.engine.steps("build").expect("build"),
        ["reserve", "address", "guest", "boot"]
    );
    add(&host, record("t1", "build", PARAMS));
    Engine::drive(&*host, "t1").await.expect("drive");
    let state = host.state.lock().expect("state");
    assert_eq!(
        state.log,
        ["run reserve", "run address", "run guest", "run boot"]
    );
    assert_eq!(state.ended, [("t1".to_owned(), false)]);
    let r = &state.records["t1"];
    assert_eq!(r.done, ["reserve", "address", "guest", "boot"]);
    let params: Params = serde_json::from_str(&r.params).expect("params");
    assert!(
        params.booted,
        "the step's change to its parameters was kept"
    );
}

#[tokio::test]
async fn a_failure_at_every_step_unwinds_in_reverse_and_leaves_nothing() {
    let steps = platform::saga::steps_of::<TestHost, Build>();
    for (at, step) in steps.iter().copied().enumerate() {
        // Every undo fails once, and the undo of the step before the failure is interrupted
        // (as if the process died) and then repeated by whoever takes the saga up.
        let mut faults = vec![format!("build:{step}")];
        faults.extend(steps.iter().map(|s| format!("build:{s}:undo-fail")));
        let interrupted = at.checked_sub(1).map(|i| steps[i]);
        faults.extend(interrupted.map(|s| format!("build:{s}:undo-halt")));
        let faults: Vec<&str> = faults.iter().map(String::as_str).collect();
        let (first, _dir) = host(&faults).await;
        add(&first, record("t", "build", PARAMS));
        Engine::drive(&*first, "t").await.expect("drive");
        let (last, _dir2) = if interrupted.is_some() {
            {
                let state = first.state.lock().expect("state");
                assert!(state.ended.is_empty(), "{step}: halted in the unwind");
                assert_eq!(state.records["t"].phase, Phase::Unwinding, "{step}");
            }
            // A second process without the faults takes the record over.
            let (second, dir) = host(&[]).await;
            {
                let before = first.state.lock().expect("state");
                let mut after = second.state.lock().expect("state");
                after.records = before.records.clone();
                after.held = before.held.clone();
            }
            Engine::drive(&*second, "t").await.expect("drive again");
            (second, Some(dir))
        } else {
            (first.clone(), None)
        };

        let mut undone: Vec<String> = first.state.lock().expect("state").log.clone();
        let state = last.state.lock().expect("state");
        if interrupted.is_some() {
            undone.extend(state.log.iter().cloned());
        }
        assert!(
            state.held.is_empty(),
            "{step}: nothing held: {:?}",
            state.held
        );
        assert_eq!(state.ended, [("t".to_owned(), true)], "{step}");
        assert!(
            state.records["t"].done.is_empty(),
            "{step}: every step undone"
        );
        // The failed step's undo first (it may have half happened), then the done steps in
        // reverse; an interrupted unwind repeats the undos whose end was not recorded.
        let mut expected: Vec<&str> = steps[..=at].iter().rev().copied().collect();
        if interrupted.is_some() {
            expected.truncate(2);
            expected.extend(steps[..=at].iter().rev().copied());
        }
        let undone: Vec<&str> = undone
            .iter()
            .filter_map(|l| l.strip_prefix("undo "))
            .collect();
        assert_eq!(undone, expected, "{step}: undo order");
    }
}

#[tokio::test]
async fn passing_errors_are_retried_and_answers_are_not() {
    let (host, _dir) = host(&[]).await;
    host.state.lock().expect("state").failures = vec![("guest".to_owned(), true)];
    add(&host, record("p", "build", PARAMS));
    Engine::drive(&*host, "p").await.expect("drive");
    assert_eq!(
        host.state.lock().expect("state").ended,
        [("p".to_owned(), false)],
        "a passing error at a step is retried and the saga succeeds"
    );

    {
        let mut state = host.state.lock().expect("state");
        state.failures = vec![("guest".to_owned(), false)];
        state.log.clear();
    }
    add(&host, record("r", "build", PARAMS));
    let progress = Engine::advance(&*host, "r", None).await.expect("advance");
    assert!(
        matches!(progress, Progress::Failed(TestError::Refused(_))),
        "{progress:?}"
    );
    let log = host.state.lock().expect("state").log.clone();
    assert_eq!(
        log.iter()
            .filter(|l| l.as_str() == "run guest failed")
            .count(),
        1,
        "an answer is not asked again"
    );
}

#[tokio::test]
async fn a_record_the_engine_cannot_read_is_an_error() {
    let (host, _dir) = host(&[]).await;
    add(&host, record("bad-params", "build", r#"{"name": 5}"#));
    let error = Engine::advance(&*host, "bad-params", None)
        .await
        .expect_err("corrupt parameters");
    assert!(matches!(error, TestError::Corrupt(_)), "{error:?}");
    assert!(
        host.state.lock().expect("state").log.is_empty(),
        "no step ran"
    );

    add(&host, record("bad-kind", "biuld", PARAMS));
    let error = Engine::advance(&*host, "bad-kind", None)
        .await
        .expect_err("unknown kind");
    assert!(matches!(error, TestError::Corrupt(_)), "{error:?}");

    let mut r = record("bad-step", "build", PARAMS);
    r.phase = Phase::Unwinding;
    r.done = vec!["reserve".to_owned(), "rserve".to_owned()];
    add(&host, r);
    let error = Engine::unwind(&*host, "bad-step")
        .await
        .expect_err("unknown step");
    assert!(matches!(error, TestError::Corrupt(_)), "{error:?}");

    assert!(
        Engine::<TestHost>::new(
            LeaseHolder::new(
                sea_orm::Database::connect("sqlite::memory:")
                    .await
                    .expect("db"),
                Duration::from_secs(5)
            ),
            Timing::default(),
            Shutdown::new()
        )
        .with::<Build>()
        .with_faults(&["build:boto".to_owned()])
        .is_err(),
        "a fault at a step the saga does not have is refused"
    );
}

#[tokio::test]
async fn a_saga_another_replica_holds_is_left_alone_and_resumed_once_free() {
    let (host, _dir) = host(&[]).await;
    add(&host, record("held", "build", PARAMS));
    // Another replica of the same service (same lease table) holds the saga.
    let url = format!("sqlite://{}", _dir.path().join("saga.db").display());
    let db = sea_orm::Database::connect(url.as_str()).await.expect("db");
    let other = LeaseHolder::new(db, Duration::from_secs(5));
    assert!(other.acquire("task:held").await.expect("lease"));
    Engine::drive(&*host, "held").await.expect("drive");
    assert!(
        host.state.lock().expect("state").log.is_empty(),
        "not driven while another replica holds it"
    );
    other.release("task:held").await.expect("release");
    assert_eq!(Engine::resume(&host).await.expect("resume"), 1);
    for _ in 0..100 {
        if !host.state.lock().expect("state").ended.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        host.state.lock().expect("state").ended,
        [("held".to_owned(), false)]
    );
}

#[tokio::test]
async fn a_saga_driven_before_its_reply_is_not_driven_twice() {
    let (host, _dir) = host(&[]).await;
    add(&host, record("t9", "build", PARAMS));
    let claimed = host.engine.claim("t9").expect("free to claim");
    assert!(host.engine.claim("t9").is_none(), "claimed once");
    // The resumer (or a spawned drive) finds it driven here and leaves it alone.
    assert_eq!(Engine::drive(&*host, "t9").await.expect("drive"), None);
    assert!(
        host.state.lock().expect("state").log.is_empty(),
        "no step ran"
    );
    drop(claimed);
    Engine::drive(&*host, "t9").await.expect("drive");
    assert_eq!(
        host.state.lock().expect("state").log.len(),
        4,
        "driven once free"
    );
}
