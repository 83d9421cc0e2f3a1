//! `caja bench read`: GET one product as fast as the clients can.

use std::process::ExitCode;
use std::time::Instant;

use serde_json::json;

use super::report::{self, Pace, Tally};
use super::Common;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    let client = c.client()?;
    let run_id = ulid::Ulid::new().to_string().to_lowercase();
    let id = c
        .create_product(&client, &format!("bench-read-{run_id}"), 1)
        .await?;
    let path = format!("{}/v1/products/{id}", c.url);
    let pace = Pace::new(c.budget()?, c.json);
    let mut workers = Vec::new();
    for _ in 0..c.concurrency {
        let (client, pace, path, key) = (client.clone(), pace.clone(), path.clone(), c.key.clone());
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            while pace.next() {
                let started = Instant::now();
                match client.get(&path).bearer_auth(&key).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let _ = r.bytes().await;
                        tally.record(started.elapsed(), status, None);
                    }
                    Err(_) => tally.transport_errors += 1,
                }
                pace.finished_one();
            }
            tally
        }));
    }
    let mut tally = Tally::new();
    for w in workers {
        tally.merge(w.await?);
    }
    let elapsed = pace.finish();
    let mut out = report::summary(&tally, elapsed);
    out["benchmark"] = json!("read");
    out["concurrency"] = json!(c.concurrency);
    if let Some((now, peak)) = report::server_rss(&client, &c.url).await {
        out["server_rss_mb"] = json!(now);
        out["server_rss_peak_mb"] = json!(peak);
    }
    let ok = tally.transport_errors == 0 && tally.by_status.keys().all(|s| *s == 200);
    report::print(&out, c.json);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
