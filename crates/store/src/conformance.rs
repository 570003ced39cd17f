//! The conformance suite: every storage contract, run against every backend.
//!
//! Each test is an `async fn(&TestDatabase)`; `backend_tests!` runs it on a fresh SQLite
//! file and on a fresh PostgreSQL schema (skipped, by name, without `TECHPASS_TEST_POSTGRES_URL`).

use crate::testing::TestDatabase;
use crate::{
    AuditFilter, AuditRecord, LoginAttemptRecord, SessionRecord, SigningKeyRecord, StoreError,
};

crate::backend_tests!(
    "store::conformance",
    migrate_is_idempotent,
    ping_reaches_the_database,
    keys_are_listed_in_generation_order,
    same_generation_is_a_conflict_and_writes_nothing,
    same_kid_is_a_conflict,
    concurrent_rotations_add_exactly_one_key,
    delete_removes_only_named_keys,
    login_attempt_is_taken_exactly_once,
    expired_login_attempts_are_purged,
    session_lifecycle,
    sessions_of_a_person_end_together,
    expired_and_idle_sessions_are_purged,
    audit_log_appends_and_filters_newest_first,
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

fn attempt(state_hash: &str, expires_at: i64) -> LoginAttemptRecord {
    LoginAttemptRecord {
        state_hash: state_hash.into(),
        browser_hash: "browser".into(),
        upstream: "wog".into(),
        return_to: "/portal?x=1".into(),
        created_at: expires_at - 600,
        expires_at,
    }
}

async fn login_attempt_is_taken_exactly_once(db: &TestDatabase) {
    let store = db.store().await;
    store
        .insert_login_attempt(&attempt("s1", 2_000))
        .await
        .unwrap();
    let err = store
        .insert_login_attempt(&attempt("s1", 2_000))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // Several replicas receiving the same callback at once: one of them gets it.
    let takers = (0..6).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.take_login_attempt("s1").await.unwrap() })
    });
    let mut taken = Vec::new();
    for t in takers {
        if let Some(a) = t.await.unwrap() {
            taken.push(a);
        }
    }
    assert_eq!(taken, vec![attempt("s1", 2_000)]);
    assert_eq!(store.take_login_attempt("s1").await.unwrap(), None);
    assert_eq!(store.take_login_attempt("unknown").await.unwrap(), None);
}

async fn expired_login_attempts_are_purged(db: &TestDatabase) {
    let store = db.store().await;
    store
        .insert_login_attempt(&attempt("old", 100))
        .await
        .unwrap();
    store
        .insert_login_attempt(&attempt("new", 300))
        .await
        .unwrap();
    assert_eq!(store.delete_expired_login_attempts(200).await.unwrap(), 1);
    assert!(store.take_login_attempt("old").await.unwrap().is_none());
    assert!(store.take_login_attempt("new").await.unwrap().is_some());
}

fn session(id: &str, tid: &str, oid: &str) -> SessionRecord {
    SessionRecord {
        id_hash: id.into(),
        upstream: "wog".into(),
        tenant_id: tid.into(),
        object_id: oid.into(),
        identity: r#"{"name":"Alice"}"#.into(),
        auth_time: 1_000,
        created_at: 1_000,
        last_seen_at: 1_000,
        expires_at: 50_000,
    }
}

async fn session_lifecycle(db: &TestDatabase) {
    let store = db.store().await;
    assert_eq!(store.get_session("a").await.unwrap(), None);
    store.insert_session(&session("a", "t", "o")).await.unwrap();
    assert!(matches!(
        store.insert_session(&session("a", "t", "o")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.get_session("a").await.unwrap(),
        Some(session("a", "t", "o"))
    );

    assert!(store.touch_session("a", 2_000).await.unwrap());
    assert_eq!(
        store.get_session("a").await.unwrap().unwrap().last_seen_at,
        2_000
    );
    // Activity never moves backwards (a slow replica's late write).
    assert!(store.touch_session("a", 1_500).await.unwrap());
    assert_eq!(
        store.get_session("a").await.unwrap().unwrap().last_seen_at,
        2_000
    );
    assert!(!store.touch_session("missing", 2_000).await.unwrap());

    assert!(store.delete_session("a").await.unwrap());
    assert!(!store.delete_session("a").await.unwrap());
    assert_eq!(store.get_session("a").await.unwrap(), None);
}

async fn sessions_of_a_person_end_together(db: &TestDatabase) {
    let store = db.store().await;
    for (id, tid, oid) in [
        ("a", "t1", "o1"),
        ("b", "t1", "o1"),
        ("c", "t1", "o2"),
        ("d", "t2", "o1"),
    ] {
        store.insert_session(&session(id, tid, oid)).await.unwrap();
    }
    assert_eq!(store.delete_sessions_of("t1", "o1").await.unwrap(), 2);
    for (id, present) in [("a", false), ("b", false), ("c", true), ("d", true)] {
        assert_eq!(
            store.get_session(id).await.unwrap().is_some(),
            present,
            "{id}"
        );
    }
}

async fn expired_and_idle_sessions_are_purged(db: &TestDatabase) {
    let store = db.store().await;
    let mut past_end = session("ended", "t", "o");
    past_end.expires_at = 5_000;
    past_end.last_seen_at = 9_000;
    let mut idle = session("idle", "t", "o");
    idle.last_seen_at = 3_000;
    let mut live = session("live", "t", "o");
    live.last_seen_at = 9_000;
    for s in [&past_end, &idle, &live] {
        store.insert_session(s).await.unwrap();
    }
    assert_eq!(
        store.delete_expired_sessions(10_000, 4_000).await.unwrap(),
        2
    );
    assert!(store.get_session("live").await.unwrap().is_some());
}

async fn audit_log_appends_and_filters_newest_first(db: &TestDatabase) {
    let store = db.store().await;
    let event = |at: i64, event: &str, subject: &str| AuditRecord {
        at,
        event: event.into(),
        outcome: "success".into(),
        subject: Some(subject.into()),
        tenant: Some("t1".into()),
        details: "{}".into(),
        ..AuditRecord::default()
    };
    let mut ids = Vec::new();
    for (at, ev, subj) in [
        (1, "signin", "alice"),
        (2, "signin", "bob"),
        (3, "signout", "alice"),
    ] {
        ids.push(store.append_audit(&event(at, ev, subj)).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    let all = store
        .list_audit(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.iter().map(|e| e.at).collect::<Vec<_>>(), vec![3, 2, 1]);
    assert_eq!(all[2].id, ids[0]);
    assert_eq!(all[2].subject.as_deref(), Some("alice"));

    let alice = store
        .list_audit(&AuditFilter {
            subject: Some("alice".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(alice.len(), 2);
    let signouts = store
        .list_audit(&AuditFilter {
            event: Some("signout".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(signouts.len(), 1);
    let page = store
        .list_audit(&AuditFilter {
            before_id: Some(ids[2]),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ids[1]]);
    let other_tenant = store
        .list_audit(&AuditFilter {
            tenant: Some("t2".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(other_tenant.is_empty());
}
