//! The service layer alone: no HTTP server, a manual clock, a fixed sequence of randomness, a
//! scripted upstream in place of Azure AD's answer, and a fresh database of each backend per
//! test. Each test drives services as the handlers do and asserts what a person or an app
//! would notice: a session, tokens, a refusal and its reason, what is (not) left stored.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use techpass_domain::account::AccountType;
use techpass_domain::client::AccessPolicy;
use techpass_domain::gate::UserStatus;
use techpass_domain::{ManualClock, Timestamp};
use techpass_oidc::discovery::ProviderMetadata;
use techpass_oidc::keys::KeySettings;
use techpass_oidc::{ErrorCode, KeyManager, MasterKey, OAuthError, Secrets};
use techpass_service::clients::{
    create_app, find_client, Client, NewApp, GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN,
};
use techpass_service::consent;
use techpass_service::grants::{self, TokenRequest, Tokens};
use techpass_service::mint::{PURPOSE_CODE, PURPOSE_REFRESH};
use techpass_service::outbound::{Outbound, OutboundPolicy};
use techpass_service::reveal::{self, Shown, ShownValue};
use techpass_service::reverify::{self, Verdict};
use techpass_service::settings::{
    AccountsConfig, AppsConfig, InvitationsConfig, LifecycleConfig, Mode, SessionConfig,
    TokensConfig, UpstreamPolicy,
};
use techpass_service::signin::{finish_login, start_login, CallbackQuery, NewSession};
use techpass_service::tenancy::access;
use techpass_service::tenancy::apps::{self, AppChanges, AppSpec};
use techpass_service::tenancy::invitations::{self, LinkProblem, NewInvitation};
use techpass_service::tenancy::pending;
use techpass_service::tenancy::tenants::{self, DirectTenant};
use techpass_service::tenancy::{Actor, TenancyError};
use techpass_service::upstreams::{Upstream, Upstreams};
use techpass_service::{SeqRandom, ServiceContext, Settings};
use techpass_store::testing::TestDatabase;
use techpass_store::{AuditFilter, AuthCodeRecord, RefreshTokenRecord, TenantRecord, UserRecord};
use techpass_upstream::{
    AuthorizationResponse, Connector, LoginParams, RefreshError, Refreshed, SignedIn,
    UpstreamError, UpstreamIdentity,
};
use url::Url;

const T0: i64 = 1_800_000_000;
const ISSUER: &str = "https://techpass.test/";
const UPSTREAM_ISSUER: &str = "https://login.test/wog/v2.0";
const REDIRECT: &str = "https://app.test/callback";

/// The sections of the documented defaults (`config/default.toml`) that services read.
#[derive(Deserialize)]
struct Defaults {
    session: SessionConfig,
    tokens: TokensConfig,
    accounts: AccountsConfig,
    invitations: InvitationsConfig,
    lifecycle: LifecycleConfig,
    apps: AppsConfig,
    upstream: UpstreamPolicy,
}

fn settings() -> Settings {
    let text = include_str!("../../../config/default.toml");
    let table: toml::Table = toml::from_str(text).unwrap();
    let mut wanted = toml::Table::new();
    for key in [
        "session",
        "tokens",
        "accounts",
        "invitations",
        "lifecycle",
        "apps",
        "upstream",
    ] {
        wanted.insert(key.into(), table[key].clone());
    }
    let d: Defaults = toml::Value::Table(wanted).try_into().unwrap();
    Settings {
        mode: Mode::Production,
        session: d.session,
        tokens: d.tokens,
        accounts: d.accounts,
        invitations: d.invitations,
        lifecycle: d.lifecycle,
        apps: d.apps,
        upstream: d.upstream,
    }
}

/// Azure AD's answer, scripted: whoever is "at the keyboard" next; a sign-in yields the refresh
/// token `upstream-rt-{oid}` (none when `no_refresh_tokens`); each refresh takes the next
/// scripted answer (accepted, not rotated, when none is left) and records the token presented.
#[derive(Debug, Default)]
struct ScriptedUpstream {
    next: Mutex<Option<UpstreamIdentity>>,
    no_refresh_tokens: std::sync::atomic::AtomicBool,
    refresh_answers: Mutex<VecDeque<Result<Refreshed, RefreshError>>>,
    presented: Mutex<Vec<String>>,
    /// Refresh tokens of people disabled at the upstream: always refused.
    refused: Mutex<std::collections::HashSet<String>>,
}

impl ScriptedUpstream {
    fn answer(&self, answer: Result<Option<&str>, RefreshError>) {
        let answer = answer.map(|rotated| Refreshed {
            refresh_token: rotated.map(String::from),
        });
        self.refresh_answers.lock().unwrap().push_back(answer);
    }

    fn presented(&self) -> Vec<String> {
        self.presented.lock().unwrap().clone()
    }
}

#[async_trait]
impl Connector for ScriptedUpstream {
    fn id(&self) -> &str {
        "wog"
    }

    fn display_name(&self) -> &str {
        "Public officer"
    }

    fn issuer(&self) -> &str {
        UPSTREAM_ISSUER
    }

    async fn login_url(&self, params: &LoginParams) -> Result<Url, UpstreamError> {
        let mut url = Url::parse("https://login.test/authorize").unwrap();
        url.query_pairs_mut().append_pair("state", &params.state);
        Ok(url)
    }

    async fn check_issuer_parameter(&self, iss: Option<&str>) -> Result<(), UpstreamError> {
        match iss {
            None | Some(UPSTREAM_ISSUER) => Ok(()),
            Some(other) => Err(UpstreamError::WrongIssuerParameter(other.to_string())),
        }
    }

    async fn exchange(
        &self,
        response: &AuthorizationResponse<'_>,
        _params: &LoginParams,
    ) -> Result<SignedIn, UpstreamError> {
        self.check_issuer_parameter(response.iss).await?;
        let identity = self
            .next
            .lock()
            .unwrap()
            .take()
            .ok_or(UpstreamError::MissingIdToken)?;
        let refresh_token = (!self
            .no_refresh_tokens
            .load(std::sync::atomic::Ordering::SeqCst))
        .then(|| format!("upstream-rt-{}", identity.object_id));
        Ok(SignedIn {
            identity,
            refresh_token,
        })
    }

    async fn refresh(&self, refresh_token: &str) -> Result<Refreshed, RefreshError> {
        self.presented
            .lock()
            .unwrap()
            .push(refresh_token.to_string());
        if self.refused.lock().unwrap().contains(refresh_token) {
            return Err(RefreshError::Refused {
                error: "invalid_grant".into(),
                description: "AADSTS50057: The user account is disabled.".into(),
            });
        }
        self.refresh_answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Ok(Refreshed::default()))
    }
}

fn person(oid: &str, email: &str) -> UpstreamIdentity {
    UpstreamIdentity {
        upstream: "wog".into(),
        issuer: UPSTREAM_ISSUER.into(),
        tenant_id: "wog".into(),
        object_id: oid.into(),
        subject: format!("sub-{oid}"),
        email: Some(email.into()),
        name: Some(format!("Person {oid}")),
        preferred_username: Some(email.into()),
        given_name: Some("Person".into()),
        family_name: Some(oid.into()),
        email_verified: true,
        guest: false,
        home_idp: None,
        amr: vec!["pwd".into(), "mfa".into()],
        acr: None,
        auth_time: T0,
        mfa: "amr".into(),
    }
}

/// One TechPass, as the services see it.
struct World {
    ctx: ServiceContext,
    clock: Arc<ManualClock>,
    upstream: Arc<ScriptedUpstream>,
}

impl World {
    async fn new(db: &TestDatabase) -> World {
        let store = db.store().await;
        let clock = Arc::new(ManualClock::new(Timestamp(T0)));
        let master = || MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let keys = KeyManager::open(
            store.clone(),
            master(),
            clock.clone(),
            KeySettings {
                prepublication_delay: 0,
                max_token_lifetime: 3600,
            },
        )
        .await
        .unwrap();
        let upstream = Arc::new(ScriptedUpstream::default());
        let settings = settings();
        let issuer = Url::parse(ISSUER).unwrap();
        let ctx = ServiceContext {
            store,
            clock: clock.clone(),
            random: Arc::new(SeqRandom::default()),
            secrets: Secrets::derive(&master()).unwrap(),
            keys: Arc::new(keys),
            sealer: Arc::new(master()),
            metadata: Arc::new(ProviderMetadata::new(&issuer)),
            issuer,
            classification: Arc::new(settings.accounts.classification()),
            upstreams: Arc::new(Upstreams(vec![Upstream {
                connector: upstream.clone(),
                account_types: vec![AccountType::PublicOfficer, AccountType::Vendor],
                email_authority: techpass_domain::account::EmailAuthority::Verified,
            }])),
            settings: Arc::new(settings),
            mailer: None,
            http: Outbound::new(OutboundPolicy::for_mode(Mode::Production)).unwrap(),
            ci_keys: Default::default(),
            audit_stream: None,
        };
        World {
            ctx,
            clock,
            upstream,
        }
    }

    /// A sign-in through the upstream, start to finish, in one browser.
    async fn sign_in(&self, who: UpstreamIdentity) -> NewSession {
        let (state, browser) = self.start().await;
        *self.upstream.next.lock().unwrap() = Some(who);
        finish_login(&self.ctx, callback(&state), Some(&browser))
            .await
            .unwrap()
    }

    /// Starts a sign-in: the `state` sent to the upstream and the browser binding.
    async fn start(&self) -> (String, String) {
        let upstream = self.ctx.upstreams.get("wog").unwrap();
        let (url, browser) = start_login(&self.ctx, upstream, "/portal".into(), None, false, None)
            .await
            .unwrap();
        let state = url
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        (state, browser)
    }

    async fn register(&self, user_id: &str, status: UserStatus) {
        let terms = &self.ctx.settings.accounts.terms_version;
        assert!(self
            .ctx
            .store
            .register_user(user_id, status, terms, T0)
            .await
            .unwrap());
    }

    /// A tenant created directly by the operator, with its first admin named by email.
    async fn tenant(&self, name: &str, admin: &str) -> TenantRecord {
        let (tenant, _) = tenants::create(
            &self.ctx,
            &Actor::Operator,
            DirectTenant {
                slug: None,
                name: name.into(),
                description: String::new(),
                purpose: String::new(),
                admin: admin.into(),
            },
        )
        .await
        .unwrap();
        tenant
    }

    /// A platform app that may use the code and refresh grants.
    async fn app(&self, tweak: impl FnOnce(&mut NewApp)) -> Client {
        let mut new = NewApp {
            name: "Service test app".into(),
            confidential: true,
            redirect_uris: vec![REDIRECT.into()],
            grant_types: vec![GRANT_AUTHORIZATION_CODE.into(), GRANT_REFRESH_TOKEN.into()],
            ..NewApp::default()
        };
        tweak(&mut new);
        let now = self.clock.now_secs();
        let created = create_app(
            self.ctx.store.as_ref(),
            &self.ctx.secrets,
            now,
            self.ctx.http.policy(),
            new,
        )
        .await
        .unwrap();
        find_client(self.ctx.store.as_ref(), &created.client_id)
            .await
            .unwrap()
            .unwrap()
    }

    /// What `/authorize` stores for a person's sign-in to `client`: returns the code.
    async fn code(&self, client: &Client, session: &NewSession, scope: &str) -> (String, String) {
        let code = self.ctx.random.token().unwrap();
        let verifier = "a".repeat(43) + &session.user.id[..8];
        let now = self.clock.now_secs();
        self.ctx
            .store
            .insert_code(&AuthCodeRecord {
                code_hash: self.ctx.secrets.keyed_hash(PURPOSE_CODE, &code),
                client_id: client.id.clone(),
                user_id: session.user.id.clone(),
                session_hash: format!("session-of-{}", session.user.id),
                redirect_uri: REDIRECT.into(),
                scope: scope.into(),
                nonce: Some("n-1".into()),
                code_challenge: Some(s256(&verifier)),
                auth_time: T0,
                amr: vec!["pwd".into(), "mfa".into()],
                acr: None,
                created_at: now,
                expires_at: now + 60,
                used_at: None,
                grant_id: None,
            })
            .await
            .unwrap();
        (code, verifier)
    }

    async fn exchange(
        &self,
        client: &Client,
        code: &str,
        verifier: &str,
    ) -> Result<Tokens, OAuthError> {
        let request = TokenRequest::AuthorizationCode {
            code: code.into(),
            redirect_uri: Some(REDIRECT.into()),
            code_verifier: Some(verifier.into()),
        };
        grants::run(&self.ctx, client, request, None).await
    }

    async fn refresh(&self, client: &Client, token: &str) -> Result<Tokens, OAuthError> {
        let request = TokenRequest::RefreshToken {
            refresh_token: token.into(),
            scope: None,
        };
        grants::run(&self.ctx, client, request, None).await
    }
}

trait NowSecs {
    fn now_secs(&self) -> i64;
}

impl NowSecs for ManualClock {
    fn now_secs(&self) -> i64 {
        techpass_domain::Clock::now(self).as_secs()
    }
}

/// RFC 7636 §4.2: the S256 challenge of a verifier.
fn s256(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

fn callback(state: &str) -> CallbackQuery {
    CallbackQuery {
        code: Some("upstream-code".into()),
        state: Some(state.into()),
        iss: Some(UPSTREAM_ISSUER.into()),
        ..CallbackQuery::default()
    }
}

/// The claims of a JWT, unverified (the signature is the key manager's business, tested there).
fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn refused(result: Result<Tokens, OAuthError>) -> OAuthError {
    match result {
        Ok(_) => panic!("tokens were issued"),
        Err(e) => e,
    }
}

async fn a_sign_in_creates_the_person_and_a_session_once(db: &TestDatabase) {
    let w = World::new(db).await;
    let new = w.sign_in(person("oid-1", "Ada@Agency.gov.sg")).await;
    assert_eq!(new.return_to, "/portal");
    assert_eq!(new.user.status, UserStatus::Unregistered);
    assert_eq!(new.user.account_type, AccountType::PublicOfficer.as_str());
    assert_eq!(new.user.given_name.as_deref(), Some("Person"));
    assert_eq!(new.cookie.len(), 43, "a session cookie is 256 bits");
    let stored = w.ctx.store.get_user(&new.user.id).await.unwrap().unwrap();
    assert_eq!(stored.object_id, "oid-1");

    // The same person again: the same account, a new session.
    let again = w.sign_in(person("oid-1", "ada@agency.gov.sg")).await;
    assert_eq!(again.user.id, new.user.id);
    assert_ne!(again.cookie, new.cookie);
}

async fn a_sign_in_is_refused_when_replayed_in_another_browser_or_too_late(db: &TestDatabase) {
    let w = World::new(db).await;
    // Another browser than the one that started it (RFC 9700 §4.7).
    let (state, _browser) = w.start().await;
    *w.upstream.next.lock().unwrap() = Some(person("oid-2", "bo@agency.gov.sg"));
    let denial = finish_login(&w.ctx, callback(&state), Some(&"x".repeat(43)))
        .await
        .unwrap_err();
    assert_eq!(denial.reason, "browser_mismatch");
    // The attempt is consumed: the right browser cannot reuse it.
    let (_, browser) = w.start().await;
    let denial = finish_login(&w.ctx, callback(&state), Some(&browser))
        .await
        .unwrap_err();
    assert_eq!(denial.reason, "unknown_or_replayed_state");

    // Past the login timeout.
    let (state, browser) = w.start().await;
    w.clock
        .advance(w.ctx.settings.session.login_timeout_secs as i64 + 1);
    let denial = finish_login(&w.ctx, callback(&state), Some(&browser))
        .await
        .unwrap_err();
    assert_eq!(denial.reason, "login_expired");
    assert_eq!(denial.return_to.as_deref(), Some("/portal"));

    // A forged error response whose iss is not the upstream's (RFC 9207).
    let (state, browser) = w.start().await;
    let forged = CallbackQuery {
        error: Some("access_denied".into()),
        iss: Some("https://evil.test/".into()),
        ..callback(&state)
    };
    let denial = finish_login(&w.ctx, forged, Some(&browser))
        .await
        .unwrap_err();
    assert_eq!(denial.reason, "wrong_iss_parameter");
    assert!(w
        .ctx
        .store
        .find_users_by_email("bo@agency.gov.sg")
        .await
        .unwrap()
        .is_empty());
}

async fn a_code_is_exchanged_once_for_tokens_of_the_person(db: &TestDatabase) {
    let w = World::new(db).await;
    let session = w.sign_in(person("oid-3", "cy@agency.gov.sg")).await;
    w.register(&session.user.id, UserStatus::Registered).await;
    let app = w.app(|_| {}).await;
    let (code, verifier) = w.code(&app, &session, "openid email offline_access").await;

    let tokens = w.exchange(&app, &code, &verifier).await.unwrap();
    let access = claims(&tokens.access.token);
    assert_eq!(access["iss"], w.ctx.metadata.issuer.as_str());
    assert_eq!(access["sub"], session.user.id.as_str());
    assert_eq!(access["aud"], app.id.as_str());
    assert_eq!(access["scope"], "openid email offline_access");
    let id = claims(tokens.id_token.as_deref().unwrap());
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["email"], "cy@agency.gov.sg");
    assert_eq!(id["email_verified"], true);
    assert!(tokens.refresh_token.is_some());

    // A second use is refused and revokes what the first produced.
    let replay = refused(w.exchange(&app, &code, &verifier).await);
    assert_eq!(replay.code, ErrorCode::InvalidGrant);
    let after = refused(
        w.refresh(&app, tokens.refresh_token.as_deref().unwrap())
            .await,
    );
    assert_eq!(after.code, ErrorCode::InvalidGrant);
}

async fn a_code_with_a_wrong_verifier_gives_nothing(db: &TestDatabase) {
    let w = World::new(db).await;
    let session = w.sign_in(person("oid-4", "di@agency.gov.sg")).await;
    w.register(&session.user.id, UserStatus::Registered).await;
    let app = w.app(|_| {}).await;
    let (code, _) = w.code(&app, &session, "openid").await;
    let wrong = refused(w.exchange(&app, &code, &"b".repeat(43)).await);
    assert_eq!(wrong.code, ErrorCode::InvalidGrant);
    assert!(wrong.description.contains("code_verifier"), "{wrong:?}");
    let expired_code = w.code(&app, &session, "openid").await;
    w.clock.advance(61);
    let late = refused(w.exchange(&app, &expired_code.0, &expired_code.1).await);
    assert!(late.description.contains("expired"), "{late:?}");
}

async fn refresh_tokens_rotate_and_a_reused_one_ends_the_family(db: &TestDatabase) {
    let w = World::new(db).await;
    let session = w.sign_in(person("oid-5", "ed@agency.gov.sg")).await;
    w.register(&session.user.id, UserStatus::Registered).await;
    let app = w.app(|_| {}).await;
    let (code, verifier) = w.code(&app, &session, "openid offline_access").await;
    let first = w.exchange(&app, &code, &verifier).await.unwrap();
    let r1 = first.refresh_token.unwrap();

    // A refused request spends nothing: a scope never granted is invalid_scope, and the same
    // refresh token still works after it.
    let wider = grants::run(
        &w.ctx,
        &app,
        TokenRequest::RefreshToken {
            refresh_token: r1.clone(),
            scope: Some("openid email".into()),
        },
        None,
    )
    .await;
    assert_eq!(refused(wider).code, ErrorCode::InvalidScope);

    w.clock.advance(60);
    let second = w.refresh(&app, &r1).await.unwrap();
    let r2 = second.refresh_token.unwrap();
    assert_ne!(r1, r2, "each use returns a new refresh token");
    assert_eq!(claims(&second.access.token)["iat"], T0 + 60);

    // r1 again at once, r2 never used: a retry after a lost answer. New tokens; r2, which the
    // client never got, is gone without ending the family.
    let retried = w.refresh(&app, &r1).await.unwrap();
    let r2b = retried.refresh_token.unwrap();
    assert_ne!(r2b, r2);
    let lost = refused(w.refresh(&app, &r2).await);
    assert!(lost.description.contains("unknown"), "{lost:?}");
    let third = w.refresh(&app, &r2b).await.unwrap();
    let r3 = third.refresh_token.unwrap();

    // r1 again, now that its successor was used: a thief or a confused client; the whole
    // family ends.
    let reuse = refused(w.refresh(&app, &r1).await);
    assert!(reuse.description.contains("already used"), "{reuse:?}");
    let family = refused(w.refresh(&app, &r3).await);
    assert_eq!(family.code, ErrorCode::InvalidGrant);
    // Once the grant is revoked, every token of it is told so: a spent token of a revoked grant
    // (sign-out, an ended membership, a withdrawn consent) is not reported as a replay.
    let again = refused(w.refresh(&app, &r1).await);
    assert!(again.description.contains("revoked"), "{again:?}");
}

/// A refresh token is its minting time (Unix milliseconds, 12 hex digits), a dot and 256 random
/// bits, stored under that time and its keyed hash, so that each new row lands at the end of the
/// index. A token minted before that shape (43 base64url characters, stored under its hash
/// alone) keeps working, and the time cannot be altered.
async fn refresh_tokens_are_keyed_in_minting_order_and_older_ones_still_work(db: &TestDatabase) {
    let w = World::new(db).await;
    let (_, app, r1) = officer_with_tokens(&w, "oid-k").await;
    let key = |token: &str| {
        let (time, secret) = token.split_once('.').expect("time.secret");
        assert_eq!(time.len(), 12, "{token}");
        assert!(time
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(secret.len(), 43, "256 bits in base64url");
        format!("{time}{}", w.ctx.secrets.keyed_hash(PURPOSE_REFRESH, token))
    };
    let stored = w.ctx.store.get_refresh_token(&key(&r1)).await.unwrap();
    let grant_id = stored.expect("stored under its time and hash").grant_id;
    w.clock.advance(1);
    let r2 = w.refresh(&app, &r1).await.unwrap().refresh_token.unwrap();
    assert!(key(&r2) > key(&r1), "keys grow in minting order");

    // Altered time digits make another token: unknown, and the real one still works.
    let first = r2.chars().next().unwrap();
    let other = if first == '0' { '1' } else { '0' };
    let altered = format!("{other}{}", &r2[1..]);
    let unknown = refused(w.refresh(&app, &altered).await);
    assert!(unknown.description.contains("unknown"), "{unknown:?}");

    // A token minted before, stored under its hash alone, is redeemed and rotated into one of
    // the new shape.
    let older = w.ctx.random.token().unwrap();
    let now = w.clock.now_secs();
    w.ctx
        .store
        .insert_refresh_token(&RefreshTokenRecord {
            token_hash: w.ctx.secrets.keyed_hash(PURPOSE_REFRESH, &older),
            grant_id,
            created_at: now,
            expires_at: now + 600,
            used_at: None,
        })
        .await
        .unwrap();
    let rotated = w
        .refresh(&app, &older)
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    assert!(w
        .ctx
        .store
        .get_refresh_token(&key(&rotated))
        .await
        .unwrap()
        .is_some());
    let third = w.refresh(&app, &r2).await.unwrap().refresh_token.unwrap();
    assert!(key(&third) > key(&r2));
}

/// Past `tokens.refresh_reuse_grace_secs` a rotated token is a replay even if its successor
/// was never used.
async fn a_refresh_token_reused_after_the_grace_is_a_replay(db: &TestDatabase) {
    let w = World::new(db).await;
    let (_, app, r1) = officer_with_tokens(&w, "oid-g").await;
    let r2 = w.refresh(&app, &r1).await.unwrap().refresh_token.unwrap();
    let grace = w.ctx.settings.tokens.refresh_reuse_grace_secs as i64;
    assert!(grace > 0);
    w.clock.advance(grace + 1);
    let reuse = refused(w.refresh(&app, &r1).await);
    assert!(reuse.description.contains("already used"), "{reuse:?}");
    let family = refused(w.refresh(&app, &r2).await);
    assert!(family.description.contains("revoked"), "{family:?}");
}

/// DPoP (RFC 9449): tokens issued with a proven key are bound to it (`cnf.jkt`, `DPoP`); a
/// public client's grant is bound too, so its refresh tokens need a proof of the same key and a
/// refusal spends nothing; a confidential client's grant is not bound.
async fn dpop_binds_tokens_and_a_public_clients_refresh_tokens(db: &TestDatabase) {
    let w = World::new(db).await;
    let session = w.sign_in(person("oid-dp", "dee@agency.gov.sg")).await;
    w.register(&session.user.id, UserStatus::Registered).await;
    let cli = w.app(|a| a.confidential = false).await;
    let (code, verifier) = w.code(&cli, &session, "openid offline_access").await;
    let code_request = |code: &str, verifier: &str| TokenRequest::AuthorizationCode {
        code: code.into(),
        redirect_uri: Some(REDIRECT.into()),
        code_verifier: Some(verifier.into()),
    };
    let refresh = |token: &str| TokenRequest::RefreshToken {
        refresh_token: token.into(),
        scope: None,
    };
    let first = grants::run(&w.ctx, &cli, code_request(&code, &verifier), Some("key-a"))
        .await
        .unwrap();
    assert!(first.access.dpop);
    assert_eq!(claims(&first.access.token)["cnf"]["jkt"], "key-a");
    let r1 = first.refresh_token.unwrap();

    // Without a proof, or with another key: refused, and the token is not spent.
    let bare = refused(grants::run(&w.ctx, &cli, refresh(&r1), None).await);
    assert_eq!(bare.code, ErrorCode::InvalidGrant);
    assert!(bare.description.contains("DPoP"), "{bare:?}");
    let other = refused(grants::run(&w.ctx, &cli, refresh(&r1), Some("key-b")).await);
    assert!(other.description.contains("another DPoP key"), "{other:?}");
    let second = grants::run(&w.ctx, &cli, refresh(&r1), Some("key-a"))
        .await
        .unwrap();
    assert_eq!(claims(&second.access.token)["cnf"]["jkt"], "key-a");
    let r2 = second.refresh_token.unwrap();
    assert!(grants::run(&w.ctx, &cli, refresh(&r2), None).await.is_err());

    // A confidential client: the access token is bound, the grant is not (the client's own
    // authentication binds its refresh tokens).
    let app = w.app(|_| {}).await;
    let (code, verifier) = w.code(&app, &session, "openid offline_access").await;
    let bound = grants::run(&w.ctx, &app, code_request(&code, &verifier), Some("key-c"))
        .await
        .unwrap();
    assert_eq!(claims(&bound.access.token)["cnf"]["jkt"], "key-c");
    let plain = w
        .refresh(&app, &bound.refresh_token.unwrap())
        .await
        .unwrap();
    assert!(!plain.access.dpop);
    assert!(claims(&plain.access.token).get("cnf").is_none());
}

/// A registered officer signed in at T0 with a refresh token from `app`.
async fn officer_with_tokens(w: &World, oid: &str) -> (NewSession, Client, String) {
    let session = w
        .sign_in(person(oid, &format!("{oid}@agency.gov.sg")))
        .await;
    w.register(&session.user.id, UserStatus::Registered).await;
    let app = w.app(|_| {}).await;
    let (code, verifier) = w.code(&app, &session, "openid offline_access").await;
    let tokens = w.exchange(&app, &code, &verifier).await.unwrap();
    (session, app, tokens.refresh_token.unwrap())
}

async fn audit_of(w: &World, user_id: &str, event: &str) -> Vec<techpass_store::AuditRecord> {
    w.ctx
        .store
        .list_audit(&AuditFilter {
            subject: Some(user_id.into()),
            event: Some(event.into()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

async fn reverification_waits_for_the_bound_then_keeps_the_rotated_token_sealed(db: &TestDatabase) {
    let w = World::new(db).await;
    let (session, app, r1) = officer_with_tokens(&w, "oid-rv1").await;
    let user = session.user.id.clone();
    let bound = w.ctx.settings.upstream.reverify_after_secs as i64;
    assert_eq!(bound, 3600, "the documented default");

    // Sealed, never the plaintext.
    let links = w.ctx.store.upstream_links_of_user(&user).await.unwrap();
    assert_eq!(links.len(), 1);
    let sealed = links[0].sealed_refresh_token.clone().unwrap();
    assert!(!sealed.contains("upstream-rt-oid-rv1"), "{sealed}");
    assert_eq!(links[0].last_verified_at, T0);

    // Within the bound: no upstream call, for a refresh or an SSO reuse.
    w.clock.advance(bound - 1);
    let r2 = w.refresh(&app, &r1).await.unwrap().refresh_token.unwrap();
    let sso = reverify::check(&w.ctx, &user, Some("wog"), T0, None).await;
    assert_eq!(sso.unwrap(), Verdict::Current);
    assert!(w.upstream.presented().is_empty());

    // Past it: the upstream is asked with the token it issued, and its rotation is kept.
    w.clock.advance(1);
    w.upstream.answer(Ok(Some("upstream-rt-rotated")));
    let r3 = w.refresh(&app, &r2).await.unwrap().refresh_token.unwrap();
    assert_eq!(w.upstream.presented(), vec!["upstream-rt-oid-rv1"]);
    let links = w.ctx.store.upstream_links_of_user(&user).await.unwrap();
    assert_eq!(links[0].last_verified_at, T0 + bound);
    let rotated = links[0].sealed_refresh_token.clone().unwrap();
    assert_ne!(rotated, sealed);
    assert!(!rotated.contains("upstream-rt-rotated"));

    // The next check, a bound later, is an SSO reuse: it presents the rotated token.
    w.clock.advance(bound - 1);
    assert_eq!(
        reverify::check(&w.ctx, &user, Some("wog"), T0, None)
            .await
            .unwrap(),
        Verdict::Current
    );
    assert_eq!(w.upstream.presented().len(), 1, "still within the bound");
    w.clock.advance(1);
    assert_eq!(
        reverify::check(&w.ctx, &user, Some("wog"), T0, None)
            .await
            .unwrap(),
        Verdict::Current
    );
    assert_eq!(
        w.upstream.presented(),
        vec!["upstream-rt-oid-rv1", "upstream-rt-rotated"]
    );
    assert!(w.refresh(&app, &r3).await.is_ok());
    assert_eq!(w.upstream.presented().len(), 2);
}

async fn an_upstream_refusal_ends_everything_of_the_person_and_refuses(db: &TestDatabase) {
    let w = World::new(db).await;
    let (session, app, r1) = officer_with_tokens(&w, "oid-rv2").await;
    let user = session.user.id.clone();
    // A second session (another device) and a second app's grant.
    let other_device = w.sign_in(person("oid-rv2", "oid-rv2@agency.gov.sg")).await;
    assert_eq!(other_device.user.id, user);
    let app2 = w.app(|_| {}).await;
    let (code, verifier) = w.code(&app2, &session, "openid offline_access").await;
    let other_app = w.exchange(&app2, &code, &verifier).await.unwrap();
    assert_eq!(w.ctx.store.sessions_of_user(&user).await.unwrap().len(), 2);
    // Bob, another person, is not touched.
    let (bob, bob_app, bob_rt) = officer_with_tokens(&w, "oid-rv2-bob").await;

    w.clock.advance(3600);
    w.upstream.answer(Err(RefreshError::Refused {
        error: "invalid_grant".into(),
        description: "AADSTS50057: The user account is disabled.".into(),
    }));
    let e = refused(w.refresh(&app, &r1).await);
    assert_eq!(e.code, ErrorCode::InvalidGrant);
    assert!(e.description.contains("re-verification failed"), "{e:?}");
    assert_eq!(w.upstream.presented().len(), 1);

    // Every session ended, every grant revoked, the link forgotten, audited with the reason.
    assert!(w
        .ctx
        .store
        .sessions_of_user(&user)
        .await
        .unwrap()
        .is_empty());
    let e = refused(
        w.refresh(&app2, other_app.refresh_token.as_deref().unwrap())
            .await,
    );
    assert!(e.description.contains("revoked"), "{e:?}");
    let e = refused(w.refresh(&app, &r1).await);
    assert_eq!(e.code, ErrorCode::InvalidGrant);
    assert!(w
        .ctx
        .store
        .upstream_links_of_user(&user)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(w.upstream.presented().len(), 1, "no further upstream calls");
    let audited = audit_of(&w, &user, "upstream.reverify_failed").await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].reason.as_deref(), Some("upstream_refused"));
    assert_eq!(audited[0].upstream.as_deref(), Some("wog"));
    let details: serde_json::Value = serde_json::from_str(&audited[0].details).unwrap();
    assert_eq!(details["sessions_ended"], 2);
    assert!(details["description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS50057"));
    // An SSO reuse now finds no session; a check from a stale cookie's record is refused.
    assert_eq!(
        reverify::check(&w.ctx, &user, Some("wog"), T0, None)
            .await
            .unwrap(),
        Verdict::Unverifiable
    );

    // Bob still refreshes (his check is due too; the script is empty: accepted).
    assert!(w.refresh(&bob_app, &bob_rt).await.is_ok());
    assert_eq!(
        w.ctx
            .store
            .sessions_of_user(&bob.user.id)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn an_upstream_outage_is_allowed_within_the_grace_and_refused_after(db: &TestDatabase) {
    let w = World::new(db).await;
    let (session, app, r1) = officer_with_tokens(&w, "oid-rv3").await;
    let user = session.user.id.clone();
    let policy = w.ctx.settings.upstream.clone();
    assert_eq!(
        (policy.reverify_retries, policy.reverify_grace_secs),
        (1, 900)
    );
    let down = || Err(RefreshError::Unavailable("HTTP 503".into()));

    // Due at T0 + 3600; the upstream is down: retried once, then allowed within the grace.
    w.clock.advance(3600 + 899);
    w.upstream.answer(down());
    w.upstream.answer(down());
    let r2 = w.refresh(&app, &r1).await.unwrap().refresh_token.unwrap();
    assert_eq!(w.upstream.presented().len(), 2, "one try and one retry");
    let links = w.ctx.store.upstream_links_of_user(&user).await.unwrap();
    assert_eq!((links[0].failures, links[0].last_verified_at), (1, T0));
    let audited = audit_of(&w, &user, "upstream.reverify_unavailable").await;
    assert_eq!(audited[0].outcome, "allowed");

    // A retry that succeeds is success.
    w.upstream.answer(down());
    w.upstream.answer(Ok(None));
    assert_eq!(
        reverify::check(&w.ctx, &user, Some("wog"), T0, None)
            .await
            .unwrap(),
        Verdict::Current
    );
    assert_eq!(w.upstream.presented().len(), 4);
    let links = w.ctx.store.upstream_links_of_user(&user).await.unwrap();
    assert_eq!(
        (links[0].failures, links[0].last_verified_at),
        (0, T0 + 4499)
    );

    // Down again from the next due time, past the grace: refused, never a 500, and the
    // refresh token is not spent.
    w.clock.advance(3600 + 900);
    w.upstream.answer(down());
    w.upstream.answer(down());
    let e = refused(w.refresh(&app, &r2).await);
    assert_eq!(e.code, ErrorCode::InvalidGrant);
    assert!(e.description.contains("re-verification failed"), "{e:?}");
    let audited = audit_of(&w, &user, "upstream.reverify_unavailable").await;
    assert_eq!(audited[0].outcome, "denied");
    assert_eq!(
        w.ctx.store.sessions_of_user(&user).await.unwrap().len(),
        1,
        "an outage is not a refusal: the session stays"
    );
    // Back up: the same refresh token works.
    assert!(w.refresh(&app, &r2).await.is_ok());
}

async fn one_request_at_a_time_asks_the_upstream(db: &TestDatabase) {
    let w = World::new(db).await;
    let (session, app, r1) = officer_with_tokens(&w, "oid-rv5").await;
    let user = session.user.id.clone();
    w.clock.advance(3600);
    let now = w.clock.now_secs();
    // Another request (another replica) is asking the upstream right now.
    assert!(w
        .ctx
        .store
        .claim_upstream_check(&user, "wog", T0, now, now + 60)
        .await
        .unwrap());
    let r2 = w.refresh(&app, &r1).await.unwrap().refresh_token.unwrap();
    assert!(
        w.upstream.presented().is_empty(),
        "not asked twice at once (within the grace: allowed)"
    );
    // Still claimed (a claim of its own, renewed) past the grace: refused, token not spent.
    w.clock.advance(900);
    let now = w.clock.now_secs();
    w.ctx
        .store
        .upstream_link_failed(&user, "wog")
        .await
        .unwrap();
    assert!(w
        .ctx
        .store
        .claim_upstream_check(&user, "wog", T0, now, now + 60)
        .await
        .unwrap());
    let e = refused(w.refresh(&app, &r2).await);
    assert!(e.description.contains("re-verification failed"), "{e:?}");
    assert!(w.upstream.presented().is_empty());
    // The other request's claim has run out: this one asks (and the upstream accepts).
    w.clock.advance(60);
    assert!(w.refresh(&app, &r2).await.is_ok());
    assert_eq!(w.upstream.presented(), vec!["upstream-rt-oid-rv5"]);
    // Another request finished first: the link is fresh, so nobody asks again.
    w.clock.advance(3600);
    let now = w.clock.now_secs();
    let seen = w.ctx.store.upstream_links_of_user(&user).await.unwrap()[0].last_verified_at;
    assert!(w
        .ctx
        .store
        .claim_upstream_check(&user, "wog", seen, now, now + 60)
        .await
        .unwrap());
    w.ctx
        .store
        .upstream_link_verified(&user, "wog", None, now)
        .await
        .unwrap();
    assert_eq!(
        reverify::check(&w.ctx, &user, Some("wog"), T0, None)
            .await
            .unwrap(),
        Verdict::Current
    );
    assert_eq!(w.upstream.presented().len(), 1);
}

async fn without_an_upstream_refresh_token_the_bound_ends_in_a_new_sign_in(db: &TestDatabase) {
    let w = World::new(db).await;
    w.upstream
        .no_refresh_tokens
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (session, app, r1) = officer_with_tokens(&w, "oid-rv4").await;
    let user = session.user.id.clone();
    let links = w.ctx.store.upstream_links_of_user(&user).await.unwrap();
    assert_eq!(links[0].sealed_refresh_token, None);

    w.clock.advance(3599);
    let r2 = w.refresh(&app, &r1).await.unwrap().refresh_token.unwrap();
    w.clock.advance(1);
    let e = refused(w.refresh(&app, &r2).await);
    assert!(e.description.contains("re-verification failed"), "{e:?}");
    assert!(w.upstream.presented().is_empty(), "nothing to ask with");
    let audited = audit_of(&w, &user, "upstream.reverify_failed").await;
    assert_eq!(
        audited[0].reason.as_deref(),
        Some("no_upstream_refresh_token")
    );
    // A new sign-in at the upstream confirms the person again.
    w.sign_in(person("oid-rv4", "oid-rv4@agency.gov.sg")).await;
    assert!(w.refresh(&app, &r2).await.is_ok());
}

async fn the_gate_refuses_and_writes_nothing(db: &TestDatabase) {
    let w = World::new(db).await;
    let session = w.sign_in(person("oid-6", "fi@agency.gov.sg")).await;
    let app = w.app(|_| {}).await;

    // Not registered yet.
    let (code, verifier) = w.code(&app, &session, "openid").await;
    let e = refused(w.exchange(&app, &code, &verifier).await);
    assert_eq!(e.code, ErrorCode::InvalidGrant);
    assert!(e.description.contains("access denied"), "{e:?}");
    let session_hash = format!("session-of-{}", session.user.id);
    assert!(
        w.ctx
            .store
            .grants_of_session(&session_hash)
            .await
            .unwrap()
            .is_empty(),
        "a refused exchange leaves no grant"
    );

    // Registered, then suspended: refused at the next refresh.
    w.register(&session.user.id, UserStatus::Registered).await;
    let (code, verifier) = w.code(&app, &session, "openid offline_access").await;
    let tokens = w.exchange(&app, &code, &verifier).await.unwrap();
    w.ctx
        .store
        .set_user_status(&session.user.id, UserStatus::Suspended, Some("test"))
        .await
        .unwrap();
    let e = refused(
        w.refresh(&app, tokens.refresh_token.as_deref().unwrap())
            .await,
    );
    assert!(e.description.contains("access denied"), "{e:?}");

    // An app that requires assignment, for someone not assigned.
    w.ctx
        .store
        .set_user_status(&session.user.id, UserStatus::Registered, None)
        .await
        .unwrap();
    let assigned_only = w.app(|a| a.access_policy = AccessPolicy::Assigned).await;
    let (code, verifier) = w.code(&assigned_only, &session, "openid").await;
    let e = refused(w.exchange(&assigned_only, &code, &verifier).await);
    assert!(e.description.contains("access denied"), "{e:?}");

    // A disabled app gets nothing, whoever asks.
    let mut disabled = w.app(|_| {}).await;
    let (code, verifier) = w.code(&disabled, &session, "openid").await;
    disabled.enabled = false;
    let e = refused(w.exchange(&disabled, &code, &verifier).await);
    // The app half of the gate, before the code is even looked at.
    assert_eq!(e.code, ErrorCode::InvalidGrant);
    assert!(e.description.contains("disabled"), "{e:?}");
}

/// AZURE.md §3: under `email_authority = "verified"` an address the upstream did not prove is
/// kept, but makes nobody an officer and matches no invitation or pending grant.
async fn an_unverified_address_classifies_and_matches_nothing(db: &TestDatabase) {
    const ERIN: &str = "erin@agency.gov.sg";
    const VIC: &str = "vic@vendor.example";
    let w = World::new(db).await;
    // An unproven address in an officer domain makes no account at all: the person is told the
    // upstream did not prove it.
    let mut erin = person("oid-erin", ERIN);
    erin.email_verified = false;
    let (state, browser) = w.start().await;
    *w.upstream.next.lock().unwrap() = Some(erin);
    let refused = finish_login(&w.ctx, callback(&state), Some(&browser)).await;
    assert_eq!(refused.err().map(|d| d.reason), Some("email_unverified"));
    assert!(w
        .ctx
        .store
        .find_users_by_email(ERIN)
        .await
        .unwrap()
        .is_empty());

    let tenant = w.tenant("Agency Tools", "owner@agency.gov.sg").await;
    let app = apps::create(
        &w.ctx,
        &Actor::Operator,
        &tenant.id,
        AppSpec {
            name: "Wiki".into(),
            homepage: None,
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            confidential: true,
            grant_types: vec![GRANT_AUTHORIZATION_CODE.into()],
            access_policy: Some(AccessPolicy::Assigned),
            user_assignment_required: None,
            id_token_signed_response_alg: None,
            access_token_signed_response_alg: None,
        },
    )
    .await
    .unwrap();
    invitations::invite(
        &w.ctx,
        &Actor::Operator,
        &tenant.id,
        NewInvitation {
            email: VIC.into(),
            access_ends_at: Some(T0 + 30 * 86_400),
        },
    )
    .await
    .unwrap();
    pending::grant_app_access(&w.ctx, &Actor::Operator, &tenant.id, &app.client_id, VIC)
        .await
        .unwrap();
    let mail = w.ctx.store.list_emails(Some(VIC), 10, 0).await.unwrap();
    let token = mail[0]
        .body
        .split(invitations::INVITATION_PATH)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();

    let mut unproven = person("oid-vic", VIC);
    unproven.email_verified = false;
    let vic = w.sign_in(unproven.clone()).await;
    assert_eq!(vic.user.email.as_deref(), Some(VIC), "kept as an attribute");
    assert_eq!(vic.user.account_type, AccountType::Vendor.as_str());
    assert!(!vic.user.email_verified);
    assert!(!vic.identity.email_verified);
    assert!(invitations::waiting_for(&w.ctx, &vic.user)
        .await
        .unwrap()
        .is_empty());
    let refused = invitations::accept(&w.ctx, &token, &vic.user, None).await;
    assert!(
        matches!(refused, Err(LinkProblem::EmailUnverified)),
        "{refused:?}"
    );
    assert_eq!(
        LinkProblem::EmailUnverified.reason(),
        "invitation_email_unverified"
    );
    assert_eq!(pending::resolve_at_signin(&w.ctx, &vic.user).await, 0);
    // Nor does the address name her to an admin typing it; her id does.
    assert!(techpass_service::accounts::find_user(&w.ctx, VIC)
        .await
        .is_err());
    assert!(techpass_service::accounts::find_user(&w.ctx, &vic.user.id)
        .await
        .is_ok());
    assert_eq!(
        pending::of_app(&w.ctx, &Actor::Operator, &tenant.id, &app.client_id)
            .await
            .unwrap()
            .len(),
        1,
        "the grant still waits for a proven address"
    );

    // Once the upstream proves the same address, it is hers.
    let proven = w.sign_in(person("oid-vic", VIC)).await;
    assert_eq!(proven.user.account_type, AccountType::Vendor.as_str());
    assert!(proven.user.email_verified);
    assert_eq!(pending::resolve_at_signin(&w.ctx, &proven.user).await, 1);
    assert_eq!(
        invitations::waiting_for(&w.ctx, &proven.user)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn an_invited_vendor_accepts_once_with_the_invited_address(db: &TestDatabase) {
    let w = World::new(db).await;
    let tenant = w.tenant("Agency Tools", "owner@agency.gov.sg").await;
    let ends = T0 + 30 * 86_400;
    let invitation = invitations::invite(
        &w.ctx,
        &Actor::Operator,
        &tenant.id,
        NewInvitation {
            email: "Vee@Vendor.example".into(),
            access_ends_at: Some(ends),
        },
    )
    .await
    .unwrap();
    assert_eq!(invitation.email, "vee@vendor.example");
    // The link is only in the email.
    let mail = w
        .ctx
        .store
        .list_emails(Some("vee@vendor.example"), 10, 0)
        .await
        .unwrap();
    let email = mail.first().expect("the invitation email is queued");
    // It names who invited and to which tenant.
    assert_eq!(
        email.subject,
        "The TechPass operators invited you to Agency Tools on TechPass"
    );
    let body = &email.body;
    let token = body
        .split(invitations::INVITATION_PATH)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();

    // Someone else cannot use it.
    let other = w.sign_in(person("oid-7", "other@vendor.example")).await;
    let wrong = invitations::accept(&w.ctx, &token, &other.user, None).await;
    assert!(matches!(wrong, Err(LinkProblem::WrongEmail)), "{wrong:?}");

    let vee = w.sign_in(person("oid-8", "vee@vendor.example")).await;
    assert_eq!(vee.user.account_type, AccountType::Vendor.as_str());
    let accepted = invitations::accept(&w.ctx, &token, &vee.user, None)
        .await
        .unwrap();
    assert_eq!(accepted.tenant.id, tenant.id);
    let user = w.ctx.store.get_user(&vee.user.id).await.unwrap().unwrap();
    assert_eq!(user.status, UserStatus::Active);
    assert_eq!(user.access_ends_at, Some(ends));
    let again = invitations::accept(&w.ctx, &token, &user, None).await;
    assert!(
        matches!(again, Err(LinkProblem::AlreadyAccepted)),
        "{again:?}"
    );
}

async fn randomness_is_an_input(db: &TestDatabase) {
    // Two TechPasses with the same sequence and clock hand out the same values.
    let other = TestDatabase::new(db.backend, "service::randomness_is_an_input::b")
        .await
        .unwrap();
    let a = World::new(db).await;
    let b = World::new(&other).await;
    let one = a.sign_in(person("oid-9", "gu@agency.gov.sg")).await;
    let two = b.sign_in(person("oid-9", "gu@agency.gov.sg")).await;
    assert_eq!(one.cookie, two.cookie);
    assert_eq!(one.user.id, two.user.id);
}

async fn what_is_shown_once_is_shown_once_to_its_owner(db: &TestDatabase) {
    let w = World::new(db).await;
    let shown = Shown {
        title: "New client secret".into(),
        intro: "Copy it now.".into(),
        values: vec![ShownValue {
            label: "Client secret".into(),
            name: "client_secret".into(),
            value: "s3cret-value".into(),
            secret: true,
        }],
        next_href: "/portal".into(),
        next_label: "Back".into(),
    };
    let id = reveal::stash(&w.ctx, "alice", &shown).await.unwrap();
    assert!(reveal::take(&w.ctx, "mallory", &id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        reveal::take(&w.ctx, "alice", &id).await.unwrap(),
        Some(shown.clone())
    );
    assert!(
        reveal::take(&w.ctx, "alice", &id).await.unwrap().is_none(),
        "once"
    );
    // Unread for its lifetime: gone.
    let late = reveal::stash(&w.ctx, "alice", &shown).await.unwrap();
    w.clock.advance(reveal::LIFETIME_SECS);
    assert!(
        reveal::take(&w.ctx, "alice", &late)
            .await
            .unwrap()
            .is_none(),
        "too late"
    );
}

async fn two_apps_of_a_tenant_never_share_a_name(db: &TestDatabase) {
    let w = World::new(db).await;
    let tenant = w.tenant("Agency Tools", "owner@agency.gov.sg").await;
    let spec = |name: &str| -> AppSpec {
        serde_json::from_value(serde_json::json!({
            "name": name,
            "redirect_uris": [REDIRECT],
        }))
        .unwrap()
    };
    let wiki = apps::create(&w.ctx, &Actor::Operator, &tenant.id, spec("Wiki"))
        .await
        .unwrap();
    let twin = apps::create(&w.ctx, &Actor::Operator, &tenant.id, spec(" wiki "))
        .await
        .unwrap_err();
    assert!(matches!(twin, TenancyError::Conflict(_)), "{twin:?}");
    let docs = apps::create(&w.ctx, &Actor::Operator, &tenant.id, spec("Docs"))
        .await
        .unwrap();
    let rename = |name: &str| AppChanges {
        name: Some(name.into()),
        ..AppChanges::default()
    };
    let clash = apps::update(
        &w.ctx,
        &Actor::Operator,
        &tenant.id,
        &docs.client_id,
        rename("WIKI"),
    )
    .await
    .unwrap_err();
    assert!(matches!(clash, TenancyError::Conflict(_)), "{clash:?}");
    // Its own name, in other letters, is not a clash.
    apps::update(
        &w.ctx,
        &Actor::Operator,
        &tenant.id,
        &wiki.client_id,
        rename("WIKI"),
    )
    .await
    .unwrap();
    let names: Vec<String> = apps::list(&w.ctx, &Actor::Operator, &tenant.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// Issue 17 item 3: an app chooses RS256, ES256 or EdDSA for its ID tokens and access tokens
/// on registration and later; anything else is refused with a message naming the field and the
/// supported values, and changes nothing; the empty string goes back to the default.
async fn apps_choose_supported_signing_algorithms_only(db: &TestDatabase) {
    let w = World::new(db).await;
    let tenant = w.tenant("Agency Tools", "owner@agency.gov.sg").await;
    let spec = |name: &str, id_alg: &str, at_alg: &str| -> AppSpec {
        serde_json::from_value(serde_json::json!({
            "name": name,
            "redirect_uris": [REDIRECT],
            "id_token_signed_response_alg": id_alg,
            "access_token_signed_response_alg": at_alg,
        }))
        .unwrap()
    };
    for (id_alg, at_alg, field) in [
        ("HS256", "ES256", "id_token_signed_response_alg"),
        ("ES256", "none", "access_token_signed_response_alg"),
        ("es256", "ES256", "id_token_signed_response_alg"),
        ("ES256", "RS384", "access_token_signed_response_alg"),
    ] {
        let err = apps::create(
            &w.ctx,
            &Actor::Operator,
            &tenant.id,
            spec("Bad", id_alg, at_alg),
        )
        .await
        .unwrap_err();
        let TenancyError::Invalid(message) = &err else {
            panic!("{err:?}");
        };
        assert!(message.starts_with(field), "{message}");
        assert!(message.contains("RS256, ES256, EdDSA"), "{message}");
    }
    assert!(apps::list(&w.ctx, &Actor::Operator, &tenant.id)
        .await
        .unwrap()
        .is_empty());

    let app = apps::create(
        &w.ctx,
        &Actor::Operator,
        &tenant.id,
        spec("Wiki", "EdDSA", "ES256"),
    )
    .await
    .unwrap();
    let stored = |w: &World| {
        let id = app.client_id.clone();
        let store = w.ctx.store.clone();
        async move {
            let c = store.get_client(&id).await.unwrap().unwrap();
            (
                c.id_token_signed_response_alg,
                c.access_token_signed_response_alg,
            )
        }
    };
    assert_eq!(
        stored(&w).await,
        (Some("EdDSA".into()), Some("ES256".into()))
    );
    let change = |id_alg: Option<&str>, at_alg: Option<&str>| AppChanges {
        id_token_signed_response_alg: id_alg.map(str::to_string),
        access_token_signed_response_alg: at_alg.map(str::to_string),
        ..AppChanges::default()
    };
    let err = apps::update(
        &w.ctx,
        &Actor::Operator,
        &tenant.id,
        &app.client_id,
        change(Some("RS256"), Some("PS256")),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, TenancyError::Invalid(m) if m.starts_with("access_token_signed_response_alg")),
        "{err:?}"
    );
    assert_eq!(
        stored(&w).await,
        (Some("EdDSA".into()), Some("ES256".into())),
        "a refused change changes nothing"
    );
    apps::update(
        &w.ctx,
        &Actor::Operator,
        &tenant.id,
        &app.client_id,
        change(Some("ES256"), None),
    )
    .await
    .unwrap();
    assert_eq!(
        stored(&w).await,
        (Some("ES256".into()), Some("ES256".into()))
    );
    apps::update(
        &w.ctx,
        &Actor::Operator,
        &tenant.id,
        &app.client_id,
        change(Some(""), Some("")),
    )
    .await
    .unwrap();
    assert_eq!(
        stored(&w).await,
        (None, None),
        "back to the platform default"
    );
}

/// Issue 13 item 9: a state machine over random interleavings of code exchange (by the rightful
/// caller or first by a wrong one), refresh (by its client or another), client credentials,
/// introspection, revocation, suspending and reinstating people and tenants, disabling apps,
/// disabling and enabling people at the upstream (re-verified past the bound of item 6) and
/// time passing (past the end of a vendor's invitation: the vendor, invited by one tenant, must
/// never reach the other's app), and the inviting tenant ending the vendor's membership. A model predicts every answer: after each step no token is issued and no
/// introspection answers active unless the gate holds, a wrong caller never consumes a value,
/// and what the gate allows is issued. Each case uses fresh people, tenants and apps in one
/// database; `PROPTEST_CASES` sets the number of cases (32 by default, so CI stays fast).
/// Failures print the whole sequence (cases are generated, not shrunk).
mod state_machine {
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    use techpass_domain::tenancy::TenantAction;
    use techpass_service::accounts;
    use techpass_service::tokens;

    #[derive(Debug, Clone)]
    pub enum Op {
        Exchange {
            p: usize,
            a: usize,
        },
        WrongCallerFirst {
            p: usize,
            a: usize,
            wrong_verifier: bool,
        },
        Refresh {
            f: usize,
        },
        RefreshByOther {
            f: usize,
        },
        ClientCredentials {
            a: usize,
        },
        Introspect {
            f: usize,
            refresh: bool,
            by_other: bool,
        },
        Revoke {
            f: usize,
        },
        SuspendPerson {
            p: usize,
        },
        ReinstatePerson {
            p: usize,
        },
        SuspendTenant {
            t: usize,
        },
        ReinstateTenant {
            t: usize,
        },
        SetApp {
            a: usize,
            enabled: bool,
        },
        EndMembership {
            t: usize,
        },
        UpstreamDisable {
            p: usize,
            disabled: bool,
        },
        Advance {
            secs: i64,
        },
    }

    pub fn ops() -> impl Strategy<Value = Vec<Op>> {
        let i2 = || 0..2usize;
        let op = prop_oneof![
            4 => (0..3usize, i2()).prop_map(|(p, a)| Op::Exchange { p, a }),
            2 => (0..3usize, i2(), any::<bool>())
                .prop_map(|(p, a, wrong_verifier)| Op::WrongCallerFirst { p, a, wrong_verifier }),
            4 => (0..8usize).prop_map(|f| Op::Refresh { f }),
            1 => (0..8usize).prop_map(|f| Op::RefreshByOther { f }),
            2 => i2().prop_map(|a| Op::ClientCredentials { a }),
            3 => (0..8usize, any::<bool>(), any::<bool>())
                .prop_map(|(f, refresh, by_other)| Op::Introspect { f, refresh, by_other }),
            1 => (0..8usize).prop_map(|f| Op::Revoke { f }),
            1 => (0..3usize).prop_map(|p| Op::SuspendPerson { p }),
            1 => (0..3usize).prop_map(|p| Op::ReinstatePerson { p }),
            1 => i2().prop_map(|t| Op::SuspendTenant { t }),
            1 => i2().prop_map(|t| Op::ReinstateTenant { t }),
            2 => (i2(), any::<bool>()).prop_map(|(a, enabled)| Op::SetApp { a, enabled }),
            1 => i2().prop_map(|t| Op::EndMembership { t }),
            2 => (0..3usize, any::<bool>())
                .prop_map(|(p, disabled)| Op::UpstreamDisable { p, disabled }),
            // Even steps: `now` never lands on the vendor's (odd) end of access.
            2 => (0..600i64).prop_map(|half| Op::Advance { secs: 2 * half }),
            // An hour or more: past `upstream.reverify_after_secs`, so people are re-verified.
            2 => (1800..2400i64).prop_map(|half| Op::Advance { secs: 2 * half }),
        ];
        proptest::collection::vec(op, 1..30)
    }

    /// One family of tokens (a grant) as the model knows it.
    struct Family {
        p: usize,
        a: usize,
        refresh: String,
        access: String,
        access_expires: i64,
        /// Revoked, rotated away by reuse, or ended with the person's suspension.
        dead: bool,
    }

    /// The world of one case: two officers and a vendor invited by tenant 0 until
    /// `vendor_ends`, two tenants with one app each (app `i` in tenant `i`), and what the model
    /// believes of them.
    struct Case {
        people: Vec<NewSession>,
        vendor_ends: i64,
        tenants: Vec<String>,
        apps: Vec<String>,
        suspended: [bool; 3],
        tenant_suspended: [bool; 2],
        disabled: [bool; 2],
        families: Vec<Family>,
        /// When the upstream last confirmed each person; `None` once it refused them (their
        /// link is gone, and the bound counts from the grant's authentication time, T0).
        verified_at: [Option<i64>; 3],
        upstream_disabled: [bool; 3],
    }

    impl Case {
        fn app_ok(&self, a: usize) -> bool {
            !self.tenant_suspended[a] && !self.disabled[a]
        }

        /// The person's half: not suspended, and a vendor only at the inviting tenant's app
        /// while that invitation runs.
        fn person_ok(&self, p: usize, a: usize, now: i64) -> bool {
            !self.suspended[p] && (p < 2 || (a == 0 && now < self.vendor_ends))
        }

        fn gate(&self, p: usize, a: usize, now: i64) -> bool {
            self.app_ok(a) && self.person_ok(p, a, now)
        }

        /// The stored record of person `p`, as an admin's action reads it.
        async fn person(&self, w: &World, p: usize) -> UserRecord {
            let id = &self.people[p].user.id;
            w.ctx.store.get_user(id).await.unwrap().unwrap()
        }
    }

    async fn client(w: &World, id: &str) -> Client {
        find_client(w.ctx.store.as_ref(), id)
            .await
            .unwrap()
            .unwrap()
    }

    async fn setup(w: &World, n: usize, vendor_for: i64) -> Case {
        let mut people = Vec::new();
        for p in 0..2 {
            let oid = format!("sm-{n}-{p}");
            let session = w
                .sign_in(person(&oid, &format!("{oid}@agency.gov.sg")))
                .await;
            w.register(&session.user.id, UserStatus::Registered).await;
            people.push(session);
        }
        let (mut tenants, mut apps) = (Vec::new(), Vec::new());
        for t in 0..2 {
            let tenant = w
                .tenant(
                    &format!("Machine {n} {t}"),
                    &format!("owner-{n}-{t}@agency.gov.sg"),
                )
                .await;
            let spec: AppSpec = serde_json::from_value(serde_json::json!({
                "name": "Stateful",
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                "user_assignment_required": false,
            }))
            .unwrap();
            let app = apps::create(&w.ctx, &Actor::Operator, &tenant.id, spec)
                .await
                .unwrap();
            tenants.push(tenant.id);
            apps.push(app.client_id);
        }
        // The apps are open to every officer: the officers consented, as /authorize asks them
        // to (the consent page is tried elsewhere; here the gate's states are).
        for session in &people {
            let user = w
                .ctx
                .store
                .get_user(&session.user.id)
                .await
                .unwrap()
                .unwrap();
            for app in &apps {
                let app = find_client(w.ctx.store.as_ref(), app)
                    .await
                    .unwrap()
                    .unwrap();
                let scope = ["openid".to_string(), "offline_access".to_string()];
                consent::give(&w.ctx, &user, &app, &scope, None)
                    .await
                    .unwrap();
            }
        }
        // The vendor, invited by tenant 0 only.
        let email = format!("vendor-{n}@vendor.example");
        let vendor_ends = w.clock.now_secs() + vendor_for;
        invitations::invite(
            &w.ctx,
            &Actor::Operator,
            &tenants[0],
            NewInvitation {
                email: email.clone(),
                access_ends_at: Some(vendor_ends),
            },
        )
        .await
        .unwrap();
        let mail = w.ctx.store.list_emails(Some(&email), 1, 0).await.unwrap();
        let link = mail[0]
            .body
            .split(invitations::INVITATION_PATH)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .to_string();
        let vendor = w.sign_in(person(&format!("sm-{n}-v"), &email)).await;
        invitations::accept(&w.ctx, &link, &vendor.user, None)
            .await
            .unwrap();
        people.push(vendor);
        let signed_in = w.clock.now_secs();
        Case {
            verified_at: [Some(signed_in); 3],
            upstream_disabled: [false; 3],
            people,
            vendor_ends,
            tenants,
            apps,
            suspended: [false; 3],
            tenant_suspended: [false; 2],
            disabled: [false; 2],
            families: Vec::new(),
        }
    }

    async fn step(w: &World, m: &mut Case, op: &Op) -> Result<(), String> {
        let now = w.clock.now_secs();
        match *op {
            Op::Exchange { p, a } | Op::WrongCallerFirst { p, a, .. } => {
                let app = client(w, &m.apps[a]).await;
                let (code, verifier) = w.code(&app, &m.people[p], "openid offline_access").await;
                if let Op::WrongCallerFirst { wrong_verifier, .. } = *op {
                    let wrong = if wrong_verifier {
                        w.exchange(&app, &code, &"b".repeat(43)).await
                    } else {
                        w.exchange(&client(w, &m.apps[1 - a]).await, &code, &verifier)
                            .await
                    };
                    if wrong.is_ok() {
                        return Err("a wrong caller got tokens for a code".into());
                    }
                }
                let result = w.exchange(&app, &code, &verifier).await;
                match (result, m.gate(p, a, now)) {
                    (Ok(t), true) => m.families.push(Family {
                        p,
                        a,
                        refresh: t.refresh_token.ok_or("no refresh token")?,
                        access: t.access.token,
                        access_expires: now + t.access.expires_in,
                        dead: false,
                    }),
                    (Ok(_), false) => return Err("tokens issued past the gate".into()),
                    (Err(e), true) => return Err(format!("the gate holds, yet {e:?}")),
                    (Err(_), false) => {}
                }
            }
            Op::Refresh { f } | Op::RefreshByOther { f } => {
                let Some(fam) = m.families.get(f) else {
                    return Ok(());
                };
                let (p, a) = (fam.p, fam.a);
                if let Op::RefreshByOther { .. } = *op {
                    let other = client(w, &m.apps[1 - a]).await;
                    if w.refresh(&other, &fam.refresh).await.is_ok() {
                        return Err("another client refreshed a family".into());
                    }
                    return Ok(());
                }
                let result = w.refresh(&client(w, &m.apps[a]).await, &fam.refresh).await;
                let alive = !fam.dead;
                // Re-verification, for a live family of a live app, before the token is spent:
                // past the bound the upstream is asked (with no link left, nothing can be).
                let bound = w.ctx.settings.upstream.reverify_after_secs as i64;
                let since = m.verified_at[p].unwrap_or(T0);
                if alive && m.app_ok(a) && now >= since + bound {
                    let refused = match m.verified_at[p] {
                        Some(_) if m.upstream_disabled[p] => {
                            // Everything of the person ends.
                            m.verified_at[p] = None;
                            for fam in m.families.iter_mut().filter(|fam| fam.p == p) {
                                fam.dead = true;
                            }
                            true
                        }
                        Some(_) => {
                            m.verified_at[p] = Some(now);
                            false
                        }
                        None => true,
                    };
                    if refused {
                        return match result {
                            Ok(_) => Err("refreshed though re-verification failed".into()),
                            Err(e) if e.description.contains("re-verification failed") => Ok(()),
                            Err(e) => Err(format!("re-verification should refuse, got {e:?}")),
                        };
                    }
                }
                match result {
                    Ok(_) if !m.gate(p, a, now) => return Err("refreshed past the gate".into()),
                    Ok(_) if !alive => return Err("a dead family was refreshed".into()),
                    Ok(t) => {
                        let fam = &mut m.families[f];
                        fam.refresh = t.refresh_token.ok_or("no refresh token")?;
                        fam.access = t.access.token;
                        fam.access_expires = now + t.access.expires_in;
                    }
                    Err(e) if alive && m.gate(p, a, now) => {
                        return Err(format!("the gate holds for a live family, yet {e:?}"))
                    }
                    // The app's half of the gate is checked before the token is looked at, so
                    // the family survives a disabled app or suspended tenant; the person's half
                    // comes after the token is redeemed, which spends it.
                    Err(_) if m.app_ok(a) => m.families[f].dead = true,
                    Err(_) => {}
                }
            }
            Op::ClientCredentials { a } => {
                let request = TokenRequest::ClientCredentials {
                    scope: None,
                    resource: None,
                };
                let result = grants::run(&w.ctx, &client(w, &m.apps[a]).await, request, None).await;
                if result.is_ok() != m.app_ok(a) {
                    let answer = result.map(|_| "tokens").map_err(|e| e.description);
                    return Err(format!("client_credentials: {answer:?}"));
                }
            }
            Op::Introspect {
                f,
                refresh,
                by_other,
            } => {
                let Some(fam) = m.families.get(f) else {
                    return Ok(());
                };
                let asker = if by_other { 1 - fam.a } else { fam.a };
                let token = if refresh { &fam.refresh } else { &fam.access };
                let answer = tokens::introspect(&w.ctx, &client(w, &m.apps[asker]).await, token)
                    .await
                    .map_err(|e| format!("introspection failed: {e:?}"))?;
                let live = refresh || now < fam.access_expires;
                let expected = !by_other && !fam.dead && live && m.gate(fam.p, fam.a, now);
                if answer.is_some() != expected {
                    return Err(format!("introspection answered {answer:?}"));
                }
            }
            Op::Revoke { f } => {
                let Some(fam) = m.families.get_mut(f) else {
                    return Ok(());
                };
                let app = find_client(w.ctx.store.as_ref(), &m.apps[fam.a])
                    .await
                    .unwrap()
                    .unwrap();
                tokens::revoke(&w.ctx, &app, &fam.refresh)
                    .await
                    .map_err(|e| format!("revocation failed: {e:?}"))?;
                fam.dead = true;
            }
            Op::SuspendPerson { p } if !m.suspended[p] => {
                let user = m.person(w, p).await;
                accounts::suspend(&w.ctx, &user, "state machine", "test")
                    .await
                    .unwrap();
                m.suspended[p] = true;
                // Every grant of the person ends with the suspension.
                for fam in m.families.iter_mut().filter(|fam| fam.p == p) {
                    fam.dead = true;
                }
            }
            Op::ReinstatePerson { p } if m.suspended[p] => {
                let user = m.person(w, p).await;
                accounts::reinstate(&w.ctx, &user, "test").await.unwrap();
                m.suspended[p] = false;
            }
            Op::SuspendTenant { t } | Op::ReinstateTenant { t } => {
                let suspend = matches!(op, Op::SuspendTenant { .. });
                if m.tenant_suspended[t] == suspend {
                    return Ok(());
                }
                let (action, reason) = if suspend {
                    (TenantAction::Suspend, Some("state machine"))
                } else {
                    (TenantAction::Reinstate, None)
                };
                tenants::decide(&w.ctx, &Actor::Operator, &m.tenants[t], action, reason)
                    .await
                    .unwrap();
                m.tenant_suspended[t] = suspend;
            }
            Op::SetApp { a, enabled } => {
                let changes = AppChanges {
                    enabled: Some(enabled),
                    ..AppChanges::default()
                };
                let result =
                    apps::update(&w.ctx, &Actor::Operator, &m.tenants[a], &m.apps[a], changes)
                        .await;
                // A suspended tenant's apps are frozen.
                match result {
                    Ok(_) if !m.tenant_suspended[a] => m.disabled[a] = !enabled,
                    Err(TenancyError::Conflict(_)) if m.tenant_suspended[a] => {}
                    other => return Err(format!("changing the app: {:?}", other.map(|_| ()))),
                }
            }
            Op::EndMembership { t } => {
                let vendor = &m.people[2].user.id;
                let result = invitations::end_membership(
                    &w.ctx,
                    &Actor::Operator,
                    &m.tenants[t],
                    vendor,
                    "ended",
                )
                .await;
                // Only the inviting tenant (0) has a membership to end.
                match result {
                    Ok(_) if t == 0 => {
                        m.vendor_ends = m.vendor_ends.min(now);
                        for fam in m.families.iter_mut().filter(|f| f.p == 2 && f.a == 0) {
                            fam.dead = true;
                        }
                    }
                    Err(TenancyError::NotFound(_)) if t == 1 => {}
                    other => return Err(format!("ending the membership: {:?}", other.map(|_| ()))),
                }
            }
            Op::UpstreamDisable { p, disabled } => {
                let token = format!("upstream-rt-{}", m.people[p].user.object_id);
                let mut refused = w.upstream.refused.lock().unwrap();
                if disabled {
                    refused.insert(token);
                } else {
                    refused.remove(&token);
                }
                m.upstream_disabled[p] = disabled;
            }
            Op::Advance { secs } => w.clock.advance(secs),
            Op::SuspendPerson { .. } | Op::ReinstatePerson { .. } => {}
        }
        Ok(())
    }

    pub async fn run(w: &World) {
        let mut config = Config::default();
        if std::env::var_os("PROPTEST_CASES").is_none() {
            config.cases = 32;
        }
        let mut runner = TestRunner::new(config.clone());
        let strategy = ops();
        for n in 0..config.cases as usize {
            let ops = strategy.new_tree(&mut runner).unwrap().current();
            // The vendor's access ends within the run (odd, so never exactly at a step).
            let vendor_for = 2 * (n as i64 % 7) * 600 + 1;
            let mut m = setup(w, n, vendor_for).await;
            for (i, op) in ops.iter().enumerate() {
                if let Err(why) = step(w, &mut m, op).await {
                    panic!("case {n}, step {i} ({op:?}): {why}\nsequence: {ops:#?}");
                }
            }
        }
    }
}

async fn random_interleavings_never_issue_past_the_gate(db: &TestDatabase) {
    let w = World::new(db).await;
    state_machine::run(&w).await;
}

techpass_store::backend_tests!(
    "service",
    random_interleavings_never_issue_past_the_gate,
    two_apps_of_a_tenant_never_share_a_name,
    apps_choose_supported_signing_algorithms_only,
    what_is_shown_once_is_shown_once_to_its_owner,
    a_sign_in_creates_the_person_and_a_session_once,
    a_sign_in_is_refused_when_replayed_in_another_browser_or_too_late,
    a_code_is_exchanged_once_for_tokens_of_the_person,
    a_code_with_a_wrong_verifier_gives_nothing,
    refresh_tokens_rotate_and_a_reused_one_ends_the_family,
    a_refresh_token_reused_after_the_grace_is_a_replay,
    refresh_tokens_are_keyed_in_minting_order_and_older_ones_still_work,
    dpop_binds_tokens_and_a_public_clients_refresh_tokens,
    reverification_waits_for_the_bound_then_keeps_the_rotated_token_sealed,
    an_upstream_refusal_ends_everything_of_the_person_and_refuses,
    an_upstream_outage_is_allowed_within_the_grace_and_refused_after,
    one_request_at_a_time_asks_the_upstream,
    without_an_upstream_refresh_token_the_bound_ends_in_a_new_sign_in,
    the_gate_refuses_and_writes_nothing,
    an_invited_vendor_accepts_once_with_the_invited_address,
    an_unverified_address_classifies_and_matches_nothing,
    access_policies_admit_members_or_officers_who_consented,
    randomness_is_an_input,
);

/// Issue 13 items 3 and 4: an app for the tenant's members admits its admins and the people in
/// its groups, and no other officer; an app open to every officer admits anyone registered, but
/// one with no relationship to the tenant consents first, once per scope, and withdrawing the
/// consent ends the app's grants.
async fn access_policies_admit_members_or_officers_who_consented(db: &TestDatabase) {
    let w = World::new(db).await;
    let tenant = w.tenant("Agency Tools", "owner@agency.gov.sg").await;
    let app = |name: &str, policy| {
        let name = name.to_string();
        let tenant_id = tenant.id.clone();
        let ctx = &w.ctx;
        async move {
            let created = apps::create(
                ctx,
                &Actor::Operator,
                &tenant_id,
                AppSpec {
                    name,
                    homepage: None,
                    redirect_uris: vec![REDIRECT.into()],
                    post_logout_redirect_uris: vec![],
                    backchannel_logout_uri: None,
                    confidential: true,
                    grant_types: vec![GRANT_AUTHORIZATION_CODE.into(), GRANT_REFRESH_TOKEN.into()],
                    access_policy: Some(policy),
                    user_assignment_required: None,
                    id_token_signed_response_alg: None,
                    access_token_signed_response_alg: None,
                },
            )
            .await
            .unwrap();
            find_client(ctx.store.as_ref(), &created.client_id)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let members_only = app("Team wiki", AccessPolicy::Members).await;
    let open = app("Directory", AccessPolicy::Officers).await;

    let owner = w.sign_in(person("oid-owner", "owner@agency.gov.sg")).await;
    w.register(&owner.user.id, UserStatus::Registered).await;
    // The admin named by email when the tenant was created becomes one at the first sign-in.
    assert_eq!(pending::resolve_at_signin(&w.ctx, &owner.user).await, 1);
    let olive = w.sign_in(person("oid-olive", "olive@other.gov.sg")).await;
    w.register(&olive.user.id, UserStatus::Registered).await;
    let owner_user = w.ctx.store.get_user(&owner.user.id).await.unwrap().unwrap();
    let olive_user = w.ctx.store.get_user(&olive.user.id).await.unwrap().unwrap();

    // Members only: the admin is one; Olive is not, until she joins one of its groups.
    let (code, verifier) = w.code(&members_only, &owner, "openid").await;
    assert!(w.exchange(&members_only, &code, &verifier).await.is_ok());
    let (code, verifier) = w.code(&members_only, &olive, "openid").await;
    let e = refused(w.exchange(&members_only, &code, &verifier).await);
    assert!(e.description.contains("not_a_member"), "{e:?}");
    let group = access::create_group(&w.ctx, &Actor::Operator, &tenant.id, "readers")
        .await
        .unwrap();
    access::set_membership(
        &w.ctx,
        &Actor::Operator,
        &tenant.id,
        &group.id,
        &olive.user.id,
        true,
    )
    .await
    .unwrap();
    let (code, verifier) = w.code(&members_only, &olive, "openid").await;
    assert!(w.exchange(&members_only, &code, &verifier).await.is_ok());
    // ...and she needs no consent at the tenant's open app either: she is a member now.
    let scope = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
    assert!(
        !consent::needed(&w.ctx, &olive_user, &open, &scope("openid email"), false)
            .await
            .unwrap()
    );
    let (code, verifier) = w.code(&open, &olive, "openid email offline_access").await;
    let as_member = w.exchange(&open, &code, &verifier).await.unwrap();
    access::set_membership(
        &w.ctx,
        &Actor::Operator,
        &tenant.id,
        &group.id,
        &olive.user.id,
        false,
    )
    .await
    .unwrap();

    // Out of the group, she is no member and gave no consent: the open app's refresh token
    // (obtained as a member) gets nothing more.
    let e = refused(
        w.refresh(&open, as_member.refresh_token.as_deref().unwrap())
            .await,
    );
    assert!(e.description.contains("not consented"), "{e:?}");

    // Open to every officer: the gate lets Olive through, but she is asked first.
    assert!(
        !consent::needed(&w.ctx, &owner_user, &open, &scope("openid email"), false)
            .await
            .unwrap(),
        "the tenant's admin is not asked"
    );
    assert!(
        consent::needed(&w.ctx, &olive_user, &open, &scope("openid email"), false)
            .await
            .unwrap()
    );
    consent::give(
        &w.ctx,
        &olive_user,
        &open,
        &scope("openid email offline_access"),
        None,
    )
    .await
    .unwrap();
    assert!(
        !consent::needed(&w.ctx, &olive_user, &open, &scope("openid"), false)
            .await
            .unwrap(),
        "remembered"
    );
    assert!(
        consent::needed(&w.ctx, &olive_user, &open, &scope("openid email"), true)
            .await
            .unwrap(),
        "prompt=consent asks again"
    );
    assert!(
        consent::needed(&w.ctx, &olive_user, &open, &scope("openid profile"), false)
            .await
            .unwrap(),
        "a scope not consented to asks again"
    );
    let (code, verifier) = w.code(&open, &olive, "openid email offline_access").await;
    let tokens = w.exchange(&open, &code, &verifier).await.unwrap();
    let listed = consent::of_user(&w.ctx, &olive.user.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].app_name, "Directory");
    assert_eq!(listed[0].tenant_name.as_deref(), Some("Agency Tools"));

    // Withdrawn: asked again, and the app's refresh token stops working.
    assert!(consent::withdraw(&w.ctx, &olive_user, &open.id, None)
        .await
        .unwrap());
    assert!(
        consent::needed(&w.ctx, &olive_user, &open, &scope("openid"), false)
            .await
            .unwrap()
    );
    refused(
        w.refresh(&open, tokens.refresh_token.as_deref().unwrap())
            .await,
    );
    assert!(!consent::withdraw(&w.ctx, &olive_user, &open.id, None)
        .await
        .unwrap());
    assert!(consent::of_user(&w.ctx, &olive.user.id)
        .await
        .unwrap()
        .is_empty());
}
