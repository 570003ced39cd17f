//! Conformance of the token path's storage: the per-replica row cache ([`crate::CachedRows`])
//! and the grant writes that are one transaction (a code into its grant, a refresh token with
//! its grant).

use std::sync::Arc;
use std::time::Duration;

use crate::conformance::{client, code, grant, secret, tenant, user};
use crate::testing::TestDatabase;
use crate::{
    ClientRecord, GrantRecord, Redemption, RefreshFamily, RefreshTokenRecord, Store, UserRecord,
};
use techpass_domain::tenancy::TenantStatus;

crate::backend_tests!(
    "store::conformance_rows",
    cached_rows_follow_this_stores_writes_at_once,
    cached_rows_follow_other_processes_through_the_database,
    a_code_is_redeemed_into_its_grant_exactly_once,
    a_refresh_token_is_read_with_its_grant,
    a_refresh_token_is_rotated_exactly_once,
    a_failed_write_of_the_token_path_leaves_nothing,
);

/// A store on `db` whose cached rows live an hour: only a change notice can refresh them.
async fn long_lived(db: &TestDatabase) -> Arc<dyn Store> {
    let mut options = db.connect_options();
    options.row_cache_ttl = Duration::from_secs(3600);
    crate::migrate(&options).await.unwrap();
    crate::connect(&options).await.unwrap()
}

fn renamed(name: &str) -> ClientRecord {
    ClientRecord {
        name: name.into(),
        ..client("c1")
    }
}

async fn cached_rows_follow_this_stores_writes_at_once(db: &TestDatabase) {
    let store = long_lived(db).await;
    assert_eq!(store.cached_client("c1").await.unwrap(), None);
    store
        .insert_client(&client("c1"), &[secret("s1", "c1")])
        .await
        .unwrap();
    assert_eq!(store.cached_client("c1").await.unwrap(), Some(client("c1")));
    assert_eq!(
        store.cached_client_secrets("c1").await.unwrap(),
        vec![secret("s1", "c1")]
    );
    store.update_client(&renamed("Renamed")).await.unwrap();
    assert_eq!(
        store.cached_client("c1").await.unwrap(),
        Some(renamed("Renamed"))
    );
    assert!(store
        .add_client_secret(&secret("s2", "c1"), 1, 5)
        .await
        .unwrap());
    assert_eq!(store.cached_client_secrets("c1").await.unwrap().len(), 2);
    assert!(store.revoke_client_secret("c1", "s1", 7).await.unwrap());
    let secrets = store.cached_client_secrets("c1").await.unwrap();
    assert_eq!(secrets[0].revoked_at, Some(7), "the revocation is seen");

    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    assert_eq!(
        store.cached_tenant("t1").await.unwrap(),
        Some(tenant("t1", 1))
    );
    assert!(store
        .transition_tenant(
            "t1",
            &[TenantStatus::Requested],
            TenantStatus::Active,
            "admin",
            None,
            9,
            None,
        )
        .await
        .unwrap());
    let after = store.cached_tenant("t1").await.unwrap().unwrap();
    assert_eq!(
        after.status_at,
        Some(9),
        "the suspension or approval is seen"
    );

    assert!(store.delete_client("c1").await.unwrap());
    assert_eq!(store.cached_client("c1").await.unwrap(), None);
    assert!(store.cached_client_secrets("c1").await.unwrap().is_empty());
}

/// Three processes on one database: `follower` follows the change notices, `other` does not,
/// `writer` changes the app.
async fn cached_rows_follow_other_processes_through_the_database(db: &TestDatabase) {
    let (follower, other, writer) = (
        long_lived(db).await,
        long_lived(db).await,
        long_lived(db).await,
    );
    writer.insert_client(&client("c1"), &[]).await.unwrap();
    let following = {
        let follower = follower.clone();
        tokio::spawn(async move { follower.follow_row_changes().await })
    };
    // Listening (PostgreSQL) or the first look at the version row (SQLite) before the change.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for store in [&follower, &other] {
        assert_eq!(store.cached_client("c1").await.unwrap(), Some(client("c1")));
    }
    writer.update_client(&renamed("Renamed")).await.unwrap();
    let mut seen = false;
    for _ in 0..50 {
        if follower.cached_client("c1").await.unwrap() == Some(renamed("Renamed")) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the follower saw the change within 5 s");
    assert_eq!(
        other.cached_client("c1").await.unwrap(),
        Some(client("c1")),
        "a store that does not follow serves its cached row until it expires"
    );
    assert!(
        !following.is_finished(),
        "following lasts while the database does"
    );
    following.abort();
}

/// An unused refresh token of `grant_id`, live until 500.
pub(crate) fn refresh(hash: &str, grant_id: &str) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash.into(),
        grant_id: grant_id.into(),
        created_at: 10,
        expires_at: 500,
        used_at: None,
    }
}

async fn a_code_is_redeemed_into_its_grant_exactly_once(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_code(&code("k")).await.unwrap();
    let racers = (0..4).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let g = grant(&format!("g{i}"), Some("s"));
            let r = refresh(&format!("r{i}"), &g.id);
            store
                .redeem_code_into_grant("k", 10, &g, Some(&r))
                .await
                .unwrap()
        })
    });
    let mut redeemed = Vec::new();
    let mut replayed = Vec::new();
    for r in racers {
        match r.await.unwrap() {
            Redemption::Redeemed(c) => redeemed.push(c),
            Redemption::Replayed(c) => replayed.push(c),
            Redemption::NotFound => panic!("the code exists"),
        }
    }
    assert_eq!(redeemed.len(), 1);
    // The code names the grant it was redeemed into, as the winner and every loser see it: what
    // a replay revokes.
    let winner = redeemed[0]
        .grant_id
        .clone()
        .expect("the code names its grant");
    for c in redeemed.iter().chain(&replayed) {
        assert_eq!(c.used_at, Some(10));
        assert_eq!(c.grant_id.as_deref(), Some(winner.as_str()));
    }
    assert_eq!(
        store.get_code("k").await.unwrap().unwrap().grant_id,
        Some(winner.clone())
    );
    // Exactly the winner's grant and refresh token are stored; the others wrote nothing.
    let mut stored = 0;
    for i in 0..4 {
        let g = store.get_grant(&format!("g{i}")).await.unwrap();
        let r = store.get_refresh_token(&format!("r{i}")).await.unwrap();
        assert_eq!(g.is_some(), r.is_some(), "a grant and its token together");
        if let Some(g) = g {
            assert_eq!(g, grant(&format!("g{i}"), Some("s")));
            assert_eq!(g.id, winner);
            assert_eq!(r, Some(refresh(&format!("r{i}"), &g.id)));
            stored += 1;
        }
    }
    assert_eq!(stored, 1);
    // Without a refresh token; and an unknown code stores nothing.
    store.insert_code(&code("k2")).await.unwrap();
    let g = grant("g9", None);
    assert!(matches!(
        store
            .redeem_code_into_grant("k2", 11, &g, None)
            .await
            .unwrap(),
        Redemption::Redeemed(_)
    ));
    assert_eq!(store.get_grant("g9").await.unwrap(), Some(g));
    let lost = grant("g10", None);
    assert_eq!(
        store
            .redeem_code_into_grant("nope", 11, &lost, Some(&refresh("r10", "g10")))
            .await
            .unwrap(),
        Redemption::NotFound
    );
    assert_eq!(store.get_grant("g10").await.unwrap(), None);
    assert_eq!(store.get_refresh_token("r10").await.unwrap(), None);
}

async fn a_refresh_token_is_read_with_its_grant(db: &TestDatabase) {
    let store = db.store().await;
    store
        .upsert_user(&UserRecord {
            given_name: Some("Alice".into()),
            family_name: Some("Tan".into()),
            email_verified: true,
            ..user("u1")
        })
        .await
        .unwrap();
    // The joined person reads as the person's own row does.
    let alice = store.get_user("u1").await.unwrap().unwrap();
    assert_eq!(alice.given_name.as_deref(), Some("Alice"));
    let g = GrantRecord {
        user_id: Some("u1".into()),
        ..grant("g1", Some("s"))
    };
    store.insert_grant(&g).await.unwrap();
    store
        .insert_refresh_token(&refresh("r1", "g1"))
        .await
        .unwrap();
    assert_eq!(
        store.get_refresh_token_with_grant("r1").await.unwrap(),
        Some(RefreshFamily {
            token: refresh("r1", "g1"),
            grant: g.clone(),
            person: Some(alice.clone()),
        })
    );
    store.redeem_refresh_token("r1", 20, None).await.unwrap();
    let family = store
        .get_refresh_token_with_grant("r1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        family.token.used_at,
        Some(20),
        "a used token is found, as used"
    );
    assert_eq!(
        store.get_refresh_token_with_grant("nope").await.unwrap(),
        None
    );
    // A grant whose person is not (or no longer) there: found, without a person.
    let orphan = GrantRecord {
        user_id: Some("gone".into()),
        ..grant("g2", None)
    };
    store.insert_grant(&orphan).await.unwrap();
    store
        .insert_refresh_token(&refresh("r2", "g2"))
        .await
        .unwrap();
    let family = store
        .get_refresh_token_with_grant("r2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((family.grant, family.person), (orphan, None));
    // The code, read with its person the same way.
    store.insert_code(&code("k")).await.unwrap();
    let (found, person) = store.get_code_with_user("k").await.unwrap().unwrap();
    assert_eq!(found, code("k"));
    assert_eq!(found.user_id, "u1");
    assert_eq!(person, Some(alice));
    assert_eq!(store.get_code_with_user("nope").await.unwrap(), None);
}

async fn a_refresh_token_is_rotated_exactly_once(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_grant(&grant("g1", Some("s"))).await.unwrap();
    store
        .insert_refresh_token(&refresh("r0", "g1"))
        .await
        .unwrap();
    let racers = (1..=4).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .redeem_refresh_token("r0", 20, Some(&refresh(&format!("r{i}"), "g1")))
                .await
                .unwrap()
        })
    });
    let mut redeemed = 0;
    for r in racers {
        match r.await.unwrap() {
            Redemption::Redeemed(t) => {
                redeemed += 1;
                assert_eq!((t.token_hash.as_str(), t.used_at), ("r0", Some(20)));
            }
            Redemption::Replayed(t) => assert_eq!(t.used_at, Some(20)),
            Redemption::NotFound => panic!("the token exists"),
        }
    }
    assert_eq!(redeemed, 1);
    let mut successors = 0;
    for i in 1..=4 {
        if let Some(t) = store.get_refresh_token(&format!("r{i}")).await.unwrap() {
            assert_eq!(t, refresh(&format!("r{i}"), "g1"));
            successors += 1;
        }
    }
    assert_eq!(successors, 1, "only the winner's successor is stored");
    // Spent without a successor (the last use of a family): nothing else is written.
    store
        .insert_refresh_token(&refresh("r9", "g1"))
        .await
        .unwrap();
    assert!(matches!(
        store.redeem_refresh_token("r9", 21, None).await.unwrap(),
        Redemption::Redeemed(_)
    ));
    assert_eq!(
        store
            .get_refresh_token("r9")
            .await
            .unwrap()
            .unwrap()
            .used_at,
        Some(21)
    );
}

/// A write that fails half-way (here: what it inserts collides with a stored row) leaves the
/// code or token unspent, and nothing of it stored: one transaction or one statement.
async fn a_failed_write_of_the_token_path_leaves_nothing(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_grant(&grant("g1", Some("s"))).await.unwrap();
    store
        .insert_refresh_token(&refresh("r1", "g1"))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("taken", "g1"))
        .await
        .unwrap();
    assert!(store
        .redeem_refresh_token("r1", 20, Some(&refresh("taken", "g1")))
        .await
        .is_err());
    assert_eq!(
        store
            .get_refresh_token("r1")
            .await
            .unwrap()
            .unwrap()
            .used_at,
        None,
        "the token is not spent"
    );
    // Nor does it keep the database locked for other writers.
    store
        .insert_refresh_token(&refresh("r3", "g1"))
        .await
        .unwrap();
    // The code: its grant's id is taken, or its refresh token's hash.
    store.insert_code(&code("k")).await.unwrap();
    let taken = grant("g1", Some("s"));
    assert!(store
        .redeem_code_into_grant("k", 20, &taken, Some(&refresh("r2", "g1")))
        .await
        .is_err());
    assert_eq!(store.get_refresh_token("r2").await.unwrap(), None);
    let fresh = grant("g2", Some("s"));
    assert!(store
        .redeem_code_into_grant("k", 20, &fresh, Some(&refresh("taken", "g2")))
        .await
        .is_err());
    assert_eq!(store.get_grant("g2").await.unwrap(), None);
    assert_eq!(
        store.get_code("k").await.unwrap().unwrap().used_at,
        None,
        "the code is not spent"
    );
    // And it is still good for a write that does not collide.
    assert!(matches!(
        store
            .redeem_code_into_grant("k", 21, &fresh, Some(&refresh("r2", "g2")))
            .await
            .unwrap(),
        Redemption::Redeemed(_)
    ));
    assert_eq!(store.get_grant("g2").await.unwrap(), Some(fresh));
}
