//! The provider's signing keys: created, sealed with the master key, stored, loaded into memory,
//! rotated on the schedule of [`techpass_domain::keys`] and published as a JWKS.
//!
//! Each algorithm TechPass signs with ([`SigningAlg`]: RS256, ES256, EdDSA) has its own series of
//! keys with its own generations, on the same schedule: a rotation rotates every algorithm, and
//! all their pending, active and retired keys are published together.
//!
//! Every replica holds the keys parsed in memory and reloads them from the database at an
//! interval, so a rotation made anywhere (another replica or the `techpass keys rotate` command)
//! is picked up everywhere before the new key signs: the pre-publication delay must exceed that
//! interval plus the JWKS cache lifetime, which configuration checks.

mod algorithm;
pub mod jwt;
mod material;
mod sealing;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use techpass_domain::keys::{
    key_states, plan_rotation, KeyMeta, KeyState, RotationPlan, RotationRefused,
};
use techpass_domain::{Clock, Timestamp};
use techpass_store::{SigningKeyRecord, Store, StoreError};

pub use algorithm::{SigningAlg, UnsupportedAlg};
pub use material::{PublicJwk, RSA_BITS};
pub use sealing::{MasterKey, MASTER_KEY_LEN};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the master key does not decrypt signing key {kid}: it is not the master key this database's keys were sealed with")]
    WrongMasterKey { kid: String },
    #[error("the master key {0}")]
    MalformedMasterKey(String),
    #[error("no {0} signing key is active")]
    NoActiveKey(SigningAlg),
    #[error(transparent)]
    Refused(#[from] RotationRefused),
    #[error(
        "another rotation created {alg} generation {generation} at the same time; that key stands"
    )]
    ConcurrentRotation { alg: SigningAlg, generation: i64 },
    #[error("stored key {kid} is malformed: {reason}")]
    Malformed { kid: String, reason: String },
    #[error("cryptography: {0}")]
    Crypto(String),
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("no published signing key has the id {0}")]
    UnknownKey(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The timing rules of the key schedule, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct KeySettings {
    /// How long a new key is published before it signs.
    pub prepublication_delay: i64,
    /// The longest lifetime of any token a key signs (plus allowed clock skew): a retired key
    /// stays published this long.
    pub max_token_lifetime: i64,
}

/// A key in memory: its schedule, public half and parsed private half.
#[derive(Debug)]
pub struct SigningKey {
    alg: SigningAlg,
    meta: KeyMeta,
    created_at: Timestamp,
    jwk: PublicJwk,
    signer: material::Signer,
}

impl SigningKey {
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.meta.kid
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.signer.sign(message)
    }
}

/// One key's standing, for `techpass keys list` and the admin pages.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KeyStatus {
    pub kid: String,
    pub algorithm: SigningAlg,
    /// Kind and size: `RSA 2048-bit`, `EC P-256`, `Ed25519`.
    pub key_type: &'static str,
    pub generation: i64,
    pub state: &'static str,
    pub created_at: i64,
    pub activates_at: i64,
    /// For a retired key: when it leaves the JWKS.
    pub published_until: Option<i64>,
}

/// The JWKS document (RFC 7517 §5).
#[derive(Debug, Clone, Serialize)]
pub struct Jwks {
    pub keys: Vec<PublicJwk>,
}

/// What a successful rotation created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub alg: SigningAlg,
    pub kid: String,
    pub generation: i64,
    pub activates_at: Timestamp,
}

/// What an emergency retirement ([`KeyManager::retire_now`]) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    pub alg: SigningAlg,
    pub kid: String,
    /// The key's state before: `active`, `pending` or `retired`.
    pub was: &'static str,
    /// The key that signs from now on, created without pre-publication, when the retired key
    /// was the one signing.
    pub replacement: Option<Rotation>,
    /// Pending keys of the same algorithm removed with it (they would have signed after the
    /// replacement); they never signed anything.
    pub withdrawn: Vec<String>,
}

#[derive(Debug)]
pub struct KeyManager {
    store: Arc<dyn Store>,
    master: MasterKey,
    clock: Arc<dyn Clock>,
    settings: KeySettings,
    keys: RwLock<Arc<Vec<Arc<SigningKey>>>>,
}

impl KeyManager {
    /// Loads and unseals every stored key; for each algorithm with none stored (the first
    /// start, or the first start of a version that added the algorithm) creates its first key,
    /// which signs at once: no app can have chosen an algorithm before its first key exists.
    /// Fails with [`KeyError::WrongMasterKey`] rather than ever making a new key over keys it
    /// cannot open.
    pub async fn open(
        store: Arc<dyn Store>,
        master: MasterKey,
        clock: Arc<dyn Clock>,
        settings: KeySettings,
    ) -> Result<Self, KeyError> {
        let manager = KeyManager {
            store,
            master,
            clock,
            settings,
            keys: RwLock::new(Arc::new(Vec::new())),
        };
        manager.reload().await?;
        for alg in SigningAlg::ALL {
            if manager.snapshot().iter().any(|k| k.alg == alg) {
                continue;
            }
            // Generation 1, whatever another replica is doing: if it wins, its key is used.
            let first = plan_rotation(&[], manager.clock.now(), 0, false)?;
            match manager.create_key(alg, first).await {
                Ok(rotation) => {
                    tracing::info!(kid = %rotation.kid, %alg, "created the first signing key")
                }
                Err(KeyError::ConcurrentRotation { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(manager)
    }

    fn snapshot(&self) -> Arc<Vec<Arc<SigningKey>>> {
        match self.keys.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Each key's state now, in the order of `keys`: the schedule runs per algorithm.
    fn states(&self, keys: &[Arc<SigningKey>], now: Timestamp) -> Vec<KeyState> {
        let mut states = vec![KeyState::Expired; keys.len()];
        for alg in SigningAlg::ALL {
            let (positions, metas): (Vec<usize>, Vec<KeyMeta>) = keys
                .iter()
                .enumerate()
                .filter(|(_, k)| k.alg == alg)
                .map(|(i, k)| (i, k.meta.clone()))
                .unzip();
            let series = key_states(&metas, now, self.settings.max_token_lifetime);
            for (position, state) in positions.into_iter().zip(series) {
                states[position] = state;
            }
        }
        states
    }

    /// The metadata of `alg`'s keys, by generation.
    fn metas(&self, alg: SigningAlg) -> Vec<KeyMeta> {
        self.snapshot()
            .iter()
            .filter(|k| k.alg == alg)
            .map(|k| k.meta.clone())
            .collect()
    }

    /// Re-reads the keys from the database, unsealing only those not already in memory, and
    /// deletes keys whose every token has expired.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let records = self.store.list_signing_keys().await?;
        let current: HashMap<String, Arc<SigningKey>> = self
            .snapshot()
            .iter()
            .map(|k| (k.meta.kid.clone(), k.clone()))
            .collect();
        let mut keys = Vec::with_capacity(records.len());
        for record in records {
            match current.get(&record.kid) {
                Some(k) if k.meta.generation == record.generation => keys.push(k.clone()),
                _ => keys.push(Arc::new(self.unseal(record)?)),
            }
        }
        let now = self.clock.now();
        let expired: Vec<String> = self
            .states(&keys, now)
            .into_iter()
            .zip(&keys)
            .filter(|(state, _)| *state == KeyState::Expired)
            .map(|(_, k)| k.meta.kid.clone())
            .collect();
        if !expired.is_empty() {
            self.store.delete_signing_keys(&expired).await?;
            tracing::info!(kids = ?expired, "deleted signing keys whose tokens have all expired");
            keys.retain(|k| !expired.contains(&k.meta.kid));
        }
        // By algorithm (the default first, so a relying party that takes the first key of the
        // JWKS gets an RS256 one), then generation.
        keys.sort_by_key(|k| (k.alg, k.meta.generation));
        let mut guard = match self.keys.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(keys);
        Ok(())
    }

    fn unseal(&self, record: SigningKeyRecord) -> Result<SigningKey, KeyError> {
        let malformed = |reason: String| KeyError::Malformed {
            kid: record.kid.clone(),
            reason,
        };
        let alg: SigningAlg = record
            .algorithm
            .parse()
            .map_err(|e: UnsupportedAlg| malformed(e.to_string()))?;
        let der = self.master.open(&record.kid, &record.private_key_sealed)?;
        let signer = material::Signer::from_pkcs8(alg, &der)?;
        let jwk: PublicJwk =
            serde_json::from_str(&record.public_jwk).map_err(|e| malformed(e.to_string()))?;
        if jwk.kid != record.kid || jwk.alg != alg.as_str() || !signer.matches(&jwk) {
            return Err(malformed("public and private halves disagree".into()));
        }
        Ok(SigningKey {
            alg,
            meta: KeyMeta {
                kid: record.kid,
                generation: record.generation,
                activates_at: Timestamp(record.activates_at),
            },
            created_at: Timestamp(record.created_at),
            jwk,
            signer,
        })
    }

    /// Creates the next key of every algorithm: published now, signing after the
    /// pre-publication delay. Refused, creating nothing, while any algorithm has a pending key
    /// unless `force`. When another replica inserts the same generation of an algorithm first,
    /// that key stands and this call returns [`KeyError::ConcurrentRotation`] (the algorithms
    /// before it in [`SigningAlg::ALL`] have been rotated; run again once the other finished).
    pub async fn rotate(&self, force: bool) -> Result<Vec<Rotation>, KeyError> {
        self.reload().await?;
        let now = self.clock.now();
        let plans = SigningAlg::ALL
            .into_iter()
            .map(|alg| {
                plan_rotation(
                    &self.metas(alg),
                    now,
                    self.settings.prepublication_delay,
                    force,
                )
                .map(|plan| (alg, plan))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut rotations = Vec::with_capacity(plans.len());
        for (alg, plan) in plans {
            rotations.push(self.create_key(alg, plan).await?);
        }
        Ok(rotations)
    }

    /// Emergency retirement of a compromised key: it is deleted, so this replica stops
    /// publishing it and verifying with it at once (other replicas at their next reload,
    /// `keys.reload_interval_secs`), and every token it signed stops verifying. When it was the
    /// key signing for its algorithm, a new key of that algorithm is created first and signs at
    /// once, without the pre-publication delay (apps that cached the key set must fetch it
    /// again, as most libraries do on an unknown `kid`); keys of that algorithm still pending
    /// are withdrawn, so the schedule stays in generation order. Other algorithms are untouched.
    pub async fn retire_now(&self, kid: &str) -> Result<Retirement, KeyError> {
        self.reload().await?;
        let keys = self.snapshot();
        let now = self.clock.now();
        let states = self.states(&keys, now);
        let Some((state, key)) = states
            .iter()
            .zip(keys.iter())
            .find(|(state, k)| state.is_published() && k.meta.kid == kid)
        else {
            return Err(KeyError::UnknownKey(kid.to_string()));
        };
        let alg = key.alg;
        let mut retirement = Retirement {
            alg,
            kid: kid.to_string(),
            was: state.label(),
            replacement: None,
            withdrawn: Vec::new(),
        };
        if *state == KeyState::Active {
            retirement.withdrawn = states
                .iter()
                .zip(keys.iter())
                .filter(|(state, k)| k.alg == alg && **state == KeyState::Pending)
                .map(|(_, k)| k.meta.kid.clone())
                .collect();
            let last_generation = keys
                .iter()
                .filter(|k| k.alg == alg)
                .map(|k| k.meta.generation)
                .max()
                .unwrap_or(0);
            // Pending keys go first (nothing was signed with them), then the replacement signs
            // at once and the compromised key is retired by it: at no moment is there no signer.
            if !retirement.withdrawn.is_empty() {
                self.store
                    .delete_signing_keys(&retirement.withdrawn)
                    .await?;
            }
            let plan = RotationPlan {
                generation: last_generation + 1,
                activates_at: now,
            };
            retirement.replacement = Some(self.create_key(alg, plan).await?);
        }
        self.store.delete_signing_keys(&[kid.to_string()]).await?;
        self.reload().await?;
        Ok(retirement)
    }

    /// Generates, seals and stores the key of `alg` that `plan` describes, then reloads.
    async fn create_key(&self, alg: SigningAlg, plan: RotationPlan) -> Result<Rotation, KeyError> {
        let now = self.clock.now();
        let generated = material::generate(alg)?;
        let kid = generated.jwk.kid.clone();
        let record = SigningKeyRecord {
            kid: kid.clone(),
            generation: plan.generation,
            algorithm: alg.as_str().to_string(),
            public_jwk: serde_json::to_string(&generated.jwk)
                .map_err(|e| KeyError::Crypto(e.to_string()))?,
            private_key_sealed: self.master.seal(&kid, &generated.pkcs8_der)?,
            created_at: now.as_secs(),
            activates_at: plan.activates_at.as_secs(),
        };
        match self.store.insert_signing_key(&record).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                self.reload().await?;
                return Err(KeyError::ConcurrentRotation {
                    alg,
                    generation: plan.generation,
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.reload().await?;
        Ok(Rotation {
            alg,
            kid,
            generation: plan.generation,
            activates_at: plan.activates_at,
        })
    }

    /// The key of `alg` that signs now.
    pub fn signing_key(&self, alg: SigningAlg) -> Result<Arc<SigningKey>, KeyError> {
        let keys = self.snapshot();
        self.states(&keys, self.clock.now())
            .into_iter()
            .zip(keys.iter())
            .find(|(state, k)| *state == KeyState::Active && k.alg == alg)
            .map(|(_, k)| k.clone())
            .ok_or(KeyError::NoActiveKey(alg))
    }

    /// Signs `claims` as a JWT with the active key of `alg` (see [`crate::jwt::encode`]).
    pub fn sign_jwt(
        &self,
        alg: SigningAlg,
        typ: &str,
        claims: &impl Serialize,
    ) -> Result<String, KeyError> {
        let key = self.signing_key(alg)?;
        crate::jwt::encode(&key, typ, claims)
    }

    /// Verifies a compact JWS signed by one of the published keys (any of pending, active,
    /// retired), with that key's own algorithm: the header's `alg` must name the algorithm of the
    /// key its `kid` names. Returns the header's `typ` and the claims. Claims are not checked
    /// here.
    pub fn verify_jwt(&self, token: &str) -> Result<(String, serde_json::Value), KeyError> {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;

        let invalid = |why: &str| KeyError::InvalidToken(why.to_string());
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("not a compact JWS"));
        };
        let header: serde_json::Value = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| invalid("malformed header"))?;
        let alg: SigningAlg = header["alg"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| invalid("algorithm not allowed"))?;
        let kid = header["kid"].as_str().ok_or_else(|| invalid("no kid"))?;
        let keys = self.snapshot();
        let now = self.clock.now();
        let key = self
            .states(&keys, now)
            .into_iter()
            .zip(keys.iter())
            .find(|(state, k)| state.is_published() && k.meta.kid == kid && k.alg == alg)
            .map(|(_, k)| k.clone())
            .ok_or_else(|| invalid("unknown key"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| invalid("malformed signature"))?;
        let signing_input = token.rsplit_once('.').map_or("", |(input, _)| input);
        key.signer
            .verify(signing_input.as_bytes(), &signature)
            .map_err(|_| invalid("bad signature"))?;
        let claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| invalid("malformed claims"))?;
        let typ = header["typ"].as_str().unwrap_or("").to_string();
        Ok((typ, claims))
    }

    /// The published key set: pending, active and retired keys.
    pub fn jwks(&self) -> Jwks {
        let keys = self.snapshot();
        Jwks {
            keys: self
                .states(&keys, self.clock.now())
                .into_iter()
                .zip(keys.iter())
                .filter(|(state, _)| state.is_published())
                .map(|(_, k)| k.jwk.clone())
                .collect(),
        }
    }

    /// Every key in memory with its state now.
    pub fn statuses(&self) -> Vec<KeyStatus> {
        let keys = self.snapshot();
        self.states(&keys, self.clock.now())
            .into_iter()
            .zip(keys.iter())
            .map(|(state, k)| KeyStatus {
                kid: k.meta.kid.clone(),
                algorithm: k.alg,
                key_type: k.alg.key_type(),
                generation: k.meta.generation,
                state: state.label(),
                created_at: k.created_at.as_secs(),
                activates_at: k.meta.activates_at.as_secs(),
                published_until: match state {
                    KeyState::Retired { until, .. } => Some(until.as_secs()),
                    _ => None,
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
