//! `caja bench`: a bounded load generator built into the binary, so a deployment can be
//! measured with the same tool the project uses. Every run stops by itself after
//! `--duration` or `--requests`, and checks the promises on what it did.

mod box_office;
mod checkout;
mod cpu;
mod live;
mod read;
mod report;

use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Buyers placing orders with fresh Idempotency-Keys (and deliberate retries); checks that
    /// 201s = units sold = stock taken and that no key made two orders.
    Checkout(checkout::Args),
    /// Readers fetching one product: the read path.
    Read(read::Args),
    /// WebSocket subscribers and a writer at a fixed rate: commit-to-receive latency, and a
    /// check that every subscriber got every event once, in order.
    Live(live::Args),
    /// A sell-out: buyers join a waiting room before it opens, are admitted, hold one seat
    /// each and buy it; checks that every seat was sold once and nobody got two.
    BoxOffice(box_office::Args),
}

/// What every benchmark needs: where, who, how hard, for how long.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// The server's base URL (keep load on loopback or your own network).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An admin API key.
    #[arg(long, env = "CAJA_BENCH_KEY", hide_env_values = true)]
    pub key: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Run for this many seconds.
    #[arg(long, conflicts_with = "requests")]
    pub duration: Option<f64>,
    /// Run for this many requests in all.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Print one JSON object instead of the human report.
    #[arg(long)]
    pub json: bool,
    /// The server's process id, on this machine, whose CPU time per unit of work is
    /// reported (from /proc/PID/stat); it does not drift with the hour the way throughput
    /// does. Default: the process listening on `--url`'s port, if it is on this machine.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

impl Common {
    fn budget(&self) -> anyhow::Result<Budget> {
        match (self.duration, self.requests) {
            (Some(s), None) if s > 0.0 && s <= 3600.0 => {
                Ok(Budget::Time(Duration::from_secs_f64(s)))
            }
            (None, Some(n)) if n > 0 => Ok(Budget::Requests(n)),
            (None, None) => Ok(Budget::Time(Duration::from_secs(10))),
            _ => anyhow::bail!("--duration must be 0–3600 seconds, --requests at least 1"),
        }
    }

    /// Creates a product for the run to use; returns its id.
    async fn create_product(
        &self,
        client: &reqwest::Client,
        sku: &str,
        stock: i64,
    ) -> anyhow::Result<String> {
        let body = serde_json::json!({"sku": sku, "name": sku, "price": {"amount": 100, "currency": "MXN"}, "stock": stock});
        let created: serde_json::Value = client
            .post(format!("{}/v1/products", self.url))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(created["id"].as_str().unwrap_or_default().to_owned())
    }

    /// The server's process on this machine, if it can be found.
    fn server_pid(&self) -> Option<u32> {
        self.server_pid.or_else(|| cpu::listener_pid(&self.url))
    }

    fn client(&self) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .pool_max_idle_per_host(self.concurrency)
            .timeout(Duration::from_secs(60))
            .build()?)
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Budget {
    Time(Duration),
    Requests(u64),
}

pub async fn run(action: Action) -> anyhow::Result<ExitCode> {
    crate::telemetry::init(Default::default());
    match action {
        Action::Checkout(args) => checkout::run(args).await,
        Action::Read(args) => read::run(args).await,
        Action::Live(args) => live::run(args).await,
        Action::BoxOffice(args) => box_office::run(args).await,
    }
}
