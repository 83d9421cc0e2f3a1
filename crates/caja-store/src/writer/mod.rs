//! The one writer: every command that moves money, stock or state is committed here.
//!
//! On the night a concert goes on sale, thousands of buyers hit one product. One
//! transaction per checkout would queue them all on that product's row lock and pay one
//! durable commit each. Instead every write is handed to one writer per process (a task;
//! on SQLite a thread with its own connection), which takes whatever has arrived together
//! and commits it as one transaction, while each request keeps its own outcome, its own
//! rows and its own stored answer. A request is answered only after its batch commits.
//!
//! Every batch takes the same steps whatever it holds ([`batch`]): read which idempotency
//! keys were answered before, lock and load the rows the commands need (orders, then
//! products, in id order, then the order-number counter), decide every command in memory
//! ([`caja_core::command::decide`]), write the effects with multi-row statements, store
//! each answer (in key order: the key's claim), append the feed, commit. Batching off means batches of one through the
//! same code. If a batch fails, its writes run again as batches of one, which settles each
//! exactly as if it had never been batched.

mod batch;
mod box_office;
mod claim;
mod load;
mod write;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use caja_core::command::{Answer, Command, Outcome, Policy};
use caja_core::idempotency::{Fingerprint, IdempotencyKey};
use caja_core::ids::KeyId;
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use crate::presenter::StoredResponse;
use crate::{Store, StoreError};

/// Whose key it is and what request it stands for.
#[derive(Debug, Clone)]
pub struct IdempotencyScope {
    pub key_id: KeyId,
    pub key: IdempotencyKey,
    pub fingerprint: Fingerprint,
}

impl IdempotencyScope {
    fn pair(&self) -> (&str, &str) {
        (self.key_id.as_str(), self.key.as_str())
    }
}

/// What to write.
#[derive(Debug, Clone)]
pub enum Write {
    /// A command to decide and apply.
    Command(Command),
    /// A request refused before it became a command (a body that does not validate): its
    /// answer is stored under the key all the same, so a retry replays it and the key
    /// cannot be reused for another body. `kind` is the problem type, for metrics.
    Refused {
        response: StoredResponse,
        kind: &'static str,
    },
}

/// One write as the writer receives it.
#[derive(Debug, Clone)]
pub struct Submission {
    /// `None` for writes that carry no `Idempotency-Key` (catalog edits, the sweeper).
    pub scope: Option<IdempotencyScope>,
    /// Who asked, for the audit log of admin actions (`None`: caja itself, the sweeper).
    pub actor: Option<crate::audit::Actor>,
    /// Names the request in a problem's body.
    pub request_id: String,
    pub write: Write,
}

/// How a decided write came out, for the caller's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Done: something changed.
    Done,
    /// Nothing to change (an expiry that found its order settled).
    Unchanged,
    /// Refused, with its problem type.
    Refused(&'static str),
}

impl From<&Outcome> for Verdict {
    fn from(outcome: &Outcome) -> Self {
        match outcome {
            Ok(Answer::Unchanged) => Verdict::Unchanged,
            Ok(_) => Verdict::Done,
            Err(refusal) => Verdict::Refused(refusal.kind()),
        }
    }
}

/// What became of a submission: the one "fresh / replay / mismatch / in flight" answer,
/// end to end.
#[derive(Debug, Clone)]
pub enum Settled {
    /// Decided and committed now.
    Fresh {
        response: StoredResponse,
        verdict: Verdict,
    },
    /// Answered before with the same request: the same bytes again. `waited` when this
    /// copy arrived while the first was still running and waited for it.
    Replay {
        response: StoredResponse,
        waited: bool,
    },
    /// The key was used for a different request.
    Mismatch,
    /// Another process is still writing this key, past the wait bound.
    InFlight,
}

#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Most writes in one transaction; 1 turns batching off.
    pub max_batch: usize,
    pub policy: Policy,
    /// How long a write waits on a key another replica is writing.
    pub key_wait: Duration,
}

struct Job {
    submission: Submission,
    reply: oneshot::Sender<Result<Settled, StoreError>>,
}

/// The handle requests use; cheap to clone. The writer task ends when every handle is
/// dropped, after answering what it holds.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer: on PostgreSQL a task on the runtime it is called in, its
    /// transactions from the store's pool; on SQLite a thread of its own that drives the
    /// writer's connection directly ([`crate::direct`]), so a statement run there blocks
    /// no request.
    pub fn start(store: Store, options: WriterOptions) -> Self {
        let max = options.max_batch.max(1);
        let (jobs, queue) = mpsc::channel::<Job>(max * 8);
        match store.direct.clone() {
            None => {
                tokio::spawn(serve(store, options, Writes::Pooled, queue));
            }
            Some(direct) => {
                let thread = std::thread::Builder::new()
                    .name("caja-writer".into())
                    .spawn(move || {
                        match tokio::runtime::Builder::new_current_thread()
                            .enable_time()
                            .build()
                        {
                            Ok(runtime) => runtime.block_on(serve(
                                store,
                                options,
                                Writes::Direct(direct),
                                queue,
                            )),
                            // Its queue closes with it: every write is refused with 503,
                            // as when the server shuts down, and this line says why.
                            Err(e) => {
                                tracing::error!(error = %e, "the writer's runtime did not start")
                            }
                        }
                    });
                if let Err(e) = thread {
                    tracing::error!(error = %e, "the writer's thread did not start");
                }
            }
        }
        Self { jobs }
    }

    /// Writes one submission and waits for its batch to commit.
    pub async fn submit(&self, submission: Submission) -> Result<Settled, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { submission, reply })
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        answer.await.map_err(|_| StoreError::ShuttingDown)?
    }
}

/// Where a writer's transactions come from.
enum Writes {
    /// The store's writer pool (sqlx), one transaction per batch.
    Pooled,
    /// The SQLite writer's own connection, shared with [`Store::close`] only.
    Direct(std::sync::Arc<tokio::sync::Mutex<crate::direct::Direct>>),
}

impl Writes {
    /// Runs `submissions` as one batch in a transaction of its own.
    async fn execute(
        &self,
        store: &Store,
        options: &WriterOptions,
        submissions: &[&Submission],
    ) -> Result<Vec<Settled>, StoreError> {
        match self {
            Writes::Pooled => {
                let tx = store.begin_batch(options.key_wait).await?;
                batch::execute(store, options, tx, submissions).await
            }
            Writes::Direct(direct) => {
                let mut direct = direct.lock().await;
                let tx = direct.begin()?;
                batch::execute(store, options, tx, submissions).await
            }
        }
    }
}

/// Takes what has arrived together, up to `max_batch`, and runs it as one batch, until
/// every handle is dropped.
async fn serve(
    store: Store,
    options: WriterOptions,
    writes: Writes,
    mut queue: mpsc::Receiver<Job>,
) {
    let max = options.max_batch.max(1);
    while let Some(first) = queue.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < max {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // A panic while running a batch fails that batch's requests (their reply
        // channels close: 503, retry with the same key) instead of ending every
        // write of the process. Caught here rather than by running each batch as a
        // task of its own: a batch of one is a request's whole write, and a task
        // spawned and joined per batch was one more hand-over on its way.
        let ran = AssertUnwindSafe(run(&store, &options, &writes, jobs))
            .catch_unwind()
            .await;
        if let Err(panic) = ran {
            store.note_write_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|m| (*m).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %message, "a write batch panicked; its requests were refused");
        }
    }
}

/// Runs one batch and answers every job in it.
async fn run(store: &Store, options: &WriterOptions, writes: &Writes, jobs: Vec<Job>) {
    // Copies of one key inside the batch: the first leads, the others follow its fate.
    let mut leaders: Vec<Job> = Vec::with_capacity(jobs.len());
    let mut followers: Vec<(usize, Job)> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for job in jobs {
        let key = job
            .submission
            .scope
            .as_ref()
            .map(|s| (s.key_id.to_string(), s.key.as_str().to_owned()));
        match key.as_ref().and_then(|k| index.get(k)) {
            Some(&leader) => followers.push((leader, job)),
            None => {
                if let Some(k) = key {
                    index.insert(k, leaders.len());
                }
                leaders.push(job);
            }
        }
    }
    metrics::histogram!("caja_write_batch_size").record(leaders.len() as f64);
    let submissions: Vec<&Submission> = leaders.iter().map(|j| &j.submission).collect();
    let settled: Vec<Result<Settled, StoreError>> = match writes
        .execute(store, options, &submissions)
        .await
    {
        Ok(settled) => settled.into_iter().map(Ok).collect(),
        Err(e) if submissions.len() > 1 => {
            tracing::debug!(error = %e, size = submissions.len(), "batch failed; rerunning its writes one by one");
            metrics::counter!("caja_write_batch_fallbacks_total").increment(1);
            let mut settled = Vec::with_capacity(submissions.len());
            for s in &submissions {
                settled.push(alone(store, options, writes, s).await);
            }
            settled
        }
        // Another writer answered the key meanwhile: running it again replays that answer.
        Err(StoreError::KeyAnswered) => vec![alone(store, options, writes, submissions[0]).await],
        Err(e) => vec![alone_error(e)],
    };
    // Once per batch: its writes committed, or the first failure says why not.
    if let Some(e) = settled.iter().find_map(|r| r.as_ref().err()) {
        store.note_write(Err(e));
    } else if settled
        .iter()
        .any(|r| matches!(r, Ok(Settled::Fresh { .. })))
    {
        store.note_write(Ok(()));
    }
    for (leader, job) in followers {
        let first = &leaders[leader].submission;
        let same = first.scope.as_ref().map(|s| &s.fingerprint)
            == job.submission.scope.as_ref().map(|s| &s.fingerprint);
        let outcome = match &settled[leader] {
            // The first copy's answer is now stored under the key: the same request gets it
            // again, another request is a mismatch.
            Ok(Settled::Fresh { response, .. } | Settled::Replay { response, .. }) => {
                if same {
                    Ok(Settled::Replay {
                        response: response.clone(),
                        waited: true,
                    })
                } else {
                    Ok(Settled::Mismatch)
                }
            }
            // The first copy did not match what the key holds (or could not tell): this
            // copy may, so it asks the key itself.
            Ok(Settled::Mismatch | Settled::InFlight) => {
                alone(store, options, writes, &job.submission).await
            }
            Err(e) => Err(e.shallow_clone()),
        };
        let _ = job.reply.send(outcome);
    }
    for (job, outcome) in leaders.into_iter().zip(settled) {
        let _ = job.reply.send(outcome);
    }
}

/// One write as a batch of one. If another writer answered its key meanwhile, once more:
/// that answer is what it settles to.
async fn alone(
    store: &Store,
    options: &WriterOptions,
    writes: &Writes,
    submission: &Submission,
) -> Result<Settled, StoreError> {
    let mut ran = writes.execute(store, options, &[submission]).await;
    if matches!(ran, Err(StoreError::KeyAnswered)) {
        ran = writes.execute(store, options, &[submission]).await;
    }
    match ran {
        Ok(mut settled) => settled.pop().ok_or(StoreError::NotFound),
        Err(e) => alone_error(e),
    }
}

/// A batch of one that failed: a key still in flight elsewhere is an answer, not a fault.
fn alone_error(e: StoreError) -> Result<Settled, StoreError> {
    match e {
        StoreError::KeyInFlight => Ok(Settled::InFlight),
        e => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Plain;

    impl crate::Presenter for Plain {
        fn answer(&self, _: &str, _: &caja_core::command::Outcome) -> StoredResponse {
            StoredResponse {
                status: 200,
                headers: Vec::new(),
                body: String::new(),
            }
        }

        fn event(&self, _: &caja_core::command::Event) -> String {
            String::new()
        }
    }

    /// A write outside the writer (sqlx's connection, holding SQLite's write lock) and a
    /// batch on the writer's own connection queue on the writer's turn: the batch waits
    /// for the other to end, and never meets the lock, where with no busy_timeout at all
    /// it would have failed at once.
    #[tokio::test]
    async fn a_batch_waits_its_turn_behind_a_write_outside_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let location = crate::DatabaseLocation::Sqlite(dir.path().join("turn.db"));
        let options = crate::StoreOptions {
            busy_timeout: Duration::ZERO,
            ..crate::StoreOptions::default()
        };
        let store = Store::connect(&location, &options, std::sync::Arc::new(Plain))
            .await
            .unwrap();
        let writes = Writes::Direct(store.direct.clone().expect("SQLite"));
        let options = WriterOptions {
            max_batch: 1,
            policy: Policy {
                order_ttl: chrono::Duration::minutes(15),
                hold_ttl: chrono::Duration::minutes(10),
            },
            key_wait: Duration::from_secs(1),
        };

        let (mut tx, turn) = store.begin_write().await.unwrap();
        sqlx::query("CREATE TABLE outside (n INTEGER)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let batch = writes.execute(&store, &options, &[]);
        tokio::pin!(batch);
        let waited = tokio::time::timeout(Duration::from_millis(50), &mut batch).await;
        assert!(
            waited.is_err(),
            "the batch ran while the other write held the lock: {waited:?}"
        );
        tx.commit().await.unwrap();
        drop(turn);
        let ran = batch.await;
        assert!(matches!(ran.as_deref(), Ok([])), "{ran:?}");

        // Without the turn the two meet at SQLite's lock: the batch fails at once.
        let (tx, turn) = store.begin_write().await.unwrap();
        drop(turn);
        let mut direct = store.direct.as_ref().unwrap().lock().await;
        assert!(matches!(
            direct.begin().map(|_| ()),
            Err(StoreError::Unavailable(_))
        ));
        drop(direct);
        tx.rollback().await.unwrap();
        store.close().await;
    }
}
