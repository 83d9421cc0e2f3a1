//! Decisions about locations and the stock that moves between them: creating and renaming
//! a location, sending stock (at once or in transit), and receiving it.

use crate::ids::{LocationId, TransferId};
use crate::ledger::Reason;
use crate::location::{
    Location, LocationPatch, NewLocation, NewTransfer, Transfer, TransferStatus,
};
use crate::order::Shortage;
use crate::product::Version;
use crate::time::Timestamp;

use super::effects::{Effects, Event, Held, LocationEvent, TransferEvent};
use super::{Answer, Outcome, Refusal, World};

pub(super) fn create(
    new: &NewLocation,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    if world.locations.values().any(|l| l.code == new.code) {
        return Err(Refusal::DuplicateLocationCode);
    }
    let location = Location {
        id: LocationId::generate(),
        code: new.code.clone(),
        name: new.name.clone(),
        version: Version(1),
        created_at: now,
        updated_at: now,
    };
    effects.created_locations.push(location.id.clone());
    let event = Event::Location(LocationEvent::Created, location.clone());
    effects.audit(
        "location.created",
        location.id.as_str(),
        None,
        Some(event.clone()),
    );
    effects.events.push(event);
    world
        .locations
        .insert(location.id.clone(), location.clone());
    Ok(Answer::LocationCreated(location))
}

pub(super) fn update(
    id: &LocationId,
    expected: Version,
    patch: &LocationPatch,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let before = world
        .locations
        .get(id)
        .ok_or(Refusal::LocationNotFound)?
        .clone();
    if before.version != expected {
        return Err(Refusal::StaleVersion {
            current: before.version,
        });
    }
    if let Some(code) = &patch.code {
        if world
            .locations
            .values()
            .any(|l| l.code == *code && l.id != *id)
        {
            return Err(Refusal::DuplicateLocationCode);
        }
    }
    let after = Location {
        code: patch.code.clone().unwrap_or_else(|| before.code.clone()),
        name: patch.name.clone().unwrap_or_else(|| before.name.clone()),
        version: Version(before.version.0 + 1),
        updated_at: now,
        ..before.clone()
    };
    if !effects.created_locations.contains(id) {
        effects.changed_locations.insert(id.clone());
    }
    let event = Event::Location(LocationEvent::Updated, after.clone());
    effects.audit(
        "location.updated",
        id.as_str(),
        Some(Event::Location(LocationEvent::Updated, before)),
        Some(event.clone()),
    );
    effects.events.push(event);
    world.locations.insert(id.clone(), after.clone());
    Ok(Answer::Location(after))
}

/// Sends units of a product from one location to another: out of the source now, and into
/// the target now too, or when it is received if it travels.
pub(super) fn transfer(
    new: &NewTransfer,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    for at in [&new.from, &new.to] {
        if !world.locations.contains_key(at) {
            return Err(Refusal::LocationNotFound);
        }
    }
    let product = world
        .products
        .get(&new.product_id)
        .filter(|p| !p.archived)
        .ok_or(Refusal::ProductNotFound)?;
    if product.event_id.is_some() {
        return Err(Refusal::EventSection);
    }
    if product.locations.at(&new.from) < new.quantity {
        return Err(Refusal::OutOfStock(vec![Shortage::of(
            product,
            &new.from,
            new.quantity,
        )]));
    }
    let mut transfer = Transfer {
        id: TransferId::generate(),
        product_id: new.product_id.clone(),
        from: new.from.clone(),
        to: new.to.clone(),
        quantity: new.quantity,
        note: new.note.clone(),
        status: TransferStatus::InTransit,
        created_at: now,
        received_at: None,
    };
    let held = Held::Transfer(&transfer.id);
    effects
        .move_stock(
            world,
            &new.product_id,
            &new.from,
            -new.quantity,
            Reason::TransferOut,
            None,
            held,
            now,
        )
        .ok_or(Refusal::ProductNotFound)?;
    if !new.in_transit {
        arrive(world, effects, &mut transfer, now)?;
    }
    effects.created_transfers.push(transfer.id.clone());
    let event = Event::Transfer(TransferEvent::Created, transfer.clone());
    effects.audit(
        "transfer.created",
        transfer.id.as_str(),
        None,
        Some(event.clone()),
    );
    effects.events.push(event);
    effects.stock_changed(world, [&new.product_id]);
    world
        .transfers
        .insert(transfer.id.clone(), transfer.clone());
    Ok(Answer::TransferCreated(transfer))
}

/// Receives a transfer in transit at its target, where its units become sellable.
pub(super) fn receive(
    id: &TransferId,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let mut transfer = world
        .transfers
        .get(id)
        .ok_or(Refusal::TransferNotFound)?
        .clone();
    if transfer.status != TransferStatus::InTransit {
        return Err(Refusal::TransferReceived);
    }
    arrive(world, effects, &mut transfer, now)?;
    if !effects.created_transfers.contains(id) {
        effects.changed_transfers.insert(id.clone());
    }
    let event = Event::Transfer(TransferEvent::Received, transfer.clone());
    effects.audit("transfer.received", id.as_str(), None, Some(event.clone()));
    effects.events.push(event);
    effects.stock_changed(world, [&transfer.product_id]);
    world.transfers.insert(id.clone(), transfer.clone());
    Ok(Answer::Transfer(transfer))
}

/// Puts a transfer's units at its target and marks it received.
fn arrive(
    world: &mut World,
    effects: &mut Effects,
    transfer: &mut Transfer,
    now: Timestamp,
) -> Result<(), Refusal> {
    effects
        .move_stock(
            world,
            &transfer.product_id,
            &transfer.to,
            transfer.quantity,
            Reason::TransferIn,
            None,
            Held::Transfer(&transfer.id),
            now,
        )
        .ok_or(Refusal::ProductNotFound)?;
    transfer.status = TransferStatus::Received;
    transfer.received_at = Some(now);
    Ok(())
}
