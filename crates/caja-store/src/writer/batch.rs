//! One batch, start to commit: the steps every write takes.

use std::collections::HashMap;

use caja_core::command::{self, Answer, Effects, Event};
use caja_core::ids::OrderId;

use super::{claim, load, write, Settled, Submission, Verdict, Write, WriterOptions};
use crate::changes::NewChange;
use crate::presenter::StoredResponse;
use crate::sql::WriteTx;
use crate::{Store, StoreError};

/// Runs `submissions` as transaction `tx`: every one settled, or an error and nothing
/// written.
pub(super) async fn execute(
    store: &Store,
    options: &WriterOptions,
    mut tx: impl WriteTx,
    submissions: &[&Submission],
) -> Result<Vec<Settled>, StoreError> {
    let dialect = store.dialect();
    let now = store.now();

    // 1. Which keys were answered before (their answers replay); the rest are claimed by
    //    storing their answers, step 5.
    let mut settled = claim::claim(&mut tx, dialect, submissions).await?;
    let fresh: Vec<usize> = (0..submissions.len())
        .filter(|&i| settled[i].is_none())
        .collect();
    if fresh.is_empty() {
        tx.rollback().await?;
        return Ok(settled.into_iter().flatten().collect());
    }

    // 2. The rows the commands read, locked.
    let commands: Vec<&command::Command> = fresh
        .iter()
        .filter_map(|&i| match &submissions[i].write {
            Write::Command(c) => Some(c),
            Write::Refused { .. } => None,
        })
        .collect();
    let (mut world, loaded) = load::load(&mut tx, dialect, &commands).await?;

    // 3. Decide each in arrival order, each against the state the ones before left.
    let mut effects = Effects::default();
    let mut answers: Vec<(usize, StoredResponse, Verdict)> = Vec::with_capacity(fresh.len());
    // A new order's answer body is its `order.created` event's data (the presenter's
    // promise): rendered once, used twice.
    let mut created: HashMap<OrderId, usize> = HashMap::new();
    let mut audits: Vec<crate::audit::NewAudit> = Vec::new();
    for &i in &fresh {
        let s = submissions[i];
        match &s.write {
            Write::Command(c) => {
                let noted = effects.audits.len();
                let outcome = command::decide(c, &mut world, &mut effects, now, &options.policy);
                let actor = s.actor.clone().unwrap_or_else(|| crate::audit::Actor {
                    who: "caja".into(),
                    request_id: None,
                });
                for note in &effects.audits[noted..] {
                    audits.push(crate::audit::NewAudit {
                        actor: actor.clone(),
                        action: note.action.to_owned(),
                        target: Some(note.target.clone()),
                        before: note.before.as_ref().map(|e| store.presenter().event(e)),
                        after: note.after.as_ref().map(|e| store.presenter().event(e)),
                    });
                }
                let response = store.presenter().answer(&s.request_id, &outcome);
                if let Ok(Answer::OrderCreated(o)) = &outcome {
                    created.insert(o.id.clone(), answers.len());
                }
                answers.push((i, response, Verdict::from(&outcome)));
            }
            Write::Refused { response, kind } => {
                answers.push((i, response.clone(), Verdict::Refused(kind)));
            }
        }
    }

    // 4. Effects, 5. answers, 6. the feed, commit.
    write::effects(&mut tx, dialect, &world, &effects, &loaded).await?;
    let keyed: Vec<(&super::IdempotencyScope, &StoredResponse)> = answers
        .iter()
        .filter_map(|(i, response, _)| Some((submissions[*i].scope.as_ref()?, response)))
        .collect();
    write::answers(&mut tx, dialect, &keyed, now).await?;
    crate::audit::insert(&mut tx, dialect, &audits, now).await?;
    let changes: Vec<NewChange> = effects
        .events
        .iter()
        .map(|e| match e {
            Event::OrderCreated(o) => match created.get(&o.id) {
                Some(&a) => NewChange::rendered(e, answers[a].1.body.clone()),
                None => NewChange::event(store.presenter(), e),
            },
            _ => NewChange::event(store.presenter(), e),
        })
        .collect();
    store.commit_with(tx, changes, now).await?;

    for (i, response, verdict) in answers {
        settled[i] = Some(Settled::Fresh { response, verdict });
    }
    Ok(settled.into_iter().flatten().collect())
}
