//! Leases on SQLite and PostgreSQL: one holder at a time, taken over on expiry, renewed
//! by their holder only, and a singleton loop that runs on one replica of several.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use platform::Shutdown;
use platform::lease::{CreateLeases, LeaseHolder};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use sea_orm_migration::prelude::*;

struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateLeases)]
    }
}

/// A fresh database: SQLite in `dir`, or a new PostgreSQL database when
/// `VPS_TEST_POSTGRES_URL` is set (required when `VPS_TEST_REQUIRE_POSTGRES` is).
async fn databases(dir: &std::path::Path) -> Vec<DatabaseConnection> {
    let sqlite = format!("sqlite://{}?mode=rwc", dir.join("leases.db").display());
    let mut out = vec![
        platform::db::connect_and_migrate::<Migrator>(&sqlite, 4)
            .await
            .expect("sqlite"),
    ];
    match std::env::var("VPS_TEST_POSTGRES_URL") {
        Ok(server) if !server.is_empty() => {
            let name = format!("vps_lease_{}", uuid::Uuid::new_v4().simple());
            let admin = sea_orm::Database::connect(server.as_str())
                .await
                .expect("postgres");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create database");
            let base = server.split('?').next().unwrap_or(&server);
            let cut = base
                .rfind('/')
                .filter(|i| *i > "postgres://".len())
                .unwrap_or(base.len());
            let url = format!("{}/{name}", &base[..cut]);
            out.push(
                platform::db::connect_and_migrate::<Migrator>(&url, 4)
                    .await
                    .expect("postgres database"),
            );
        }
        _ => assert!(
            std::env::var("VPS_TEST_REQUIRE_POSTGRES").is_err(),
            "VPS_TEST_REQUIRE_POSTGRES is set but VPS_TEST_POSTGRES_URL is not"
        ),
    }
    out
}

#[tokio::test]
async fn one_holder_at_a_time_and_takeover_on_expiry() {
    let dir = tempfile::tempdir().expect("dir");
    for db in databases(dir.path()).await {
        let a = LeaseHolder::new(db.clone(), Duration::from_millis(600));
        let b = LeaseHolder::new(db.clone(), Duration::from_millis(600));
        assert!(a.acquire("billing").await.expect("a"), "free: a takes it");
        assert!(!b.acquire("billing").await.expect("b"), "held by a");
        assert!(
            a.acquire("billing").await.expect("renew"),
            "a renews its own"
        );
        assert!(b.acquire("other").await.expect("b"), "leases are by name");

        // a stops renewing: after the expiry b takes over, and a has lost it.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(
            b.acquire("billing").await.expect("b"),
            "expired: b takes over"
        );
        assert!(!a.acquire("billing").await.expect("a"), "a lost it");

        // Released, it is free at once.
        b.release("billing").await.expect("release");
        assert!(
            a.acquire("billing").await.expect("a"),
            "released: a takes it"
        );
        // Releasing someone else's lease does nothing.
        b.release("billing").await.expect("release");
        assert!(!b.acquire("billing").await.expect("b"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_takers_get_one_lease() {
    let dir = tempfile::tempdir().expect("dir");
    for db in databases(dir.path()).await {
        let holders: Vec<LeaseHolder> = (0..8)
            .map(|_| LeaseHolder::new(db.clone(), Duration::from_secs(30)))
            .collect();
        let won = futures_util::future::join_all(holders.iter().map(|h| h.acquire("poll:node-1")))
            .await
            .into_iter()
            .filter(|r| *r.as_ref().expect("acquire"))
            .count();
        assert_eq!(won, 1, "exactly one of eight takes a free lease");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_singleton_loop_runs_on_one_replica_and_moves_when_it_stops() {
    let dir = tempfile::tempdir().expect("dir");
    for db in databases(dir.path()).await {
        let runs = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
        let stops = [Shutdown::new(), Shutdown::new()];
        let mut loops = Vec::new();
        for (runs, stop) in runs.iter().zip(&stops) {
            let holder = LeaseHolder::new(db.clone(), Duration::from_millis(400));
            let runs = runs.clone();
            let stop = stop.clone();
            loops.push(tokio::spawn(async move {
                holder
                    .run_singleton("billing", Duration::from_millis(50), stop, move || {
                        let runs = runs.clone();
                        async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                    .await;
            }));
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (first, second) = (
            runs[0].load(Ordering::SeqCst),
            runs[1].load(Ordering::SeqCst),
        );
        assert!(
            (first > 0) != (second > 0),
            "one replica works, not both: {first} and {second}"
        );
        // The working replica stops (and releases): the other takes over.
        let (working, idle) = if first > 0 { (0, 1) } else { (1, 0) };
        stops[working].trigger();
        let before = runs[idle].load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            runs[idle].load(Ordering::SeqCst) > before,
            "the other replica took over"
        );
        stops[idle].trigger();
        for handle in loops {
            handle.await.expect("loop ends");
        }
    }
}

struct Everything;

#[async_trait::async_trait]
impl MigratorTrait for Everything {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateLeases),
            Box::new(platform::outbox::CreateOutbox),
        ]
    }
}

/// Replicas starting at once migrate one fresh PostgreSQL database together without
/// tripping over each other (the advisory lock lets one migrate at a time).
#[tokio::test]
async fn replicas_starting_together_migrate_one_database() {
    let Ok(server) = std::env::var("VPS_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("VPS_TEST_REQUIRE_POSTGRES").is_err(),
            "VPS_TEST_REQUIRE_POSTGRES is set but VPS_TEST_POSTGRES_URL is not"
        );
        return;
    };
    let admin = sea_orm::Database::connect(server.as_str())
        .await
        .expect("postgres");
    let name = format!("vps_migrate_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let base = server.split('?').next().unwrap_or(&server);
    let cut = base
        .rfind('/')
        .filter(|i| *i > "postgres://".len())
        .unwrap_or(base.len());
    let url = format!("{}/{name}", &base[..cut]);
    let mut starts = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let url = url.clone();
        starts.spawn(async move { platform::db::connect_and_migrate::<Everything>(&url, 2).await });
    }
    while let Some(started) = starts.join_next().await {
        started.expect("join").expect("every replica starts");
    }
}
