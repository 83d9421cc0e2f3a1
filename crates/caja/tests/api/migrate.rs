//! The migration tool: up, down, verify, drift, unknown migrations, and the lock.

use std::process::Command;
use std::time::Duration;

use caja_store::migrate::{embedded, MigrateError, Migrator, Status};
use caja_store::Store;

use crate::helpers::{Backend, TestDb};

on_both_engines!(
    a_replica_that_predates_only_expand_migrations_stays_ready,
    up_applies_every_migration_once_and_records_its_history,
    down_reverts_the_newest_steps_and_up_reapplies_them,
    verify_passes_on_a_good_schema_and_names_drift,
    a_database_from_a_newer_caja_is_refused,
    two_migrators_started_together_apply_each_migration_once,
    a_held_lock_makes_a_migrator_give_up_with_a_clear_message,
    the_cli_migrates_and_reports,
    a_failing_migration_stops_the_run_at_the_last_good_one,
    text_sorts_bytewise_whatever_the_database_locale,
);

fn migrator(store: &Store) -> Migrator<'_> {
    Migrator::new(store, Duration::from_secs(30), Duration::from_secs(5))
}

fn shipped(backend: Backend) -> usize {
    embedded(match backend {
        Backend::Sqlite => caja_store::Engine::Sqlite,
        Backend::Postgres => caja_store::Engine::Postgres,
    })
    .len()
}

async fn up_applies_every_migration_once_and_records_its_history(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let m = migrator(&store);
    assert_eq!(m.pending().await.unwrap().len(), shipped(backend));
    let mut seen = Vec::new();
    let ran = m.up(&mut |r| seen.push(r.label.clone())).await.unwrap();
    assert_eq!(ran.len(), shipped(backend));
    assert_eq!(
        seen,
        ran.iter().map(|r| r.label.clone()).collect::<Vec<_>>()
    );
    assert!(
        m.up(&mut |_| {}).await.unwrap().is_empty(),
        "a second up does nothing"
    );
    for row in m.status().await.unwrap() {
        assert_eq!(row.status, Status::Applied);
        let a = row.applied.unwrap();
        assert!(a.applied_by.contains('@'));
        assert_eq!(a.caja_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(a.checksum.len(), 64);
        assert!(a.duration_ms >= 0);
        assert!(caja_core::time::parse("applied_at", &a.applied_at).is_ok());
    }
}

async fn down_reverts_the_newest_steps_and_up_reapplies_them(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let m = migrator(&store);
    m.up(&mut |_| {}).await.unwrap();
    let reverted = m.down(3, &mut |_| {}).await.unwrap();
    let labels: Vec<&str> = reverted.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "0017_text_bytewise",
            "0016_changes_by_seq",
            "0015_locations"
        ]
    );
    assert_eq!(
        m.pending().await.unwrap(),
        vec![
            "0015_locations".to_owned(),
            "0016_changes_by_seq".to_owned(),
            "0017_text_bytewise".to_owned()
        ]
    );
    assert!(
        sqlx::query("SELECT code FROM locations")
            .fetch_all(&any_pool(&db).await)
            .await
            .is_err(),
        "down took the table away"
    );
    let all = m.down(100, &mut |_| {}).await.unwrap();
    assert_eq!(all.len(), shipped(backend) - 3);
    assert_eq!(m.pending().await.unwrap().len(), shipped(backend));
    assert_eq!(m.up(&mut |_| {}).await.unwrap().len(), shipped(backend));
    assert!(m.verify().await.unwrap().is_empty());
}

/// Ids, keys, codes and timestamps sort as bytes on both engines: on PostgreSQL, a column
/// that a language's collation sorted otherwise sorts bytewise once migrated, and `verify`
/// names any text column that is not.
async fn text_sorts_bytewise_whatever_the_database_locale(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let m = migrator(&store);
    m.up(&mut |_| {}).await.unwrap();
    let pool = any_pool(&db).await;
    for (id, code) in [("loc_a", "a"), ("loc_b", "B")] {
        sqlx::query(
            "INSERT INTO locations (id, code, name, version, created_at, updated_at) \
             VALUES ($1, $2, $2, 1, '2026-11-30T00:00:00Z', '2026-11-30T00:00:00Z')",
        )
        .bind(id)
        .bind(code)
        .execute(&pool)
        .await
        .unwrap();
    }
    // Not prepared: a statement prepared before a column's collation changes fails after it
    // (why 0017 is a contract).
    let first = || async {
        let (code,): (String,) = sqlx::query_as("SELECT MIN(code) FROM locations")
            .persistent(false)
            .fetch_one(&pool)
            .await
            .unwrap();
        code
    };
    assert_eq!(first().await, "B", "bytewise, 'B' (0x42) sorts before 'a'");
    if backend == Backend::Postgres {
        // As on a database created with an English collation: 'a' first.
        m.down(1, &mut |_| {}).await.unwrap();
        sqlx::query(r#"ALTER TABLE locations ALTER COLUMN code TYPE text COLLATE "en-US-x-icu""#)
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(first().await, "a");
        m.up(&mut |_| {}).await.unwrap();
        assert_eq!(first().await, "B");
        assert!(m.verify().await.unwrap().is_empty());

        sqlx::query(r#"ALTER TABLE products ALTER COLUMN name TYPE text COLLATE "default""#)
            .execute(&pool)
            .await
            .unwrap();
        let failures = m.verify().await.unwrap();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].label, "0017_text_bytewise");
        assert!(failures[0].reason.contains("products.name"), "{failures:?}");
    }
}

async fn any_pool(db: &TestDb) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&db.url).await.unwrap()
}

async fn verify_passes_on_a_good_schema_and_names_drift(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let m = migrator(&store);
    m.up(&mut |_| {}).await.unwrap();
    assert!(m.verify().await.unwrap().is_empty());

    let pool = any_pool(&db).await;
    sqlx::query("DROP INDEX products_live_sku")
        .execute(&pool)
        .await
        .unwrap();
    let failures = m.verify().await.unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].label, "0002_products");

    sqlx::query("UPDATE caja_schema_history SET checksum = 'edited' WHERE version = 1")
        .execute(&pool)
        .await
        .unwrap();
    let failures = m.verify().await.unwrap();
    assert!(failures
        .iter()
        .any(|f| f.label == "0001_api_keys" && f.reason.contains("checksum")));
    let refused = m.up(&mut |_| {}).await.unwrap_err();
    assert!(
        matches!(refused, MigrateError::ChecksumChanged(ref v) if v == &vec!["0001_api_keys".to_owned()]),
        "{refused}"
    );

    // The CLI exits 1 naming each failing migration.
    let out = caja(&["migrate", "verify", "--database-url", &db.url]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("0001_api_keys") && stdout.contains("0002_products"),
        "{stdout}"
    );
}

async fn a_database_from_a_newer_caja_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let m = migrator(&store);
    m.up(&mut |_| {}).await.unwrap();
    sqlx::query("INSERT INTO caja_schema_history (version, name, checksum, applied_at, duration_ms, applied_by, caja_version) VALUES (9999, 'from_the_future', 'x', '2030-01-01T00:00:00.000000Z', 1, 'x@y', '9.0.0')")
        .execute(&any_pool(&db).await)
        .await
        .unwrap();
    let err = m.up(&mut |_| {}).await.unwrap_err();
    assert!(matches!(err, MigrateError::UnknownMigrations(_)), "{err}");
    assert!(err.to_string().contains("9999_from_the_future"));
    let err = m.down(1, &mut |_| {}).await.unwrap_err();
    assert!(matches!(err, MigrateError::UnknownMigrations(_)));
    let status = m.status().await.unwrap();
    assert_eq!(status.last().unwrap().status, Status::Unknown);

    let out = caja(&[
        "serve",
        "--database-url",
        &db.url,
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("9999_from_the_future") && stderr.contains("newer caja"),
        "{stderr}"
    );
    // Without migrating, and for the read-only checker, the same refusal.
    for args in [
        vec!["serve", "--no-migrate", "--listen", "127.0.0.1:0"],
        vec!["check"],
    ] {
        let mut args = args;
        args.extend(["--database-url", &db.url]);
        let out = caja(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("9999_from_the_future"),
            "{args:?}: {stderr}"
        );
    }
}

async fn two_migrators_started_together_apply_each_migration_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let a = db.store().await;
    let b = db.store().await;
    let (ma, mb) = (migrator(&a), migrator(&b));
    let (mut na, mut nb) = (
        |_: &caja_store::migrate::Report| {},
        |_: &caja_store::migrate::Report| {},
    );
    let (ra, rb) = tokio::join!(ma.up(&mut na), mb.up(&mut nb));
    let total = ra.unwrap().len() + rb.unwrap().len();
    assert_eq!(total, shipped(backend), "each migration ran exactly once");

    // And as two processes.
    let db = TestDb::new(backend).await;
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_caja"))
            .args(["migrate", "up", "--database-url", &db.url])
            .output()
    };
    let (pa, pb) = std::thread::scope(|s| {
        let ta = s.spawn(spawn);
        let tb = s.spawn(spawn);
        (ta.join().unwrap().unwrap(), tb.join().unwrap().unwrap())
    });
    assert!(
        pa.status.success(),
        "{}",
        String::from_utf8_lossy(&pa.stderr)
    );
    assert!(
        pb.status.success(),
        "{}",
        String::from_utf8_lossy(&pb.stderr)
    );
    let applied = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout)
            .matches("applied ")
            .count()
    };
    assert_eq!(applied(&pa) + applied(&pb), shipped(backend));
    let store = db.store().await;
    let rows = migrator(&store).status().await.unwrap();
    assert!(rows.iter().all(|r| r.status == Status::Applied));
}

async fn a_held_lock_makes_a_migrator_give_up_with_a_clear_message(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let pool = any_pool(&db).await;
    let mut holder = pool.acquire().await.unwrap();
    match backend {
        Backend::Postgres => {
            sqlx::query("SELECT pg_advisory_lock(1667328609)")
                .execute(&mut *holder)
                .await
                .unwrap();
        }
        Backend::Sqlite => {
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *holder)
                .await
                .unwrap();
        }
    }
    let err = Migrator::new(&store, Duration::from_secs(1), Duration::from_secs(5))
        .up(&mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, MigrateError::LockTimeout(_)), "{err}");
    assert!(err.to_string().contains("another migrator"));
    let out = caja(&[
        "migrate",
        "up",
        "--database-url",
        &db.url,
        "--migrate-lock-timeout",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("migration lock"));
    match backend {
        Backend::Postgres => sqlx::query("SELECT pg_advisory_unlock(1667328609)")
            .execute(&mut *holder)
            .await
            .unwrap(),
        Backend::Sqlite => sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap(),
    };
    drop(holder);
    assert_eq!(
        migrator(&store).up(&mut |_| {}).await.unwrap().len(),
        shipped(backend)
    );
}

async fn the_cli_migrates_and_reports(backend: Backend) {
    let db = TestDb::new(backend).await;
    let status = caja(&["migrate", "status", "--database-url", &db.url]);
    assert!(status.status.success());
    assert_eq!(
        String::from_utf8_lossy(&status.stdout)
            .matches("pending")
            .count(),
        shipped(backend)
    );

    let refused = caja(&[
        "serve",
        "--no-migrate",
        "--database-url",
        &db.url,
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("pending") && stderr.contains("0001_api_keys"),
        "{stderr}"
    );

    let up = caja(&["migrate", "up", "--database-url", &db.url]);
    assert!(up.status.success());
    let stdout = String::from_utf8_lossy(&up.stdout);
    assert!(
        stdout.contains("applied  0001_api_keys in")
            && stdout.contains("applied  0002_products in"),
        "{stdout}"
    );

    let status = caja(&["migrate", "status", "--database-url", &db.url]);
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert_eq!(
        stdout.matches(" applied ").count(),
        shipped(backend),
        "{stdout}"
    );
    assert!(stdout.contains(" ms by "));

    let verify = caja(&["migrate", "verify", "--database-url", &db.url]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // Without --yes, down shows what it would drop and changes nothing. Down to the first
    // two (keys, products): the orders and the feed go.
    let steps = (shipped(backend) - 2).to_string();
    let plan = caja(&[
        "migrate",
        "down",
        "--steps",
        &steps,
        "--database-url",
        &db.url,
    ]);
    assert_eq!(plan.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(
        stdout.contains("drops table changes (0 rows)")
            && stdout.contains("drops table orders")
            && stdout.contains("nothing changed"),
        "{stdout}"
    );
    let status = caja(&["migrate", "status", "--database-url", &db.url]);
    assert_eq!(
        String::from_utf8_lossy(&status.stdout)
            .matches(" applied ")
            .count(),
        shipped(backend),
        "nothing was reverted"
    );

    // With --yes it backs up first, then reverts.
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let down = caja(&[
        "migrate",
        "down",
        "--steps",
        &steps,
        "--yes",
        "--database-url",
        &db.url,
        "--data-dir",
        data_dir,
    ]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let backups: Vec<_> = std::fs::read_dir(data.path().join("backups"))
        .unwrap()
        .collect();
    assert_eq!(backups.len(), 1, "one archive taken before reverting");
    let stdout = String::from_utf8_lossy(&down.stdout);
    assert!(
        stdout.find("reverted 0005_flags").unwrap() < stdout.find("reverted 0004_changes").unwrap()
            && stdout.find("reverted 0004_changes").unwrap()
                < stdout.find("reverted 0003_orders").unwrap(),
        "{stdout}"
    );
    assert!(!stdout.contains("0002_products") && !stdout.contains("0001_api_keys"));

    // Up again on a database that holds data: a backup first, which restores.
    let pool = any_pool(&db).await;
    sqlx::query(
        "INSERT INTO api_keys (id, name, role, key_hash, created_at) \
         VALUES ('key_01J00000000000000000000000', 'till', 'clerk', 'h', '2026-11-29T00:00:00.000000Z')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let up = caja(&[
        "migrate",
        "up",
        "--database-url",
        &db.url,
        "--data-dir",
        data_dir,
    ]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let stdout = String::from_utf8_lossy(&up.stdout);
    assert!(
        stdout.contains("backed up") && stdout.contains(" first"),
        "{stdout}"
    );
    let archives: Vec<std::path::PathBuf> = std::fs::read_dir(data.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(archives.len(), 2);
    let target = TestDb::new(backend).await;
    let newest = archives.iter().max().unwrap();
    let restored = caja(&[
        "restore",
        newest.to_str().unwrap(),
        "--database-url",
        &target.url,
    ]);
    let stdout = String::from_utf8_lossy(&restored.stdout);
    assert!(
        restored.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(stdout.contains("schema version 2"), "{stdout}");
    assert!(stdout.contains("invariants hold"), "{stdout}");
    let skip = caja(&["migrate", "up", "--no-backup", "--database-url", &db.url]);
    assert!(skip.status.success());
}

pub fn caja(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_caja"))
        .args(args)
        .env_remove("CAJA_DATABASE_URL")
        .env_remove("CAJA_ADMIN_KEY")
        .output()
        .expect("run caja")
}

async fn a_failing_migration_stops_the_run_at_the_last_good_one(backend: Backend) {
    use caja_store::migrate::Migration;
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let list = [
        Migration {
            version: 1,
            name: "good",
            up: "CREATE TABLE a (x BIGINT)",
            down: "DROP TABLE a",
            verify: "SELECT x FROM a",
            expand: false,
        },
        Migration {
            version: 2,
            name: "bad",
            up: "CREATE TABLE b (x BIGINT); INSERT INTO nowhere VALUES (1)",
            down: "DROP TABLE b",
            verify: "SELECT x FROM b",
            expand: false,
        },
        Migration {
            version: 3,
            name: "never",
            up: "CREATE TABLE c (x BIGINT)",
            down: "DROP TABLE c",
            verify: "SELECT x FROM c",
            expand: false,
        },
    ];
    let m = Migrator::with_migrations(
        &store,
        &list,
        Duration::from_secs(5),
        Duration::from_secs(5),
    );
    let err = m.up(&mut |_| {}).await.unwrap_err();
    assert!(
        matches!(err, MigrateError::Failed { ref label, .. } if label == "0002_bad"),
        "{err}"
    );
    let status: Vec<_> = m
        .status()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        status,
        vec![Status::Applied, Status::Pending, Status::Pending]
    );
    let pool = any_pool(&db).await;
    assert!(sqlx::query("SELECT x FROM a")
        .fetch_all(&pool)
        .await
        .is_ok());
    assert!(
        sqlx::query("SELECT x FROM b")
            .fetch_all(&pool)
            .await
            .is_err(),
        "the failed migration left nothing behind"
    );
    assert!(sqlx::query("SELECT x FROM c")
        .fetch_all(&pool)
        .await
        .is_err());
}

/// A rolling upgrade: a replica whose binary predates only expand migrations keeps serving
/// and stays ready; a contract migration makes it (and /ready) say why it must not serve.
async fn a_replica_that_predates_only_expand_migrations_stays_ready(backend: Backend) {
    use caja_store::migrate::Migration;
    let app = crate::helpers::spawn_app(backend).await;
    let shipped = embedded(app.store.engine());
    // This binary, about to meet newer migrations.
    let older = Migrator::with_migrations(
        &app.store,
        shipped,
        Duration::from_secs(5),
        Duration::from_secs(5),
    );
    assert_eq!(older.pending_checked().await.unwrap(), Vec::<String>::new());
    assert!(older.up(&mut |_| {}).await.unwrap().is_empty());
    assert!(older.newer_expand().await.unwrap().is_empty());
    // A newer binary adds an expand migration: this one stays ready, and says why.
    let mut newer: Vec<Migration> = shipped.to_vec();
    newer.push(Migration {
        version: 900,
        name: "add_a_table",
        up: "CREATE TABLE later_expand (x BIGINT)",
        down: "DROP TABLE later_expand",
        verify: "SELECT x FROM later_expand",
        expand: true,
    });
    let newest = Migrator::with_migrations(
        &app.store,
        &newer,
        Duration::from_secs(5),
        Duration::from_secs(5),
    );
    newest.up(&mut |_| {}).await.unwrap();
    let ready = crate::helpers::send(app.client.get(app.url("/ready"))).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert!(ready.body["checks"]["migrations:pending"][0]["output"]
        .as_str()
        .unwrap()
        .contains("0900_add_a_table"));
    let a = app.product("ROLL", 3).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.order("roll", &[(&a, 1)]).await.status,
        201,
        "it keeps serving"
    );
    // Then a contract: this replica reports not ready, with the reason.
    newer.push(Migration {
        version: 901,
        name: "drop_a_column",
        up: "CREATE TABLE later_contract (x BIGINT)",
        down: "DROP TABLE later_contract",
        verify: "SELECT x FROM later_contract",
        expand: false,
    });
    Migrator::with_migrations(
        &app.store,
        &newer,
        Duration::from_secs(5),
        Duration::from_secs(5),
    )
    .up(&mut |_| {})
    .await
    .unwrap();
    let ready = crate::helpers::send(app.client.get(app.url("/ready"))).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    let why = ready.body["checks"]["migrations:pending"][0]["output"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        why.contains("contract") && why.contains("0901_drop_a_column"),
        "{why}"
    );
    assert!(matches!(
        older.pending_checked().await,
        Err(MigrateError::UnknownMigrations(_))
    ));
}
