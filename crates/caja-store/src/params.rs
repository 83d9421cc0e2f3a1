//! Bind placeholders for statements built at run time (multi-row inserts, `IN` lists).
//!
//! PostgreSQL numbers its parameters (`$1`); SQLite takes them anonymous (`?`). SQLite
//! understands `$1` too, but resolves every named parameter by a linear search while
//! preparing and again while binding, so a 1,800-parameter batch insert spends most of its
//! time comparing parameter names. Anonymous `?` placeholders bind by position for free.

use crate::location::Engine;

/// Hands out placeholders in bind order.
pub(crate) struct Params {
    engine: Engine,
    next: usize,
}

impl Params {
    pub(crate) fn new(engine: Engine) -> Self {
        Self { engine, next: 0 }
    }

    /// Placeholders for whichever engine `conn` talks to.
    pub(crate) fn for_connection(conn: &sqlx::AnyConnection) -> Self {
        let engine = if conn.backend_name().eq_ignore_ascii_case("postgresql") {
            Engine::Postgres
        } else {
            Engine::Sqlite
        };
        Self::new(engine)
    }

    /// The next placeholder.
    pub(crate) fn next(&mut self) -> String {
        self.next += 1;
        match self.engine {
            Engine::Postgres => format!("${}", self.next),
            Engine::Sqlite => "?".to_owned(),
        }
    }

    /// `(p, p, …)` with `cols` placeholders.
    pub(crate) fn row(&mut self, cols: usize) -> String {
        let params: Vec<String> = (0..cols).map(|_| self.next()).collect();
        format!("({})", params.join(", "))
    }

    /// `(p, …), (p, …)`: `rows` rows of `cols` placeholders.
    pub(crate) fn rows(&mut self, rows: usize, cols: usize) -> String {
        let rows: Vec<String> = (0..rows).map(|_| self.row(cols)).collect();
        rows.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_numbers_its_parameters_and_sqlite_does_not() {
        assert_eq!(
            Params::new(Engine::Postgres).rows(2, 2),
            "($1, $2), ($3, $4)"
        );
        assert_eq!(Params::new(Engine::Sqlite).rows(2, 2), "(?, ?), (?, ?)");
        let mut p = Params::new(Engine::Postgres);
        assert_eq!(p.row(1), "($1)");
        assert_eq!(p.next(), "$2");
    }
}
