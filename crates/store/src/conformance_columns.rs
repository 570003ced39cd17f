//! Conformance of the typed columns (`column.rs`) on every backend: every name a type has is
//! stored as that name and read back as the same value, lists are stored as the compact JSON
//! arrays earlier versions wrote, and a stored value the type does not know (written by hand,
//! or by a newer version) makes the read an error naming the value, not a panic and not a
//! default.

use techpass_domain::client::AccessPolicy;
use techpass_domain::device::DeviceStatus;
use techpass_domain::gate::UserStatus;
use techpass_domain::tenancy::{DeliveryStatus, InvitationStatus, TenantStatus};

use crate::conformance::{client, grant, tenant, user};
use crate::conformance_device::code;
use crate::conformance_outbox::{delivery, webhook};
use crate::conformance_tenancy::invitation;
use crate::testing::{Backend, TestDatabase};
use crate::StoreError;

crate::backend_tests!(
    "store::conformance_columns",
    every_status_is_stored_by_its_name,
    an_unknown_stored_status_is_an_error_naming_it,
    lists_are_stored_as_json_arrays,
    a_stored_list_that_is_not_a_json_list_is_an_error_naming_it,
);

/// Runs one statement outside the store, as an operator or a newer version might.
async fn execute(db: &TestDatabase, sql: &str) {
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

/// The text a column holds, read outside the store.
async fn stored(db: &TestDatabase, sql: &str) -> String {
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            let text = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            text
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let text = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            text
        }
    }
}

/// `result` is a backend error whose message names `value`.
fn names<T: std::fmt::Debug>(result: Result<T, StoreError>, value: &str) {
    match result {
        Err(StoreError::Backend(message)) => {
            assert!(message.contains(value), "{message:?} names {value:?}")
        }
        other => panic!("expected a backend error naming {value:?}, got {other:?}"),
    }
}

async fn every_status_is_stored_by_its_name(db: &TestDatabase) {
    let store = db.store().await;
    store.upsert_user(&user("u1")).await.unwrap();
    for status in [
        UserStatus::Unregistered,
        UserStatus::Registered,
        UserStatus::Active,
        UserStatus::Suspended,
        UserStatus::Disabled,
        UserStatus::Expired,
        UserStatus::Terminated,
    ] {
        assert!(store.set_user_status("u1", status, None).await.unwrap());
        assert_eq!(store.get_user("u1").await.unwrap().unwrap().status, status);
        let text = stored(db, "SELECT status FROM users WHERE id = 'u1'").await;
        assert_eq!(text, status.as_str());
    }
    for (i, status) in TenantStatus::ALL.into_iter().enumerate() {
        let mut t = tenant(&format!("t{i}"), 1);
        t.status = status;
        store.insert_tenant(&t).await.unwrap();
        assert_eq!(store.get_tenant(&t.id).await.unwrap(), Some(t));
    }
    for (i, status) in InvitationStatus::ALL.into_iter().enumerate() {
        let mut inv = invitation(&format!("i{i}"), "t0", &format!("p{i}@x.sg"), 1);
        inv.status = status;
        store.insert_invitation(&inv).await.unwrap();
        assert_eq!(store.get_invitation(&inv.id).await.unwrap(), Some(inv));
    }
    for policy in AccessPolicy::ALL {
        let mut app = client(&format!("c-{}", policy.as_str()));
        app.access_policy = policy;
        store.insert_client(&app, &[]).await.unwrap();
        assert_eq!(store.get_client(&app.client_id).await.unwrap(), Some(app));
    }
    store.insert_client(&client("c1"), &[]).await.unwrap();
    for (i, status) in DeviceStatus::ALL.into_iter().enumerate() {
        let mut c = code(&format!("d{i}"), &format!("u{i}"), 1_000);
        c.status = status;
        store.insert_device_code(&c, 100).await.unwrap();
        assert_eq!(
            store.get_device_code(&c.device_code_hash).await.unwrap(),
            Some(c)
        );
    }
    store.insert_webhook(&webhook("w1", "t0", 1)).await.unwrap();
    store
        .insert_delivery(&delivery("x1", "w1", 1))
        .await
        .unwrap();
    for status in DeliveryStatus::ALL {
        store
            .record_delivery_attempt("x1", status, None, None, 5, 5)
            .await
            .unwrap();
        let listed = store.deliveries_of_webhook("w1", 10, 0).await.unwrap();
        assert_eq!(listed[0].status, status);
    }
}

async fn an_unknown_stored_status_is_an_error_naming_it(db: &TestDatabase) {
    let store = db.store().await;
    store.upsert_user(&user("u1")).await.unwrap();
    execute(db, "UPDATE users SET status = 'archived' WHERE id = 'u1'").await;
    names(store.get_user("u1").await, "archived");
    names(
        store.find_users_by_email("u1@agency.gov.sg").await,
        "archived",
    );
    names(store.search_users("", 10, 0).await, "archived");
    // And where the token path reads the person with their code or refresh token.
    let mut c = crate::conformance::code("k1");
    c.user_id = "u1".into();
    store.insert_code(&c).await.unwrap();
    names(store.get_code_with_user("k1").await, "archived");
    let mut g = grant("g1", None);
    g.user_id = Some("u1".into());
    store.insert_grant(&g).await.unwrap();
    store
        .insert_refresh_token(&crate::conformance_rows::refresh("r1", "g1"))
        .await
        .unwrap();
    names(store.get_refresh_token_with_grant("r1").await, "archived");

    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    execute(db, "UPDATE tenants SET status = 'frozen' WHERE id = 't1'").await;
    names(store.get_tenant("t1").await, "frozen");
    names(store.list_tenants(None, 10, 0).await, "frozen");

    store
        .insert_invitation(&invitation("i1", "t1", "p@x.sg", 1))
        .await
        .unwrap();
    execute(db, "UPDATE invitations SET status = 'lost' WHERE id = 'i1'").await;
    names(store.get_invitation("i1").await, "lost");

    store.insert_client(&client("c1"), &[]).await.unwrap();
    execute(
        db,
        "UPDATE clients SET access_policy = 'everyone' WHERE client_id = 'c1'",
    )
    .await;
    names(store.get_client("c1").await, "everyone");

    store
        .insert_device_code(&code("d1", "u1", 1_000), 100)
        .await
        .unwrap();
    execute(
        db,
        "UPDATE device_codes SET status = 'waiting' WHERE device_code_hash = 'd1'",
    )
    .await;
    names(store.get_device_code("d1").await, "waiting");

    store.insert_webhook(&webhook("w1", "t1", 1)).await.unwrap();
    store
        .insert_delivery(&delivery("x1", "w1", 1))
        .await
        .unwrap();
    execute(
        db,
        "UPDATE webhook_deliveries SET status = 'bounced' WHERE id = 'x1'",
    )
    .await;
    names(store.deliveries_of_webhook("w1", 10, 0).await, "bounced");
}

async fn lists_are_stored_as_json_arrays(db: &TestDatabase) {
    let store = db.store().await;
    store.upsert_user(&user("u1")).await.unwrap();
    let mut app = client("c1");
    app.redirect_uris = vec![
        "https://a.example/cb".into(),
        r#"https://b.example/cb?q="x"&r=\"#.into(),
    ];
    app.post_logout_redirect_uris = vec![];
    app.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    store.insert_client(&app, &[]).await.unwrap();
    assert_eq!(store.get_client("c1").await.unwrap(), Some(app));
    // The exact text earlier versions wrote (serde_json, compact), so old rows read the same.
    let columns = "SELECT redirect_uris || ' ' || post_logout_redirect_uris || ' ' || grant_types
                   FROM clients WHERE client_id = 'c1'";
    assert_eq!(
        stored(db, columns).await,
        r#"["https://a.example/cb","https://b.example/cb?q=\"x\"&r=\\"] [] ["authorization_code","refresh_token"]"#
    );
    // Text written by hand or by an older version, spaced differently, reads as its list.
    execute(
        db,
        r#"UPDATE clients SET grant_types = '[ "client_credentials" ]' WHERE client_id = 'c1'"#,
    )
    .await;
    let read = store.get_client("c1").await.unwrap().unwrap();
    assert_eq!(read.grant_types, vec!["client_credentials"]);

    let mut g = grant("g1", None);
    g.amr = vec!["pwd".into(), "mfa".into()];
    store.insert_grant(&g).await.unwrap();
    assert_eq!(store.get_grant("g1").await.unwrap(), Some(g));
    assert_eq!(
        stored(db, "SELECT amr FROM grants WHERE id = 'g1'").await,
        r#"["pwd","mfa"]"#
    );

    // A device code's amr is NULL until approved.
    let pending = code("d1", "u1", 1_000);
    store.insert_device_code(&pending, 100).await.unwrap();
    assert_eq!(store.get_device_code("d1").await.unwrap(), Some(pending));

    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    let mut hook = webhook("w1", "t1", 1);
    hook.events = vec!["user-invited".into(), "user-deleted".into()];
    store.insert_webhook(&hook).await.unwrap();
    assert_eq!(store.get_webhook("w1").await.unwrap(), Some(hook));
    assert_eq!(
        stored(db, "SELECT events FROM webhooks WHERE id = 'w1'").await,
        r#"["user-invited","user-deleted"]"#
    );
}

async fn a_stored_list_that_is_not_a_json_list_is_an_error_naming_it(db: &TestDatabase) {
    let store = db.store().await;
    store.upsert_user(&user("u1")).await.unwrap();
    store.insert_client(&client("c1"), &[]).await.unwrap();
    execute(
        db,
        "UPDATE clients SET grant_types = 'authorization_code' WHERE client_id = 'c1'",
    )
    .await;
    names(store.get_client("c1").await, "authorization_code");

    store.insert_grant(&grant("g1", None)).await.unwrap();
    execute(db, r#"UPDATE grants SET amr = '{"pwd":1}' WHERE id = 'g1'"#).await;
    names(store.get_grant("g1").await, r#"{\"pwd\":1}"#);

    store
        .insert_device_code(&code("d1", "u1", 1_000), 100)
        .await
        .unwrap();
    execute(
        db,
        "UPDATE device_codes SET amr = 'pwd mfa' WHERE device_code_hash = 'd1'",
    )
    .await;
    names(store.get_device_code("d1").await, "pwd mfa");

    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    store.insert_webhook(&webhook("w1", "t1", 1)).await.unwrap();
    execute(db, "UPDATE webhooks SET events = '[1, 2]' WHERE id = 'w1'").await;
    names(store.get_webhook("w1").await, "[1, 2]");
}
