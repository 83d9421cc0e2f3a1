//! How many rows one statement carries. A multi-row statement's text depends only on its
//! row count, so cutting every row set into a few fixed sizes gives each statement at most
//! seven shapes, each prepared once per connection and kept, instead of a new shape (parsed
//! again, and crowding the statement cache) for almost every batch.

/// The most rows one statement carries.
pub(crate) const WIDEST: usize = 64;

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
}
