//! Conformance of [`crate::UpstreamLinkStore`] on every backend.

use crate::testing::TestDatabase;
use crate::UpstreamLinkRecord;

crate::backend_tests!(
    "store::conformance_upstream_links",
    a_sign_in_replaces_the_link_and_verification_rotates_it,
    a_failure_counts_until_a_success,
    links_are_forgotten_per_person,
    one_of_concurrent_claimers_checks,
    dev_people_are_disabled_and_enabled,
);

fn link(user: &str, upstream: &str, token: Option<&str>, at: i64) -> UpstreamLinkRecord {
    UpstreamLinkRecord {
        user_id: user.into(),
        upstream: upstream.into(),
        sealed_refresh_token: token.map(String::from),
        last_verified_at: at,
        failures: 0,
    }
}

async fn a_sign_in_replaces_the_link_and_verification_rotates_it(db: &TestDatabase) {
    let store = db.store().await;
    store
        .put_upstream_link(&link("u1", "wog", Some("s1"), 100))
        .await
        .unwrap();
    store
        .put_upstream_link(&link("u1", "vendors", None, 50))
        .await
        .unwrap();
    let links = store.upstream_links_of_user("u1").await.unwrap();
    assert_eq!(
        links,
        vec![
            link("u1", "wog", Some("s1"), 100),
            link("u1", "vendors", None, 50)
        ],
        "most recently verified first"
    );
    // Verified without rotation: the token stays; with rotation: replaced.
    assert!(store
        .upstream_link_verified("u1", "wog", None, 200)
        .await
        .unwrap());
    assert_eq!(
        store.upstream_links_of_user("u1").await.unwrap()[0],
        link("u1", "wog", Some("s1"), 200)
    );
    assert!(store
        .upstream_link_verified("u1", "wog", Some("s2"), 300)
        .await
        .unwrap());
    // A late writer does not move the time backwards.
    assert!(store
        .upstream_link_verified("u1", "wog", None, 250)
        .await
        .unwrap());
    assert_eq!(
        store.upstream_links_of_user("u1").await.unwrap()[0],
        link("u1", "wog", Some("s2"), 300)
    );
    assert!(!store
        .upstream_link_verified("u2", "wog", None, 300)
        .await
        .unwrap());
    // A new sign-in replaces it.
    store
        .put_upstream_link(&link("u1", "wog", Some("s3"), 400))
        .await
        .unwrap();
    assert_eq!(
        store.upstream_links_of_user("u1").await.unwrap()[0],
        link("u1", "wog", Some("s3"), 400)
    );
}

async fn a_failure_counts_until_a_success(db: &TestDatabase) {
    let store = db.store().await;
    store
        .put_upstream_link(&link("u1", "wog", Some("s1"), 100))
        .await
        .unwrap();
    store.upstream_link_failed("u1", "wog").await.unwrap();
    store.upstream_link_failed("u1", "wog").await.unwrap();
    store.upstream_link_failed("u2", "wog").await.unwrap();
    assert_eq!(
        store.upstream_links_of_user("u1").await.unwrap()[0].failures,
        2
    );
    store
        .upstream_link_verified("u1", "wog", None, 200)
        .await
        .unwrap();
    assert_eq!(
        store.upstream_links_of_user("u1").await.unwrap()[0].failures,
        0
    );
    store.upstream_link_failed("u1", "wog").await.unwrap();
    store
        .put_upstream_link(&link("u1", "wog", Some("s2"), 300))
        .await
        .unwrap();
    assert_eq!(
        store.upstream_links_of_user("u1").await.unwrap()[0].failures,
        0,
        "a sign-in starts afresh"
    );
}

async fn links_are_forgotten_per_person(db: &TestDatabase) {
    let store = db.store().await;
    for (user, upstream) in [("u1", "wog"), ("u1", "vendors"), ("u2", "wog")] {
        store
            .put_upstream_link(&link(user, upstream, Some("s"), 100))
            .await
            .unwrap();
    }
    assert_eq!(store.delete_upstream_links_of_user("u1").await.unwrap(), 2);
    assert!(store.upstream_links_of_user("u1").await.unwrap().is_empty());
    assert_eq!(store.upstream_links_of_user("u2").await.unwrap().len(), 1);
    assert_eq!(store.delete_upstream_links_of_user("u1").await.unwrap(), 0);
}

async fn dev_people_are_disabled_and_enabled(db: &TestDatabase) {
    let store = db.store().await;
    assert!(store.dev_people_disabled().await.unwrap().is_empty());
    store
        .set_dev_person_disabled("bob", true, 100)
        .await
        .unwrap();
    store
        .set_dev_person_disabled("alice", true, 100)
        .await
        .unwrap();
    store
        .set_dev_person_disabled("alice", true, 101)
        .await
        .unwrap();
    assert_eq!(
        store.dev_people_disabled().await.unwrap(),
        vec!["alice".to_string(), "bob".to_string()]
    );
    store
        .set_dev_person_disabled("alice", false, 102)
        .await
        .unwrap();
    store
        .set_dev_person_disabled("carol", false, 102)
        .await
        .unwrap();
    assert_eq!(
        store.dev_people_disabled().await.unwrap(),
        vec!["bob".to_string()]
    );
}

async fn one_of_concurrent_claimers_checks(db: &TestDatabase) {
    let store = db.store().await;
    store
        .put_upstream_link(&link("u1", "wog", Some("s1"), 100))
        .await
        .unwrap();
    let claims = futures_claims(&store).await;
    assert_eq!(claims.iter().filter(|c| **c).count(), 1, "{claims:?}");
    // Held until 200: nobody else, not even with the right time.
    assert!(!store
        .claim_upstream_check("u1", "wog", 100, 150, 250)
        .await
        .unwrap());
    // Expired at 200: claimable again.
    assert!(store
        .claim_upstream_check("u1", "wog", 100, 200, 260)
        .await
        .unwrap());
    // A failure ends the claim; a success too, and moves the time on.
    store.upstream_link_failed("u1", "wog").await.unwrap();
    assert!(store
        .claim_upstream_check("u1", "wog", 100, 201, 261)
        .await
        .unwrap());
    store
        .upstream_link_verified("u1", "wog", Some("s2"), 202)
        .await
        .unwrap();
    assert!(
        !store
            .claim_upstream_check("u1", "wog", 100, 203, 263)
            .await
            .unwrap(),
        "verified meanwhile: the old time no longer matches"
    );
    assert!(store
        .claim_upstream_check("u1", "wog", 202, 203, 263)
        .await
        .unwrap());
    assert!(!store
        .claim_upstream_check("u2", "wog", 100, 203, 263)
        .await
        .unwrap());
}

async fn futures_claims(store: &std::sync::Arc<dyn crate::Store>) -> Vec<bool> {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_upstream_check("u1", "wog", 100, 101, 200)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut claims = Vec::new();
    for t in tasks {
        claims.push(t.await.unwrap());
    }
    claims
}
