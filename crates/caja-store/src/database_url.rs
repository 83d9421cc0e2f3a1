//! Where the database is: parsed once from a URL, and the engine follows from the scheme.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        })
    }
}

/// A database location: an SQLite file or a PostgreSQL URL. The URL may hold a password,
/// so `Display` and `Debug` show it with the password masked.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    Sqlite(PathBuf),
    Postgres(String),
}

#[derive(Debug, Error)]
#[error("database URL must start with sqlite:// or postgres:// (got `{0}`)")]
pub struct BadDatabaseUrl(String);

impl DatabaseLocation {
    pub fn parse(url: &str) -> Result<Self, BadDatabaseUrl> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() {
                return Err(BadDatabaseUrl(url.to_owned()));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        Err(BadDatabaseUrl(redact(url)))
    }

    pub fn engine(&self) -> Engine {
        match self {
            Self::Sqlite(_) => Engine::Sqlite,
            Self::Postgres(_) => Engine::Postgres,
        }
    }

    /// The URL sqlx connects with. Never log this: it may hold a password.
    pub(crate) fn connect_url(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}?mode=rwc", path.display()),
            // Named, so `pg_stat_activity` (and `caja bench --database-url`) can tell
            // caja's backends from everyone else's.
            Self::Postgres(url) if url.contains("application_name=") => url.clone(),
            Self::Postgres(url) => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}application_name=caja")
            }
        }
    }
}

impl DatabaseLocation {
    /// Bytes free for an unprivileged writer on the disk that holds an SQLite database;
    /// `None` for PostgreSQL (its server watches its own disk) or when the system cannot
    /// say.
    pub fn free_space(&self) -> Option<u64> {
        let Self::Sqlite(path) = self else {
            return None;
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        free_space(dir)
    }
}

#[cfg(unix)]
fn free_space(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a valid NUL-terminated path and `stat` points to writable memory of
    // the right type; statvfs only writes into it.
    let rc = unsafe { libc::statvfs(c.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let stat = unsafe { stat.assume_init() };
    // The fields are narrower than u64 on some platforms.
    #[allow(clippy::unnecessary_cast)]
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(not(unix))]
fn free_space(_: &std::path::Path) -> Option<u64> {
    None
}

/// The URL with any password masked: in the user info (`user:pass@`) and in a
/// `password=` query parameter.
fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &base[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &base[..scheme + 3], &base[at..]),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    match query {
        None => base,
        Some(q) => {
            let params: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
    }
}

impl fmt::Display for DatabaseLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for DatabaseLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_chooses_the_engine() {
        let l = DatabaseLocation::parse("sqlite://data/caja.db").unwrap();
        assert_eq!(l, DatabaseLocation::Sqlite("data/caja.db".into()));
        let l = DatabaseLocation::parse("postgres://u@h/db").unwrap();
        assert_eq!(l.engine(), Engine::Postgres);
        assert!(DatabaseLocation::parse("mysql://h/db").is_err());
        assert!(DatabaseLocation::parse("sqlite://").is_err());
    }

    #[test]
    fn passwords_never_show() {
        let l = DatabaseLocation::parse("postgres://caja:s3cret@db:5432/caja").unwrap();
        assert_eq!(l.to_string(), "postgres://caja:***@db:5432/caja");
        assert!(!format!("{l:?}").contains("s3cret"));
        let e = DatabaseLocation::parse("mysql://u:s3cret@h/db").unwrap_err();
        assert!(!e.to_string().contains("s3cret"));
        let q = DatabaseLocation::parse("postgres://caja@db/caja?sslmode=require&password=s3cret")
            .unwrap();
        assert_eq!(
            q.to_string(),
            "postgres://caja@db/caja?sslmode=require&password=***"
        );
    }
}
