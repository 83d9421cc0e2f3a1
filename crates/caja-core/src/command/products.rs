//! Catalog writes: create, patch and archive, with optimistic concurrency on the version.

use crate::ids::ProductId;
use crate::ledger::{Movement, Reason};
use crate::location::StockByLocation;
use crate::product::{NewProduct, Product, ProductPatch, Version};
use crate::time::Timestamp;

use super::effects::{Effects, Event, ProductEvent};
use super::{Answer, Outcome, Refusal, World};

pub(super) fn create(
    new: &NewProduct,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    if world.live_sku_holder(&new.sku, None).is_some() {
        return Err(Refusal::DuplicateSku);
    }
    if !world.locations.contains_key(&new.location) {
        return Err(Refusal::LocationNotFound);
    }
    let product = Product {
        id: ProductId::generate(),
        sku: new.sku.clone(),
        name: new.name.clone(),
        price: new.price,
        stock: new.stock,
        locations: StockByLocation::from_map([(new.location.clone(), new.stock.value())].into()),
        version: Version(1),
        archived: false,
        event_id: None,
        created_at: now,
        updated_at: now,
    };
    if product.stock.value() > 0 {
        // The ledger starts with the stock the product was created with.
        effects.movements.push(Movement {
            id: world.movement_ids.take(),
            product_id: product.id.clone(),
            location_id: new.location.clone(),
            delta: product.stock.value(),
            reason: Reason::Initial,
            note: None,
            order_id: None,
            tab_id: None,
            hold_id: None,
            transfer_id: None,
            stock_after: product.stock.value(),
            created_at: now,
        });
    }
    effects.created_products.push(product.id.clone());
    effects
        .events
        .push(Event::Product(ProductEvent::Created, product.clone()));
    world.products.insert(product.id.clone(), product.clone());
    Ok(Answer::ProductCreated(product))
}

/// The product at `expected`, or why not.
fn current<'w>(
    world: &'w World,
    id: &ProductId,
    expected: Version,
) -> Result<&'w Product, Refusal> {
    let product = world.products.get(id).ok_or(Refusal::ProductNotFound)?;
    if product.event_id.is_some() {
        return Err(Refusal::EventSection);
    }
    if product.version != expected {
        return Err(Refusal::StaleVersion {
            current: product.version,
        });
    }
    Ok(product)
}

pub(super) fn update(
    id: &ProductId,
    expected: Version,
    patch: &ProductPatch,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let product = current(world, id, expected)?;
    if product.archived {
        return Err(Refusal::Archived);
    }
    if let Some(sku) = &patch.sku {
        if world.live_sku_holder(sku, Some(id)).is_some() {
            return Err(Refusal::DuplicateSku);
        }
    }
    let next = patch.apply(product, now);
    effects.audit(
        "product.updated",
        id.as_str(),
        Some(Event::Product(ProductEvent::Updated, product.clone())),
        Some(Event::Product(ProductEvent::Updated, next.clone())),
    );
    world.products.insert(id.clone(), next.clone());
    effects.product_changed(id);
    effects
        .events
        .push(Event::Product(ProductEvent::Updated, next.clone()));
    Ok(Answer::Product(next))
}

/// Archives the product; archiving an archived product changes nothing.
pub(super) fn archive(
    id: &ProductId,
    expected: Version,
    world: &mut World,
    effects: &mut Effects,
    now: Timestamp,
) -> Outcome {
    let product = current(world, id, expected)?;
    if product.archived {
        return Ok(Answer::Product(product.clone()));
    }
    let archived = Product {
        archived: true,
        version: Version(product.version.0 + 1),
        updated_at: now,
        ..product.clone()
    };
    effects.audit(
        "product.archived",
        id.as_str(),
        Some(Event::Product(ProductEvent::Updated, product.clone())),
        Some(Event::Product(ProductEvent::Archived, archived.clone())),
    );
    world.products.insert(id.clone(), archived.clone());
    effects.product_changed(id);
    effects
        .events
        .push(Event::Product(ProductEvent::Archived, archived.clone()));
    Ok(Answer::Product(archived))
}
