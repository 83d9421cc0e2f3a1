//! Typed settings, layered: defaults, then `caja.toml`, then `CAJA_*` environment
//! variables, then flags (clap reads flag-or-env; the file fills what both leave empty).
//!
//! Every setting is listed in the README. A bad value stops start-up with one line naming
//! the setting and what to fix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use caja_core::auth::ApiKeySecret;
use caja_core::money::Currency;
use caja_core::order::OrderLimits;
use caja_core::rate::RateLimit;
use caja_server::{ConnectionLimits, ServerConfig};
use caja_store::{DatabaseLocation, StoreOptions};
use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Error)]
pub enum SettingsError {
    #[error("invalid setting `{name}`: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("cannot use settings file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

fn invalid(name: &'static str, reason: impl ToString) -> SettingsError {
    SettingsError::Invalid {
        name,
        reason: reason.to_string(),
    }
}

/// How every database-touching subcommand finds the database.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArgs {
    /// Settings file (TOML). Default: ./caja.toml if it exists.
    #[arg(long, global = true, env = "CAJA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for caja's files; the SQLite database lives here unless --database-url
    /// names another. Default: ./caja-data
    #[arg(long, global = true, env = "CAJA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
    /// Default: sqlite://DATA_DIR/caja.db
    #[arg(
        long,
        global = true,
        env = "CAJA_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Most database connections to keep open. Default: 8
    #[arg(long, global = true, env = "CAJA_DB_MAX_CONNECTIONS", value_name = "N")]
    pub db_max_connections: Option<u32>,
    /// Seconds to wait for another migrator to finish before giving up. Default: 60
    #[arg(
        long,
        global = true,
        env = "CAJA_MIGRATE_LOCK_TIMEOUT",
        value_name = "SECS"
    )]
    pub migrate_lock_timeout: Option<u64>,
}

/// The settings file. Unknown keys are refused, so a typo cannot silently do nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub db_max_connections: Option<u32>,
    pub migrate_lock_timeout: Option<u64>,
    pub currency: Option<String>,
    pub admin_key: Option<String>,
    pub body_limit: Option<usize>,
    pub request_timeout: Option<u64>,
    pub shutdown_timeout: Option<u64>,
    pub cors_origins: Option<Vec<String>>,
    pub anonymous_rate_limit: Option<String>,
    pub key_rate_limit: Option<String>,
    pub order_ttl: Option<u64>,
    pub hold_ttl: Option<u64>,
    pub idempotency_wait: Option<u64>,
    pub idempotency_retention: Option<u64>,
    pub order_max_quantity: Option<i64>,
    pub order_max_lines: Option<usize>,
    pub tab_rate: Option<i64>,
    pub tab_rounding: Option<String>,
    pub write_batching: Option<bool>,
    pub max_batch: Option<usize>,
    pub changes_retention: Option<u64>,
    pub stream_buffer: Option<usize>,
    pub stream_heartbeat: Option<u64>,
    pub header_read_timeout: Option<u64>,
    pub max_connections: Option<usize>,
    pub log_format: Option<LogFormat>,
    pub mercadopago_access_token: Option<String>,
    pub mercadopago_webhook_secret: Option<String>,
    pub mercadopago_api_url: Option<String>,
    pub public_url: Option<String>,
    pub provider_timeout: Option<u64>,
    pub webhook_lease: Option<u64>,
    pub admission_keys: Option<Vec<String>>,
}

impl FileSettings {
    fn load(explicit: Option<&Path>) -> Result<Self, SettingsError> {
        let default = Path::new("caja.toml");
        let path = match explicit {
            Some(p) => p,
            None if default.is_file() => default,
            None => return Ok(Self::default()),
        };
        let file_error = |reason: String| SettingsError::File {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        toml::from_str(&text).map_err(|e| file_error(e.message().to_owned()))
    }
}

const HOUR: u64 = 60 * 60;
const DAY: u64 = 24 * HOUR;
const YEAR: u64 = 366 * DAY;

/// A duration setting in seconds, its default, and the range it must fall in: every
/// duration has one, so no setting can overflow a timestamp or a timer later.
fn secs(
    name: &'static str,
    value: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, SettingsError> {
    let n = value.unwrap_or(default);
    if range.contains(&n) {
        Ok(Duration::from_secs(n))
    } else {
        Err(invalid(
            name,
            format!(
                "must be between {} and {} seconds (got {n})",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// Descriptors kept back from connections: the database's, the log, files, listeners.
const RESERVED_DESCRIPTORS: usize = 64;

/// The process's soft limit on open files, where the system says (Linux).
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// `max_connections`: what was asked, or what the descriptor limit allows; never more than
/// the limit allows, so a flood of connections can never leave the server without a
/// descriptor for its database or its log.
fn max_connections(
    asked: Option<usize>,
    open_files: Option<usize>,
    db_connections: usize,
) -> Result<usize, SettingsError> {
    let allowed = open_files.map(|n| n.saturating_sub(RESERVED_DESCRIPTORS + db_connections));
    let n = match (asked, allowed) {
        (Some(n), _) => n,
        (None, Some(allowed)) => allowed.min(10_000),
        (None, None) => 10_000,
    };
    if !(16..=1_000_000).contains(&n) {
        return Err(invalid(
            "max_connections",
            format!("must be between 16 and 1000000 (got {n}; raise `ulimit -n` if it came from the descriptor limit)"),
        ));
    }
    if let (Some(allowed), Some(limit)) = (allowed, open_files) {
        if n > allowed {
            return Err(invalid(
                "max_connections",
                format!("{n} needs more file descriptors than this process may open ({limit}, of which {} are kept for the database and files): raise `ulimit -n` or lower it", RESERVED_DESCRIPTORS + db_connections),
            ));
        }
    }
    Ok(n)
}

/// Where the database is and how to talk to it.
#[derive(Debug, Clone)]
pub struct DbSettings {
    pub location: DatabaseLocation,
    /// Where caja keeps its files (the SQLite database by default, backups).
    pub data_dir: PathBuf,
    pub store: StoreOptions,
    pub lock_wait: Duration,
}

impl DbArgs {
    pub fn resolve(&self) -> Result<(DbSettings, FileSettings), SettingsError> {
        let file = FileSettings::load(self.config.as_deref())?;
        let data_dir = self
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("caja-data"));
        let url = self
            .database_url
            .clone()
            .or_else(|| file.database_url.clone());
        let location = match url {
            Some(url) => DatabaseLocation::parse(&url).map_err(|e| invalid("database_url", e))?,
            None => DatabaseLocation::Sqlite(data_dir.join("caja.db")),
        };
        let max = self
            .db_max_connections
            .or(file.db_max_connections)
            .unwrap_or(8);
        if !(1..=1000).contains(&max) {
            return Err(invalid("db_max_connections", "must be between 1 and 1000"));
        }
        let lock_wait = secs(
            "migrate_lock_timeout",
            self.migrate_lock_timeout.or(file.migrate_lock_timeout),
            60,
            0..=DAY,
        )?;
        let db = DbSettings {
            location,
            data_dir,
            store: StoreOptions {
                max_connections: max,
                ..StoreOptions::default()
            },
            lock_wait,
        };
        Ok((db, file))
    }
}

/// Flags of `caja serve` beyond the database ones.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeFlags {
    /// Address to listen on. Default: 127.0.0.1:8080
    #[arg(long, env = "CAJA_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// The store's ISO 4217 currency. Default: MXN
    #[arg(long, env = "CAJA_CURRENCY", value_name = "CODE")]
    pub currency: Option<String>,
    /// The first admin key, used only when the database has none yet (≥ 32 characters).
    /// Default: a generated key, printed once.
    #[arg(
        long,
        env = "CAJA_ADMIN_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub admin_key: Option<String>,
    /// Largest request body in bytes. Default: 1048576 (1 MiB)
    #[arg(long, env = "CAJA_BODY_LIMIT", value_name = "BYTES")]
    pub body_limit: Option<usize>,
    /// Seconds a request may run before it is answered 503. Default: 30
    #[arg(long, env = "CAJA_REQUEST_TIMEOUT", value_name = "SECS")]
    pub request_timeout: Option<u64>,
    /// Seconds to let in-flight requests finish on SIGINT/SIGTERM. Default: 10
    #[arg(long, env = "CAJA_SHUTDOWN_TIMEOUT", value_name = "SECS")]
    pub shutdown_timeout: Option<u64>,
    /// Origins allowed by CORS, comma-separated. Default: none
    #[arg(
        long,
        env = "CAJA_CORS_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Option<Vec<String>>,
    /// Rate per client IP for requests without a valid key (`N/s` or `N/s:BURST`).
    /// Default: 20/s:40
    #[arg(long, env = "CAJA_ANONYMOUS_RATE_LIMIT", value_name = "RATE")]
    pub anonymous_rate_limit: Option<String>,
    /// Rate for every key without one of its own. Default: unlimited
    #[arg(long, env = "CAJA_KEY_RATE_LIMIT", value_name = "RATE")]
    pub key_rate_limit: Option<String>,
    /// Seconds an unpaid order holds its stock before it expires. Default: 900
    #[arg(long, env = "CAJA_ORDER_TTL", value_name = "SECS")]
    pub order_ttl: Option<u64>,
    /// Seconds a box-office hold keeps its places before they go back. Default: 600
    #[arg(long, env = "CAJA_HOLD_TTL", value_name = "SECS")]
    pub hold_ttl: Option<u64>,
    /// Seconds a duplicate request waits for the first with its key. Default: 10
    #[arg(long, env = "CAJA_IDEMPOTENCY_WAIT", value_name = "SECS")]
    pub idempotency_wait: Option<u64>,
    /// Seconds idempotency keys are kept (at least a day). Default: 86400
    #[arg(long, env = "CAJA_IDEMPOTENCY_RETENTION", value_name = "SECS")]
    pub idempotency_retention: Option<u64>,
    /// Most units of one product in one order. Default: 1000
    #[arg(long, env = "CAJA_ORDER_MAX_QUANTITY", value_name = "N")]
    pub order_max_quantity: Option<i64>,
    /// Most lines in one order. Default: 100
    #[arg(long, env = "CAJA_ORDER_MAX_LINES", value_name = "N")]
    pub order_max_lines: Option<usize>,
    /// A new tab's hourly rate in minor units when it names none (0: tabs bill no time).
    /// Default: 0
    #[arg(long, env = "CAJA_TAB_RATE", value_name = "AMOUNT")]
    pub tab_rate: Option<i64>,
    /// A new tab's rounding when it names none, as `UNIT/MINIMUM/GRACE` in minutes: past
    /// the grace, time is billed in whole units, at least the minimum. Default: 1/0/0
    #[arg(long, env = "CAJA_TAB_ROUNDING", value_name = "U/M/G")]
    pub tab_rounding: Option<String>,
    /// Commit concurrent checkouts together (group commit); `false` gives one transaction
    /// per checkout, the baseline benchmarks compare with. Default: true
    #[arg(long, env = "CAJA_WRITE_BATCHING", value_name = "BOOL")]
    pub write_batching: Option<bool>,
    /// Most checkouts committed in one batch. Default: 256
    #[arg(long, env = "CAJA_MAX_BATCH", value_name = "N")]
    pub max_batch: Option<usize>,
    /// Seconds change-feed events are kept for subscribers to catch up. Default: 604800
    #[arg(long, env = "CAJA_CHANGES_RETENTION", value_name = "SECS")]
    pub changes_retention: Option<u64>,
    /// Events a live subscriber may fall behind before it is cut off. Default: 4096
    #[arg(long, env = "CAJA_STREAM_BUFFER", value_name = "N")]
    pub stream_buffer: Option<usize>,
    /// Seconds between heartbeats on idle live streams. Default: 15
    #[arg(long, env = "CAJA_STREAM_HEARTBEAT", value_name = "SECS")]
    pub stream_heartbeat: Option<u64>,
    /// Seconds a connection may take to send a request head, and may sit idle between
    /// requests. Default: 5
    #[arg(long, env = "CAJA_HEADER_READ_TIMEOUT", value_name = "SECS")]
    pub header_read_timeout: Option<u64>,
    /// Most connections open at once, live streams included. Default: what the process's
    /// file-descriptor limit allows (less a reserve for the database and files), at most 10000
    #[arg(long, env = "CAJA_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// MercadoPago access token; with the webhook secret, turns on provider payments.
    /// Default: none (no provider)
    #[arg(
        long,
        env = "CAJA_MERCADOPAGO_ACCESS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub mercadopago_access_token: Option<String>,
    /// The secret MercadoPago signs webhooks with. Default: none
    #[arg(
        long,
        env = "CAJA_MERCADOPAGO_WEBHOOK_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub mercadopago_webhook_secret: Option<String>,
    /// MercadoPago's API, or a `caja dev-provider`. Default: https://api.mercadopago.com
    #[arg(long, env = "CAJA_MERCADOPAGO_API_URL", value_name = "URL")]
    pub mercadopago_api_url: Option<String>,
    /// This server's address as the provider reaches it (for webhook URLs). Default: none
    #[arg(long, env = "CAJA_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Seconds one call to the payment provider may take. Default: 10
    #[arg(long, env = "CAJA_PROVIDER_TIMEOUT", value_name = "SECS")]
    pub provider_timeout: Option<u64>,
    /// Seconds a replica holds a webhook subscription without renewing: after a crash,
    /// another replica (or the restarted one) takes its deliveries over after this. Default: 60
    #[arg(long, env = "CAJA_WEBHOOK_LEASE", value_name = "SECS")]
    pub webhook_lease: Option<u64>,
    /// Keys that sign waiting-room admissions, comma-separated: the first signs, all verify
    /// (rotate by putting the new key first). Every replica needs the same. Default: a
    /// random key for this process
    #[arg(
        long,
        env = "CAJA_ADMISSION_KEYS",
        value_name = "KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub admission_keys: Option<Vec<String>>,
}

/// Everything `caja serve` runs with.
#[derive(Debug)]
pub struct ServeSettings {
    pub db: DbSettings,
    pub listen: SocketAddr,
    pub server: ServerConfig,
    pub admin_key: Option<ApiKeySecret>,
    pub shutdown_timeout: Duration,
    pub log_format: LogFormat,
}

impl ServeFlags {
    pub fn resolve(
        &self,
        db: &DbArgs,
        log_format: Option<LogFormat>,
    ) -> Result<ServeSettings, SettingsError> {
        let (db, file) = db.resolve()?;
        let mercadopago = self.mercadopago(&file)?;
        let webhook_lease = secs(
            "webhook_lease",
            self.webhook_lease.or(file.webhook_lease),
            60,
            1..=HOUR,
        )?;
        let listen = self
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!("`{listen}` is not an address like 127.0.0.1:8080"),
            )
        })?;
        let currency = self
            .currency
            .clone()
            .or(file.currency)
            .unwrap_or_else(|| "MXN".into());
        let currency =
            Currency::parse("currency", &currency).map_err(|e| invalid("currency", e))?;
        let admin_key = self
            .admin_key
            .clone()
            .or(file.admin_key)
            .map(|k| ApiKeySecret::provided(&k))
            .transpose()
            .map_err(|e| invalid("admin_key", e))?;
        let body_limit = self.body_limit.or(file.body_limit).unwrap_or(1024 * 1024);
        if !(1..=64 * 1024 * 1024).contains(&body_limit) {
            return Err(invalid(
                "body_limit",
                "must be between 1 and 67108864 bytes (64 MiB)",
            ));
        }
        let request_timeout = secs(
            "request_timeout",
            self.request_timeout.or(file.request_timeout),
            30,
            1..=HOUR,
        )?;
        let shutdown_timeout = secs(
            "shutdown_timeout",
            self.shutdown_timeout.or(file.shutdown_timeout),
            10,
            1..=HOUR,
        )?;
        let cors_origins = self
            .cors_origins
            .clone()
            .or(file.cors_origins)
            .unwrap_or_default()
            .into_iter()
            .filter(|o| !o.trim().is_empty())
            .map(|o| {
                let o = o.trim();
                if !(o.starts_with("http://") || o.starts_with("https://")) {
                    return Err(invalid(
                        "cors_origins",
                        format!("`{o}` is not an origin like https://shop.example"),
                    ));
                }
                o.parse()
                    .map_err(|_| invalid("cors_origins", format!("`{o}` is not a valid origin")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rate = |name: &'static str, v: Option<String>| {
            v.map(|s| s.parse::<RateLimit>().map_err(|e| invalid(name, e)))
                .transpose()
        };
        let anonymous_rate_limit = rate(
            "anonymous_rate_limit",
            self.anonymous_rate_limit
                .clone()
                .or(file.anonymous_rate_limit),
        )?
        .unwrap_or(RateLimit {
            per_second: 20,
            burst: 40,
        });
        let key_rate_limit = rate(
            "key_rate_limit",
            self.key_rate_limit.clone().or(file.key_rate_limit),
        )?;
        let order_ttl = secs(
            "order_ttl",
            self.order_ttl.or(file.order_ttl),
            15 * 60,
            1..=30 * DAY,
        )?;
        let hold_ttl = secs(
            "hold_ttl",
            self.hold_ttl.or(file.hold_ttl),
            10 * 60,
            10..=DAY,
        )?;
        let idempotency_wait = secs(
            "idempotency_wait",
            self.idempotency_wait.or(file.idempotency_wait),
            10,
            1..=300,
        )?;
        // At least a day: clients may retry for that long.
        let idempotency_retention = secs(
            "idempotency_retention",
            self.idempotency_retention.or(file.idempotency_retention),
            DAY,
            DAY..=YEAR,
        )?;
        let ceiling = OrderLimits::CEILING;
        let order_limits = OrderLimits {
            max_quantity: self
                .order_max_quantity
                .or(file.order_max_quantity)
                .unwrap_or(OrderLimits::default().max_quantity),
            max_lines: self
                .order_max_lines
                .or(file.order_max_lines)
                .unwrap_or(OrderLimits::default().max_lines),
        };
        if !(1..=ceiling.max_quantity).contains(&order_limits.max_quantity) {
            return Err(invalid(
                "order_max_quantity",
                "must be between 1 and 1000000",
            ));
        }
        if !(1..=ceiling.max_lines).contains(&order_limits.max_lines) {
            return Err(invalid("order_max_lines", "must be between 1 and 1000"));
        }
        let tab_rate = self.tab_rate.or(file.tab_rate).unwrap_or(0);
        if !(0..=caja_core::money::MAX_AMOUNT).contains(&tab_rate) {
            return Err(invalid(
                "tab_rate",
                "must be between 0 and 1000000000000 minor units",
            ));
        }
        let tab_rounding = match self.tab_rounding.clone().or(file.tab_rounding) {
            None => caja_core::tab::Rounding::default(),
            Some(raw) => parse_rounding(&raw)
                .ok_or_else(|| {
                    caja_core::DomainError::invalid(
                        "tab_rounding",
                        "must be UNIT/MINIMUM/GRACE in minutes, e.g. 15/60/5",
                    )
                })
                .and_then(|(u, m, g)| caja_core::tab::Rounding::parse(u, m, g))
                .map_err(|e| invalid("tab_rounding", e))?,
        };
        let max_batch = self.max_batch.or(file.max_batch).unwrap_or(256);
        if !(1..=4096).contains(&max_batch) {
            return Err(invalid("max_batch", "must be between 1 and 4096"));
        }
        let changes_retention = secs(
            "changes_retention",
            self.changes_retention.or(file.changes_retention),
            7 * DAY,
            60..=YEAR,
        )?;
        let stream_buffer = self.stream_buffer.or(file.stream_buffer).unwrap_or(4096);
        if !(1024..=1_000_000).contains(&stream_buffer) {
            return Err(invalid("stream_buffer", "must be between 1024 and 1000000"));
        }
        let stream_heartbeat = secs(
            "stream_heartbeat",
            self.stream_heartbeat.or(file.stream_heartbeat),
            15,
            1..=HOUR,
        )?;
        let header_read_timeout = secs(
            "header_read_timeout",
            self.header_read_timeout.or(file.header_read_timeout),
            5,
            1..=300,
        )?;
        let max_connections = max_connections(
            self.max_connections.or(file.max_connections),
            open_files_limit(),
            db.store.max_connections as usize,
        )?;
        Ok(ServeSettings {
            db,
            listen,
            server: ServerConfig {
                currency,
                body_limit,
                request_timeout,
                cors_origins,
                anonymous_rate_limit,
                key_rate_limit,
                order_ttl,
                hold_ttl,
                idempotency_wait,
                idempotency_retention,
                order_limits,
                tab_rate,
                tab_rounding,
                mercadopago,
                admission_keys: admission_keys(
                    self.admission_keys.clone().or(file.admission_keys.clone()),
                )?,
                webhooks: caja_server::dispatch::DispatchConfig {
                    lease: webhook_lease,
                    ..Default::default()
                },
                write_batching: self.write_batching.or(file.write_batching).unwrap_or(true),
                max_batch,
                changes_retention,
                stream_buffer,
                stream_heartbeat,
                connections: ConnectionLimits {
                    header_read_timeout,
                    max_connections,
                },
                ..ServerConfig::default()
            },
            admin_key,
            shutdown_timeout,
            log_format: log_format.or(file.log_format).unwrap_or_default(),
        })
    }
}

impl ServeFlags {
    /// MercadoPago's settings: both credentials or neither.
    fn mercadopago(
        &self,
        file: &FileSettings,
    ) -> Result<Option<caja_server::payments::MercadoPagoConfig>, SettingsError> {
        use caja_server::payments::{CallPolicy, MercadoPagoConfig, Secret};
        let token = self
            .mercadopago_access_token
            .clone()
            .or(file.mercadopago_access_token.clone());
        let secret = self
            .mercadopago_webhook_secret
            .clone()
            .or(file.mercadopago_webhook_secret.clone());
        let (token, secret) =
            match (token, secret) {
                (None, None) => return Ok(None),
                (Some(t), Some(s)) if !t.is_empty() && !s.is_empty() => (t, s),
                _ => return Err(invalid(
                    "mercadopago_access_token",
                    "set both mercadopago_access_token and mercadopago_webhook_secret, or neither",
                )),
            };
        let api_url = self
            .mercadopago_api_url
            .clone()
            .or(file.mercadopago_api_url.clone())
            .unwrap_or_else(|| "https://api.mercadopago.com".into());
        let http = |name: &'static str, url: &str| {
            if url.starts_with("https://") || url.starts_with("http://") {
                Ok(())
            } else {
                Err(invalid(name, "must be an http:// or https:// URL"))
            }
        };
        http("mercadopago_api_url", &api_url)?;
        let public_url = self.public_url.clone().or(file.public_url.clone());
        if let Some(url) = &public_url {
            http("public_url", url)?;
        }
        let timeout = secs(
            "provider_timeout",
            self.provider_timeout.or(file.provider_timeout),
            10,
            1..=120,
        )?;
        Ok(Some(MercadoPagoConfig {
            api_url,
            access_token: Secret::new(token),
            webhook_secret: Secret::new(secret),
            webhook_tolerance: Duration::from_secs(5 * 60),
            public_url,
            timeout,
            calls: CallPolicy::default(),
        }))
    }
}

/// Admission keys: each at least 32 characters.
fn admission_keys(
    keys: Option<Vec<String>>,
) -> Result<Vec<caja_server::payments::Secret>, SettingsError> {
    let keys = keys.unwrap_or_default();
    if keys.iter().any(|k| k.trim().len() < 32) {
        return Err(invalid(
            "admission_keys",
            "each key must be at least 32 characters",
        ));
    }
    Ok(keys
        .into_iter()
        .map(|k| caja_server::payments::Secret::new(k.trim()))
        .collect())
}

/// `UNIT/MINIMUM/GRACE`, three whole numbers of minutes.
fn parse_rounding(raw: &str) -> Option<(i64, i64, i64)> {
    let mut parts = raw.split('/').map(|p| p.trim().parse::<i64>().ok());
    let rounding = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(rounding)
}

/// The log format for subcommands other than `serve`.
pub fn log_format(flag: Option<LogFormat>, file: &FileSettings) -> LogFormat {
    flag.or(file.log_format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(dir: &Path) -> DbArgs {
        DbArgs {
            config: Some(dir.join("caja.toml")).filter(|p| p.is_file()),
            data_dir: None,
            database_url: None,
            db_max_connections: None,
            migrate_lock_timeout: None,
        }
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("caja.toml"),
            "listen = \"127.0.0.1:9000\"\ncurrency = \"USD\"\nbody_limit = 10\n",
        )
        .unwrap();
        let flags = ServeFlags {
            currency: Some("EUR".into()),
            ..Default::default()
        };
        let s = flags.resolve(&db(dir.path()), None).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(s.server.currency.as_str(), "EUR");
        assert_eq!(s.server.body_limit, 10);
        assert_eq!(s.server.request_timeout, Duration::from_secs(30));
        assert!(
            matches!(s.db.location, DatabaseLocation::Sqlite(ref p) if p.ends_with("caja-data/caja.db"))
        );
    }

    #[test]
    fn a_bad_setting_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let flags = ServeFlags {
            currency: Some("pesos".into()),
            ..Default::default()
        };
        let err = flags.resolve(&db(dir.path()), None).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid setting `currency`"),
            "{err}"
        );
        let flags = ServeFlags {
            key_rate_limit: Some("fast".into()),
            ..Default::default()
        };
        let err = flags.resolve(&db(dir.path()), None).unwrap_err();
        assert!(err.to_string().contains("key_rate_limit"), "{err}");
    }

    #[test]
    fn every_duration_and_size_is_refused_outside_its_range_and_accepted_at_its_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let resolve = |flags: ServeFlags| flags.resolve(&db(dir.path()), None);
        type Set = fn(&mut ServeFlags, u64);
        let cases: [(&str, Set, u64, u64); 8] = [
            ("order_ttl", |f, v| f.order_ttl = Some(v), 1, 30 * DAY),
            (
                "request_timeout",
                |f, v| f.request_timeout = Some(v),
                1,
                HOUR,
            ),
            (
                "shutdown_timeout",
                |f, v| f.shutdown_timeout = Some(v),
                1,
                HOUR,
            ),
            (
                "idempotency_wait",
                |f, v| f.idempotency_wait = Some(v),
                1,
                300,
            ),
            (
                "idempotency_retention",
                |f, v| f.idempotency_retention = Some(v),
                DAY,
                YEAR,
            ),
            (
                "changes_retention",
                |f, v| f.changes_retention = Some(v),
                60,
                YEAR,
            ),
            (
                "stream_heartbeat",
                |f, v| f.stream_heartbeat = Some(v),
                1,
                HOUR,
            ),
            (
                "body_limit",
                |f, v| f.body_limit = Some(v as usize),
                1,
                64 * 1024 * 1024,
            ),
        ];
        for (name, set, low, high) in cases {
            for ok in [low, high] {
                let mut flags = ServeFlags::default();
                set(&mut flags, ok);
                assert!(resolve(flags).is_ok(), "{name} = {ok}");
            }
            for bad in [low - 1, high + 1, 9_999_999_999_999] {
                let mut flags = ServeFlags::default();
                set(&mut flags, bad);
                let err = resolve(flags).unwrap_err().to_string();
                assert!(err.contains(&format!("`{name}`")), "{name} = {bad}: {err}");
            }
        }
    }

    #[test]
    fn connections_stay_within_the_descriptor_limit() {
        assert_eq!(max_connections(None, Some(1024), 8).unwrap(), 1024 - 72);
        assert_eq!(max_connections(None, Some(1_048_576), 8).unwrap(), 10_000);
        assert_eq!(max_connections(None, None, 8).unwrap(), 10_000);
        assert_eq!(max_connections(Some(500), Some(1024), 8).unwrap(), 500);
        assert!(max_connections(Some(2000), Some(1024), 8).is_err());
        assert!(
            max_connections(None, Some(80), 8).is_err(),
            "too few to serve"
        );
        assert!(max_connections(Some(15), None, 8).is_err());
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("caja.toml"), "lisen = \"x\"\n").unwrap();
        let err = ServeFlags::default()
            .resolve(&db(dir.path()), None)
            .unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn the_data_dir_places_the_default_database() {
        let dir = tempfile::tempdir().unwrap();
        let mut args = db(dir.path());
        args.data_dir = Some("/srv/caja".into());
        let (s, _) = args.resolve().unwrap();
        assert_eq!(
            s.location,
            DatabaseLocation::Sqlite("/srv/caja/caja.db".into())
        );
    }
}
