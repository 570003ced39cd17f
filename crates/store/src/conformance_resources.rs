//! Conformance of API resources and their grants ([`crate::ResourceStore`]), on every backend.

use std::sync::Arc;

use crate::conformance::{client, tenant};
use crate::testing::TestDatabase;
use crate::{ApiResourceRecord, ResourceGrantRecord, Store, StoreError};

crate::backend_tests!(
    "store::conformance_resources",
    a_resource_is_found_by_id_and_identifier_and_listed_by_tenant,
    an_identifier_has_one_owner,
    a_grant_is_replaced_and_withdrawn,
    deleting_a_resource_deletes_its_grants,
);

/// Tenants t1 and t2, app c1 of t1.
async fn setup(db: &TestDatabase) -> Arc<dyn Store> {
    let store = db.store().await;
    for t in ["t1", "t2"] {
        store.insert_tenant(&tenant(t, 1)).await.unwrap();
    }
    let mut app = client("c1");
    app.tenant_id = Some("t1".into());
    store.insert_client(&app, &[]).await.unwrap();
    store
}

fn resource(id: &str, tenant_id: &str, identifier: &str) -> ApiResourceRecord {
    ApiResourceRecord {
        id: id.into(),
        tenant_id: tenant_id.into(),
        identifier: identifier.into(),
        name: format!("Resource {id}"),
        scopes: r#"["read","write"]"#.into(),
        created_at: 5,
        created_by: "u1".into(),
    }
}

fn grant(resource_id: &str, scopes: &str, at: i64) -> ResourceGrantRecord {
    ResourceGrantRecord {
        resource_id: resource_id.into(),
        client_id: "c1".into(),
        scopes: scopes.into(),
        granted_at: at,
        granted_by: "u1".into(),
    }
}

async fn a_resource_is_found_by_id_and_identifier_and_listed_by_tenant(db: &TestDatabase) {
    let store = setup(db).await;
    let b = resource("r2", "t1", "https://b.example/");
    let a = resource("r1", "t1", "https://a.example/");
    let other = resource("r3", "t2", "https://c.example/");
    for r in [&b, &a, &other] {
        store.insert_resource(r).await.unwrap();
    }
    assert_eq!(store.get_resource("r1").await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_resource("nope").await.unwrap(), None);
    assert_eq!(
        store
            .resource_by_identifier("https://b.example/")
            .await
            .unwrap(),
        Some(b.clone())
    );
    // Exact comparison: no normalisation, no prefix match.
    for near in [
        "https://b.example",
        "HTTPS://b.example/",
        "https://b.example/x",
    ] {
        assert_eq!(store.resource_by_identifier(near).await.unwrap(), None);
    }
    assert_eq!(store.resources_of_tenant("t1").await.unwrap(), vec![a, b]);
    assert_eq!(store.resources_of_tenant("t2").await.unwrap(), vec![other]);
    assert!(store.resources_of_tenant("t9").await.unwrap().is_empty());
}

async fn an_identifier_has_one_owner(db: &TestDatabase) {
    let store = setup(db).await;
    store
        .insert_resource(&resource("r1", "t1", "https://a.example/"))
        .await
        .unwrap();
    for taken in [
        resource("r2", "t2", "https://a.example/"),
        resource("r1", "t2", "https://other.example/"),
    ] {
        let err = store.insert_resource(&taken).await;
        assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    }
    assert!(store.resources_of_tenant("t2").await.unwrap().is_empty());
}

async fn a_grant_is_replaced_and_withdrawn(db: &TestDatabase) {
    let store = setup(db).await;
    store
        .insert_resource(&resource("r1", "t1", "https://a.example/"))
        .await
        .unwrap();
    assert_eq!(store.resource_grant("r1", "c1").await.unwrap(), None);
    store
        .set_resource_grant(&grant("r1", r#"["read"]"#, 6))
        .await
        .unwrap();
    store
        .set_resource_grant(&grant("r1", r#"["read","write"]"#, 7))
        .await
        .unwrap();
    assert_eq!(
        store.resource_grant("r1", "c1").await.unwrap(),
        Some(grant("r1", r#"["read","write"]"#, 7))
    );
    assert_eq!(
        store.grants_of_resource("r1").await.unwrap(),
        vec![grant("r1", r#"["read","write"]"#, 7)]
    );
    assert!(store.delete_resource_grant("r1", "c1").await.unwrap());
    assert!(!store.delete_resource_grant("r1", "c1").await.unwrap());
    assert_eq!(store.resource_grant("r1", "c1").await.unwrap(), None);
}

async fn deleting_a_resource_deletes_its_grants(db: &TestDatabase) {
    let store = setup(db).await;
    store
        .insert_resource(&resource("r1", "t1", "https://a.example/"))
        .await
        .unwrap();
    store
        .set_resource_grant(&grant("r1", r#"["read"]"#, 6))
        .await
        .unwrap();
    assert!(store.delete_resource("r1").await.unwrap());
    assert!(!store.delete_resource("r1").await.unwrap());
    assert_eq!(store.resource_grant("r1", "c1").await.unwrap(), None);
    assert!(store.grants_of_resource("r1").await.unwrap().is_empty());
    // The identifier is free again.
    store
        .insert_resource(&resource("r2", "t2", "https://a.example/"))
        .await
        .unwrap();
}
