//! The production OIDC connector against the development upstream over real HTTP, one case per
//! forged or broken upstream answer: each refusal must carry its own stable reason, and the
//! sound cases next to them must pass (so a refusal cannot come from a broken harness).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::CoreJsonWebKeySet;
use reqwest::header::LOCATION;
use reqwest::StatusCode;
use techpass_domain::{Clock, ManualClock, SystemClock, Timestamp};
use techpass_upstream::dev::{
    DevClient, DevUpstream, Tamper, PATH_PREFIX, VENDOR_TENANT_ID, WOG_TENANT_ID,
};
use techpass_upstream::{
    AuthorizationResponse, Connector, LoginParams, MfaRule, OidcConnector, OidcConnectorConfig,
    UpstreamError, UpstreamIdentity,
};
use url::Url;

const CLIENT_ID: &str = "7c1f5a52-0000-4000-8000-00000000c11e";
const SECRET: &str = "connector-test-secret";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const SKEW: i64 = 60;

/// What the test does to the `iss` parameter between the upstream's redirect and the connector.
#[derive(Debug, Clone, Copy)]
enum IssEdit {
    /// Passed on as the upstream sent it.
    AsSent,
    /// Dropped, as a client that ignored it would.
    Drop,
    /// Replaced by the upstream's issuer with a trailing slash: close is not equal.
    TrailingSlash,
    /// Replaced by the empty string, which counts as absent (RFC 6749 §3.1).
    Empty,
}

#[derive(Debug)]
struct Case {
    name: &'static str,
    tamper: Tamper,
    /// The upstream plays an RFC 9207 upstream (`iss` sent and advertised).
    iss_parameter: bool,
    iss: IssEdit,
    /// The connector's clock minus the upstream's.
    clock_offset: i64,
    person: &'static str,
    /// `Ok(())` for a sign-in that must succeed, else the reason.
    expected: Result<(), &'static str>,
}

fn case(name: &'static str, tamper: Tamper, expected: Result<(), &'static str>) -> Case {
    Case {
        name,
        tamper,
        iss_parameter: false,
        iss: IssEdit::AsSent,
        clock_offset: 0,
        person: "alice",
        expected,
    }
}

struct Upstream {
    dev: Arc<DevUpstream>,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(tamper: Tamper, iss_parameter: bool) -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{PATH_PREFIX}", listener.local_addr().unwrap());
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let client = DevClient {
        client_id: CLIENT_ID.into(),
        client_secret: SECRET.into(),
        redirect_uris: vec![REDIRECT.into()],
    };
    let dev = Arc::new(
        DevUpstream::new(
            Url::parse(&base).unwrap(),
            vec![client],
            clock.clone(),
            tamper,
        )
        .unwrap()
        .with_iss_parameter(iss_parameter),
    );
    let app = Router::new().nest(PATH_PREFIX, dev.clone().router());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    Upstream {
        dev,
        http,
        clock,
        server,
    }
}

fn connector(up: &Upstream, tid: &str, clock: Arc<dyn Clock>) -> OidcConnector {
    let config = OidcConnectorConfig {
        id: "wog".into(),
        display_name: "Public officer".into(),
        issuer: up.dev.issuer(tid),
        client_id: CLIENT_ID.into(),
        client_secret: SECRET.into(),
        redirect_uri: REDIRECT.into(),
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        allowed_tenants: vec![WOG_TENANT_ID.into()],
        mfa: MfaRule::Amr(vec!["mfa".into()]),
        clock_skew_secs: SKEW,
    };
    OidcConnector::new(config, up.http.clone(), clock).unwrap()
}

fn login_params() -> LoginParams {
    LoginParams {
        state: "state-1".into(),
        nonce: "nonce-1".into(),
        pkce_verifier: URL_SAFE_NO_PAD.encode([7u8; 32]),
        login_hint: None,
        force_reauthentication: false,
    }
}

/// Follows the connector's login URL, picks `person`, and returns the redirect's query.
async fn authorize(
    up: &Upstream,
    connector: &OidcConnector,
    person: &str,
) -> Vec<(String, String)> {
    let url = connector.login_url(&login_params()).await.unwrap();
    let mut form: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    form.push(("person".into(), person.into()));
    let mut endpoint = url.clone();
    endpoint.set_query(None);
    let response = up.http.post(endpoint).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT));
    location
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Redeems `code` at the upstream's token endpoint as the connector would.
async fn redeem(up: &Upstream, token_endpoint: &str, code: &str) -> reqwest::Response {
    up.http
        .post(token_endpoint)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", login_params().pkce_verifier.as_str()),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap()
}

/// Whether `code` can still be redeemed: a refusal before the exchange must leave it unspent.
async fn code_is_unspent(up: &Upstream, token_endpoint: &str, code: &str) -> bool {
    redeem(up, token_endpoint, code).await.status() == StatusCode::OK
}

async fn run(c: &Case) -> Result<UpstreamIdentity, UpstreamError> {
    let up = serve(c.tamper, c.iss_parameter).await;
    let clock = Arc::new(ManualClock::new(Timestamp(
        up.clock.now().as_secs() + c.clock_offset,
    )));
    let connector = connector(&up, WOG_TENANT_ID, clock);
    let query = authorize(&up, &connector, c.person).await;
    assert_eq!(param(&query, "state"), Some("state-1"), "{}", c.name);
    let code = param(&query, "code").unwrap().to_owned();
    let sent = param(&query, "iss").map(str::to_owned);
    let issuer = up.dev.issuer(WOG_TENANT_ID);
    let iss = match c.iss {
        IssEdit::AsSent => sent,
        IssEdit::Drop => None,
        IssEdit::TrailingSlash => Some(format!("{issuer}/")),
        IssEdit::Empty => Some(String::new()),
    };
    let outcome = connector
        .exchange(
            &AuthorizationResponse::new(&code, iss.as_deref()),
            &login_params(),
        )
        .await;
    if let Err(e) = &outcome {
        if matches!(
            e,
            UpstreamError::WrongIssuerParameter(_) | UpstreamError::MissingIssuerParameter
        ) {
            // RFC 9207 §2.4: refused before the code was sent anywhere.
            let token_endpoint = format!("{}/oauth2/v2.0/token", issuer.trim_end_matches("/v2.0"));
            assert!(
                code_is_unspent(&up, &token_endpoint, &code).await,
                "{}: the code was redeemed",
                c.name
            );
        }
    }
    outcome.map(|signed_in| signed_in.identity)
}

#[tokio::test]
async fn forged_and_broken_upstream_answers_are_refused_with_their_reason() {
    let cases = vec![
        case("sound, no iss (Azure AD)", Tamper::None, Ok(())),
        Case {
            iss_parameter: true,
            ..case("sound, RFC 9207 upstream", Tamper::None, Ok(()))
        },
        Case {
            iss: IssEdit::Empty,
            ..case(
                "empty iss from an upstream that does not promise it",
                Tamper::None,
                Ok(()),
            )
        },
        // RFC 9207 §2.4.
        case(
            "iss parameter of another tenant",
            Tamper::WrongIssParameter,
            Err("wrong_iss_parameter"),
        ),
        Case {
            iss_parameter: true,
            ..case(
                "iss parameter of another tenant from an RFC 9207 upstream",
                Tamper::WrongIssParameter,
                Err("wrong_iss_parameter"),
            )
        },
        Case {
            iss_parameter: true,
            iss: IssEdit::TrailingSlash,
            ..case(
                "iss parameter with a trailing slash",
                Tamper::None,
                Err("wrong_iss_parameter"),
            )
        },
        case(
            "no iss though the metadata promises it",
            Tamper::MissingIssParameter,
            Err("missing_iss_parameter"),
        ),
        Case {
            iss_parameter: true,
            iss: IssEdit::Drop,
            ..case(
                "iss dropped from an RFC 9207 upstream's answer",
                Tamper::None,
                Err("missing_iss_parameter"),
            )
        },
        Case {
            iss_parameter: true,
            iss: IssEdit::Empty,
            ..case(
                "empty iss from an RFC 9207 upstream",
                Tamper::None,
                Err("missing_iss_parameter"),
            )
        },
        // RFC 7519 §4.1.5: nbf = upstream's now + 1 h.
        case(
            "nbf an hour ahead",
            Tamper::NotYetValid,
            Err("not_yet_valid"),
        ),
        Case {
            clock_offset: 3600 - SKEW - 1,
            ..case(
                "nbf one second beyond the skew",
                Tamper::NotYetValid,
                Err("not_yet_valid"),
            )
        },
        Case {
            clock_offset: 3600 - SKEW,
            ..case("nbf exactly at the skew", Tamper::NotYetValid, Ok(()))
        },
        Case {
            clock_offset: 3600,
            ..case("nbf reached", Tamper::NotYetValid, Ok(()))
        },
        // Sizes and shapes, refused before any JWT parsing.
        case(
            "ID token over 16 KiB",
            Tamper::OversizedIdToken,
            Err("id_token_too_large"),
        ),
        case(
            "token response over 64 KiB",
            Tamper::OversizedTokenResponse,
            Err("token_response_too_large"),
        ),
        case(
            "four JWS segments",
            Tamper::ExtraJwsSegments,
            Err("malformed_jws"),
        ),
        case(
            "protected header over the bound",
            Tamper::OversizedJwsHeader,
            Err("malformed_jws"),
        ),
        // The defects that were already refused stay refused, with their reasons.
        case("wrong issuer", Tamper::WrongIssuer, Err("wrong_issuer")),
        case(
            "wrong audience",
            Tamper::WrongAudience,
            Err("wrong_audience"),
        ),
        case("wrong nonce", Tamper::WrongNonce, Err("wrong_nonce")),
        case("missing nonce", Tamper::MissingNonce, Err("wrong_nonce")),
        case("expired", Tamper::Expired, Err("expired_token")),
        case(
            "issued in the future",
            Tamper::IssuedInFuture,
            Err("issued_in_future"),
        ),
        case("unsigned", Tamper::Unsigned, Err("unsigned_token")),
        case(
            "HS256 keyed with the public key",
            Tamper::AlgConfusion,
            Err("disallowed_algorithm"),
        ),
        case(
            "unknown key",
            Tamper::UnknownKey,
            Err("unknown_signing_key"),
        ),
        case(
            "tid not allowed",
            Tamper::WrongTenant,
            Err("tenant_not_allowed"),
        ),
        Case {
            person: "carol",
            ..case("no MFA", Tamper::None, Err("no_mfa"))
        },
    ];
    let mut failures = Vec::new();
    for c in &cases {
        let outcome = run(c).await;
        let got = outcome.as_ref().map(|_| ()).map_err(UpstreamError::reason);
        if got != c.expected {
            failures.push(format!(
                "{}: expected {:?}, got {:?} ({outcome:?})",
                c.name, c.expected, got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A sound sign-in yields the person; the wrong issuer's `iss` is kept, bounded, for the log.
#[tokio::test]
async fn accepted_identity_and_refusal_detail() {
    let up = serve(Tamper::None, true).await;
    let connector = connector(&up, WOG_TENANT_ID, up.clock.clone());
    let query = authorize(&up, &connector, "alice").await;
    let code = param(&query, "code").unwrap();
    let identity = connector
        .exchange(
            &AuthorizationResponse::new(code, param(&query, "iss")),
            &login_params(),
        )
        .await
        .unwrap()
        .identity;
    assert_eq!(identity.tenant_id, WOG_TENANT_ID);
    assert_eq!(identity.object_id, "8d1e2f30-0000-4000-8000-0000000000a1");

    let long = format!("https://evil.example/{}", "a".repeat(5000));
    let refused = connector.check_issuer_parameter(Some(&long)).await;
    match refused {
        Err(UpstreamError::WrongIssuerParameter(logged)) => {
            assert_eq!(logged.chars().count(), 200);
            assert!(long.starts_with(&logged));
        }
        other => panic!("{other:?}"),
    }
    // The issuer of another tenant served by the same upstream is another issuer.
    let vendor = up.dev.issuer(VENDOR_TENANT_ID);
    assert_eq!(
        connector
            .check_issuer_parameter(Some(&vendor))
            .await
            .map_err(|e| e.reason()),
        Err("wrong_iss_parameter")
    );
    assert_eq!(
        connector
            .check_issuer_parameter(Some(&up.dev.issuer(WOG_TENANT_ID)))
            .await,
        Ok(())
    );
}

/// A sound ID token from the development upstream, and the key set that verifies it.
async fn sound_id_token(up: &Upstream, connector: &OidcConnector) -> (String, CoreJsonWebKeySet) {
    let query = authorize(up, connector, "alice").await;
    let code = param(&query, "code").unwrap();
    let issuer = up.dev.issuer(WOG_TENANT_ID);
    let token_endpoint = format!("{}/oauth2/v2.0/token", issuer.trim_end_matches("/v2.0"));
    let answer: serde_json::Value = redeem(up, &token_endpoint, code)
        .await
        .json()
        .await
        .unwrap();
    let metadata: serde_json::Value = up
        .http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys: CoreJsonWebKeySet = up
        .http
        .get(metadata["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (answer["id_token"].as_str().unwrap().to_owned(), keys)
}

/// Property (issue 15 item 10): the verifier accepts the sound token and nothing else made from
/// it: any byte replaced, any segment replaced by another's or by random base64url, the payload
/// re-encoded with one claim changed under the original signature, any truncation. Each answer
/// is an error with a reason, never a panic. Cases: PROPTEST_CASES (256 by default).
#[tokio::test]
async fn any_change_to_a_sound_id_token_is_refused() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    let up = serve(Tamper::None, false).await;
    let connector = connector(&up, WOG_TENANT_ID, up.clock.clone());
    let (token, keys) = sound_id_token(&up, &connector).await;
    let nonce = login_params().nonce;
    connector
        .verify(&token, &nonce, &keys)
        .expect("the harness must start from a token that verifies");
    let segments: Vec<String> = token.split('.').map(str::to_owned).collect();
    let payload: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&segments[1]).unwrap()).unwrap();
    let claim_names: Vec<String> = payload.keys().cloned().collect();

    #[derive(Debug, Clone)]
    enum Change {
        Byte { at: usize, to: char },
        Segment { which: usize, with: String },
        Swap { a: usize, b: usize },
        Claim { name: usize, value: String },
        Truncate { at: usize },
    }
    let b64 = "[A-Za-z0-9_-]{0,400}";
    let change = prop_oneof![
        (
            0..token.len(),
            proptest::char::ranges(vec!['!'..='~'].into())
        )
            .prop_map(|(at, to)| Change::Byte { at, to }),
        (0..3usize, b64).prop_map(|(which, with)| Change::Segment { which, with }),
        (0..3usize, 0..3usize).prop_map(|(a, b)| Change::Swap { a, b }),
        (0..claim_names.len(), ".{0,40}").prop_map(|(name, value)| Change::Claim { name, value }),
        (0..token.len()).prop_map(|at| Change::Truncate { at }),
    ];
    let mut runner = TestRunner::new(Config::default());
    runner
        .run(&change, |c| {
            let mut parts = segments.clone();
            let changed = match &c {
                Change::Byte { at, to } => {
                    let mut bytes = token.clone().into_bytes();
                    bytes[*at] = *to as u8;
                    String::from_utf8(bytes).unwrap()
                }
                Change::Segment { which, with } => {
                    parts[*which] = with.clone();
                    parts.join(".")
                }
                Change::Swap { a, b } => {
                    parts.swap(*a, *b);
                    parts.join(".")
                }
                Change::Claim { name, value } => {
                    let mut claims = payload.clone();
                    claims.insert(claim_names[*name].clone(), value.clone().into());
                    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
                    parts.join(".")
                }
                Change::Truncate { at } => token[..*at].to_owned(),
            };
            if changed == token {
                return Ok(());
            }
            match connector.verify(&changed, &nonce, &keys) {
                Ok(identity) => Err(TestCaseError::fail(format!(
                    "{c:?} was accepted as {identity:?}"
                ))),
                Err(e) => {
                    prop_assert!(!e.reason().is_empty());
                    Ok(())
                }
            }
        })
        .unwrap();
}
