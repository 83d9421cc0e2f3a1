//! Tabs: time charges, concurrent tills, closing exactly once, voids, and every till
//! seeing every change live.

use caja_core::auth::Role;
use chrono::Duration;
use serde_json::{json, Value};

use crate::helpers::{send, spawn_app, Backend, Reply, TestApp};
use crate::live::{events_until, head, page_through, subscribe};

/// The seq of the newest tab event (the feed's head may be a product's).
async fn last_tab_event(app: &TestApp) -> i64 {
    let (events, _) = page_through(app, 0, "tabs").await;
    events.last().map_or(0, |e| e["seq"].as_i64().unwrap())
}

on_both_engines!(
    time_charges_are_exact_for_every_rounding_case,
    two_tills_adding_to_one_tab_at_once_reserve_every_item_once,
    closing_twice_yields_one_order,
    a_resource_holds_one_open_tab_and_frees_it_on_close,
    items_come_off_with_if_match_and_void_gives_everything_back,
    a_closed_tabs_order_lives_the_normal_order_life,
    every_till_sees_every_tab_change_in_order_and_misses_nothing_after_a_reconnect,
    tabs_are_listed_by_status_and_resource,
    caja_check_names_each_broken_tab_invariant,
);

/// The slack taken off the last stretch of every timed case: the test clock is the wall
/// clock plus what the test added, so real time passes too, and a case must not cross a
/// billing boundary because the machine was slow for a moment.
const SLACK_SECONDS: i64 = 30;

fn key(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new())
}

async fn open(app: &TestApp, body: Value) -> Reply {
    send(app.post_idem("/v1/tabs", &key("open"), &body)).await
}

async fn open_id(app: &TestApp, body: Value) -> String {
    let r = open(app, body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn add(app: &TestApp, tab: &str, product: &str, quantity: i64) -> Reply {
    send(app.post_idem(
        &format!("/v1/tabs/{tab}/items"),
        &key("item"),
        &json!({"product_id": product, "quantity": quantity}),
    ))
    .await
}

async fn act(app: &TestApp, tab: &str, action: &str) -> Reply {
    send(app.post_idem(
        &format!("/v1/tabs/{tab}/{action}"),
        &key(action),
        &json!({}),
    ))
    .await
}

async fn product(app: &TestApp, sku: &str, stock: i64) -> String {
    app.product(sku, stock).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn minutes(m: i64) -> Duration {
    Duration::minutes(m)
}

async fn time_charges_are_exact_for_every_rounding_case(backend: Backend) {
    let app = spawn_app(backend).await;
    // (rate per hour, rounding unit/minimum/grace, running and paused stretches in minutes
    // (negative: paused), minutes billed, amount billed)
    type Case = (i64, (i64, i64, i64), &'static [i64], i64, i64);
    let cases: &[Case] = &[
        (6000, (1, 0, 0), &[95], 95, 9500),
        (6000, (15, 60, 5), &[4], 0, 0),
        (6000, (15, 60, 5), &[30], 60, 6000),
        (6000, (15, 60, 5), &[64], 60, 6000),
        (6000, (15, 60, 5), &[66], 75, 7500),
        (6000, (1, 0, 0), &[20, -40, 25], 45, 4500),
        (6000, (30, 0, 0), &[10, -120, 10, -5, 11], 60, 6000),
        // 25 minutes at 1.00 an hour is 41.67: 42, to the minor unit.
        (100, (1, 0, 0), &[25], 25, 42),
        // A night session: 23 hours, whatever midnight or a clock change does to the wall.
        (1000, (60, 0, 0), &[23 * 60], 23 * 60, 23_000),
    ];
    for (i, &(rate, (unit, minimum, grace), stretches, billed, amount)) in cases.iter().enumerate()
    {
        let tab = open_id(
            &app,
            json!({
                "label": format!("case {i}"),
                "rate": {"amount": rate, "currency": "MXN"},
                "rounding": {"unit_minutes": unit, "minimum_minutes": minimum, "grace_minutes": grace},
            }),
        )
        .await;
        let last = stretches.len() - 1;
        for (n, &stretch) in stretches.iter().enumerate() {
            if stretch < 0 {
                act(&app, &tab, "pause").await;
                app.clock.advance(minutes(-stretch));
                let r = act(&app, &tab, "resume").await;
                assert_eq!(r.status, 200, "{}", r.body);
            } else if n == last {
                app.clock
                    .advance(minutes(stretch) - Duration::seconds(SLACK_SECONDS));
            } else {
                app.clock.advance(minutes(stretch));
            }
        }
        // What the tab would bill now is what closing it bills.
        let shown = send(app.get(&format!("/v1/tabs/{tab}"))).await;
        assert_eq!(shown.body["due"]["time"]["minutes"], billed, "case {i}");
        let order = act(&app, &tab, "close").await;
        assert_eq!(order.status, 201, "case {i}: {}", order.body);
        let lines = order.body["lines"].as_array().unwrap();
        assert_eq!(lines.len(), 1, "case {i}: only the time line");
        assert_eq!(lines[0]["kind"], "time");
        assert_eq!(lines[0]["minutes"], billed, "case {i}");
        assert_eq!(lines[0]["line_total"]["amount"], amount, "case {i}");
        assert_eq!(lines[0]["rate"]["amount"], rate);
        assert_eq!(order.body["total"]["amount"], amount, "case {i}");
        assert_eq!(order.body["tab_id"], tab.as_str());
    }
    app.assert_books_balance().await;
}

async fn two_tills_adding_to_one_tab_at_once_reserve_every_item_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let coffee = product(&app, "COFFEE", 500).await;
    let tab = open_id(&app, json!({"label": "Big table", "resource": "table-1"})).await;
    let tills = [app.key(Role::Clerk).await, app.key(Role::Clerk).await];
    let mut tasks = Vec::new();
    for (t, till) in tills.iter().enumerate() {
        for n in 0..50 {
            let client = app.client.clone();
            let url = app.url(&format!("/v1/tabs/{tab}/items"));
            let till = till.clone();
            let coffee = coffee.clone();
            tasks.push(tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(till)
                    .header("idempotency-key", format!("till{t}-{n}"))
                    .json(&json!({"product_id": coffee, "quantity": 1}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 201);
    }
    let shown = send(app.get(&format!("/v1/tabs/{tab}"))).await;
    assert_eq!(shown.body["items"].as_array().unwrap().len(), 100);
    assert_eq!(
        shown.header("etag"),
        Some("\"101\""),
        "one version per item"
    );
    assert_eq!(app.stock(&coffee).await, 400);
    app.assert_books_balance().await;

    let order = act(&app, &tab, "close").await;
    assert_eq!(order.status, 201, "{}", order.body);
    let lines = order.body["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "a tab with no rate has no time line");
    assert_eq!(lines[0]["quantity"], 100, "the items, merged");
    assert_eq!(order.body["subtotal"]["amount"], 100 * 4550);
    assert_eq!(app.stock(&coffee).await, 400, "closing moves no stock");
    app.assert_books_balance().await;
}

async fn closing_twice_yields_one_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = product(&app, "SANDWICH", 10).await;

    // The same key twice: the same order, replayed.
    let tab = open_id(&app, json!({"label": "Ana"})).await;
    add(&app, &tab, &p, 2).await;
    let close = format!("/v1/tabs/{tab}/close");
    let tip = json!({"tip": {"amount": 1000, "currency": "MXN"}});
    let first = send(app.post_idem(&close, "close-1", &tip)).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["total"]["amount"], 2 * 4550 + 1000);
    let again = send(app.post_idem(&close, "close-1", &tip)).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    // Another key: refused, naming the order it already became.
    let other = send(app.post_idem(&close, "close-2", &tip)).await;
    other.assert_problem(409, "invalid-transition");
    assert_eq!(other.body["order_id"], first.body["id"]);
    assert_eq!(other.body["current_status"], "closed");
    // Nothing can be added after the close.
    add(&app, &tab, &p, 1)
        .await
        .assert_problem(409, "invalid-transition");

    // Two keys at once: one order.
    let tab = open_id(&app, json!({"label": "Luis"})).await;
    add(&app, &tab, &p, 1).await;
    let close = format!("/v1/tabs/{tab}/close");
    let (a, b) = tokio::join!(
        send(app.post_idem(&close, "race-a", &json!({}))),
        send(app.post_idem(&close, "race-b", &json!({}))),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{} / {}", a.body, b.body);
    let (won, lost) = if a.status == 201 { (a, b) } else { (b, a) };
    assert_eq!(lost.body["order_id"], won.body["id"]);
    let orders = send(app.get("/v1/orders?limit=200")).await;
    let from_tab = orders.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["tab_id"] == tab.as_str())
        .count();
    assert_eq!(from_tab, 1);
    app.assert_books_balance().await;
}

async fn a_resource_holds_one_open_tab_and_frees_it_on_close(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = open_id(&app, json!({"label": "Ana", "resource": "desk-3"})).await;
    let busy = open(&app, json!({"label": "Luis", "resource": "desk-3"})).await;
    busy.assert_problem(409, "resource-busy");
    assert_eq!(busy.body["tab_id"], first.as_str());
    // Two at once on a free desk: one wins.
    let (a, b) = tokio::join!(
        open(&app, json!({"label": "A", "resource": "desk-4"})),
        open(&app, json!({"label": "B", "resource": "desk-4"})),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
    // Closing frees the desk. A tab with nothing to charge cannot be closed.
    act(&app, &first, "close")
        .await
        .assert_problem(409, "empty-tab");
    send(app.post_idem(
        &format!("/v1/tabs/{first}/void"),
        "void-first",
        &json!({"reason": "opened by mistake"}),
    ))
    .await;
    open_id(&app, json!({"label": "Luis", "resource": "desk-3"})).await;
    // Bad input is refused clearly.
    open(&app, json!({"label": " "}))
        .await
        .assert_problem(422, "invalid-field");
    open(&app, json!({"label": "x", "resource": "desk 3"}))
        .await
        .assert_problem(422, "invalid-field");
    open(
        &app,
        json!({"label": "x", "rounding": {"unit_minutes": 0, "minimum_minutes": 0, "grace_minutes": 0}}),
    )
    .await
    .assert_problem(422, "invalid-field");
    open(
        &app,
        json!({"label": "x", "rate": {"amount": 100, "currency": "USD"}}),
    )
    .await
    .assert_problem(422, "currency-mismatch");
    app.assert_books_balance().await;
}

async fn items_come_off_with_if_match_and_void_gives_everything_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = product(&app, "BAGEL", 5).await;
    let tab = open_id(&app, json!({"label": "Ana"})).await;
    let added = add(&app, &tab, &p, 2).await;
    assert_eq!(added.status, 201, "{}", added.body);
    add(&app, &tab, &p, 4)
        .await
        .assert_problem(409, "out-of-stock");
    let added = add(&app, &tab, &p, 3).await;
    assert_eq!(app.stock(&p).await, 0);
    let etag = added.header("etag").unwrap().to_owned();
    let item = added.body["items"][0]["id"].as_str().unwrap().to_owned();

    let path = format!("/v1/tabs/{tab}/items/{item}");
    send(app.delete(&path))
        .await
        .assert_problem(428, "precondition-required");
    send(app.delete(&path).header("if-match", "\"1\""))
        .await
        .assert_problem(412, "precondition-failed");
    let removed = send(app.delete(&path).header("if-match", &etag)).await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert!(removed.body["items"][0]["removed_at"].is_string());
    assert_eq!(app.stock(&p).await, 2);
    let etag = removed.header("etag").unwrap().to_owned();
    send(app.delete(&path).header("if-match", &etag))
        .await
        .assert_problem(404, "not-found");

    // A clerk may not void; an admin may, with a reason, and every item comes back.
    let clerk = app.key(Role::Clerk).await;
    let void = format!("/v1/tabs/{tab}/void");
    let r = send(
        app.client
            .post(app.url(&void))
            .bearer_auth(&clerk)
            .header("idempotency-key", "clerk-void")
            .json(&json!({"reason": "no"})),
    )
    .await;
    r.assert_problem(403, "forbidden");
    send(app.post_idem(&void, "void-0", &json!({"reason": " "})))
        .await
        .assert_problem(422, "invalid-field");
    let voided = send(app.post_idem(&void, "void-1", &json!({"reason": "walked out"}))).await;
    assert_eq!(voided.status, 200, "{}", voided.body);
    assert_eq!(voided.body["status"], "void");
    assert!(voided.body["due"].is_null());
    assert_eq!(app.stock(&p).await, 5);
    act(&app, &tab, "close")
        .await
        .assert_problem(409, "invalid-transition");
    let audit = send(app.get("/v1/audit?action=tab.voided")).await;
    assert_eq!(audit.body["data"][0]["target"], tab.as_str());
    app.assert_books_balance().await;
}

async fn a_closed_tabs_order_lives_the_normal_order_life(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = product(&app, "JUICE", 3).await;

    // Expired unpaid: the tab's stock comes back through the order.
    let tab = open_id(
        &app,
        json!({"label": "Ana", "rate": {"amount": 6000, "currency": "MXN"}}),
    )
    .await;
    add(&app, &tab, &p, 2).await;
    app.clock
        .advance(minutes(60) - Duration::seconds(SLACK_SECONDS));
    let order = act(&app, &tab, "close").await;
    assert_eq!(order.status, 201, "{}", order.body);
    assert_eq!(order.body["status"], "pending_payment");
    let lines = order.body["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "product");
    assert_eq!(lines[1]["kind"], "time");
    assert_eq!(order.body["subtotal"]["amount"], 2 * 4550 + 6000);
    assert_eq!(app.stock(&p).await, 1);
    app.clock.advance(minutes(16));
    let order_id = order.body["id"].as_str().unwrap();
    let mut expired = false;
    for _ in 0..200 {
        let o = send(app.get(&format!("/v1/orders/{order_id}"))).await;
        if o.body["status"] == "expired" {
            expired = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(expired, "the sweeper expires a tab's order like any other");
    assert_eq!(app.stock(&p).await, 3);
    app.assert_books_balance().await;

    // Paid: the money is the order's total.
    let tab = open_id(&app, json!({"label": "Luis"})).await;
    add(&app, &tab, &p, 1).await;
    let order = act(&app, &tab, "close").await;
    let pay = format!("/v1/orders/{}/payments", order.body["id"].as_str().unwrap());
    let paid = send(app.post_idem(
        &pay,
        "pay-tab",
        &json!({"method": "cash", "amount": order.body["total"]}),
    ))
    .await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    let shown = send(app.get(&format!("/v1/tabs/{tab}"))).await;
    assert_eq!(shown.body["status"], "closed");
    assert_eq!(shown.body["order_id"], order.body["id"]);
    assert_eq!(shown.body["due"]["subtotal"], order.body["subtotal"]);
    app.assert_books_balance().await;
}

async fn every_till_sees_every_tab_change_in_order_and_misses_nothing_after_a_reconnect(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let p = product(&app, "TEA", 10).await;
    let clerk = app.key(Role::Clerk).await;
    let start = head(&app).await;
    let mut till = subscribe(&app.base, &clerk, &["tabs"], start).await;

    // Another till opens a tab, adds, pauses, resumes and closes it.
    let tab = open_id(&app, json!({"label": "Desk 5", "resource": "desk-5"})).await;
    add(&app, &tab, &p, 1).await;
    act(&app, &tab, "pause").await;
    act(&app, &tab, "resume").await;
    let until = last_tab_event(&app).await;
    let seen = events_until(&mut till, until).await;
    let kinds: Vec<&str> = seen.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["tab.opened", "tab.item_added", "tab.paused", "tab.resumed"]
    );
    assert!(seen.iter().all(|e| e["data"]["id"] == tab.as_str()));
    assert_eq!(seen[1]["data"]["items"][0]["product_id"], p.as_str());
    let last_applied = seen.last().unwrap()["seq"].as_i64().unwrap();
    drop(till);

    // While the till is away: an item comes off, another tab opens, the first closes.
    let shown = send(app.get(&format!("/v1/tabs/{tab}"))).await;
    let item = shown.body["items"][0]["id"].as_str().unwrap();
    send(
        app.delete(&format!("/v1/tabs/{tab}/items/{item}"))
            .header("if-match", shown.header("etag").unwrap()),
    )
    .await;
    add(&app, &tab, &p, 2).await;
    let other = open_id(&app, json!({"label": "Desk 6", "resource": "desk-6"})).await;
    act(&app, &tab, "close").await;
    let until = last_tab_event(&app).await;

    let mut till = subscribe(&app.base, &clerk, &["tabs"], last_applied).await;
    let caught_up = events_until(&mut till, until).await;
    let kinds: Vec<(&str, &str)> = caught_up
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["data"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("tab.item_removed", tab.as_str()),
            ("tab.item_added", tab.as_str()),
            ("tab.opened", other.as_str()),
            ("tab.closed", tab.as_str()),
        ]
    );
    // The feed holds exactly what the till saw, each once.
    let (feed, _) = page_through(&app, start, "tabs").await;
    let seqs: Vec<i64> = seen
        .iter()
        .chain(&caught_up)
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    let feed_seqs: Vec<i64> = feed.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, feed_seqs);
    // One tab's topic carries only that tab.
    let (one, _) = page_through(&app, start, &format!("tab:{other}")).await;
    assert_eq!(one.len(), 1);
    app.assert_books_balance().await;
}

async fn tabs_are_listed_by_status_and_resource(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = product(&app, "WATER", 10).await;
    let a = open_id(&app, json!({"label": "A", "resource": "desk-1"})).await;
    let b = open_id(&app, json!({"label": "B", "resource": "desk-2"})).await;
    add(&app, &b, &p, 1).await;
    act(&app, &b, "close").await;
    let open_tabs = send(app.get("/v1/tabs?status=open")).await;
    let ids: Vec<&str> = open_tabs.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a.as_str()]);
    let on_desk = send(app.get("/v1/tabs?resource=desk-2")).await;
    assert_eq!(on_desk.body["data"][0]["id"], b.as_str());
    assert_eq!(on_desk.body["data"][0]["status"], "closed");
    let page = send(app.get("/v1/tabs?limit=1")).await;
    assert_eq!(page.body["data"].as_array().unwrap().len(), 1);
    let next = page.body["next_cursor"].as_str().unwrap();
    let rest = send(app.get(&format!("/v1/tabs?limit=1&after={next}"))).await;
    assert_eq!(rest.body["data"][0]["id"], b.as_str());
    send(app.get("/v1/tabs?status=closing"))
        .await
        .assert_problem(400, "invalid-query");
    send(app.get("/v1/tabs?after=ord_1"))
        .await
        .assert_problem(400, "invalid-cursor");
    send(app.get("/v1/tabs/tab_nope"))
        .await
        .assert_problem(404, "not-found");
}

/// Runs one statement straight against the app's database, behind caja's back.
async fn tamper(app: &TestApp, sql: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.db.url).await.unwrap();
    sqlx::query(sql).execute(&pool).await.unwrap();
    pool.close().await;
}

async fn broken(app: &TestApp) -> Vec<&'static str> {
    let (_, violations) = app.store.check().await.unwrap();
    violations.iter().map(|v| v.invariant).collect()
}

async fn caja_check_names_each_broken_tab_invariant(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = product(&app, "CAKE", 10).await;
    let open_tab = open_id(&app, json!({"label": "Open"})).await;
    add(&app, &open_tab, &p, 1).await;
    let closed = open_id(
        &app,
        json!({"label": "Closed", "rate": {"amount": 6000, "currency": "MXN"}}),
    )
    .await;
    add(&app, &closed, &p, 2).await;
    let order = act(&app, &closed, "close").await;
    let order = order.body["id"].as_str().unwrap().to_owned();
    app.assert_books_balance().await;

    // An item that says more than the tab reserved.
    tamper(
        &app,
        &format!("UPDATE tab_items SET quantity = quantity + 1 WHERE tab_id = '{open_tab}'"),
    )
    .await;
    assert!(broken(&app)
        .await
        .contains(&"every tab item was reserved once, and released when taken off or voided"));
    tamper(
        &app,
        &format!("UPDATE tab_items SET quantity = quantity - 1 WHERE tab_id = '{open_tab}'"),
    )
    .await;

    // A closed tab's order whose lines are not its items.
    tamper(
        &app,
        &format!("UPDATE order_lines SET quantity = 1, line_total = unit_price WHERE order_id = '{order}'"),
    )
    .await;
    assert!(broken(&app)
        .await
        .contains(&"a closed tab's order lines are its items"));
    tamper(
        &app,
        &format!("UPDATE order_lines SET quantity = 2, line_total = 2 * unit_price WHERE order_id = '{order}'"),
    )
    .await;

    // A time line at another rate.
    tamper(
        &app,
        &format!("UPDATE orders SET time_rate = time_rate + 1 WHERE id = '{order}'"),
    )
    .await;
    assert!(broken(&app).await.contains(
        &"a closed tab's order has its time line exactly when the tab has a rate, at that rate"
    ));
    tamper(
        &app,
        &format!("UPDATE orders SET time_rate = time_rate - 1 WHERE id = '{order}'"),
    )
    .await;

    // A tab that says it is open though its order exists.
    tamper(
        &app,
        &format!("UPDATE tabs SET status = 'open' WHERE id = '{closed}'"),
    )
    .await;
    assert!(broken(&app)
        .await
        .contains(&"every closed tab has exactly one order, and only closed tabs have one"));
    tamper(
        &app,
        &format!("UPDATE tabs SET status = 'closed' WHERE id = '{closed}'"),
    )
    .await;
    app.assert_books_balance().await;
}
