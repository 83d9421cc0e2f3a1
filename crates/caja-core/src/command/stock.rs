//! Manual stock movements: restock, correction, damage, return.

use crate::ids::{LocationId, ProductId};
use crate::ledger::{self, Reason};
use crate::product::Stock;
use crate::time::Timestamp;

use super::effects::{Effects, Event, Held};
use super::{Answer, Outcome, Refusal, World};

#[allow(clippy::too_many_arguments)]
pub(super) fn move_stock(
    id: &ProductId,
    location: &LocationId,
    delta: i64,
    reason: Reason,
    note: Option<&str>,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let product = world.products.get(id).ok_or(Refusal::ProductNotFound)?;
    if product.archived {
        return Err(Refusal::Archived);
    }
    if product.event_id.is_some() {
        return Err(Refusal::EventSection);
    }
    if !world.locations.contains_key(location) {
        return Err(Refusal::LocationNotFound);
    }
    let here = product.locations.at(location);
    if ledger::apply(here, delta).is_none() {
        return Err(Refusal::NotEnoughStock {
            location: location.clone(),
            available: here,
        });
    }
    let current = product.stock.value();
    if ledger::apply(current, delta).is_none_or(|after| after > Stock::MAX) {
        return Err(Refusal::StockLimit { current });
    }
    let before = product.clone();
    let movement = effects
        .move_stock(world, id, location, delta, reason, note, Held::Nobody, now)
        .ok_or(Refusal::ProductNotFound)?;
    effects.audit(
        "stock.moved",
        id.as_str(),
        Some(Event::Product(super::ProductEvent::StockChanged, before)),
        Some(Event::StockMoved(movement.clone())),
    );
    effects.stock_changed(world, [id]);
    effects.events.push(Event::StockMoved(movement.clone()));
    Ok(Answer::Movement(movement))
}
