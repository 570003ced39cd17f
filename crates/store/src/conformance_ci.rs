//! Conformance of [`crate::CiIssuerStore`] on every backend.

use crate::conformance::client;
use crate::testing::TestDatabase;
use crate::{CiIssuerRecord, StoreError};

crate::backend_tests!(
    "store::conformance_ci",
    issuers_are_listed_per_app_and_deleted_one_at_a_time,
    an_app_deleted_takes_its_issuers_along,
);

fn issuer(id: &str, client_id: &str, at: i64) -> CiIssuerRecord {
    CiIssuerRecord {
        id: id.into(),
        client_id: client_id.into(),
        issuer: "https://gitlab.example".into(),
        audience: "https://id.example".into(),
        rules: r#"[{"claim":"project_path","pattern":"group/*"}]"#.into(),
        description: "deploys".into(),
        created_at: at,
        created_by: "usr_1".into(),
    }
}

async fn issuers_are_listed_per_app_and_deleted_one_at_a_time(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_client(&client("app_a"), &[]).await.unwrap();
    store.insert_client(&client("app_b"), &[]).await.unwrap();
    store
        .insert_ci_issuer(&issuer("cii_2", "app_a", 20))
        .await
        .unwrap();
    store
        .insert_ci_issuer(&issuer("cii_1", "app_a", 10))
        .await
        .unwrap();
    store
        .insert_ci_issuer(&issuer("cii_3", "app_b", 5))
        .await
        .unwrap();
    let of_a = store.ci_issuers_of_client("app_a").await.unwrap();
    assert_eq!(
        of_a,
        vec![issuer("cii_1", "app_a", 10), issuer("cii_2", "app_a", 20)]
    );
    assert!(matches!(
        store.insert_ci_issuer(&issuer("cii_1", "app_b", 30)).await,
        Err(StoreError::Conflict(_))
    ));
    // Another app's issuer is not deleted through this app.
    assert!(!store.delete_ci_issuer("app_a", "cii_3").await.unwrap());
    assert!(store.delete_ci_issuer("app_a", "cii_1").await.unwrap());
    assert!(!store.delete_ci_issuer("app_a", "cii_1").await.unwrap());
    assert_eq!(store.ci_issuers_of_client("app_a").await.unwrap().len(), 1);
    assert_eq!(store.ci_issuers_of_client("app_b").await.unwrap().len(), 1);
}

async fn an_app_deleted_takes_its_issuers_along(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_client(&client("app_a"), &[]).await.unwrap();
    store
        .insert_ci_issuer(&issuer("cii_1", "app_a", 10))
        .await
        .unwrap();
    assert!(store.delete_client("app_a").await.unwrap());
    assert!(store
        .ci_issuers_of_client("app_a")
        .await
        .unwrap()
        .is_empty());
}
