//! `driver-spike DRIVER BATCHES`: inserts BATCHES transactions of one 64-row, 12-column
//! insert (the shape of caja's batched writes: ids, short texts, integers, and a 900-byte
//! text like a stored answer) through one driver, for `valgrind --tool=callgrind` or
//! `/usr/bin/time` to count. DRIVER is `any` or `typed` (sqlx on SQLite), `direct`
//! (rusqlite, statement prepared once), or `pgany` / `pgtyped` (sqlx on the PostgreSQL at
//! `SPIKE_POSTGRES_URL`). Run it at two batch counts and divide the difference by the rows
//! between them: what is left is the cost per row, without the start-up.

use sqlx::{Connection, Executor};

const ROWS: usize = 64;
const COLUMNS: usize = 12;
const TABLE: &str = "CREATE TABLE t (a0 TEXT PRIMARY KEY, a1 TEXT, a2 TEXT, a3 BIGINT, \
    a4 BIGINT, a5 TEXT, a6 TEXT, a7 TEXT, a8 BIGINT, a9 TEXT, a10 TEXT, a11 TEXT)";

/// `INSERT … VALUES (…), (…)` with numbered (`$n`) or anonymous (`?`) parameters.
fn insert(numbered: bool) -> String {
    let mut n = 0;
    let rows: Vec<String> = (0..ROWS)
        .map(|_| {
            let params: Vec<String> = (0..COLUMNS)
                .map(|_| {
                    n += 1;
                    if numbered {
                        format!("${n}")
                    } else {
                        "?".to_owned()
                    }
                })
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO t (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11) VALUES {}",
        rows.join(", ")
    )
}

/// One value of a row, as both drivers bind it.
enum Value {
    Text(String),
    Int(i64),
}

/// A row's values in the table's column order.
fn row(batch: usize, i: usize) -> Vec<Value> {
    let text = |s: &str| Value::Text(s.to_owned());
    let at = "2026-11-30T07:47:09.020438Z";
    vec![
        Value::Text(format!("ord_01M8NPR12VVHYEFF8HCF9B{batch:05}{i:03}")),
        text("pending_payment"),
        text("EUR"),
        Value::Int(1234),
        Value::Int(99),
        text("prd_01M8NPR12VVHYEFF8HCF9BA0SJ"),
        text("Ticket, general admission"),
        text(at),
        Value::Int(1),
        text(at),
        text("loc_01M8NPR12VVHYEFF8HCF9BA0SJ"),
        Value::Text("x".repeat(900)),
    ]
}

/// The batches through one sqlx connection, whichever driver it is.
macro_rules! through_sqlx {
    ($connection:expr, $sql:expr, $batches:expr) => {{
        let mut c = $connection;
        let sql: String = $sql;
        c.execute("DROP TABLE IF EXISTS t").await.expect("drop");
        c.execute(TABLE).await.expect("create");
        for b in 0..$batches {
            let rows: Vec<Vec<Value>> = (0..ROWS).map(|i| row(b, i)).collect();
            let mut tx = c.begin().await.expect("begin");
            let mut q = sqlx::query(&sql);
            for value in rows.iter().flatten() {
                q = match value {
                    Value::Text(t) => q.bind(t.as_str()),
                    Value::Int(n) => q.bind(*n),
                };
            }
            q.execute(&mut *tx).await.expect("insert");
            tx.commit().await.expect("commit");
        }
    }};
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(driver), Some(batches)) = (args.next(), args.next()) else {
        eprintln!("usage: driver-spike any|typed|direct|pgany|pgtyped BATCHES");
        std::process::exit(2);
    };
    let batches: usize = batches.parse().expect("BATCHES is a number");
    let dir = std::env::temp_dir().join(format!("driver-spike-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
    let postgres = std::env::var("SPIKE_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".into());
    sqlx::any::install_default_drivers();
    match driver.as_str() {
        "any" => {
            let mut c = sqlx::AnyConnection::connect(&file).await.expect("open");
            c.execute("PRAGMA journal_mode = WAL").await.expect("wal");
            through_sqlx!(c, insert(false), batches)
        }
        "typed" => {
            let mut c = sqlx::SqliteConnection::connect(&file).await.expect("open");
            c.execute("PRAGMA journal_mode = WAL").await.expect("wal");
            through_sqlx!(c, insert(false), batches)
        }
        "pgany" => through_sqlx!(
            sqlx::AnyConnection::connect(&postgres)
                .await
                .expect("connect"),
            insert(true),
            batches
        ),
        "pgtyped" => through_sqlx!(
            sqlx::PgConnection::connect(&postgres)
                .await
                .expect("connect"),
            insert(true),
            batches
        ),
        "direct" => {
            let c = rusqlite::Connection::open(dir.join("t.db")).expect("open");
            c.pragma_update(None, "journal_mode", "WAL").expect("wal");
            c.execute(TABLE, []).expect("create");
            let sql = insert(false);
            for b in 0..batches {
                let rows: Vec<Vec<Value>> = (0..ROWS).map(|i| row(b, i)).collect();
                c.execute("BEGIN", []).expect("begin");
                let mut st = c.prepare_cached(&sql).expect("prepare");
                for (k, value) in rows.iter().flatten().enumerate() {
                    match value {
                        Value::Text(t) => st.raw_bind_parameter(k + 1, t.as_str()),
                        Value::Int(n) => st.raw_bind_parameter(k + 1, *n),
                    }
                    .expect("bind");
                }
                st.raw_execute().expect("insert");
                drop(st);
                c.execute("COMMIT", []).expect("commit");
            }
        }
        other => {
            eprintln!("unknown driver {other}");
            std::process::exit(2);
        }
    }
    std::fs::remove_dir_all(&dir).expect("clean up");
}
