//! The few calls of SQLite's C interface the writer's connection makes, on the SQLite
//! that sqlx links (libsqlite3-sys, bundled).
//!
//! Why not a wrapper crate: rusqlite copies every bound text (`SQLITE_TRANSIENT`) and
//! copies each statement's text again to look it up in its cache. Here a text is bound
//! where it lies (`SQLITE_STATIC`): the values outlive the statement's run, and the
//! bindings are cleared before they are dropped, so a kept statement never points at
//! freed memory. That is the whole of the unsafety, and it stays in this file.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::time::Duration;

use libsqlite3_sys as ffi;

use crate::sql::Value;

/// Most statements kept prepared; past it they are all finalized and prepared again as
/// used (the writer's shapes are a few hundred at most).
const PREPARED: usize = 512;

/// SQLite's error: its extended result code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) code: i32,
    pub(crate) message: String,
}

/// A value as read from a row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stored {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Stored {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Stored::Null => "null",
            Stored::Integer(_) => "an integer",
            Stored::Real(_) => "a real",
            Stored::Text(_) => "text",
            Stored::Blob(_) => "a blob",
        }
    }
}

/// One open connection and its prepared statements.
pub(crate) struct Connection {
    db: NonNull<ffi::sqlite3>,
    prepared: HashMap<Box<str>, Statement>,
}

// SAFETY: the connection is opened with SQLITE_OPEN_NOMUTEX ("multi-thread" mode), in which
// SQLite allows a connection to move between threads as long as no two use it at once.
// Every use takes `&mut self` or, for reads of its state, `&self` behind the writer's
// mutex, so no two threads ever use it at the same time.
unsafe impl Send for Connection {}

struct Statement {
    raw: NonNull<ffi::sqlite3_stmt>,
    /// Its result's column names, read once when prepared.
    names: Arc<[Box<str>]>,
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: `raw` came from a successful prepare and is finalized only here, once.
        unsafe {
            ffi::sqlite3_finalize(self.raw.as_ptr());
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Statements first: a connection is closed with none left open.
        self.prepared.clear();
        // SAFETY: `db` came from a successful open and is closed only here, once.
        unsafe {
            ffi::sqlite3_close(self.db.as_ptr());
        }
    }
}

impl Connection {
    /// Opens (creating if needed) the database file at `path`.
    pub(crate) fn open(path: &Path, busy_timeout: Duration) -> Result<Self, Failure> {
        let name = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Failure {
            code: ffi::SQLITE_CANTOPEN,
            message: format!("{} has a NUL byte in its name", path.display()),
        })?;
        let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE | ffi::SQLITE_OPEN_NOMUTEX;
        let mut db = ptr::null_mut();
        // SAFETY: `name` is NUL-terminated; `db` is written by SQLite.
        let rc = unsafe { ffi::sqlite3_open_v2(name.as_ptr(), &mut db, flags, ptr::null()) };
        let Some(db) = NonNull::new(db) else {
            return Err(Failure {
                code: rc,
                message: "SQLite could not allocate a connection".into(),
            });
        };
        // From here a failure closes it (Drop).
        let conn = Self {
            db,
            prepared: HashMap::new(),
        };
        if rc != ffi::SQLITE_OK {
            return Err(conn.failure());
        }
        let ms = c_int::try_from(busy_timeout.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: `db` is an open connection.
        unsafe {
            ffi::sqlite3_extended_result_codes(db.as_ptr(), 1);
            ffi::sqlite3_busy_timeout(db.as_ptr(), ms);
        }
        Ok(conn)
    }

    /// Runs `sql` (statements without parameters; rows they return are ignored).
    pub(crate) fn exec(&self, sql: &str) -> Result<(), Failure> {
        let text = CString::new(sql).map_err(|_| Failure {
            code: ffi::SQLITE_MISUSE,
            message: "a statement with a NUL byte".into(),
        })?;
        // SAFETY: `db` is open and `text` NUL-terminated; no callback, no message out.
        let rc = unsafe {
            ffi::sqlite3_exec(
                self.db.as_ptr(),
                text.as_ptr(),
                None,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(self.failure())
        }
    }

    /// Whether no transaction is open.
    pub(crate) fn is_autocommit(&self) -> bool {
        // SAFETY: `db` is open.
        unsafe { ffi::sqlite3_get_autocommit(self.db.as_ptr()) != 0 }
    }

    /// Runs `sql` with `args`, handing each row's values to `row` (with the column names),
    /// and returns how many rows it changed.
    pub(crate) fn run(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
        mut row: impl FnMut(&Arc<[Box<str>]>, Vec<Stored>),
    ) -> Result<u64, Failure> {
        let db = self.db;
        if self.prepared.len() >= PREPARED && !self.prepared.contains_key(sql) {
            self.prepared.clear();
        }
        let stmt = match self.prepared.get(sql) {
            Some(stmt) => stmt,
            None => {
                let stmt = self.prepare(sql)?;
                self.prepared.entry(sql.into()).or_insert(stmt)
            }
        };
        let raw = stmt.raw.as_ptr();
        // The values stay bound only while `args` is borrowed: cleared on every way out.
        let bound = Bound(raw);
        // SAFETY: `raw` is a prepared statement of this connection.
        let wanted = unsafe { ffi::sqlite3_bind_parameter_count(raw) };
        if usize::try_from(wanted).ok() != Some(args.len()) {
            return Err(Failure {
                code: ffi::SQLITE_RANGE,
                message: format!("{} values for {wanted} parameters", args.len()),
            });
        }
        for (i, value) in args.iter().enumerate() {
            let at = c_int::try_from(i + 1).unwrap_or(c_int::MAX);
            // SAFETY: `raw` is prepared; a text is bound where it lies (SQLITE_STATIC) and
            // stays there, borrowed by `args`, until `bound` clears it below.
            let rc = unsafe {
                match value {
                    Value::Int(v) => ffi::sqlite3_bind_int64(raw, at, *v),
                    Value::Text(text) => {
                        let len = c_int::try_from(text.len()).map_err(|_| Failure {
                            code: ffi::SQLITE_TOOBIG,
                            message: "a text too long to bind".into(),
                        })?;
                        ffi::sqlite3_bind_text(
                            raw,
                            at,
                            text.as_ptr().cast::<c_char>(),
                            len,
                            ffi::SQLITE_STATIC(),
                        )
                    }
                    Value::NullInt | Value::NullText => ffi::sqlite3_bind_null(raw, at),
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(self.failure_of(db));
            }
        }
        let names = stmt.names.clone();
        loop {
            // SAFETY: `raw` is prepared and every parameter bound.
            match unsafe { ffi::sqlite3_step(raw) } {
                ffi::SQLITE_ROW => {
                    let mut values = Vec::with_capacity(names.len());
                    for i in 0..names.len() {
                        values.push(column(raw, i)?);
                    }
                    row(&names, values);
                }
                ffi::SQLITE_DONE => break,
                _ => {
                    // The step's error is the connection's until the statement is reset.
                    let failure = self.failure_of(db);
                    drop(bound);
                    return Err(failure);
                }
            }
        }
        drop(bound);
        // SAFETY: `db` is open.
        let changed = unsafe { ffi::sqlite3_changes64(db.as_ptr()) };
        Ok(u64::try_from(changed).unwrap_or(0))
    }

    fn prepare(&self, sql: &str) -> Result<Statement, Failure> {
        let len = c_int::try_from(sql.len()).map_err(|_| Failure {
            code: ffi::SQLITE_TOOBIG,
            message: "a statement too long to prepare".into(),
        })?;
        let mut raw = ptr::null_mut();
        // SAFETY: `db` is open; `sql` is `len` bytes long (no NUL needed with a length).
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                self.db.as_ptr(),
                sql.as_ptr().cast::<c_char>(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut raw,
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.failure());
        }
        let Some(raw) = NonNull::new(raw) else {
            return Err(Failure {
                code: ffi::SQLITE_MISUSE,
                message: "an empty statement".into(),
            });
        };
        // SAFETY: `raw` is prepared; each name is a NUL-terminated string SQLite owns until
        // the statement is finalized, copied here at once.
        let names: Arc<[Box<str>]> = unsafe {
            let count = ffi::sqlite3_column_count(raw.as_ptr());
            (0..count)
                .map(|i| {
                    let name = ffi::sqlite3_column_name(raw.as_ptr(), i);
                    if name.is_null() {
                        Box::from("")
                    } else {
                        Box::from(CStr::from_ptr(name).to_string_lossy().as_ref())
                    }
                })
                .collect()
        };
        Ok(Statement { raw, names })
    }

    fn failure(&self) -> Failure {
        self.failure_of(self.db)
    }

    fn failure_of(&self, db: NonNull<ffi::sqlite3>) -> Failure {
        // SAFETY: `db` is open; the message is NUL-terminated and copied at once.
        unsafe {
            let code = ffi::sqlite3_extended_errcode(db.as_ptr());
            let message = ffi::sqlite3_errmsg(db.as_ptr());
            let message = if message.is_null() {
                String::new()
            } else {
                CStr::from_ptr(message).to_string_lossy().into_owned()
            };
            Failure { code, message }
        }
    }
}

/// Resets a statement and clears its bindings when dropped, so that a kept statement
/// points at no value of a run that has ended.
struct Bound(*mut ffi::sqlite3_stmt);

impl Drop for Bound {
    fn drop(&mut self) {
        // SAFETY: the statement is prepared and outlives this guard (it is kept by the
        // connection, which is borrowed for the guard's whole life).
        unsafe {
            ffi::sqlite3_reset(self.0);
            ffi::sqlite3_clear_bindings(self.0);
        }
    }
}

/// Column `i` of the row `raw` stands on.
fn column(raw: *mut ffi::sqlite3_stmt, i: usize) -> Result<Stored, Failure> {
    let i = c_int::try_from(i).unwrap_or(c_int::MAX);
    // SAFETY: `raw` stands on a row (its step returned SQLITE_ROW) and `i` is one of its
    // columns; a text or blob pointer is valid for the length SQLite reports, and copied
    // at once.
    unsafe {
        Ok(match ffi::sqlite3_column_type(raw, i) {
            ffi::SQLITE_INTEGER => Stored::Integer(ffi::sqlite3_column_int64(raw, i)),
            ffi::SQLITE_FLOAT => Stored::Real(ffi::sqlite3_column_double(raw, i)),
            ffi::SQLITE_TEXT => {
                let text = ffi::sqlite3_column_text(raw, i);
                let len = usize::try_from(ffi::sqlite3_column_bytes(raw, i)).unwrap_or(0);
                let bytes = if text.is_null() || len == 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(text, len)
                };
                Stored::Text(String::from_utf8(bytes.to_vec()).map_err(|_| Failure {
                    code: ffi::SQLITE_MISMATCH,
                    message: "a text that is not UTF-8".into(),
                })?)
            }
            ffi::SQLITE_BLOB => {
                let blob = ffi::sqlite3_column_blob(raw, i).cast::<u8>();
                let len = usize::try_from(ffi::sqlite3_column_bytes(raw, i)).unwrap_or(0);
                Stored::Blob(if blob.is_null() || len == 0 {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(blob, len).to_vec()
                })
            }
            _ => Stored::Null,
        })
    }
}
