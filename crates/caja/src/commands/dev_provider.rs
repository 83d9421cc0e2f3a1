//! `caja dev-provider`: a local payment provider for tests and demos (see the
//! `caja-dev-provider` crate). Nothing it does reaches the internet.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use caja_core::time::SystemClock;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (loopback by default: it has no authentication of its own).
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// The secret notifications are signed with: caja's `mercadopago_webhook_secret`.
    #[arg(long, env = "CAJA_MERCADOPAGO_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: String,
    /// Where notifications go when a checkout names no notification URL, e.g.
    /// http://127.0.0.1:8080/v1/webhooks/mercadopago
    #[arg(long, value_name = "URL")]
    pub notify_url: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "dev-provider listening on http://{} (point caja's mercadopago_api_url here)",
        listener.local_addr()?
    );
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    caja_dev_provider::serve(
        listener,
        caja_dev_provider::Options {
            webhook_secret: args.webhook_secret,
            notify_url: args.notify_url,
            clock: Arc::new(SystemClock),
        },
        shutdown,
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
