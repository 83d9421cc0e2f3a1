//! Background jobs: the expiry sweeper, the idempotency-key purge, the change-feed tailer
//! and its retention. All stop when the shutdown token fires and run on the app's task
//! tracker, so shutdown waits for them.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::AppState;

/// How many due orders one sweep expires at most; the next sweep takes the rest.
const SWEEP_BATCH: i64 = 500;

pub fn spawn(state: &AppState, shutdown: CancellationToken) {
    let hub = state.hub().clone();
    state.spawn_task(hub.tail(state.store().clone(), shutdown.clone()));
    let pruner = state.clone();
    let stop = shutdown.clone();
    state.spawn_task(async move {
        let retention = pruner.config().changes_retention;
        let every = (retention / 24).clamp(Duration::from_secs(1), Duration::from_secs(3600));
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Ok(retention) = chrono::Duration::from_std(retention) else {
                return;
            };
            match pruner
                .store()
                .prune_changes(caja_core::time::now() - retention)
                .await
            {
                Ok(n) if n > 0 => tracing::info!(count = n, "pruned old change-feed events"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "change-feed pruning failed; retrying later"),
            }
        }
    });
    let sweeper = state.clone();
    let stop = shutdown.clone();
    state.spawn_task(async move {
        let mut tick = tokio::time::interval(sweeper.config().sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match sweeper
                .store()
                .expire_due(caja_core::time::now(), SWEEP_BATCH)
                .await
            {
                Ok(expired) if !expired.is_empty() => {
                    metrics::counter!("caja_orders_expired_total").increment(expired.len() as u64);
                    tracing::info!(count = expired.len(), "expired unpaid orders");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed; retrying next tick"),
            }
        }
    });
    let purger = state.clone();
    state.spawn_task(async move {
        let retention = purger.config().idempotency_retention;
        let every = (retention / 24).clamp(Duration::from_secs(1), Duration::from_secs(3600));
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Ok(retention) = chrono::Duration::from_std(retention) else {
                return;
            };
            match purger
                .store()
                .purge_idempotency_keys(caja_core::time::now() - retention)
                .await
            {
                Ok(n) if n > 0 => tracing::info!(count = n, "purged old idempotency keys"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "idempotency purge failed; retrying later"),
            }
        }
    });
}
