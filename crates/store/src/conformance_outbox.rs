//! Conformance of the outbox, notice log and webhook contracts ([`crate::OutboxStore`],
//! [`crate::NoticeLog`], [`crate::WebhookStore`]), on every backend.

use std::collections::HashSet;

use crate::conformance::tenant;
use crate::testing::{Backend, TestDatabase};
use crate::{DeliveryRecord, EmailRecord, WebhookRecord, GIVEN_UP};
use techpass_domain::tenancy::DeliveryStatus;

crate::backend_tests!(
    "store::conformance_outbox",
    claimed_email_is_leased,
    sent_and_given_up_emails_are_never_claimed,
    failed_email_is_retried_after_its_back_off,
    concurrent_email_claims_never_share,
    email_claim_skips_messages_another_claim_holds,
    emails_are_listed_newest_first,
    notice_is_recorded_once,
    webhooks_are_stored_verified_and_deleted,
    deliveries_are_claimed_and_recorded,
    concurrent_delivery_claims_never_share,
    delivery_claim_skips_deliveries_another_claim_holds,
);

fn email(id: &str, recipient: &str, created_at: i64) -> EmailRecord {
    EmailRecord {
        id: id.into(),
        recipient: recipient.into(),
        subject: format!("Subject {id}"),
        body: "Hello".into(),
        kind: "invitation".into(),
        created_at,
        next_attempt_at: created_at,
        attempts: 0,
        sent_at: None,
        last_error: None,
    }
}

fn ids<T>(records: Vec<T>, id: impl Fn(T) -> String) -> Vec<String> {
    records.into_iter().map(id).collect()
}

async fn claimed_email_is_leased(db: &TestDatabase) {
    let store = db.store().await;
    store
        .enqueue_email(&email("e2", "a@x.sg", 20))
        .await
        .unwrap();
    store
        .enqueue_email(&email("e1", "a@x.sg", 10))
        .await
        .unwrap();
    let mut future = email("e3", "b@x.sg", 5);
    future.next_attempt_at = 500;
    store.enqueue_email(&future).await.unwrap();

    let claimed = store.claim_emails(100, 160, 10).await.unwrap();
    let expected = EmailRecord {
        next_attempt_at: 160,
        attempts: 1,
        ..email("e1", "a@x.sg", 10)
    };
    assert_eq!(claimed[0], expected, "every field, leased");
    assert_eq!(
        ids(claimed, |e| e.id),
        vec!["e1", "e2"],
        "due ones, oldest first"
    );
    assert!(
        store.claim_emails(159, 300, 10).await.unwrap().is_empty(),
        "not again before the lease ends"
    );
    let again = store.claim_emails(160, 220, 1).await.unwrap();
    assert_eq!(
        again
            .iter()
            .map(|e| (e.id.as_str(), e.attempts))
            .collect::<Vec<_>>(),
        vec![("e1", 2)],
        "after the lease, within the limit"
    );
}

async fn sent_and_given_up_emails_are_never_claimed(db: &TestDatabase) {
    let store = db.store().await;
    for (id, at) in [("e1", 1), ("e2", 2), ("e3", 3)] {
        store.enqueue_email(&email(id, "a@x.sg", at)).await.unwrap();
    }
    assert_eq!(store.claim_emails(10, 20, 10).await.unwrap().len(), 3);
    store.mark_email_sent("e1", 15).await.unwrap();
    store
        .mark_email_failed("e2", "550 no such user", None)
        .await
        .unwrap();
    let far = 1_000_000_000_000;
    let later = store.claim_emails(far, far + 60, 10).await.unwrap();
    assert_eq!(ids(later, |e| e.id), vec!["e3"]);
    let listed = store.list_emails(None, 10, 0).await.unwrap();
    let sent = listed.iter().find(|e| e.id == "e1").unwrap();
    assert_eq!(sent.sent_at, Some(15));
    let given_up = listed.iter().find(|e| e.id == "e2").unwrap();
    assert_eq!(given_up.next_attempt_at, GIVEN_UP);
    assert_eq!(given_up.last_error.as_deref(), Some("550 no such user"));
    assert!(store
        .claim_emails(GIVEN_UP - 1, GIVEN_UP - 1, 10)
        .await
        .unwrap()
        .iter()
        .all(|e| e.id == "e3"));
}

async fn failed_email_is_retried_after_its_back_off(db: &TestDatabase) {
    let store = db.store().await;
    store
        .enqueue_email(&email("e1", "a@x.sg", 1))
        .await
        .unwrap();
    store.claim_emails(10, 70, 10).await.unwrap();
    store
        .mark_email_failed("e1", "connection refused", Some(300))
        .await
        .unwrap();
    assert!(store.claim_emails(299, 400, 10).await.unwrap().is_empty());
    let retried = store.claim_emails(300, 360, 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempts, 2);
    assert_eq!(retried[0].last_error.as_deref(), Some("connection refused"));
}

async fn concurrent_email_claims_never_share(db: &TestDatabase) {
    let store = db.store().await;
    // Several rounds of many claimers, so that claims really overlap.
    for round in 0..ROUNDS {
        let now = 1_000 * (round + 1);
        for i in 0..MESSAGES {
            let mut e = email(&format!("r{round}-e{i:02}"), "a@x.sg", now + i);
            e.next_attempt_at = now;
            store.enqueue_email(&e).await.unwrap();
        }
        let claimers = (0..CLAIMERS).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_emails(now, now + 500, BATCH).await.unwrap() })
        });
        let mut seen = Vec::new();
        for c in claimers {
            seen.extend(ids(c.await.unwrap(), |e| e.id));
        }
        assert_claimed_once(seen, round);
    }
}

const ROUNDS: i64 = 4;
const MESSAGES: i64 = 40;
const CLAIMERS: i64 = 8;
const BATCH: i64 = 5;

/// Every message claimed, none twice: the claimers' batches exactly cover the messages.
fn assert_claimed_once(seen: Vec<String>, round: i64) {
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "round {round}, claimed twice: {seen:?}"
    );
    assert_eq!(seen.len() as i64, MESSAGES, "round {round}: {seen:?}");
}

/// Another replica's claim, in flight: its transaction holds the rows it leased until
/// [`InFlight::commit`]. Test plumbing only, so it opens a connection of the backend's own type.
enum InFlight {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl InFlight {
    async fn start(db: &TestDatabase, claim: &str) -> InFlight {
        match db.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
                let mut tx = pool.begin().await.unwrap();
                sqlx::query(claim).execute(&mut *tx).await.unwrap();
                InFlight::Sqlite(tx)
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
                let mut tx = pool.begin().await.unwrap();
                sqlx::query(claim).execute(&mut *tx).await.unwrap();
                InFlight::Postgres(tx)
            }
        }
    }

    async fn commit(self) {
        match self {
            InFlight::Sqlite(tx) => tx.commit().await.unwrap(),
            InFlight::Postgres(tx) => tx.commit().await.unwrap(),
        }
    }
}

/// Long enough for a concurrent claim to reach the rows the in-flight one holds.
const OVERLAP: std::time::Duration = std::time::Duration::from_millis(300);

async fn email_claim_skips_messages_another_claim_holds(db: &TestDatabase) {
    let store = db.store().await;
    for (id, at) in [("e1", 1), ("e2", 2), ("e3", 3), ("e4", 4)] {
        store.enqueue_email(&email(id, "a@x.sg", at)).await.unwrap();
    }
    let other = InFlight::start(
        db,
        "UPDATE outbox SET next_attempt_at = 900, attempts = attempts + 1
         WHERE id IN ('e1', 'e2')",
    )
    .await;
    let claim = {
        let store = store.clone();
        tokio::spawn(async move { store.claim_emails(100, 160, 10).await.unwrap() })
    };
    tokio::time::sleep(OVERLAP).await;
    other.commit().await;
    let claimed = claim.await.unwrap();
    assert_eq!(
        ids(claimed, |e| e.id),
        vec!["e3", "e4"],
        "never the other's"
    );
}

async fn emails_are_listed_newest_first(db: &TestDatabase) {
    let store = db.store().await;
    for (id, to, at) in [
        ("e1", "a@x.sg", 1),
        ("e3", "a@x.sg", 3),
        ("e2", "b@x.sg", 2),
    ] {
        store.enqueue_email(&email(id, to, at)).await.unwrap();
    }
    let all = store.list_emails(None, 10, 0).await.unwrap();
    assert_eq!(all[0], email("e3", "a@x.sg", 3));
    assert_eq!(ids(all, |e| e.id), vec!["e3", "e2", "e1"]);
    let page = store.list_emails(None, 1, 1).await.unwrap();
    assert_eq!(ids(page, |e| e.id), vec!["e2"]);
    let to_a = store.list_emails(Some("a@x.sg"), 10, 0).await.unwrap();
    assert_eq!(ids(to_a, |e| e.id), vec!["e3", "e1"]);
}

async fn notice_is_recorded_once(db: &TestDatabase) {
    let store = db.store().await;
    let racers = (0..6).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .record_notice("u1", "dormancy", 1_000, 10)
                .await
                .unwrap()
        })
    });
    let mut recorded = 0;
    for r in racers {
        recorded += usize::from(r.await.unwrap());
    }
    assert_eq!(recorded, 1, "every replica's job, one notice");
    assert!(!store
        .record_notice("u1", "dormancy", 1_000, 20)
        .await
        .unwrap());
    assert!(store
        .record_notice("u1", "dormancy", 2_000, 20)
        .await
        .unwrap());
    assert!(store
        .record_notice("u1", "expiry", 1_000, 20)
        .await
        .unwrap());
    assert!(store
        .record_notice("u2", "dormancy", 1_000, 20)
        .await
        .unwrap());
}

pub(crate) fn webhook(id: &str, tenant_id: &str, created_at: i64) -> WebhookRecord {
    WebhookRecord {
        id: id.into(),
        tenant_id: tenant_id.into(),
        url: format!("https://hooks.example/{id}"),
        events: vec!["user-invited".into()],
        secret_sealed: vec![0, 1, 2, 254, 255],
        verified_at: None,
        created_at,
        created_by: "admin".into(),
    }
}

pub(crate) fn delivery(id: &str, webhook_id: &str, created_at: i64) -> DeliveryRecord {
    DeliveryRecord {
        id: id.into(),
        webhook_id: webhook_id.into(),
        event: "user-invited".into(),
        payload: format!(r#"{{"id":"{id}"}}"#),
        created_at,
        next_attempt_at: created_at,
        attempts: 0,
        status: DeliveryStatus::Pending,
        last_status_code: None,
        last_error: None,
        delivered_at: None,
    }
}

async fn webhooks_are_stored_verified_and_deleted(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    store.insert_tenant(&tenant("t2", 1)).await.unwrap();
    for w in [
        webhook("w2", "t1", 20),
        webhook("w1", "t1", 10),
        webhook("w3", "t2", 5),
    ] {
        store.insert_webhook(&w).await.unwrap();
    }
    assert_eq!(
        store.get_webhook("w1").await.unwrap(),
        Some(webhook("w1", "t1", 10))
    );
    assert_eq!(store.get_webhook("nope").await.unwrap(), None);
    let of_t1 = store.webhooks_of_tenant("t1").await.unwrap();
    assert_eq!(ids(of_t1, |w| w.id), vec!["w1", "w2"]);
    assert!(store.mark_webhook_verified("w1", 30).await.unwrap());
    assert!(store.mark_webhook_verified("w1", 40).await.unwrap());
    assert_eq!(
        store.get_webhook("w1").await.unwrap().unwrap().verified_at,
        Some(30),
        "the first verification stays"
    );
    assert!(!store.mark_webhook_verified("nope", 40).await.unwrap());
    // The last challenge's outcome, and the subscribed events, change in place.
    assert_eq!(store.webhook_challenge("w2").await.unwrap(), None);
    assert!(store
        .record_webhook_challenge("w2", 31, Some("answered HTTP 404"))
        .await
        .unwrap());
    assert_eq!(
        store.webhook_challenge("w2").await.unwrap(),
        Some((31, Some("answered HTTP 404".into())))
    );
    assert!(store
        .record_webhook_challenge("w2", 32, None)
        .await
        .unwrap());
    assert_eq!(
        store.webhook_challenge("w2").await.unwrap(),
        Some((32, None))
    );
    assert!(!store
        .record_webhook_challenge("nope", 32, None)
        .await
        .unwrap());
    assert!(store
        .set_webhook_events("w2", &["user-deleted".into()])
        .await
        .unwrap());
    assert_eq!(
        store.get_webhook("w2").await.unwrap().unwrap().events,
        vec!["user-deleted"]
    );
    assert!(!store.set_webhook_events("nope", &[]).await.unwrap());
    // Rotation keeps the previous secret until its end.
    assert_eq!(store.webhook_previous_secret("w2", 0).await.unwrap(), None);
    let before = store
        .get_webhook("w2")
        .await
        .unwrap()
        .unwrap()
        .secret_sealed;
    assert!(store
        .rotate_webhook_secret("w2", b"new", 100)
        .await
        .unwrap());
    assert_eq!(
        store
            .get_webhook("w2")
            .await
            .unwrap()
            .unwrap()
            .secret_sealed,
        b"new".to_vec()
    );
    assert_eq!(
        store.webhook_previous_secret("w2", 99).await.unwrap(),
        Some((before, 100))
    );
    assert_eq!(
        store.webhook_previous_secret("w2", 100).await.unwrap(),
        None
    );
    assert!(!store
        .rotate_webhook_secret("nope", b"x", 100)
        .await
        .unwrap());
    store
        .insert_delivery(&delivery("d1", "w1", 50))
        .await
        .unwrap();
    assert!(store.delete_webhook("w1").await.unwrap());
    assert!(!store.delete_webhook("w1").await.unwrap());
    assert_eq!(store.get_webhook("w1").await.unwrap(), None);
    assert!(store
        .deliveries_of_webhook("w1", 10, 0)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_deliveries(1_000, 1_060, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn deliveries_are_claimed_and_recorded(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    store.insert_webhook(&webhook("w1", "t1", 1)).await.unwrap();
    store
        .insert_delivery(&delivery("d2", "w1", 20))
        .await
        .unwrap();
    store
        .insert_delivery(&delivery("d1", "w1", 10))
        .await
        .unwrap();
    let mut later = delivery("d3", "w1", 30);
    later.next_attempt_at = 1_000;
    store.insert_delivery(&later).await.unwrap();

    let claimed = store.claim_deliveries(100, 160, 10).await.unwrap();
    let expected = DeliveryRecord {
        next_attempt_at: 160,
        attempts: 1,
        ..delivery("d1", "w1", 10)
    };
    assert_eq!(claimed[0], expected);
    assert_eq!(ids(claimed, |d| d.id), vec!["d1", "d2"]);
    assert!(store
        .claim_deliveries(150, 300, 10)
        .await
        .unwrap()
        .is_empty());

    store
        .record_delivery_attempt("d1", DeliveryStatus::Delivered, Some(200), None, 160, 155)
        .await
        .unwrap();
    store
        .record_delivery_attempt(
            "d2",
            DeliveryStatus::Pending,
            Some(503),
            Some("unavailable"),
            400,
            156,
        )
        .await
        .unwrap();
    assert!(store
        .claim_deliveries(399, 500, 10)
        .await
        .unwrap()
        .is_empty());
    let retried = store.claim_deliveries(400, 460, 10).await.unwrap();
    assert_eq!(
        retried
            .iter()
            .map(|d| (d.id.as_str(), d.attempts, d.last_status_code))
            .collect::<Vec<_>>(),
        vec![("d2", 2, Some(503))]
    );
    store
        .record_delivery_attempt(
            "d2",
            DeliveryStatus::Failed,
            None,
            Some("timeout"),
            460,
            457,
        )
        .await
        .unwrap();
    let far = 1_000_000_000;
    let rest = store.claim_deliveries(far, far + 60, 10).await.unwrap();
    assert_eq!(
        ids(rest, |d| d.id),
        vec!["d3"],
        "delivered and failed never again"
    );

    let listed = store.deliveries_of_webhook("w1", 10, 0).await.unwrap();
    let (d1, d2) = (&listed[2], &listed[1]);
    assert_eq!(
        (d1.status.as_str(), d1.last_status_code, d1.delivered_at),
        ("delivered", Some(200), Some(155))
    );
    assert_eq!(
        (
            d2.status.as_str(),
            d2.last_error.as_deref(),
            d2.delivered_at
        ),
        ("failed", Some("timeout"), None)
    );
    assert_eq!(
        ids(listed, |d| d.id),
        vec!["d3", "d2", "d1"],
        "newest first"
    );
    let page = store.deliveries_of_webhook("w1", 1, 1).await.unwrap();
    assert_eq!(ids(page, |d| d.id), vec!["d2"]);

    // Redelivery: a failed (or delivered) delivery is queued again once, attempts from zero,
    // and claimed alone for an attempt at once; a pending one or another webhook's is not.
    assert!(
        !store.requeue_delivery("d3", "w1", 500).await.unwrap(),
        "pending"
    );
    assert!(
        !store.requeue_delivery("d2", "w9", 500).await.unwrap(),
        "not w9's"
    );
    assert!(store.requeue_delivery("d2", "w1", 500).await.unwrap());
    assert!(
        !store.requeue_delivery("d2", "w1", 501).await.unwrap(),
        "once"
    );
    assert_eq!(
        store.claim_delivery("d2", 499, 560).await.unwrap(),
        None,
        "not due"
    );
    let again = store.claim_delivery("d2", 500, 560).await.unwrap().unwrap();
    assert_eq!((again.attempts, again.next_attempt_at), (1, 560));
    assert_eq!(
        store.claim_delivery("d2", 500, 560).await.unwrap(),
        None,
        "leased"
    );
    assert_eq!(
        store.claim_delivery("d1", far, far).await.unwrap(),
        None,
        "delivered"
    );
}

async fn concurrent_delivery_claims_never_share(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    store.insert_webhook(&webhook("w1", "t1", 1)).await.unwrap();
    for round in 0..ROUNDS {
        let now = 1_000 * (round + 1);
        for i in 0..MESSAGES {
            let mut d = delivery(&format!("r{round}-d{i:02}"), "w1", now + i);
            d.next_attempt_at = now;
            store.insert_delivery(&d).await.unwrap();
        }
        let claimers = (0..CLAIMERS).map(|_| {
            let store = store.clone();
            tokio::spawn(
                async move { store.claim_deliveries(now, now + 500, BATCH).await.unwrap() },
            )
        });
        let mut seen = Vec::new();
        for c in claimers {
            seen.extend(ids(c.await.unwrap(), |d| d.id));
        }
        assert_claimed_once(seen, round);
    }
}

async fn delivery_claim_skips_deliveries_another_claim_holds(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    store.insert_webhook(&webhook("w1", "t1", 1)).await.unwrap();
    for (id, at) in [("d1", 1), ("d2", 2), ("d3", 3)] {
        store
            .insert_delivery(&delivery(id, "w1", at))
            .await
            .unwrap();
    }
    let other = InFlight::start(
        db,
        "UPDATE webhook_deliveries SET next_attempt_at = 900, attempts = attempts + 1
         WHERE id = 'd1'",
    )
    .await;
    let claim = {
        let store = store.clone();
        tokio::spawn(async move { store.claim_deliveries(100, 160, 10).await.unwrap() })
    };
    tokio::time::sleep(OVERLAP).await;
    other.commit().await;
    let claimed = claim.await.unwrap();
    assert_eq!(
        ids(claimed, |d| d.id),
        vec!["d2", "d3"],
        "never the other's"
    );
}
