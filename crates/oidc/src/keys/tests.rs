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

/// The kids of `alg`'s published keys.
fn kids(jwks: &Jwks, alg: SigningAlg) -> Vec<String> {
    jwks.keys
        .iter()
        .filter(|k| k.alg == alg.as_str())
        .map(|k| k.kid.clone())
        .collect()
}

const RS: SigningAlg = SigningAlg::RS256;

techpass_store::backend_tests!(
    "oidc::keys",
    first_start_creates_one_key_and_restarts_reuse_it,
    wrong_master_key_is_an_error_not_a_new_key,
    rotation_publishes_first_then_signs_then_retires,
    concurrent_first_start_and_rotation_yield_one_key,
    signed_jwt_verifies_against_published_jwks,
    every_algorithm_signs_tokens_that_verify_against_the_jwks,
    an_algorithm_added_later_gets_its_first_key_beside_the_others,
    a_compromised_key_is_retired_at_once_and_a_new_one_signs,
);

/// Emergency retirement: the active key leaves the JWKS and stops verifying at once, a new key
/// of its algorithm signs at once (a pending one is withdrawn), other algorithms are untouched,
/// a retired or pending key is simply removed, and an unknown id changes nothing.
async fn a_compromised_key_is_retired_at_once_and_a_new_one_signs(db: &TestDatabase) {
    let mk = MasterKey::generate_base64().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let keys = manager(db, &mk, clock.clone()).await;
    let es_before = keys
        .signing_key(SigningAlg::ES256)
        .unwrap()
        .kid()
        .to_string();
    clock.advance(100);
    let pending = keys.rotate(false).await.unwrap();
    let pending_rs = pending.iter().find(|r| r.alg == RS).unwrap().kid.clone();
    let compromised = keys.signing_key(RS).unwrap().kid().to_string();
    let signed = keys
        .sign_jwt(RS, "JWT", &serde_json::json!({"sub": "x"}))
        .unwrap();
    assert!(keys.verify_jwt(&signed).is_ok());

    let unknown = keys.retire_now("no-such-kid").await;
    assert!(
        matches!(unknown, Err(KeyError::UnknownKey(_))),
        "{unknown:?}"
    );
    assert_eq!(keys.jwks().keys.len(), 6, "nothing changed");

    let status = keys
        .statuses()
        .into_iter()
        .find(|k| k.kid == compromised)
        .unwrap();
    assert_eq!(status.key_type, "RSA 2048-bit");
    assert_eq!(status.key_type, format!("RSA {RSA_BITS}-bit"));
    let retired = keys.retire_now(&compromised).await.unwrap();
    assert_eq!(retired.alg, RS);
    assert_eq!(retired.was, "active");
    assert_eq!(retired.withdrawn, vec![pending_rs.clone()]);
    let replacement = retired.replacement.clone().unwrap();
    assert_eq!(replacement.generation, 3);
    assert_eq!(replacement.activates_at, clock.now(), "signs at once");
    assert_eq!(keys.signing_key(RS).unwrap().kid(), replacement.kid);
    assert_eq!(kids(&keys.jwks(), RS), vec![replacement.kid.clone()]);
    assert!(
        keys.verify_jwt(&signed).is_err(),
        "what the compromised key signed no longer verifies"
    );
    let fresh = keys
        .sign_jwt(RS, "JWT", &serde_json::json!({"sub": "x"}))
        .unwrap();
    assert!(keys.verify_jwt(&fresh).is_ok());
    // The other algorithms keep their schedule.
    assert_eq!(
        keys.signing_key(SigningAlg::ES256).unwrap().kid(),
        es_before
    );
    assert_eq!(kids(&keys.jwks(), SigningAlg::ES256).len(), 2);

    // Another replica drops it at its next reload.
    let other = manager(db, &mk, clock.clone()).await;
    assert_eq!(kids(&other.jwks(), RS), vec![replacement.kid.clone()]);

    // A pending key of another algorithm is just removed; nothing new is made.
    let es_pending = pending
        .iter()
        .find(|r| r.alg == SigningAlg::ES256)
        .unwrap()
        .kid
        .clone();
    let removed = keys.retire_now(&es_pending).await.unwrap();
    assert_eq!(removed.was, "pending");
    assert_eq!(removed.replacement, None);
    assert_eq!(
        kids(&keys.jwks(), SigningAlg::ES256),
        vec![es_before.clone()]
    );
    assert_eq!(
        keys.signing_key(SigningAlg::ES256).unwrap().kid(),
        es_before
    );

    // A retired key (still published for its tokens) is removed; the signer stays.
    clock.advance(DELAY);
    let eddsa = pending
        .iter()
        .find(|r| r.alg == SigningAlg::EdDSA)
        .unwrap()
        .kid
        .clone();
    assert_eq!(keys.signing_key(SigningAlg::EdDSA).unwrap().kid(), eddsa);
    let old_eddsa = kids(&keys.jwks(), SigningAlg::EdDSA)[0].clone();
    assert_ne!(old_eddsa, eddsa);
    let removed = keys.retire_now(&old_eddsa).await.unwrap();
    assert_eq!(removed.was, "retired");
    assert_eq!(removed.replacement, None);
    assert_eq!(kids(&keys.jwks(), SigningAlg::EdDSA), vec![eddsa.clone()]);
    assert_eq!(keys.signing_key(SigningAlg::EdDSA).unwrap().kid(), eddsa);
}

async fn first_start_creates_one_key_and_restarts_reuse_it(db: &TestDatabase) {
    let mk = MasterKey::generate_base64().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let first = manager(db, &mk, clock.clone()).await;
    let kids: Vec<String> = SigningAlg::ALL
        .iter()
        .map(|a| first.signing_key(*a).unwrap().kid().to_string())
        .collect();
    let again = manager(db, &mk, clock).await;
    for (alg, kid) in SigningAlg::ALL.iter().zip(&kids) {
        assert_eq!(again.signing_key(*alg).unwrap().kid(), kid);
        assert_eq!(again.signing_key(*alg).unwrap().alg(), *alg);
    }
    let rows = db.store().await.list_signing_keys().await.unwrap();
    assert_eq!(rows.len(), 3, "one key per algorithm");
    for row in &rows {
        // Stored sealed: the DER of the private key is not in the row.
        assert_eq!(row.private_key_sealed[0], 1, "sealed format version");
        assert_eq!(row.generation, 1);
    }
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
    assert_eq!(db.store().await.list_signing_keys().await.unwrap().len(), 3);
}

async fn rotation_publishes_first_then_signs_then_retires(db: &TestDatabase) {
    let mk = MasterKey::generate_base64().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let keys = manager(db, &mk, clock.clone()).await;
    let old: Vec<String> = SigningAlg::ALL
        .iter()
        .map(|a| keys.signing_key(*a).unwrap().kid().to_string())
        .collect();

    clock.advance(100);
    let rotations = keys.rotate(false).await.unwrap();
    assert_eq!(
        rotations.iter().map(|r| r.alg).collect::<Vec<_>>(),
        SigningAlg::ALL.to_vec(),
        "every algorithm rotates"
    );
    for ((alg, old), rotation) in SigningAlg::ALL.iter().zip(&old).zip(&rotations) {
        assert_eq!(rotation.activates_at, Timestamp(START + 100 + DELAY));
        assert_eq!(rotation.generation, 2);
        // Published at once, not yet signing.
        assert_eq!(
            kids(&keys.jwks(), *alg),
            vec![old.clone(), rotation.kid.clone()]
        );
        assert_eq!(keys.signing_key(*alg).unwrap().kid(), old);
    }
    // A second rotation during pre-publication is refused, and creates nothing.
    assert!(matches!(
        keys.rotate(false).await,
        Err(KeyError::Refused(_))
    ));
    assert_eq!(keys.jwks().keys.len(), 6);

    let activates_at = rotations[0].activates_at;
    clock.set(activates_at);
    for ((alg, old), rotation) in SigningAlg::ALL.iter().zip(&old).zip(&rotations) {
        assert_eq!(keys.signing_key(*alg).unwrap().kid(), rotation.kid);
        assert_eq!(
            kids(&keys.jwks(), *alg),
            vec![old.clone(), rotation.kid.clone()]
        );
    }
    let statuses = keys.statuses();
    for old in &old {
        let status = statuses.iter().find(|s| &s.kid == old).unwrap();
        assert_eq!(status.state, "retired");
        assert_eq!(status.published_until, Some(activates_at.as_secs() + TTL));
    }

    clock.set(activates_at.plus(TTL));
    for (alg, rotation) in SigningAlg::ALL.iter().zip(&rotations) {
        assert_eq!(kids(&keys.jwks(), *alg), vec![rotation.kid.clone()]);
    }
    keys.reload().await.unwrap();
    let mut stored: Vec<_> = db
        .store()
        .await
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    stored.sort();
    let mut expected: Vec<String> = rotations.into_iter().map(|r| r.kid).collect();
    expected.sort();
    assert_eq!(stored, expected, "expired keys deleted");
}

async fn concurrent_first_start_and_rotation_yield_one_key(db: &TestDatabase) {
    let mk = MasterKey::generate_base64().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let (a, b) = tokio::join!(
        KeyManager::open(db.store().await, master(&mk), clock.clone(), settings()),
        KeyManager::open(db.store().await, master(&mk), clock.clone(), settings()),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    for alg in SigningAlg::ALL {
        assert_eq!(
            a.signing_key(alg).unwrap().kid(),
            b.signing_key(alg).unwrap().kid()
        );
    }
    assert_eq!(db.store().await.list_signing_keys().await.unwrap().len(), 3);

    let (ra, rb) = tokio::join!(a.rotate(false), b.rotate(false));
    let outcomes = [ra, rb];
    let created = outcomes.iter().filter(|r| r.is_ok()).count();
    // The loser either lost the insert race on generation 2 of some algorithm (the store's
    // uniqueness, tested with eight racers in the conformance suite) or already saw the
    // winner's pending key.
    let raced = outcomes
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(KeyError::ConcurrentRotation { generation: 2, .. } | KeyError::Refused(_))
            )
        })
        .count();
    // Both may have rotated some algorithms (each one's generation 2 created exactly once),
    // and at most one call finished them all.
    assert!(created <= 1 && created + raced == 2, "{outcomes:?}");
    let rows = db.store().await.list_signing_keys().await.unwrap();
    for alg in SigningAlg::ALL {
        let generations: Vec<i64> = rows
            .iter()
            .filter(|r| r.algorithm == alg.as_str())
            .map(|r| r.generation)
            .collect();
        assert!(
            generations == vec![1, 2] || generations == vec![1],
            "{alg}: {generations:?}"
        );
    }
    if created == 1 {
        assert_eq!(rows.len(), 6);
    }
    a.reload().await.unwrap();
    b.reload().await.unwrap();
    for alg in SigningAlg::ALL {
        assert_eq!(kids(&a.jwks(), alg), kids(&b.jwks(), alg));
    }
}

async fn signed_jwt_verifies_against_published_jwks(db: &TestDatabase) {
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let keys = manager(db, &MasterKey::generate_base64().unwrap(), clock).await;
    let claims =
        serde_json::json!({"iss": "https://id.example", "sub": "u1", "exp": 4_000_000_000u64});
    let token = keys.sign_jwt(RS, "JWT", &claims).unwrap();

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

/// ES256 and EdDSA tokens verify, independently, with jsonwebtoken from the published JWKS; our
/// verifier takes each and refuses a header that names another algorithm than its key's.
async fn every_algorithm_signs_tokens_that_verify_against_the_jwks(db: &TestDatabase) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let keys = manager(db, &MasterKey::generate_base64().unwrap(), clock).await;
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(serde_json::to_value(keys.jwks()).unwrap()).unwrap();
    assert_eq!(jwks.keys.len(), 3);
    let claims =
        serde_json::json!({"iss": "https://id.example", "sub": "u1", "exp": 4_000_000_000u64});
    for (alg, theirs) in [
        (SigningAlg::RS256, jsonwebtoken::Algorithm::RS256),
        (SigningAlg::ES256, jsonwebtoken::Algorithm::ES256),
        (SigningAlg::EdDSA, jsonwebtoken::Algorithm::EdDSA),
    ] {
        let token = keys.sign_jwt(alg, "at+jwt", &claims).unwrap();
        let header = decode_header(&token).unwrap();
        assert_eq!(header.alg, theirs);
        assert_eq!(
            header.kid.as_deref(),
            Some(keys.signing_key(alg).unwrap().kid())
        );
        let key =
            DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
        let mut validation = Validation::new(theirs);
        validation.set_required_spec_claims(&["exp"]);
        let verified = decode::<serde_json::Value>(&token, &key, &validation).unwrap();
        assert_eq!(verified.claims["sub"], "u1");
        let (typ, ours) = keys.verify_jwt(&token).unwrap();
        assert_eq!(
            (typ.as_str(), &ours["sub"]),
            ("at+jwt", &serde_json::json!("u1"))
        );

        // The same token with its header claiming each other algorithm: refused.
        let (_, rest) = token.split_once('.').unwrap();
        for other in SigningAlg::ALL.into_iter().filter(|a| *a != alg) {
            let lying = URL_SAFE_NO_PAD.encode(format!(
                r#"{{"alg":"{other}","typ":"at+jwt","kid":"{}"}}"#,
                header.kid.as_deref().unwrap()
            ));
            assert!(
                keys.verify_jwt(&format!("{lying}.{rest}")).is_err(),
                "{alg} as {other}"
            );
        }
        // A signature of another key of another algorithm does not pass either.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let other = keys
            .sign_jwt(
                if alg == SigningAlg::ES256 {
                    SigningAlg::EdDSA
                } else {
                    SigningAlg::ES256
                },
                "at+jwt",
                &claims,
            )
            .unwrap();
        parts[2] = other.rsplit('.').next().unwrap().to_string();
        assert!(keys.verify_jwt(&parts.join(".")).is_err());
    }
}

/// A database from before ES256 and EdDSA (an RS256 key only, at generation 3): opening it adds
/// generation 1 of each new algorithm and keeps the RS256 series as it was.
async fn an_algorithm_added_later_gets_its_first_key_beside_the_others(db: &TestDatabase) {
    let mk = MasterKey::generate_base64().unwrap();
    let store = db.store().await;
    let generated = material::generate(SigningAlg::RS256).unwrap();
    let record = techpass_store::SigningKeyRecord {
        kid: generated.jwk.kid.clone(),
        generation: 3,
        algorithm: "RS256".into(),
        public_jwk: serde_json::to_string(&generated.jwk).unwrap(),
        private_key_sealed: master(&mk)
            .seal(&generated.jwk.kid, &generated.pkcs8_der)
            .unwrap(),
        created_at: START - 10,
        activates_at: START - 10,
    };
    store.insert_signing_key(&record).await.unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let keys = manager(db, &mk, clock).await;
    assert_eq!(keys.signing_key(RS).unwrap().kid(), record.kid);
    let mut rows: Vec<(String, i64)> = store
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.algorithm, r.generation))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("ES256".into(), 1),
            ("EdDSA".into(), 1),
            ("RS256".into(), 3)
        ]
    );
    // A row whose algorithm this version does not know is refused, not guessed at.
    let mut unknown = record.clone();
    unknown.kid = "other".into();
    unknown.generation = 1;
    unknown.algorithm = "PS256".into();
    store.insert_signing_key(&unknown).await.unwrap();
    let err = keys.reload().await.unwrap_err();
    assert!(
        err.to_string().contains("unsupported signing algorithm"),
        "{err}"
    );
}
