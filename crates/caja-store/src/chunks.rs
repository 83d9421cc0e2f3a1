//! How many rows one statement carries. A multi-row statement's text depends only on its
//! row count, so every row set is carried in statements of a few sizes (powers of two up
//! to 64, the last one filled out): each statement has at most seven shapes, each prepared
//! once per connection and kept, instead of a new shape (parsed again, and crowding the
//! statement cache) for almost every batch, and a set of up to 64 rows is one round trip.

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::dialect::Dialect;
use crate::StoreError;

/// The most rows one statement carries.
pub(crate) const WIDEST: usize = 64;

/// The text of a multi-row statement of `rows` rows of `width` values, as `build` makes
/// it from its `VALUES` list: built once per statement, engine and size, then shared (a
/// statement of a hundred rows is thousands of numbered parameters to format).
/// `build` is told apart by its type, so each statement must have its own closure, and one
/// that captures nothing (checked when it compiles): a captured value could change the text
/// while the type stays the same.
pub(crate) fn statement<F>(dialect: Dialect, rows: usize, width: usize, build: &F) -> Arc<str>
where
    F: Fn(&str) -> String + 'static,
{
    captures_nothing::<F>();
    text::<F>(dialect, rows, width, || {
        build(&dialect.params().rows(rows, width))
    })
}

/// The same for a statement whose text differs by engine beyond its placeholders: `build`
/// is given the engine too.
pub(crate) fn statement_on<F>(dialect: Dialect, rows: usize, width: usize, build: &F) -> Arc<str>
where
    F: Fn(Dialect, &str) -> String + 'static,
{
    captures_nothing::<F>();
    text::<F>(dialect, rows, width, || {
        build(dialect, &dialect.params().rows(rows, width))
    })
}

/// The text of a multi-row insert of `rows` rows of `width` values: `build` is given the
/// row source, to write after `INSERT INTO t (…)`. With `filler`, each row carries one more
/// value, 1 for a row to insert and 0 for filler, and only the 1s are inserted.
pub(crate) fn insert<F>(
    dialect: Dialect,
    rows: usize,
    width: usize,
    filler: bool,
    build: &F,
) -> Arc<str>
where
    F: Fn(&str) -> String + 'static,
{
    captures_nothing::<F>();
    let cols = width + usize::from(filler);
    text::<F>(dialect, rows, cols, || {
        let values = dialect.params().rows(rows, cols);
        if filler {
            let columns: Vec<String> = (1..=width).map(|c| format!("column{c}")).collect();
            build(&format!(
                "SELECT {} FROM (VALUES {values}) AS v WHERE v.column{cols} = 1",
                columns.join(", ")
            ))
        } else {
            build(&format!("VALUES {values}"))
        }
    })
}

/// Checked when it compiles: a builder told apart by its type must capture nothing, since
/// a captured value could change the text while the type stays the same.
fn captures_nothing<F>() {
    const {
        assert!(
            std::mem::size_of::<F>() == 0,
            "a statement builder captures nothing"
        )
    };
}

/// The shared text for builder `F`, engine and size, made by `make` the first time.
fn text<F: 'static>(
    dialect: Dialect,
    rows: usize,
    width: usize,
    make: impl FnOnce() -> String,
) -> Arc<str> {
    type Key = (TypeId, Dialect, usize, usize);
    static TEXTS: OnceLock<Mutex<HashMap<Key, Arc<str>>>> = OnceLock::new();
    let key = (TypeId::of::<F>(), dialect, rows, width);
    let texts = TEXTS.get_or_init(Mutex::default);
    if let Some(sql) = texts.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return sql.clone();
    }
    let sql: Arc<str> = make().into();
    texts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, sql.clone());
    sql
}

/// Rows to write, cut into chunks of [`WIDEST`] and a last one, each with the size of the
/// statement that carries it: the chunk's length rounded up to a power of two (37 rows: 37
/// in a statement of 64). The statement's other rows are filler ([`write`]), so a write of
/// up to 64 rows is one statement, not one per set bit of the count (37: 32, 4 and 1), each
/// a round trip.
pub(crate) fn sized<T>(mut rows: &[T]) -> impl Iterator<Item = (&[T], usize)> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let (chunk, rest) = rows.split_at(rows.len().min(WIDEST));
        rows = rest;
        Some((chunk, chunk.len().next_power_of_two()))
    })
}

/// Rows to write where a statement costs no round trip (SQLite driven directly): chunks of
/// [`WIDEST`], and the rest cut at its set bits (37 rows: 32, 4 and 1), each chunk a
/// statement of its own size, so no filler row is bound or read.
pub(crate) fn exact<T>(mut rows: &[T]) -> impl Iterator<Item = (&[T], usize)> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let take = if rows.len() >= WIDEST {
            WIDEST
        } else {
            1 << rows.len().ilog2()
        };
        let (chunk, rest) = rows.split_at(take);
        rows = rest;
        Some((chunk, take))
    })
}

/// Keys to read, cut into chunks of [`WIDEST`] and a last one padded up to the next power
/// of two by repeating its last key (37 keys: one chunk of 64). A read finds a key named
/// twice once (or, joined from a `VALUES` list, twice, which its caller keeps once), so a
/// read of up to 64 keys is one statement.
pub(crate) fn padded<T: Clone>(mut rows: &[T]) -> impl Iterator<Item = Cow<'_, [T]>> {
    std::iter::from_fn(move || {
        let last = rows.last()?.clone();
        if rows.len() >= WIDEST {
            let (chunk, rest) = rows.split_at(WIDEST);
            rows = rest;
            return Some(Cow::Borrowed(chunk));
        }
        let size = rows.len().next_power_of_two();
        if size == rows.len() {
            let chunk = rows;
            rows = &[];
            return Some(Cow::Borrowed(chunk));
        }
        let mut chunk = rows.to_vec();
        chunk.resize(size, last);
        rows = &[];
        Some(Cow::Owned(chunk))
    })
}

/// `p, p, …`: the parameters of an `IN` list of `n` values, formatted once per engine and
/// size and then shared.
pub(crate) fn list(dialect: Dialect, n: usize) -> Arc<str> {
    /// Names the lists in the one cache of texts.
    struct List;
    text::<List>(dialect, n, 0, || dialect.params().list(n))
}

pub(crate) type AnyQuery<'q> = crate::sql::Query<'q>;

/// What a chunked write is.
#[derive(Clone, Copy)]
pub(crate) enum Kind<'w> {
    /// `INSERT INTO t (…) {rows}`: the builder is given the row source.
    Insert,
    /// An update from `(VALUES …) AS v` that must match every one of its rows (`what` names
    /// them in the error).
    Guarded(&'w str),
}

/// Writes `rows` a chunk at a time ([`sized`]), one prepared statement each, and returns how
/// many rows the statements inserted or updated. `statement` is given the chunk's row
/// source (`width` values per row) and `bind` binds one row's values in that order. Filler
/// repeats the chunk's last row: an insert skips it by its flag, and an update matches its
/// target once.
pub(crate) async fn write<T>(
    tx: &mut (impl crate::sql::Sql + ?Sized),
    dialect: Dialect,
    rows: &[T],
    width: usize,
    kind: Kind<'_>,
    statement: impl Fn(&str) -> String + 'static,
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
) -> Result<u64, StoreError> {
    let mut written = 0;
    let chunks: Vec<(&[T], usize)> = if tx.round_trips() {
        sized(rows).collect()
    } else {
        exact(rows).collect()
    };
    for (chunk, size) in chunks {
        let Some(last) = chunk.last() else { continue };
        let filler = size - chunk.len();
        let sql = match kind {
            Kind::Insert => insert(dialect, size, width, filler > 0, &statement),
            Kind::Guarded(_) => self::statement(dialect, size, width, &statement),
        };
        let flagged = matches!(kind, Kind::Insert) && filler > 0;
        let mut q = crate::sql::sized(&sql, size * (width + usize::from(flagged)));
        for row in chunk {
            q = bind(q, row);
            if flagged {
                q = q.bind(1_i64);
            }
        }
        for _ in 0..filler {
            q = bind(q, last);
            if flagged {
                q = q.bind(0_i64);
            }
        }
        let n = q.execute(&mut *tx).await?;
        if let Kind::Guarded(what) = kind {
            if n != chunk.len() as u64 {
                return Err(StoreError::GuardMismatch(format!(
                    "{what}: matched {n} of {} rows",
                    chunk.len()
                )));
            }
        }
        written += n;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_cut_into_chunks_with_power_of_two_statements_in_order() {
        let sizes = |n: usize| {
            let rows: Vec<usize> = (0..n).collect();
            let chunks: Vec<(&[usize], usize)> = sized(&rows).collect();
            let real: Vec<&[usize]> = chunks.iter().map(|(c, _)| *c).collect();
            assert_eq!(real.concat(), rows, "every row once, in order");
            chunks
                .iter()
                .map(|(c, s)| (c.len(), *s))
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(0), []);
        assert_eq!(sizes(1), [(1, 1)]);
        assert_eq!(sizes(37), [(37, 64)]);
        assert_eq!(sizes(64), [(64, 64)]);
        assert_eq!(sizes(130), [(64, 64), (64, 64), (2, 2)]);
        for n in 1..600 {
            let s = sizes(n);
            assert_eq!(s.len(), n.div_ceil(WIDEST), "{n} rows");
            assert!(s
                .iter()
                .all(|(len, size)| size.is_power_of_two() && *size <= WIDEST && len <= size));
        }
    }

    /// Filler is neither inserted nor counted, on the SQLite caja bundles (through sqlx and
    /// through the writer's own connection) and on the PostgreSQL the suite runs against
    /// (`CAJA_TEST_POSTGRES_URL`, as the API tests).
    #[tokio::test]
    async fn filler_rows_are_neither_written_nor_counted_on_either_engine() {
        sqlx::any::install_default_drivers();
        let postgres = std::env::var("CAJA_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        for (engine, url) in [
            (crate::Engine::Sqlite, "sqlite::memory:".to_owned()),
            (crate::Engine::Postgres, postgres),
        ] {
            let pool = sqlx::any::AnyPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await
                .unwrap_or_else(|e| panic!("{url} is needed for this test: {e}"));
            let tx = pool.begin().await.unwrap();
            fill(tx, Dialect::of(engine), "TEMP").await;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut direct =
            crate::direct::Direct::new(dir.path().join("t.db"), std::time::Duration::ZERO);
        fill(
            direct.begin().unwrap(),
            Dialect::of(crate::Engine::Sqlite),
            "",
        )
        .await;
    }

    async fn fill(mut tx: impl crate::sql::WriteTx, dialect: Dialect, temp: &str) {
        fn bind<'q>(q: AnyQuery<'q>, (id, n): &'q (String, i64)) -> AnyQuery<'q> {
            q.bind(id.as_str()).bind(*n)
        }
        use crate::sql::{query, Columns};
        let create = format!("CREATE {temp} TABLE filler (id TEXT PRIMARY KEY, n BIGINT NOT NULL)");
        query(&create).execute(&mut tx).await.unwrap();
        // 37 rows: one statement of 64 with 27 rows of filler; 101: 64, then 37 in 64.
        for count in [37_i64, 101] {
            let rows: Vec<(String, i64)> =
                (0..count).map(|i| (format!("{count}-{i}"), i)).collect();
            let insert = |rows: &str| format!("INSERT INTO filler (id, n) {rows}");
            let written = write(&mut tx, dialect, &rows, 2, Kind::Insert, insert, bind)
                .await
                .unwrap();
            assert_eq!(written, count as u64, "{dialect:?}");
            let update = |values: &str| {
                format!(
                    "UPDATE filler SET n = v.column2 + 1000 FROM (VALUES {values}) AS v \
                     WHERE filler.id = v.column1 AND filler.n = v.column2"
                )
            };
            let kind = Kind::Guarded("filler");
            let updated = write(&mut tx, dialect, &rows, 2, kind, update, bind)
                .await
                .unwrap();
            assert_eq!(updated, count as u64, "{dialect:?}: each target once");
        }
        let row = query("SELECT COUNT(*) AS rows, CAST(SUM(n) AS BIGINT) AS total FROM filler")
            .fetch_one(&mut tx)
            .await
            .unwrap();
        assert_eq!(row.int("rows").unwrap(), 138, "{dialect:?}");
        assert_eq!(
            row.int("total").unwrap(),
            (0..37).sum::<i64>() + (0..101).sum::<i64>() + 138 * 1000
        );
        // A guard that misses one row fails the write.
        let stale = vec![("37-0".to_owned(), 0_i64), ("37-1".to_owned(), 1)];
        let update = |values: &str| {
            format!(
                "UPDATE filler SET n = 0 FROM (VALUES {values}) AS v \
                 WHERE filler.id = v.column1 AND filler.n = v.column2"
            )
        };
        let kind = Kind::Guarded("filler");
        let missed = write(&mut tx, dialect, &stale, 2, kind, update, bind).await;
        assert!(
            matches!(missed, Err(StoreError::GuardMismatch(_))),
            "{dialect:?}"
        );
        tx.rollback().await.unwrap();
    }

    #[test]
    fn a_chunk_with_filler_inserts_only_its_flagged_rows() {
        let build = |rows: &str| format!("INSERT INTO t (a, b) {rows}");
        let pg = Dialect::of(crate::Engine::Postgres);
        assert_eq!(
            &*insert(pg, 2, 2, false, &build),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
        assert_eq!(
            &*insert(pg, 2, 2, true, &build),
            "INSERT INTO t (a, b) SELECT column1, column2 FROM (VALUES ($1, $2, $3), ($4, $5, $6)) \
             AS v WHERE v.column3 = 1"
        );
    }

    #[test]
    fn rows_without_round_trips_are_cut_at_their_set_bits_with_no_filler() {
        let sizes = |n: usize| {
            let rows: Vec<usize> = (0..n).collect();
            let chunks: Vec<(&[usize], usize)> = exact(&rows).collect();
            let real: Vec<&[usize]> = chunks.iter().map(|(c, _)| *c).collect();
            assert_eq!(real.concat(), rows, "every row once, in order");
            assert!(chunks
                .iter()
                .all(|(c, s)| c.len() == *s && s.is_power_of_two()));
            chunks.iter().map(|(_, s)| *s).collect::<Vec<_>>()
        };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(37), [32, 4, 1]);
        assert_eq!(sizes(64), [64]);
        assert_eq!(sizes(130), [64, 64, 2]);
        for n in 1..600 {
            assert!(sizes(n).iter().all(|s| *s <= WIDEST), "{n} rows");
        }
    }

    #[test]
    fn keys_to_read_are_padded_to_one_statement_per_sixty_four() {
        let chunks = |n: usize| {
            let keys: Vec<usize> = (0..n).collect();
            padded(&keys).map(|c| c.into_owned()).collect::<Vec<_>>()
        };
        assert!(chunks(0).is_empty());
        assert_eq!(chunks(1), [vec![0]]);
        assert_eq!(chunks(3), [vec![0, 1, 2, 2]]);
        assert_eq!(chunks(4), [vec![0, 1, 2, 3]]);
        let c = chunks(70);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0], (0..64).collect::<Vec<_>>());
        assert_eq!(c[1], [64, 65, 66, 67, 68, 69, 69, 69]);
        for n in 1..200 {
            let c = chunks(n);
            assert_eq!(c.len(), n.div_ceil(WIDEST), "{n} keys");
            assert!(c
                .iter()
                .all(|c| c.len().is_power_of_two() && c.len() <= WIDEST));
            let mut seen: Vec<usize> = c.concat();
            seen.dedup();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "every key, in order");
        }
    }

    #[test]
    fn a_statement_is_built_once_per_engine_and_size() {
        let build = |values: &str| format!("INSERT INTO t (a, b) VALUES {values}");
        let pg = Dialect::of(crate::Engine::Postgres);
        let lite = Dialect::of(crate::Engine::Sqlite);
        let two = statement(pg, 2, 2, &build);
        assert_eq!(&*two, "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)");
        assert!(Arc::ptr_eq(&two, &statement(pg, 2, 2, &build)), "shared");
        assert_eq!(
            &*statement(lite, 2, 2, &build),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"
        );
        assert_eq!(
            &*statement(pg, 1, 2, &build),
            "INSERT INTO t (a, b) VALUES ($1, $2)"
        );
        assert_eq!(&*list(pg, 3), "$1, $2, $3");
        assert_eq!(&*list(lite, 3), "?, ?, ?");
        let other = |values: &str| format!("INSERT INTO u (a, b) VALUES {values}");
        assert_eq!(
            &*statement(pg, 2, 2, &other),
            "INSERT INTO u (a, b) VALUES ($1, $2), ($3, $4)"
        );
    }
}
