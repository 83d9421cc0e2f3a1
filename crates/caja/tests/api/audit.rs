//! The audit log: every admin action leaves one row, with the key that did it.

use serde_json::{json, Value};

use crate::helpers::{send, spawn_app, Backend};
use crate::migrate::caja;

on_both_engines!(every_admin_action_leaves_one_audit_row_with_its_key);

async fn every_admin_action_leaves_one_audit_row_with_its_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin_id = app.store.list_keys().await.unwrap()[0].id.to_string();
    let p = app.product("AUD", 5).await;
    let id = p["id"].as_str().unwrap().to_owned();
    let patched = send(
        app.patch(
            &format!("/v1/products/{id}"),
            &json!({"price": {"amount": 999, "currency": "MXN"}}),
        )
        .header("if-match", "\"1\"")
        .header("x-request-id", "req-audit-patch"),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let moved = send(app.post_idem(
        &format!("/v1/products/{id}/stock-movements"),
        "aud-move",
        &json!({"delta": -1, "reason": "correction", "note": "counted"}),
    ))
    .await;
    assert_eq!(moved.status, 201);
    let order = app.order("aud-order", &[(&id, 1)]).await.body;
    let oid = order["id"].as_str().unwrap().to_owned();
    let paid = send(app.post_idem(
        &format!("/v1/orders/{oid}/payments"),
        "aud-pay",
        &json!({"method": "cash", "amount": order["total"]}),
    ))
    .await;
    assert_eq!(paid.status, 200);
    let refunded = send(app.post_idem(
        &format!("/v1/orders/{oid}/refund"),
        "aud-refund",
        &json!({}),
    ))
    .await;
    assert_eq!(refunded.status, 200);
    let archived = send(
        app.delete(&format!("/v1/products/{id}"))
            .header("if-match", "\"4\""),
    )
    .await;
    assert_eq!(archived.status, 200, "{}", archived.body);
    for on in [true, false] {
        let r = send(
            app.client
                .put(app.url("/v1/maintenance"))
                .bearer_auth(&app.admin_key)
                .json(&json!({"on": on})),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    // From the command line: a key created and revoked.
    let created = caja(&[
        "keys",
        "create",
        "--role",
        "clerk",
        "--name",
        "till 2",
        "--database-url",
        &app.db.url,
    ]);
    assert!(created.status.success());
    let clerk = app
        .store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name == "till 2")
        .unwrap();
    let revoked = caja(&[
        "keys",
        "revoke",
        clerk.id.as_str(),
        "--database-url",
        &app.db.url,
    ]);
    assert!(revoked.status.success());

    let log = send(app.get("/v1/audit?limit=200")).await;
    assert_eq!(log.status, 200, "{}", log.body);
    let rows: Vec<Value> = log.body["data"].as_array().unwrap().clone();
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    let expected = [
        "product.updated",
        "stock.moved",
        "order.refunded",
        "product.archived",
        "maintenance.on",
        "maintenance.off",
        "key.created",
        "key.revoked",
    ];
    // Before any of this: the migrations that made the audit log (only from the one that
    // created it), and the app's own admin key.
    let first = actions
        .iter()
        .position(|a| *a != "migration.applied")
        .unwrap();
    assert!(
        first >= 1,
        "the audit log's own migration is recorded: {actions:?}"
    );
    assert_eq!(actions[first], "key.created");
    assert_eq!(actions[first + 1..], expected, "{actions:?}");
    for r in &rows {
        match r["action"].as_str().unwrap() {
            "key.created" | "key.revoked" | "migration.applied" => {
                assert!(r["actor"].as_str().unwrap().starts_with("cli:"), "{r}")
            }
            _ => assert_eq!(r["actor"], admin_id, "{r}"),
        }
    }
    let patch_row = rows
        .iter()
        .find(|r| r["action"] == "product.updated")
        .unwrap();
    assert_eq!(patch_row["request_id"], "req-audit-patch");
    assert_eq!(patch_row["before"]["price"]["amount"], 4550);
    assert_eq!(patch_row["after"]["price"]["amount"], 999);
    assert_eq!(patch_row["target"], id);
    let refund_row = rows
        .iter()
        .find(|r| r["action"] == "order.refunded")
        .unwrap();
    assert_eq!(refund_row["before"]["status"], "paid");
    assert_eq!(refund_row["after"]["status"], "refunded");
    // Filters, and clerks may not read it.
    let only = send(app.get(&format!("/v1/audit?target={id}"))).await;
    assert_eq!(only.body["data"].as_array().unwrap().len(), 3);
    let clerk_key = app.key(caja_core::auth::Role::Clerk).await;
    send(app.client.get(app.url("/v1/audit")).bearer_auth(&clerk_key))
        .await
        .assert_problem(403, "forbidden");
    // The command line prints the same log.
    let printed = caja(&[
        "audit",
        "--action",
        "order.refunded",
        "--full",
        "--database-url",
        &app.db.url,
    ]);
    let out = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.status.success(), "{out}");
    assert!(
        out.contains("order.refunded") && out.contains(&admin_id) && out.contains("before:"),
        "{out}"
    );
    // A checkout is not an admin action.
    assert!(!actions.contains(&"order.created"));
}
