//! Database connection (SQLite file or PostgreSQL) and migrations at start-up.

use std::time::Duration;

use anyhow::Context;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use sea_orm_migration::MigratorTrait;

/// Begins a transaction that will write. On SQLite it takes the write lock at `BEGIN`
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes fails with
/// `SQLITE_BUSY_SNAPSHOT` when another writer commits in between, and no busy timeout helps.
/// PostgreSQL ignores the mode.
pub async fn begin_write(
    db: &DatabaseConnection,
) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

/// Connects to `url` and runs the service's migrations.
///
/// SQLite URLs (`sqlite://path/to/file.db?mode=rwc`) get their parent directory created,
/// WAL journaling and a busy timeout, so the embedded stack copes with concurrent writers.
pub async fn connect_and_migrate<M: MigratorTrait>(
    url: &str,
    max_connections: u32,
) -> anyhow::Result<DatabaseConnection> {
    if let Some(dir) = sqlite_path(url).and_then(|path| std::path::Path::new(path).parent())
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating database directory {}", dir.display()))?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        // A connection is checked only when it sat idle a while, not on every read: the
        // check is a round trip of its own (a hop to the driver's thread on SQLite).
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        // Every SQLite connection, not just the first, journals to the WAL with NORMAL sync
        // (a power cut may lose the last commits, never the database; a crash of the
        // process loses nothing) and waits for the write lock instead of failing at once.
        .map_sqlx_sqlite_opts(|sqlite| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
        })
        .sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;
    migrate::<M>(url, &db).await?;
    Ok(db)
}

/// The advisory lock replicas of one service take to migrate its database one at a time
/// (advisory locks belong to their database, so one key serves every service).
const MIGRATION_LOCK: i64 = 0x7670_735f_6d69_6772; // "vps_migr"

/// Runs the migrations. On PostgreSQL, replicas starting together take turns under a
/// transaction-scoped advisory lock, held on a connection of its own: the first migrates,
/// the others find nothing left to do. (SQLite's file lock does the same there.)
async fn migrate<M: MigratorTrait>(url: &str, db: &DatabaseConnection) -> anyhow::Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        return M::up(db, None).await.context("running migrations");
    }
    use sea_orm::TransactionTrait as _;
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    let lock = Database::connect(options)
        .await
        .with_context(|| format!("connecting to {} to migrate", redact(url)))?;
    let held = lock.begin().await.context("beginning the migration lock")?;
    held.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        .await
        .context("taking the migration lock")?;
    let migrated = M::up(db, None).await.context("running migrations");
    // Committing lets the next replica in, whether or not this one succeeded.
    held.commit()
        .await
        .context("releasing the migration lock")?;
    let _ = lock.close().await;
    migrated
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (path != ":memory:" && !path.is_empty()).then_some(path)
}

/// The gRPC code for a database error: a lost or exhausted connection is worth retrying
/// (`UNAVAILABLE`); anything else is a server fault.
pub fn status_code(error: &sea_orm::DbErr) -> tonic::Code {
    match error {
        sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_) => tonic::Code::Unavailable,
        _ => tonic::Code::Internal,
    }
}

/// The URL without its password, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("postgres://vps:s3cret@db:5432/identity"),
            "postgres://vps:***@db:5432/identity"
        );
        assert_eq!(
            redact("sqlite://data/x.db?mode=rwc"),
            "sqlite://data/x.db?mode=rwc"
        );
    }

    #[test]
    fn sqlite_path_is_found() {
        assert_eq!(
            sqlite_path("sqlite://data/x.db?mode=rwc"),
            Some("data/x.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }
}
