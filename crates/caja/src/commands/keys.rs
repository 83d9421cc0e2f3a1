//! `caja keys create|list|revoke`. A created key is printed once, alone on the last line
//! of stdout, so a script can capture it with `tail -n1`.

use std::process::ExitCode;

use anyhow::Context;
use caja_core::auth::{ApiKeySecret, Role};
use caja_core::ids::KeyId;
use caja_core::rate::RateLimit;
use caja_core::time;
use caja_store::NewApiKey;

use super::open_store;
use crate::settings::{log_format, DbArgs, LogFormat};

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Create a key and print it (shown only this once).
    Create {
        /// `admin` (everything) or `clerk` (read the catalog, sell).
        #[arg(long)]
        role: String,
        /// A name to recognise the key by (e.g. "till 2").
        #[arg(long, default_value = "")]
        name: String,
        /// Limit this key's requests, `N/s` or `N/s:BURST`. Default: unlimited.
        #[arg(long, value_name = "RATE")]
        rate_limit: Option<String>,
        /// Bind the key to a location (its code or id): it sells there (a clerk's key only
        /// there). Default: unbound, selling at the default location unless a request names
        /// another.
        #[arg(long, value_name = "LOCATION")]
        location: Option<String>,
    },
    /// List keys: id, name, role, created, last used, revoked. Never the key itself.
    List,
    /// Revoke a key by id; it stops working at once.
    Revoke { id: String },
}

pub async fn run(db: DbArgs, action: Action, log: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let (db, file) = db.resolve()?;
    crate::telemetry::init(log_format(log, &file));
    // Validate the arguments before touching the database.
    let create = match &action {
        Action::Create {
            role,
            name,
            rate_limit,
            ..
        } => Some(NewApiKey {
            name: name.clone(),
            role: role.parse::<Role>().context("--role")?,
            rate_limit: rate_limit
                .as_deref()
                .map(str::parse::<RateLimit>)
                .transpose()
                .context("--rate-limit")?,
            location: None,
        }),
        _ => None,
    };
    let revoke = match &action {
        Action::Revoke { id } => Some(KeyId::parse("id", id).context("revoke")?),
        _ => None,
    };
    let store = open_store(&db).await?;
    super::prepare_schema(&store, &db, false).await?;
    match action {
        Action::Create { location, .. } => {
            let mut new = create.context("create arguments")?;
            if let Some(named) = location {
                let found = store.find_location(&named).await.with_context(|| {
                    format!("--location {named}: no location has this code or id")
                })?;
                new.location = Some(found.id);
            }
            let secret = ApiKeySecret::generate();
            let record = store.create_key(&new, &secret).await?;
            println!(
                "created {} key {} ({}); it is shown only now:",
                record.role, record.id, record.name
            );
            println!("{}", secret.reveal());
        }
        Action::List => {
            println!(
                "{:<31} {:<6} {:<30} {:<27} {:<27} {:<27} name",
                "id", "role", "location", "created", "last used", "revoked"
            );
            let show = |t: Option<time::Timestamp>| {
                t.map(|t| time::format(&t)).unwrap_or_else(|| "-".into())
            };
            for k in store.list_keys().await? {
                println!(
                    "{:<31} {:<6} {:<30} {:<27} {:<27} {:<27} {}",
                    k.id,
                    k.role,
                    k.location.as_ref().map_or("-", |l| l.as_str()),
                    time::format(&k.created_at),
                    show(k.last_used_at),
                    show(k.revoked_at),
                    k.name
                );
            }
        }
        Action::Revoke { .. } => {
            let id = revoke.context("revoke arguments")?;
            let record = store.revoke_key(&id).await.map_err(|e| match e {
                caja_store::StoreError::NotFound => anyhow::anyhow!("no key {id}"),
                e => e.into(),
            })?;
            println!("revoked {} ({})", record.id, record.name);
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
