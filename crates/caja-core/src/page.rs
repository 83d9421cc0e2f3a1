//! Cursor pagination: one envelope and one limit rule for every list.

use crate::DomainError;

/// How many items one page holds: 1–200, 50 when the client does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    pub const DEFAULT: u32 = 50;
    pub const MAX: u32 = 200;

    pub fn parse(value: Option<i64>) -> Result<Self, DomainError> {
        match value {
            None => Ok(Self(Self::DEFAULT)),
            Some(n) if (1..=i64::from(Self::MAX)).contains(&n) => Ok(Self(n as u32)),
            Some(_) => Err(DomainError::invalid("limit", "must be between 1 and 200")),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// One page of a list and the cursor that continues it (`None` on the last page).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row, if present, only proves
    /// there is more, and the cursor is the last kept item's key.
    pub fn from_overfetch(mut rows: Vec<T>, limit: PageLimit, key: impl Fn(&T) -> String) -> Self {
        let limit = limit.get() as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more { rows.last().map(key) } else { None };
        Self {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_are_bounded() {
        assert_eq!(PageLimit::parse(None).unwrap().get(), 50);
        assert_eq!(PageLimit::parse(Some(200)).unwrap().get(), 200);
        assert!(PageLimit::parse(Some(0)).is_err());
        assert!(PageLimit::parse(Some(201)).is_err());
    }

    #[test]
    fn the_cursor_appears_only_when_more_rows_exist() {
        let limit = PageLimit::parse(Some(2)).unwrap();
        let page = Page::from_overfetch(vec![1, 2, 3], limit, |n| n.to_string());
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let last = Page::from_overfetch(vec![1, 2], limit, |n| n.to_string());
        assert_eq!(last.next_cursor, None);
    }
}
