//! How many rows one statement carries. A multi-row statement's text depends only on its
//! row count, so cutting every row set into a few fixed sizes gives each statement at most
//! seven shapes, each prepared once per connection and kept, instead of a new shape (parsed
//! again, and crowding the statement cache) for almost every batch.

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::dialect::Dialect;

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
    const {
        assert!(
            std::mem::size_of::<F>() == 0,
            "a statement builder captures nothing"
        )
    };
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
    const {
        assert!(
            std::mem::size_of::<F>() == 0,
            "a statement builder captures nothing"
        )
    };
    text::<F>(dialect, rows, width, || {
        build(dialect, &dialect.params().rows(rows, width))
    })
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

/// `rows` cut into chunks whose sizes are powers of two up to [`WIDEST`], largest first
/// (37 rows: 32, 4, 1).
pub(crate) fn fixed<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let size = if rows.len() >= WIDEST {
            WIDEST
        } else {
            1 << (usize::BITS - 1 - rows.len().leading_zeros())
        };
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

/// Keys to read, cut into chunks of [`WIDEST`] and a last one padded up to the next power
/// of two by repeating its last key (37 keys: one chunk of 64). A read finds a key named
/// twice once (or, joined from a `VALUES` list, twice, which its caller keeps once), so a
/// read of up to 64 keys is one statement where [`fixed`] would take one per set bit of
/// the count (37 keys: 32, 4 and 1), each a round trip.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_cut_into_a_few_fixed_sizes_in_order() {
        let sizes = |n: usize| {
            let rows: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = fixed(&rows).collect();
            assert_eq!(chunks.concat(), rows, "every row once, in order");
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
        };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(37), [32, 4, 1]);
        assert_eq!(sizes(64), [64]);
        assert_eq!(sizes(130), [64, 64, 2]);
        assert!((1..600).all(|n| sizes(n).iter().all(|s| s.is_power_of_two() && *s <= WIDEST)));
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
