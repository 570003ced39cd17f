//! Key manager behaviour on both storage backends.

use std::sync::Arc;

use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use techpass_domain::{ManualClock, Timestamp};
use techpass_store::testing::TestDatabase;

use super::*;

const DELAY: i64 = 3_600;
const TTL: i64 = 900;
const START: i64 = 1_800_000_000;

fn settings() -> KeySettings {
    KeySettings {
        prepublication_delay: DELAY,
        max_token_lifetime: TTL,
    }
}

fn master(text: &str) -> MasterKey {
    MasterKey::from_base64(text).unwrap()
}

async fn manager(db: &TestDatabase, master_text: &str, clock: Arc<ManualClock>) -> KeyManager {
    KeyManager::open(db.store().await, master(master_text), clock, settings())
        .await
        .unwrap()
}

fn kids(jwks: &Jwks) -> Vec<String> {
    jwks.keys.iter().map(|k| k.kid.clone()).collect()
}

techpass_store::backend_tests!(
    "oidc::keys",
    first_start_creates_one_key_and_restarts_reuse_it,
    wrong_master_key_is_an_error_not_a_new_key,
    rotation_publishes_first_then_signs_then_retires,
    concurrent_first_start_and_rotation_yield_one_key,
    signed_jwt_verifies_against_published_jwks,
);

async fn first_start_creates_one_key_and_restarts_reuse_it(db: &TestDatabase) {
    let mk = MasterKey::generate_base64().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let first = manager(db, &mk, clock.clone()).await;
    let kid = first.signing_key().unwrap().kid().to_string();
    let again = manager(db, &mk, clock).await;
    assert_eq!(again.signing_key().unwrap().kid(), kid);
    assert_eq!(db.store().await.list_signing_keys().await.unwrap().len(), 1);
    // Stored sealed: the DER of the private key is not in the row.
    let row = &db.store().await.list_signing_keys().await.unwrap()[0];
    assert_eq!(row.private_key_sealed[0], 1, "sealed format version");
}

async fn wrong_master_key_is_an_error_not_a_new_key(db: &TestDatabase) {
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    manager(db, &MasterKey::generate_base64().unwrap(), clock.clone()).await;
    let other = master(&MasterKey::generate_base64().unwrap());
    let err = KeyManager::open(db.store().await, other, clock, settings())
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::WrongMasterKey { .. }), "{err}");
    assert!(err.to_string().contains("does not decrypt signing key"));
    assert_eq!(db.store().await.list_signing_keys().await.unwrap().len(), 1);
}

async fn rotation_publishes_first_then_signs_then_retires(db: &TestDatabase) {
    let mk = MasterKey::generate_base64().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let keys = manager(db, &mk, clock.clone()).await;
    let old = keys.signing_key().unwrap().kid().to_string();

    clock.advance(100);
    let rotation = keys.rotate(false).await.unwrap();
    assert_eq!(rotation.activates_at, Timestamp(START + 100 + DELAY));
    // Published at once, not yet signing.
    assert_eq!(kids(&keys.jwks()), vec![old.clone(), rotation.kid.clone()]);
    assert_eq!(keys.signing_key().unwrap().kid(), old);
    // A second rotation during pre-publication is refused.
    assert!(matches!(
        keys.rotate(false).await,
        Err(KeyError::Refused(_))
    ));

    clock.set(rotation.activates_at);
    assert_eq!(keys.signing_key().unwrap().kid(), rotation.kid);
    assert_eq!(kids(&keys.jwks()), vec![old.clone(), rotation.kid.clone()]);
    let statuses = keys.statuses();
    assert_eq!(statuses[0].state, "retired");
    assert_eq!(
        statuses[0].published_until,
        Some(rotation.activates_at.as_secs() + TTL)
    );

    clock.set(rotation.activates_at.plus(TTL));
    assert_eq!(kids(&keys.jwks()), vec![rotation.kid.clone()]);
    keys.reload().await.unwrap();
    let stored: Vec<_> = db
        .store()
        .await
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(stored, vec![rotation.kid], "expired key deleted");
}

async fn concurrent_first_start_and_rotation_yield_one_key(db: &TestDatabase) {
    let mk = MasterKey::generate_base64().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let (a, b) = tokio::join!(
        KeyManager::open(db.store().await, master(&mk), clock.clone(), settings()),
        KeyManager::open(db.store().await, master(&mk), clock.clone(), settings()),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.signing_key().unwrap().kid(),
        b.signing_key().unwrap().kid()
    );
    assert_eq!(db.store().await.list_signing_keys().await.unwrap().len(), 1);

    let (ra, rb) = tokio::join!(a.rotate(false), b.rotate(false));
    let outcomes = [ra, rb];
    let created = outcomes.iter().filter(|r| r.is_ok()).count();
    // The loser either lost the insert race on generation 2 (the store's uniqueness, tested with
    // eight racers in the conformance suite) or already saw the winner's pending key.
    let raced = outcomes
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(KeyError::ConcurrentRotation { generation: 2 } | KeyError::Refused(_))
            )
        })
        .count();
    assert_eq!((created, raced), (1, 1), "{outcomes:?}");
    assert_eq!(db.store().await.list_signing_keys().await.unwrap().len(), 2);
    b.reload().await.unwrap();
    assert_eq!(kids(&a.jwks()), kids(&b.jwks()));
}

async fn signed_jwt_verifies_against_published_jwks(db: &TestDatabase) {
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let keys = manager(db, &MasterKey::generate_base64().unwrap(), clock).await;
    let claims =
        serde_json::json!({"iss": "https://id.example", "sub": "u1", "exp": 4_000_000_000u64});
    let token = keys.sign_jwt("JWT", &claims).unwrap();

    // Verified independently, by jsonwebtoken, from the JWKS as published.
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(serde_json::to_value(keys.jwks()).unwrap()).unwrap();
    let header = decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp"]);
    let verified = decode::<serde_json::Value>(&token, &key, &validation).unwrap();
    assert_eq!(verified.claims["sub"], "u1");

    // Our own verifier agrees, and refuses alterations.
    let (typ, ours) = keys.verify_jwt(&token).unwrap();
    assert_eq!(
        (typ.as_str(), &ours["sub"]),
        ("JWT", &serde_json::json!("u1"))
    );
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged_claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"sub":"admin","exp":4000000000}"#,
    );
    parts[1] = &forged_claims;
    assert!(keys.verify_jwt(&parts.join(".")).is_err(), "claims swapped");
    assert!(keys.verify_jwt("a.b").is_err());
    let none_header = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"alg":"none","kid":"x"}"#,
    );
    let unsigned = format!("{none_header}.{}.", token.split('.').nth(1).unwrap());
    assert!(keys.verify_jwt(&unsigned).is_err(), "alg none");

    // A flipped signature byte does not verify.
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert!(decode::<serde_json::Value>(&forged, &key, &validation).is_err());
}
