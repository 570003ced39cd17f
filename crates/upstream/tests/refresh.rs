//! The OIDC connector's re-verification ([`Connector::refresh`]) against the development
//! upstream over HTTP: a sign-in with `offline_access` yields a refresh token; refreshing it
//! succeeds and rotates; a person disabled at the upstream, a token of another client or a
//! mangled one are `Refused`; an upstream that does not answer is `Unavailable`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::header::LOCATION;
use reqwest::StatusCode;
use serde_json::Value;
use techpass_domain::{Clock, ManualClock, SystemClock};
use techpass_upstream::dev::{
    DevClient, DevUpstream, Tamper, PATH_PREFIX, VENDOR_TENANT_ID, WOG_TENANT_ID,
};
use techpass_upstream::{
    AuthorizationResponse, Connector, LoginParams, MfaRule, OidcConnector, OidcConnectorConfig,
    RefreshError,
};
use url::Url;

const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn clients() -> Vec<DevClient> {
    ["one", "two"]
        .into_iter()
        .map(|id| DevClient {
            client_id: id.into(),
            client_secret: format!("{id}-secret"),
            redirect_uris: vec![REDIRECT.into()],
        })
        .collect()
}

fn connector(dev: &DevUpstream, client: &str, http: &reqwest::Client) -> OidcConnector {
    OidcConnector::new(
        OidcConnectorConfig {
            id: "wog".into(),
            display_name: "Public officer".into(),
            issuer: dev.issuer(WOG_TENANT_ID),
            client_id: client.into(),
            client_secret: format!("{client}-secret"),
            redirect_uri: REDIRECT.into(),
            scopes: vec![
                "openid".into(),
                "profile".into(),
                "email".into(),
                "offline_access".into(),
            ],
            allowed_tenants: vec![WOG_TENANT_ID.into()],
            mfa: MfaRule::Amr(vec!["mfa".into()]),
            clock_skew_secs: 60,
        },
        http.clone(),
        Arc::new(SystemClock),
    )
    .unwrap()
}

fn params() -> LoginParams {
    LoginParams {
        state: "s".into(),
        nonce: "n".into(),
        pkce_verifier: URL_SAFE_NO_PAD.encode([9u8; 32]),
        login_hint: None,
        force_reauthentication: false,
    }
}

/// Signs `person` in through `connector` and returns the upstream refresh token.
async fn sign_in(http: &reqwest::Client, connector: &OidcConnector, person: &str) -> String {
    let url = connector.login_url(&params()).await.unwrap();
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("person".into(), person.into()));
    let mut endpoint = url.clone();
    endpoint.set_query(None);
    let response = http.post(endpoint).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let signed_in = connector
        .exchange(&AuthorizationResponse::new(&code, None), &params())
        .await
        .unwrap();
    assert_eq!(signed_in.identity.object_id.len(), 36);
    signed_in.refresh_token.expect("offline_access yields one")
}

#[tokio::test]
async fn refresh_rotates_and_a_disabled_person_is_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{PATH_PREFIX}", listener.local_addr().unwrap());
    let dev = Arc::new(
        DevUpstream::new(
            Url::parse(&base).unwrap(),
            clients(),
            Arc::new(SystemClock),
            Tamper::None,
        )
        .unwrap(),
    );
    let app = Router::new().nest(PATH_PREFIX, dev.clone().router());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let one = connector(&dev, "one", &http);
    let two = connector(&dev, "two", &http);

    let first = sign_in(&http, &one, "alice").await;
    let refreshed = one.refresh(&first).await.unwrap();
    let second = refreshed.refresh_token.expect("rotated");
    assert_ne!(second, first);
    // Like Azure AD, the earlier token stays valid until it expires.
    assert!(one.refresh(&first).await.is_ok());
    assert!(one.refresh(&second).await.is_ok());

    // Another client cannot use it, nor a mangled one.
    let refused = |r: Result<_, RefreshError>| matches!(r, Err(RefreshError::Refused { .. }));
    assert!(
        refused(two.refresh(&second).await),
        "another client's token"
    );
    let mangled = format!("{}x", &second[..second.len() - 1]);
    assert!(refused(one.refresh(&mangled).await), "mangled");
    assert!(refused(one.refresh("not-a-token").await), "garbage");

    // Disabled at the upstream (the people page, from its own origin): refused, and Bob, not
    // disabled, is not affected.
    let bob = sign_in(&http, &one, "bob").await;
    let origin = Url::parse(&base).unwrap().origin().ascii_serialization();
    let people = format!("{base}/people");
    let cross_site = http
        .post(&people)
        .header("origin", "https://evil.example")
        .form(&[("person", "alice"), ("action", "disable")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    assert!(
        one.refresh(&second).await.is_ok(),
        "a refused change changes nothing"
    );
    let disabled = http
        .post(&people)
        .header("origin", &origin)
        .form(&[("person", "alice"), ("action", "disable")])
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), StatusCode::OK);
    assert!(disabled
        .text()
        .await
        .unwrap()
        .contains("Alice Tan is now disabled."));
    match one.refresh(&second).await {
        Err(RefreshError::Refused { error, description }) => {
            assert_eq!(error, "invalid_grant");
            assert!(description.starts_with("AADSTS50057:"), "{description}");
        }
        other => panic!("disabled: {other:?}"),
    }
    assert!(one.refresh(&bob).await.is_ok());
    // Nor can she sign in again.
    let url = one.login_url(&params()).await.unwrap();
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("person".into(), "alice".into()));
    let mut endpoint = url.clone();
    endpoint.set_query(None);
    let picked = http.post(endpoint).form(&form).send().await.unwrap();
    assert_eq!(picked.status(), StatusCode::FORBIDDEN);
    assert!(picked.text().await.unwrap().contains("50057"));

    // Enabled again: her token works again.
    let enabled = http
        .post(&people)
        .header("sec-fetch-site", "same-origin")
        .form(&[("person", "alice"), ("action", "enable")])
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), StatusCode::OK);
    assert!(one.refresh(&second).await.is_ok());
    let page = http
        .get(&people)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Disable Alice Tan"), "{page}");

    // The upstream gone: unavailable, not refused.
    server.abort();
    let _ = server.await;
    match one.refresh(&second).await {
        Err(RefreshError::Unavailable(_)) => {}
        other => panic!("upstream down: {other:?}"),
    }
}

/// An error answer's status, OAuth error code and AADSTS code.
async fn error_of(response: reqwest::Response) -> (StatusCode, String, u64) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
        body["error_codes"][0].as_u64().unwrap_or_default(),
    )
}

#[tokio::test]
async fn the_refresh_grant_and_the_people_page_refuse_bad_input() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{PATH_PREFIX}", listener.local_addr().unwrap());
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let dev = Arc::new(
        DevUpstream::new(
            Url::parse(&base).unwrap(),
            clients(),
            clock.clone(),
            Tamper::None,
        )
        .unwrap(),
    );
    let app = Router::new().nest(PATH_PREFIX, dev.clone().router());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let one = connector(&dev, "one", &http);
    let token = sign_in(&http, &one, "alice").await;
    let endpoint = |tid: &str| format!("{base}/{tid}/oauth2/v2.0/token");
    let post =
        |tid: &str, form: Vec<(&'static str, String)>| http.post(endpoint(tid)).form(&form).send();
    let with = |extra: &[(&'static str, &str)]| {
        let mut form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("client_id", "one".to_string()),
            ("client_secret", "one-secret".to_string()),
            ("refresh_token", token.clone()),
        ];
        for (k, v) in extra {
            form.retain(|(name, _)| name != k);
            form.push((k, v.to_string()));
        }
        form
    };

    // Sound, with a narrower scope: accepted.
    let ok = post(WOG_TENANT_ID, with(&[("scope", "openid offline_access")]))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["scope"], "openid offline_access");
    assert!(body["refresh_token"].is_string() && body["id_token"].is_string());

    let mut missing = with(&[]);
    missing.retain(|(k, _)| *k != "refresh_token");
    type Form = Vec<(&'static str, String)>;
    let cases: Vec<(&str, Form, (StatusCode, &str, u64))> = vec![
        (
            "no refresh_token",
            missing,
            (StatusCode::BAD_REQUEST, "invalid_request", 900144),
        ),
        (
            "a wider scope",
            with(&[("scope", "openid https://graph.microsoft.com/.default")]),
            (StatusCode::BAD_REQUEST, "invalid_scope", 70011),
        ),
        (
            "a wrong client secret",
            with(&[("client_secret", "nope")]),
            (StatusCode::UNAUTHORIZED, "invalid_client", 7000215),
        ),
        (
            "another client",
            with(&[("client_id", "two"), ("client_secret", "two-secret")]),
            (StatusCode::BAD_REQUEST, "invalid_grant", 9002313),
        ),
    ];
    for (name, form, (status, error, code)) in cases {
        let got = error_of(post(WOG_TENANT_ID, form).await.unwrap()).await;
        assert_eq!(got, (status, error.to_string(), code), "{name}");
    }
    let other_tenant = error_of(post(VENDOR_TENANT_ID, with(&[])).await.unwrap()).await;
    assert_eq!(
        other_tenant,
        (StatusCode::BAD_REQUEST, "invalid_grant".into(), 700005)
    );
    // Expired after 90 days.
    clock.advance(90 * 86_400);
    let expired = error_of(post(WOG_TENANT_ID, with(&[])).await.unwrap()).await;
    assert_eq!(
        expired,
        (StatusCode::BAD_REQUEST, "invalid_grant".into(), 700082)
    );

    // The people page: only from its own origin, a known person, a known action, a form.
    let people = format!("{base}/people");
    let change = |site: &'static str, body: &'static str, form_type: bool| {
        let mut request = http.post(&people).header("sec-fetch-site", site).body(body);
        if form_type {
            request = request.header("content-type", "application/x-www-form-urlencoded");
        }
        request.send()
    };
    for (site, body, form_type, status) in [
        ("cross-site", "person=alice&action=disable", true, 403),
        ("same-site", "person=alice&action=disable", true, 403),
        ("same-origin", "person=zed&action=disable", true, 400),
        ("same-origin", "person=alice&action=delete", true, 400),
        ("same-origin", "person=alice", true, 400),
        (
            "same-origin",
            "person=alice&person=bob&action=disable",
            true,
            400,
        ),
        ("same-origin", "person=alice&action=disable", false, 400),
    ] {
        let response = change(site, body, form_type).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{site} {body}");
    }
    let no_headers = http
        .post(&people)
        .form(&[("person", "alice"), ("action", "disable")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_headers.status(), StatusCode::FORBIDDEN, "neither header");
    let page = http.get(&people).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("form-action 'self'"), "{csp}");
    let page = page.text().await.unwrap();
    assert!(
        !page.contains("disabled</strong>"),
        "nothing was changed: {page}"
    );
    server.abort();
}
