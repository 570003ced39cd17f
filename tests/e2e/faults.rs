//! Faults (issue 15 item 8): the database taken away from a running TechPass mid-use.
//!
//! `health::readyz_fails_while_the_database_is_unreachable_and_recovers` already checks that
//! readiness follows the database; this extends it to the requests people and apps make. The
//! same cuttable TCP proxy sits between TechPass and PostgreSQL; while it is cut (every open
//! connection dropped, new ones closed at once) `/token`, `/authorize`, `/userinfo`,
//! `/introspect`, the portal and `/readyz` answer 503 within a bound (the pool's acquire
//! timeout is 1 s here; the default is 5 s, which also bounds every request), never 500 and
//! never a hang. After the proxy is restored the same requests succeed without restarting
//! TechPass, and the refresh attempted during the cut did not consume the refresh token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope,
};
use serde_json::Value;
use techpass_domain::SystemClock;
use techpass_store::testing::TestDatabase;

use crate::health::CuttableProxy;
use crate::provider::{authorize, register, APP_CALLBACK};
use crate::support::{browser, client, test_config, TempDir, TestServer};

/// The longest any request may take while the database is away: the 1 s acquire timeout plus
/// generous slack for a loaded 2-core machine.
const BOUND: Duration = Duration::from_secs(6);

/// Sends a request and checks it finished within `BOUND`.
async fn timed(what: &str, request: reqwest::RequestBuilder) -> reqwest::Response {
    let started = Instant::now();
    let response = tokio::time::timeout(BOUND, request.send())
        .await
        .unwrap_or_else(|_| panic!("{what} hung beyond {BOUND:?} while the database was away"))
        .unwrap();
    assert!(
        started.elapsed() <= BOUND,
        "{what}: {:?}",
        started.elapsed()
    );
    response
}

/// A 503 whose JSON body says `temporarily_unavailable`.
async fn unavailable_json(what: &str, response: reqwest::Response) {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 503, "{what}: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: {text}"));
    assert_eq!(body["error"], "temporarily_unavailable", "{what}: {text}");
}

#[tokio::test]
async fn the_database_cut_under_use_gives_503_and_recovers_without_a_restart() {
    let Some(db) = TestDatabase::postgres("e2e::faults::database_cut_under_use").await else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(90), database_cut(&db))
        .await
        .expect("the database-outage scenario did not finish within 90 s");
}

async fn database_cut(db: &TestDatabase) {
    db.store().await; // migrate through the direct URL
    let mut url = url::Url::parse(&db.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = CuttableProxy::start(target).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();

    let dir = TempDir::new();
    let mut config = test_config(url.as_str(), &dir);
    config.database.acquire_timeout_secs = 1;
    let server = TestServer::start_with(config, Arc::new(SystemClock), dir, None).await;

    // Alice signs in to a confidential app and gets an access and a refresh token.
    let app = register(&server, true, &["authorization_code", "refresh_token"]).await;
    let secret = app.client_secret.clone().unwrap();
    let http = client();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(app.client_id.clone()),
        Some(ClientSecret::new(secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(APP_CALLBACK.into()).unwrap());
    let auth_url = |challenge| {
        rp.authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("offline_access".into()))
        .add_extra_param("login_hint", "alice_tan@tech.gov.sg")
        .set_pkce_challenge(challenge)
        .url()
        .0
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let b = browser();
    let back = authorize(&b, &server, auth_url(challenge).as_str(), "alice").await;
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code: {back}"));
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let access = tokens.access_token().secret().clone();
    let refresh = tokens.refresh_token().unwrap().secret().clone();
    // A second code, issued before the cut and redeemed during it.
    let (challenge2, verifier2) = PkceCodeChallenge::new_random_sha256();
    let back2 = authorize(&b, &server, auth_url(challenge2).as_str(), "alice").await;
    let code2 = back2
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();

    let refresh_req = || {
        http.post(server.url("/token"))
            .basic_auth(&app.client_id, Some(&secret))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
    };
    let code_req = || {
        http.post(server.url("/token"))
            .basic_auth(&app.client_id, Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code2.as_str()),
                ("redirect_uri", APP_CALLBACK),
                ("code_verifier", verifier2.secret().as_str()),
            ])
    };
    let userinfo_req = || http.get(server.url("/userinfo")).bearer_auth(&access);
    let introspect_req = || {
        http.post(server.url("/introspect"))
            .basic_auth(&app.client_id, Some(&secret))
            .form(&[("token", &access)])
    };

    proxy.cut();

    // Readiness reports the outage (bounded wait: the pool notices on its next acquire).
    let mut ready = None;
    for _ in 0..20 {
        let response = timed("readyz", http.get(server.url("/readyz"))).await;
        if response.status() == 503 {
            ready = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = ready.expect("readyz never reported the outage");
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "unreachable");

    unavailable_json(
        "refresh during the cut",
        timed("refresh", refresh_req()).await,
    )
    .await;
    unavailable_json("code during the cut", timed("code", code_req()).await).await;
    let userinfo = timed("userinfo", userinfo_req()).await;
    assert_eq!(userinfo.status(), 503, "userinfo during the cut");
    // RFC 6750 reports errors of a protected resource in WWW-Authenticate; the body, if JSON,
    // says temporarily_unavailable too.
    let text = userinfo.text().await.unwrap();
    assert!(text.contains("temporarily_unavailable"), "userinfo: {text}");
    unavailable_json(
        "introspect during the cut",
        timed("introspect", introspect_req()).await,
    )
    .await;

    // /authorize: a 503 page, or (once the app is known) back to the app with
    // temporarily_unavailable; never a 500.
    let (challenge3, _) = PkceCodeChallenge::new_random_sha256();
    let during = timed("authorize", b.get(auth_url(challenge3).as_str())).await;
    match during.status().as_u16() {
        503 => {}
        303 => {
            let location = during.headers()["location"].to_str().unwrap().to_string();
            assert!(location.starts_with(APP_CALLBACK), "{location}");
            assert!(
                location.contains("error=temporarily_unavailable"),
                "{location}"
            );
        }
        other => panic!(
            "authorize during the cut: {other}: {}",
            during.text().await.unwrap()
        ),
    }
    // The portal, signed in (the browser holds Alice's session): a 503 page.
    let portal = timed("portal", b.get(server.url("/portal"))).await;
    assert_eq!(portal.status(), 503, "portal during the cut");
    // Liveness is about the process.
    assert_eq!(server.get("/healthz").await.status(), 200);

    proxy.restore();
    let mut recovered = false;
    for _ in 0..40 {
        if server.get("/readyz").await.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(recovered, "readyz never recovered");

    // The same requests now succeed: nothing was half-written by the failed ones.
    let refreshed = refresh_req().send().await.unwrap();
    let status = refreshed.status();
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(status, 200, "the refresh token survived the cut: {body}");
    assert!(body["refresh_token"].is_string(), "{body}");
    let exchanged = code_req().send().await.unwrap();
    let status = exchanged.status();
    let body: Value = exchanged.json().await.unwrap();
    assert_eq!(status, 200, "the code survived the cut: {body}");
    let userinfo = userinfo_req().send().await.unwrap();
    assert_eq!(userinfo.status(), 200);
    let claims: Value = userinfo.json().await.unwrap();
    assert!(claims["sub"].is_string(), "{claims}");
    let active: Value = introspect_req().send().await.unwrap().json().await.unwrap();
    assert_eq!(active["active"], true, "{active}");
    let portal = b.get(server.url("/portal")).send().await.unwrap();
    assert_eq!(portal.status(), 200, "portal after the cut");
    let (challenge4, _) = PkceCodeChallenge::new_random_sha256();
    let after = authorize(&b, &server, auth_url(challenge4).as_str(), "alice").await;
    assert!(
        after.query_pairs().any(|(k, _)| k == "code"),
        "authorize after the cut: {after}"
    );

    server.stop().await;
}
