//! The development upstream served on 127.0.0.1:0 and driven over HTTP, the way the connector
//! meets it; plus the `openidconnect` crate itself signing in against it. This file holds the
//! harness and the tests that need no server.

mod authorize;
mod tamper;
mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION};
use reqwest::StatusCode;
use serde_json::Value;
use techpass_domain::{Clock, ManualClock, SystemClock};
use url::Url;

use super::params::form_decode;
use super::*;
const CLIENT_ID: &str = "7c1f5a52-0000-4000-8000-00000000c11e";
/// Characters that RFC 6749 §2.3.1 makes HTTP Basic clients form-encode.
const SECRET: &str = "dev secret: with & = + % chars";
const OTHER_CLIENT_ID: &str = "7c1f5a52-0000-4000-8000-00000000c22e";
const OTHER_SECRET: &str = "another-secret";
/// Already has a query, to check that the answer is appended to it.
const REDIRECT: &str = "http://127.0.0.1:9/callback?from=techpass";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const NONCE: &str = "n-0S6_WzA2Mj";
const STATE: &str = "af0ifjsldkj & more";

struct Harness {
    dev: Arc<DevUpstream>,
    base: String,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ))
}

async fn start(tamper: Tamper) -> Harness {
    start_with(tamper, false).await
}

/// [`start`], as an RFC 9207 upstream when `iss_parameter`.
async fn start_with(tamper: Tamper, iss_parameter: bool) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}{PATH_PREFIX}");
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let clients = vec![
        DevClient {
            client_id: CLIENT_ID.into(),
            client_secret: SECRET.into(),
            redirect_uris: vec![REDIRECT.into()],
        },
        DevClient {
            client_id: OTHER_CLIENT_ID.into(),
            client_secret: OTHER_SECRET.into(),
            redirect_uris: vec![REDIRECT.into()],
        },
    ];
    let dev = Arc::new(
        DevUpstream::new(Url::parse(&base).unwrap(), clients, clock.clone(), tamper)
            .unwrap()
            .with_iss_parameter(iss_parameter),
    );
    let app = Router::new().nest(PATH_PREFIX, dev.clone().router());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    Harness {
        dev,
        base,
        http,
        clock,
        server,
    }
}

/// The usual authorization request, with `overrides` replacing or adding parameters.
fn authorize_params(overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    let challenge = s256(VERIFIER);
    let mut params: Vec<(String, String)> = [
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid profile email offline_access"),
        ("state", STATE),
        ("nonce", NONCE),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (name, value) in overrides {
        params.retain(|(k, _)| k != name);
        params.push((name.to_string(), value.to_string()));
    }
    params
}

fn query_of(location: &str) -> Vec<(String, String)> {
    Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Header and claims of a compact JWT, unverified.
fn parts(jwt: &str) -> (Value, Value) {
    let mut parts = jwt.split('.');
    let header = decode_part(parts.next().unwrap());
    let claims = decode_part(parts.next().unwrap());
    (header, claims)
}

impl Harness {
    fn url(&self, tid: &str, path: &str) -> String {
        format!("{}/{tid}{path}", self.base)
    }

    async fn get_authorize(&self, tid: &str, params: &[(String, String)]) -> reqwest::Response {
        self.http
            .get(self.url(tid, AUTHORIZE_PATH))
            .query(params)
            .send()
            .await
            .unwrap()
    }

    async fn post_authorize(&self, tid: &str, params: &[(String, String)]) -> reqwest::Response {
        self.http
            .post(self.url(tid, AUTHORIZE_PATH))
            .form(params)
            .send()
            .await
            .unwrap()
    }

    /// Picks `person` on WOG's authorization page and returns the code from the redirect.
    async fn pick(&self, person: &str, overrides: &[(&str, &str)]) -> String {
        let mut params = authorize_params(overrides);
        params.push(("person".into(), person.into()));
        let response = self.post_authorize(WOG_TENANT_ID, &params).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(location.starts_with("http://127.0.0.1:9/callback?from=techpass&code="));
        let query = query_of(&location);
        param(&query, "code").unwrap().to_owned()
    }

    async fn redeem(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(WOG_TENANT_ID, TOKEN_PATH))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// client_secret_post with the usual parameters.
    async fn redeem_code(&self, code: &str, verifier: &str) -> reqwest::Response {
        self.redeem(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
        ])
        .await
    }

    /// A whole sign-in as `person`; the token response.
    async fn sign_in(&self, person: &str) -> Value {
        let code = self.pick(person, &[]).await;
        let response = self.redeem_code(&code, VERIFIER).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        let response = self
            .http
            .get(self.url(WOG_TENANT_ID, JWKS_PATH))
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    /// Verifies `jwt` against the served JWKS as a careful relying party would.
    async fn verify(&self, jwt: &str, issuer: &str) -> Value {
        let header = jsonwebtoken::decode_header(jwt).unwrap();
        let jwks = self.jwks().await;
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&[CLIENT_ID]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "aud", "iss", "sub"]);
        jsonwebtoken::decode::<Value>(jwt, &key, &validation)
            .unwrap()
            .claims
    }
}

async fn error_of(response: reqwest::Response, status: StatusCode, error: &str, code: u64) {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], serde_json::json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn configuration_is_checked_and_debug_hides_secrets() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let base = Url::parse("http://127.0.0.1:8080/dev/azure/").unwrap();
    let client = |uri: &str| DevClient {
        client_id: CLIENT_ID.into(),
        client_secret: SECRET.into(),
        redirect_uris: vec![uri.into()],
    };
    let make =
        |base: &Url, clients| DevUpstream::new(base.clone(), clients, clock.clone(), Tamper::None);
    assert!(matches!(make(&base, vec![]), Err(DevError::NoClients)));
    assert!(matches!(
        make(&base, vec![client(REDIRECT), client(REDIRECT)]),
        Err(DevError::ClientId(_))
    ));
    assert!(matches!(
        make(&base, vec![client("http://x/cb#frag")]),
        Err(DevError::RedirectUri { .. })
    ));
    assert!(matches!(
        make(
            &Url::parse("http://x/dev?q=1").unwrap(),
            vec![client(REDIRECT)]
        ),
        Err(DevError::BaseUrl(_))
    ));
    let dev = make(&base, vec![client(REDIRECT)]).unwrap();
    assert_eq!(
        dev.issuer(WOG_TENANT_ID),
        format!("http://127.0.0.1:8080/dev/azure/{WOG_TENANT_ID}/v2.0")
    );
    let debug = format!("{dev:?}");
    assert!(debug.contains(CLIENT_ID));
    assert!(!debug.contains(SECRET));
}

#[test]
fn people_are_as_documented() {
    let keys: Vec<&str> = people().iter().map(|p| p.key).collect();
    assert_eq!(keys, ["alice", "bob", "carol", "dave", "mallory", "erin"]);
    for p in people() {
        assert!(uuid::Uuid::parse_str(p.oid).is_ok());
        assert_eq!(people().iter().filter(|q| q.oid == p.oid).count(), 1);
    }
    let mfa: Vec<bool> = people().iter().map(DevPerson::has_mfa).collect();
    assert_eq!(mfa, [true, true, false, true, true, true]);
    assert_eq!(form_decode("a%3Ab+c%2"), "a:b c%2");
}
