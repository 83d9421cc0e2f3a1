//! `caja backup` and `caja restore`: an engine-neutral archive of every table, taken while
//! the server keeps serving, checked line by line, and restored into an empty database of
//! either engine (then checked with `caja check`).

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use caja_store::backup::{self, Summary};
use caja_store::migrate::{embedded, Migrator, Status};
use caja_store::Store;
use indicatif::{ProgressBar, ProgressStyle};

use super::{open_store, prepare_schema};
use crate::settings::{log_format, DbArgs, DbSettings, LogFormat};

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Where to write the archive. Default: DATA_DIR/backups/caja-<UTC time>.cajabak
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Check an archive (its lines, row counts and checksums) instead of writing one.
    #[arg(long, value_name = "FILE", conflicts_with = "out")]
    pub verify: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The archive `caja backup` wrote.
    #[arg(value_name = "FILE")]
    pub archive: PathBuf,
}

pub async fn backup(args: BackupArgs, log: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.verify {
        let summary = verify(path)?;
        print_summary(&summary);
        println!("ok: {} is a complete caja archive", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let (db, file) = args.db.resolve()?;
    crate::telemetry::init(log_format(log, &file));
    let store = open_store(&db).await?;
    let out = match args.out {
        Some(out) => out,
        None => default_path(&db, &store),
    };
    let written = take(&store, &out).await;
    store.close().await;
    let (summary, bytes) = written?;
    print_summary(&summary);
    println!(
        "wrote {} ({} rows, {} bytes)",
        out.display(),
        summary.rows(),
        bytes
    );
    Ok(ExitCode::SUCCESS)
}

/// `DATA_DIR/backups/caja-YYYYMMDDTHHMMSSZ.cajabak`.
pub fn default_path(db: &DbSettings, store: &Store) -> PathBuf {
    let stamp = store.now().format("%Y%m%dT%H%M%S%.3fZ");
    db.data_dir
        .join("backups")
        .join(format!("caja-{stamp}.cajabak"))
}

/// Writes an archive of `store` to `out`: to a temporary file beside it, renamed into place
/// only once complete, so a half-written archive never carries the final name.
pub async fn take(store: &Store, out: &Path) -> anyhow::Result<(Summary, u64)> {
    let schema_version = applied_version(store).await?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let partial = out.with_extension("partial");
    let total: u64 = store
        .table_rows(schema_version)
        .await?
        .iter()
        .map(|(_, n)| n)
        .sum();
    let bar = bar(total, "backing up");
    let file = File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut done_before = 0u64;
    let mut current = String::new();
    let mut progress = |table: &str, rows: u64| {
        if table != current {
            done_before = bar.position();
            current = table.to_owned();
        }
        bar.set_position(done_before + rows);
        bar.set_message(table.to_owned());
    };
    let result = store
        .backup(BufWriter::new(file), schema_version, &mut progress)
        .await;
    bar.finish_and_clear();
    let written = match result {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
    };
    File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, out)
        .with_context(|| format!("moving the archive to {}", out.display()))?;
    Ok(written)
}

pub async fn restore(args: RestoreArgs, log: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let (db, file) = args.db.resolve()?;
    crate::telemetry::init(log_format(log, &file));
    let checked = verify(&args.archive)?;
    let store = open_store(&db).await?;
    // The target is brought to the archive's schema version with its own engine's
    // scripts, loaded, then migrated the rest of the way.
    let shipped = embedded(store.engine());
    let known = shipped
        .iter()
        .take_while(|m| m.version <= checked.schema_version)
        .count();
    if shipped.get(known.wrapping_sub(1)).map(|m| m.version) != Some(checked.schema_version) {
        anyhow::bail!(
            "the archive is from schema version {}, which this caja does not ship",
            checked.schema_version
        );
    }
    Migrator::with_migrations(
        &store,
        &shipped[..known],
        db.lock_wait,
        db.store.busy_timeout,
    )
    .up(&mut |_| {})
    .await?;
    if applied_version(&store).await? != checked.schema_version {
        anyhow::bail!(
            "the target database is past schema version {}: restore into an empty database",
            checked.schema_version
        );
    }
    let bar = bar(checked.rows(), "restoring");
    let mut progress = |table: &str, rows: u64| {
        bar.inc(rows);
        bar.set_message(table.to_owned());
    };
    let reader = BufReader::new(
        File::open(&args.archive).with_context(|| format!("opening {}", args.archive.display()))?,
    );
    let restored = store
        .restore(reader, checked.schema_version, &mut progress)
        .await;
    bar.finish_and_clear();
    let summary = match restored {
        Ok(s) => s,
        Err(e) => {
            store.close().await;
            return Err(e.into());
        }
    };
    prepare_schema(&store, &db, false).await?;
    print_summary(&summary);
    println!(
        "restored {} rows from {} (taken {} on {}) into {}",
        summary.rows(),
        args.archive.display(),
        summary.created_at,
        summary.source,
        db.location
    );
    let (invariants, violations) = store.check().await?;
    store.close().await;
    for v in &violations {
        println!("VIOLATION {}: {}", v.invariant, v.detail);
    }
    if violations.is_empty() {
        println!("ok: {invariants} invariants hold on {}", db.location);
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

fn verify(path: &Path) -> anyhow::Result<Summary> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    backup::verify(BufReader::new(file)).with_context(|| format!("checking {}", path.display()))
}

/// The newest migration applied to `store`: the schema version an archive records (a
/// database with pending migrations is backed up as it is, before `migrate up`).
pub async fn applied_version(store: &Store) -> anyhow::Result<i64> {
    let migrator = Migrator::new(store, Default::default(), Default::default());
    let rows = migrator.status().await?;
    if rows
        .iter()
        .any(|r| matches!(r.status, Status::ChecksumChanged | Status::Unknown))
    {
        anyhow::bail!("the database's schema does not match this caja's migrations: see `caja migrate status`");
    }
    Ok(rows
        .iter()
        .filter(|r| r.applied.is_some())
        .map(|r| r.version)
        .max()
        .unwrap_or(0))
}

fn bar(total: u64, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{what} {{msg:>18}} [{{bar:30}}] {{pos}}/{{len}} rows"
    )) {
        bar.set_style(style);
    }
    bar
}

fn print_summary(s: &Summary) {
    println!(
        "archive: schema version {}, from {} at {}",
        s.schema_version, s.source, s.created_at
    );
    for (table, rows) in &s.tables {
        println!("  {table:<18} {rows:>10} rows");
    }
}
