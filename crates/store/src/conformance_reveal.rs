//! Conformance of [`crate::RevealStore`] on every backend.

use crate::testing::TestDatabase;
use crate::RevealRecord;

crate::backend_tests!(
    "store::conformance_reveal",
    a_reveal_is_taken_once_by_its_owner,
    an_expired_reveal_is_gone,
    concurrent_takes_get_it_once,
);

fn reveal(id: &str, owner: &str, expires_at: i64) -> RevealRecord {
    RevealRecord {
        id_hash: id.into(),
        owner: owner.into(),
        sealed: format!("sealed-{id}"),
        expires_at,
    }
}

async fn a_reveal_is_taken_once_by_its_owner(db: &TestDatabase) {
    let store = db.store().await;
    store
        .put_reveal(&reveal("r1", "alice", 200), 100)
        .await
        .unwrap();
    assert_eq!(store.take_reveal("r1", "bob", 101).await.unwrap(), None);
    let taken = store.take_reveal("r1", "alice", 101).await.unwrap();
    assert_eq!(
        taken,
        Some(reveal("r1", "alice", 200)),
        "another's try left it"
    );
    assert_eq!(store.take_reveal("r1", "alice", 102).await.unwrap(), None);
    assert_eq!(store.take_reveal("nope", "alice", 102).await.unwrap(), None);
}

async fn an_expired_reveal_is_gone(db: &TestDatabase) {
    let store = db.store().await;
    store
        .put_reveal(&reveal("r1", "alice", 200), 100)
        .await
        .unwrap();
    assert_eq!(store.take_reveal("r1", "alice", 200).await.unwrap(), None);
    // Storing another forgets the expired one for good.
    store
        .put_reveal(&reveal("r2", "alice", 400), 300)
        .await
        .unwrap();
    assert_eq!(store.take_reveal("r1", "alice", 150).await.unwrap(), None);
    assert!(store
        .take_reveal("r2", "alice", 301)
        .await
        .unwrap()
        .is_some());
}

async fn concurrent_takes_get_it_once(db: &TestDatabase) {
    let store = db.store().await;
    store
        .put_reveal(&reveal("r1", "alice", 200), 100)
        .await
        .unwrap();
    let takes = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.take_reveal("r1", "alice", 101).await.unwrap() })
    });
    let mut got = 0;
    for t in takes {
        if t.await.unwrap().is_some() {
            got += 1;
        }
    }
    assert_eq!(got, 1);
}
