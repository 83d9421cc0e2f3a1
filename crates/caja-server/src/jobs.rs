//! Background jobs: the expiry sweeper, the idempotency-key purge, the change-feed tailer
//! and its retention. All stop when the shutdown token fires and run on the app's task
//! tracker, so shutdown waits for them.

use std::time::Duration;

use caja_core::command::Command;
use caja_store::writer::{Settled, Submission, Verdict, Write};
use caja_store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// How many due orders one sweep expires at most; the next sweep takes the rest.
const SWEEP_BATCH: i64 = 500;

pub fn spawn(state: &AppState, shutdown: CancellationToken) {
    let hub = state.hub().clone();
    state.spawn_task(hub.tail(state.store().clone(), shutdown.clone()));
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
            match sweep(&sweeper).await {
                Ok(0) => {}
                Ok(n) => {
                    metrics::counter!("caja_orders_expired_total").increment(n);
                    tracing::info!(count = n, "expired unpaid orders");
                }
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed; retrying next tick"),
            }
        }
    });
    retention(
        state,
        shutdown.clone(),
        state.config().idempotency_retention,
        "idempotency keys",
        |store, before| async move { store.purge_idempotency_keys(before).await },
    );
    retention(
        state,
        shutdown,
        state.config().changes_retention,
        "change-feed events",
        |store, before| async move { store.prune_changes(before).await },
    );
}

/// Expires what is due now: one expire command per order and per box-office hold,
/// submitted together so the writer commits them as one batch. Each re-checks its row
/// under lock, so an order paid (or a hold ordered) meanwhile, or expired by another
/// replica's sweeper, is left alone. Returns how many orders this sweep expired; expired
/// holds are counted in `caja_holds_expired_total`.
pub(crate) async fn sweep(state: &AppState) -> Result<u64, StoreError> {
    // Maintenance mode stops every write, the sweeper's too.
    if state.maintenance().current(state.store()).await?.is_some() {
        return Ok(0);
    }
    let now = state.store().now();
    // Waiting rooms whose opening has come get their draw first.
    let drawn = state.store().draw_due_rooms(now).await?;
    if drawn > 0 {
        tracing::info!(rooms = drawn, "drew the waiting rooms that opened");
    }
    // One aggregated event per room whose line moved, not one per ticket.
    state.store().announce_queues(now).await?;
    let orders = state.store().due_orders(now, SWEEP_BATCH).await?;
    let holds = state.store().due_holds(now, SWEEP_BATCH).await?;
    let commands = orders
        .into_iter()
        .map(|order| (false, Command::Expire { order }))
        .chain(
            holds
                .into_iter()
                .map(|hold| (true, Command::ExpireHold { hold })),
        );
    let (kinds, expiries): (Vec<bool>, Vec<_>) = commands
        .map(|(is_hold, command)| {
            let submitted = state.writer().submit(Submission {
                scope: None,
                actor: None,
                request_id: String::new(),
                write: Write::Command(command),
            });
            (is_hold, submitted)
        })
        .unzip();
    let (mut orders, mut holds) = (0, 0);
    for (is_hold, settled) in kinds
        .into_iter()
        .zip(futures_util::future::join_all(expiries).await)
    {
        if let Settled::Fresh {
            verdict: Verdict::Done,
            ..
        } = settled?
        {
            if is_hold {
                holds += 1;
            } else {
                orders += 1;
            }
        }
    }
    if holds > 0 {
        metrics::counter!("caja_holds_expired_total").increment(holds);
        tracing::info!(count = holds, "expired box-office holds");
    }
    Ok(orders)
}

/// Deletes what is older than `keep`, every 1/24 of it (between a second and an hour),
/// until shutdown.
fn retention<F, Fut>(
    state: &AppState,
    shutdown: CancellationToken,
    keep: Duration,
    what: &'static str,
    delete_before: F,
) where
    F: Fn(Store, caja_core::time::Timestamp) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<u64, StoreError>> + Send,
{
    let store = state.store().clone();
    state.spawn_task(async move {
        let Ok(keep_for) = chrono::Duration::from_std(keep) else {
            return;
        };
        let every = (keep / 24).clamp(Duration::from_secs(1), Duration::from_secs(3600));
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let before = store.now() - keep_for;
            match delete_before(store.clone(), before).await {
                Ok(n) if n > 0 => tracing::info!(count = n, what, "removed past retention"),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, what, "retention cleanup failed; retrying later")
                }
            }
        }
    });
}
