//! The conformance suite: every storage contract, run against every backend.
//!
//! Each test is an `async fn(&TestDatabase)`; `backend_tests!` runs it on a fresh SQLite
//! file and on a fresh PostgreSQL schema (skipped, by name, without `TECHPASS_TEST_POSTGRES_URL`).

use crate::testing::TestDatabase;
use crate::{SigningKeyRecord, StoreError};

crate::backend_tests!(
    "store::conformance",
    migrate_is_idempotent,
    ping_reaches_the_database,
    keys_are_listed_in_generation_order,
    same_generation_is_a_conflict_and_writes_nothing,
    same_kid_is_a_conflict,
    concurrent_rotations_add_exactly_one_key,
    delete_removes_only_named_keys,
);

fn key(kid: &str, generation: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_string(),
        generation,
        algorithm: "RS256".into(),
        public_jwk: format!(r#"{{"kid":"{kid}"}}"#),
        private_key_sealed: vec![0, 1, 2, 255, generation as u8],
        created_at: 1_700_000_000,
        activates_at: 1_700_000_000 + generation * 60,
    }
}

async fn migrate_is_idempotent(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_signing_key(&key("a", 1)).await.unwrap();
    // A second and third migration (as every replica runs at start) change nothing.
    crate::migrate(&db.connect_options()).await.unwrap();
    crate::migrate(&db.connect_options()).await.unwrap();
    assert_eq!(store.list_signing_keys().await.unwrap(), vec![key("a", 1)]);
}

async fn ping_reaches_the_database(db: &TestDatabase) {
    let store = db.store().await;
    store.ping().await.unwrap();
}

async fn keys_are_listed_in_generation_order(db: &TestDatabase) {
    let store = db.store().await;
    assert!(store.list_signing_keys().await.unwrap().is_empty());
    let (k2, k1, k3) = (key("b", 2), key("a", 1), key("c", 3));
    for k in [&k2, &k1, &k3] {
        store.insert_signing_key(k).await.unwrap();
    }
    let listed = store.list_signing_keys().await.unwrap();
    assert_eq!(listed, vec![k1, k2, k3], "every field round-trips, sorted");
}

async fn same_generation_is_a_conflict_and_writes_nothing(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_signing_key(&key("a", 1)).await.unwrap();
    let err = store.insert_signing_key(&key("b", 1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let kids: Vec<_> = store
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, vec!["a"]);
}

async fn same_kid_is_a_conflict(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_signing_key(&key("a", 1)).await.unwrap();
    let err = store.insert_signing_key(&key("a", 2)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

async fn concurrent_rotations_add_exactly_one_key(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_signing_key(&key("first", 1)).await.unwrap();
    let attempts = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.insert_signing_key(&key(&format!("r{i}"), 2)).await })
    });
    let mut won = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(store.list_signing_keys().await.unwrap().len(), 2);
}

async fn delete_removes_only_named_keys(db: &TestDatabase) {
    let store = db.store().await;
    for (kid, g) in [("a", 1), ("b", 2), ("c", 3)] {
        store.insert_signing_key(&key(kid, g)).await.unwrap();
    }
    let deleted = store
        .delete_signing_keys(&["a".into(), "c".into(), "nope".into()])
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    let kids: Vec<_> = store
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, vec!["b"]);
    assert_eq!(store.delete_signing_keys(&[]).await.unwrap(), 0);
}
