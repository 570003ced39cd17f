//! Conformance of [`crate::DeviceCodeStore`] on every backend.

use crate::conformance::{client, user};
use crate::testing::TestDatabase;
use crate::{DeviceApproval, DeviceCodeRecord, StoreError};
use techpass_domain::device::DeviceStatus;

crate::backend_tests!(
    "store::conformance_device",
    a_device_code_is_found_by_either_hash,
    a_taken_user_code_is_a_conflict_and_writes_nothing,
    one_decision_wins_and_only_before_expiry,
    polls_are_recorded_by_compare_and_set,
    an_approved_code_is_redeemed_exactly_once,
    long_expired_codes_are_forgotten,
);

pub(crate) fn code(device: &str, user_code: &str, expires_at: i64) -> DeviceCodeRecord {
    DeviceCodeRecord {
        device_code_hash: device.into(),
        user_code_hash: user_code.into(),
        client_id: "c1".into(),
        scope: "openid offline_access".into(),
        created_at: 100,
        expires_at,
        interval_secs: 5,
        last_polled_at: None,
        status: DeviceStatus::Pending,
        decided_at: None,
        user_id: None,
        session_hash: None,
        auth_time: None,
        amr: None,
        acr: None,
        grant_id: None,
    }
}

fn approval() -> DeviceApproval {
    DeviceApproval {
        user_id: "u1".into(),
        session_hash: "s1".into(),
        auth_time: 90,
        amr: vec!["pwd".into(), "mfa".into()],
        acr: Some("acr".into()),
    }
}

async fn setup(db: &TestDatabase) -> std::sync::Arc<dyn crate::Store> {
    let store = db.store().await;
    store.insert_client(&client("c1"), &[]).await.unwrap();
    store.upsert_user(&user("u1")).await.unwrap();
    store
}

async fn a_device_code_is_found_by_either_hash(db: &TestDatabase) {
    let store = setup(db).await;
    store
        .insert_device_code(&code("d1", "u1", 700), 100)
        .await
        .unwrap();
    let by_device = store.get_device_code("d1").await.unwrap();
    assert_eq!(by_device, Some(code("d1", "u1", 700)));
    let by_user = store.find_device_code_by_user_code("u1").await.unwrap();
    assert_eq!(by_user, by_device);
    assert_eq!(store.get_device_code("u1").await.unwrap(), None);
    assert_eq!(
        store.find_device_code_by_user_code("d1").await.unwrap(),
        None
    );
}

async fn a_taken_user_code_is_a_conflict_and_writes_nothing(db: &TestDatabase) {
    let store = setup(db).await;
    store
        .insert_device_code(&code("d1", "u1", 700), 100)
        .await
        .unwrap();
    let again = store.insert_device_code(&code("d2", "u1", 700), 100).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(store.get_device_code("d2").await.unwrap(), None);
}

async fn one_decision_wins_and_only_before_expiry(db: &TestDatabase) {
    let store = setup(db).await;
    for (d, u) in [("d1", "u1"), ("d2", "u2"), ("d3", "u3")] {
        store
            .insert_device_code(&code(d, u, 700), 100)
            .await
            .unwrap();
    }
    assert!(store
        .decide_device_code("u1", Some(&approval()), 200)
        .await
        .unwrap());
    // Decided once: neither a denial nor a second approval changes it.
    assert!(!store.decide_device_code("u1", None, 201).await.unwrap());
    assert!(!store
        .decide_device_code("u1", Some(&approval()), 201)
        .await
        .unwrap());
    let approved = store.get_device_code("d1").await.unwrap().unwrap();
    assert_eq!(approved.status, DeviceStatus::Approved);
    assert_eq!(approved.decided_at, Some(200));
    assert_eq!(approved.user_id.as_deref(), Some("u1"));
    assert_eq!(approved.session_hash.as_deref(), Some("s1"));
    assert_eq!(approved.auth_time, Some(90));
    assert_eq!(approved.amr, Some(vec!["pwd".into(), "mfa".into()]));
    assert_eq!(approved.acr.as_deref(), Some("acr"));

    assert!(store.decide_device_code("u2", None, 200).await.unwrap());
    let denied = store.get_device_code("d2").await.unwrap().unwrap();
    assert_eq!(denied.status, DeviceStatus::Denied);
    assert_eq!(denied.user_id, None);

    // At or after its expiry a code can no longer be decided.
    assert!(!store
        .decide_device_code("u3", Some(&approval()), 700)
        .await
        .unwrap());
    let expired = store.get_device_code("d3").await.unwrap().unwrap();
    assert_eq!(expired.status, DeviceStatus::Pending);
    assert!(!store.decide_device_code("nope", None, 200).await.unwrap());

    // Concurrent decisions: exactly one.
    store
        .insert_device_code(&code("d4", "u4", 700), 100)
        .await
        .unwrap();
    let tries = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let a = approval();
            let approve = (i % 2 == 0).then_some(&a);
            store.decide_device_code("u4", approve, 300).await.unwrap()
        })
    });
    let mut won = 0;
    for t in tries {
        if t.await.unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
}

async fn polls_are_recorded_by_compare_and_set(db: &TestDatabase) {
    let store = setup(db).await;
    store
        .insert_device_code(&code("d1", "u1", 700), 100)
        .await
        .unwrap();
    assert!(store.record_device_poll("d1", None, 5, 110).await.unwrap());
    // A poll that read the state before the first one was recorded loses.
    assert!(!store.record_device_poll("d1", None, 10, 111).await.unwrap());
    assert!(store
        .record_device_poll("d1", Some(110), 10, 112)
        .await
        .unwrap());
    let polled = store.get_device_code("d1").await.unwrap().unwrap();
    assert_eq!(polled.last_polled_at, Some(112));
    assert_eq!(polled.interval_secs, 10, "the raised interval is kept");
    assert!(!store
        .record_device_poll("nope", None, 5, 113)
        .await
        .unwrap());
}

async fn an_approved_code_is_redeemed_exactly_once(db: &TestDatabase) {
    let store = setup(db).await;
    store
        .insert_device_code(&code("d1", "u1", 700), 100)
        .await
        .unwrap();
    // Pending: nothing to redeem.
    assert_eq!(
        store.redeem_device_code("d1", 150, "g0").await.unwrap(),
        None
    );
    store
        .decide_device_code("u1", Some(&approval()), 200)
        .await
        .unwrap();
    let redeems = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .redeem_device_code("d1", 300, &format!("g{i}"))
                .await
                .unwrap()
        })
    });
    let mut got = Vec::new();
    for r in redeems {
        if let Some(record) = r.await.unwrap() {
            got.push(record);
        }
    }
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].status, DeviceStatus::Redeemed);
    assert_eq!(got[0].user_id.as_deref(), Some("u1"));
    // The code names the winner's grant: what a second redemption revokes.
    let winner = got[0].grant_id.clone().expect("the code names its grant");
    assert_eq!(
        store.get_device_code("d1").await.unwrap().unwrap().grant_id,
        Some(winner)
    );
    assert_eq!(
        store.redeem_device_code("d1", 301, "g9").await.unwrap(),
        None
    );
    assert_eq!(
        store.get_device_code("d1").await.unwrap().unwrap().grant_id,
        got[0].grant_id,
        "a refused redemption changes nothing"
    );

    // Denied or expired codes are never redeemed.
    store
        .insert_device_code(&code("d2", "u2", 700), 100)
        .await
        .unwrap();
    store.decide_device_code("u2", None, 200).await.unwrap();
    assert_eq!(
        store.redeem_device_code("d2", 300, "g2").await.unwrap(),
        None
    );
    store
        .insert_device_code(&code("d3", "u3", 700), 100)
        .await
        .unwrap();
    store
        .decide_device_code("u3", Some(&approval()), 200)
        .await
        .unwrap();
    assert_eq!(
        store.redeem_device_code("d3", 700, "g3").await.unwrap(),
        None
    );
}

async fn long_expired_codes_are_forgotten(db: &TestDatabase) {
    let store = setup(db).await;
    store
        .insert_device_code(&code("d1", "u1", 700), 100)
        .await
        .unwrap();
    // An hour after its expiry it is still there (late polls hear expired_token)...
    store
        .insert_device_code(&code("d2", "u2", 5000), 700 + 3600)
        .await
        .unwrap();
    assert!(store.get_device_code("d1").await.unwrap().is_some());
    // ...and later it is gone.
    store
        .insert_device_code(&code("d3", "u3", 9000), 700 + 3601)
        .await
        .unwrap();
    assert_eq!(store.get_device_code("d1").await.unwrap(), None);
    assert!(store.get_device_code("d2").await.unwrap().is_some());
}
