//! `caja health --url URL`: the post-deploy probe every runbook has. Asks `/health` and
//! `/ready`, prints each check with its latency and status, exits 0 when both pass and 1
//! otherwise (including when the server cannot be reached in time).

use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "CAJA_URL")]
    pub url: String,
    /// Seconds to wait for each probe.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout.max(1)))
        .build()?;
    let base = args.url.trim_end_matches('/');
    let mut healthy = true;
    for probe in ["/health", "/ready"] {
        let started = Instant::now();
        let answer = client.get(format!("{base}{probe}")).send().await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let (status, body) = match answer {
            Ok(r) => {
                let status = r.status().as_u16();
                (
                    status,
                    r.json::<serde_json::Value>().await.unwrap_or_default(),
                )
            }
            Err(e) => {
                println!("FAIL {probe:<8} {ms:>8.1} ms  unreachable: {e}");
                healthy = false;
                continue;
            }
        };
        let pass = status == 200;
        healthy &= pass;
        println!(
            "{} {probe:<8} {ms:>8.1} ms  HTTP {status} {}",
            if pass { "ok  " } else { "FAIL" },
            body["status"].as_str().unwrap_or("")
        );
        if let Some(checks) = body["checks"].as_object() {
            for (name, results) in checks {
                for r in results.as_array().into_iter().flatten() {
                    let value = match (&r["observedValue"], r["observedUnit"].as_str()) {
                        (serde_json::Value::Null, _) => String::new(),
                        (v, Some(unit)) => format!(" {v} {unit}"),
                        (v, None) => format!(" {v}"),
                    };
                    let output = r["output"].as_str().filter(|o| !o.is_empty());
                    println!(
                        "       {:<24} {:<5}{value}{}",
                        name,
                        r["status"].as_str().unwrap_or("?"),
                        output.map(|o| format!("  ({o})")).unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
