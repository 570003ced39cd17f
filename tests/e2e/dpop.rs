//! DPoP (RFC 9449) over HTTP, with proofs signed here by P-256 keys: a command-line app's
//! device-grant tokens are bound to its key (`token_type` `DPoP`, `cnf.jkt`); userinfo takes
//! them only under the `DPoP` scheme with a fresh proof of that key for that request and that
//! token; its refresh tokens only with a proof of the same key; a machine client's bound token
//! shows its key at introspection. Bad proofs get `invalid_dpop_proof` and spend nothing.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use techpass_store::testing::Backend;

use crate::device::{decide, device_app, device_authorization, start, DEVICE_GRANT};
use crate::support::{browser, client, TestServer};
use crate::tenancy::{approved_tenant, signed_in};

/// A client's DPoP key.
struct Key {
    pair: EcdsaKeyPair,
    jwk: Value,
}

impl Key {
    fn new() -> Key {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Key { pair, jwk }
    }

    fn thumbprint(&self) -> String {
        techpass_oidc::dpop::thumbprint(&self.jwk).unwrap()
    }

    /// A proof with these claims (`iat` and `jti` added when absent).
    fn sign(&self, mut claims: Value, now: i64) -> String {
        if claims.get("iat").is_none() {
            claims["iat"] = json!(now);
        }
        if claims.get("jti").is_none() {
            claims["jti"] = json!(uuid::Uuid::new_v4().to_string());
        }
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    fn proof(&self, server: &TestServer, method: &str, path: &str, token: Option<&str>) -> String {
        let mut claims = json!({"htm": method, "htu": server.url(path)});
        if let Some(token) = token {
            claims["ath"] = json!(techpass_oidc::dpop::access_token_hash(token));
        }
        self.sign(claims, now(server))
    }
}

fn now(server: &TestServer) -> i64 {
    server.state.clock.now().as_secs()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn post_token(server: &TestServer, form: &[(&str, &str)], proofs: &[&str]) -> (u16, Value) {
    let mut request = client().post(server.url("/token")).form(form);
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Userinfo with `authorization` and the given proofs: (status, WWW-Authenticate, body).
async fn userinfo(server: &TestServer, authorization: &str, proofs: &[&str]) -> (u16, String) {
    let mut request = client()
        .get(server.url("/userinfo"))
        .header("authorization", authorization);
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    let response = request.send().await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (response.status().as_u16(), challenge)
}

async fn a_cli_holds_its_tokens_with_a_dpop_key(backend: Backend) {
    let Some((server, clock)) = start(backend, "e2e::dpop").await else {
        return;
    };
    let discovery: Value = client()
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["dpop_signing_alg_values_supported"],
        json!(["RS256", "PS256", "ES256"])
    );

    let b = browser();
    let alice = signed_in(&server, &b, "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "deploy").await;
    let (app, _) = device_app(
        &server,
        Some(&tenant),
        false,
        &[DEVICE_GRANT, "refresh_token"],
        false,
    )
    .await;
    let (_, codes) = device_authorization(
        &server,
        &[
            ("client_id", app.as_str()),
            ("scope", "openid offline_access"),
        ],
    )
    .await;
    let device_code = codes["device_code"].as_str().unwrap().to_string();
    let user_code = codes["user_code"].as_str().unwrap().to_string();
    decide(&b, &server, &user_code, "approve").await;

    let key = Key::new();
    let stranger = Key::new();
    let poll = [
        ("grant_type", DEVICE_GRANT),
        ("device_code", device_code.as_str()),
        ("client_id", app.as_str()),
    ];
    // A bad proof at the token endpoint: invalid_dpop_proof, and the device code is not spent.
    let bad_proofs: Vec<(String, &str)> = vec![
        ("not-a-jwt".into(), "malformed"),
        (
            key.sign(
                json!({"htm": "GET", "htu": server.url("/token")}),
                now(&server),
            ),
            "htm",
        ),
        (
            key.sign(
                json!({"htm": "POST", "htu": server.url("/userinfo")}),
                now(&server),
            ),
            "htu",
        ),
        (
            key.sign(
                json!({"htm": "POST", "htu": server.url("/token"), "iat": now(&server) - 300}),
                now(&server),
            ),
            "iat",
        ),
    ];
    for (proof, case) in &bad_proofs {
        let (status, body) = post_token(&server, &poll, &[proof]).await;
        assert_eq!(status, 400, "{case}: {body}");
        assert_eq!(body["error"], "invalid_dpop_proof", "{case}: {body}");
    }
    let two = [
        key.proof(&server, "POST", "/token", None),
        key.proof(&server, "POST", "/token", None),
    ];
    let (status, body) = post_token(&server, &poll, &[&two[0], &two[1]]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );

    clock.advance(15);
    let (status, tokens) = post_token(
        &server,
        &poll,
        &[&key.proof(&server, "POST", "/token", None)],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    let access = tokens["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&access)["cnf"]["jkt"], key.thumbprint());
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

    // Userinfo: the bound token only under DPoP with a proof of its key for this request.
    let dpop = format!("DPoP {access}");
    let (status, challenge) = userinfo(&server, &format!("Bearer {access}"), &[]).await;
    assert_eq!(status, 401);
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains("invalid_token"),
        "{challenge}"
    );
    let (status, challenge) = userinfo(&server, &dpop, &[]).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_dpop_proof"), "{challenge}");
    let (status, challenge) = userinfo(
        &server,
        &dpop,
        &[&stranger.proof(&server, "GET", "/userinfo", Some(&access))],
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains("invalid_token"),
        "another key: {challenge}"
    );
    let (status, challenge) = userinfo(
        &server,
        &dpop,
        &[&key.proof(&server, "GET", "/userinfo", None)],
    )
    .await;
    assert_eq!(status, 401);
    assert!(challenge.contains("ath"), "no ath: {challenge}");
    let (status, challenge) = userinfo(
        &server,
        &dpop,
        &[&key.proof(&server, "GET", "/userinfo", Some("another token"))],
    )
    .await;
    assert_eq!(status, 401, "{challenge}");
    let good = key.proof(&server, "GET", "/userinfo", Some(&access));
    let answer = client()
        .get(server.url("/userinfo"))
        .header("authorization", &dpop)
        .header("DPoP", &good)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let info: Value = answer.json().await.unwrap();
    assert_eq!(info["sub"], alice);
    // The same proof again: replayed.
    let (status, challenge) = userinfo(&server, &dpop, &[&good]).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("already used"), "{challenge}");

    // The refresh token (a public client's): only with a proof of the same key; refusals spend
    // nothing.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", app.as_str()),
    ];
    let (status, body) = post_token(&server, &form, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = post_token(
        &server,
        &form,
        &[&stranger.proof(&server, "POST", "/token", None)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, next) = post_token(
        &server,
        &form,
        &[&key.proof(&server, "POST", "/token", None)],
    )
    .await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["token_type"], "DPoP");
    assert_eq!(
        claims(next["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.thumbprint()
    );

    // A machine client's bound token: introspection names the key for resource servers.
    let (machine, secret) =
        device_app(&server, Some(&tenant), true, &["client_credentials"], false).await;
    let secret = secret.unwrap();
    let machine_key = Key::new();
    let answer = client()
        .post(server.url("/token"))
        .basic_auth(&machine, Some(&secret))
        .header("DPoP", machine_key.proof(&server, "POST", "/token", None))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let tokens: Value = answer.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    let introspected: Value = client()
        .post(server.url("/introspect"))
        .basic_auth(&machine, Some(&secret))
        .form(&[("token", tokens["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["token_type"], "DPoP");
    assert_eq!(introspected["cnf"]["jkt"], machine_key.thumbprint());
    // Without a proof, a plain bearer token as before.
    let plain: Value = client()
        .post(server.url("/token"))
        .basic_auth(&machine, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plain["token_type"], "Bearer");
    assert!(claims(plain["access_token"].as_str().unwrap())
        .get("cnf")
        .is_none());
    server.stop().await;
}

/// The same with an independent client: openid-client signs in a public command-line app with
/// the device grant and an ES256 DPoP key, calls userinfo and refreshes with proofs (TechPass
/// binds both access tokens to its key), and cannot use the bound token as a bearer token.
#[tokio::test]
async fn an_independent_client_holds_dpop_bound_tokens() {
    use std::process::Stdio;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, BufReader};

    let test = "dpop::an_independent_client_holds_dpop_bound_tokens";
    if !crate::interop::node_installed(test) {
        return;
    }
    crate::interop::node_modules_ready();
    let db = techpass_store::testing::TestDatabase::new(Backend::Sqlite, test)
        .await
        .unwrap();
    let dir = crate::support::TempDir::new();
    let mut config = crate::support::test_config(&db.url, &dir);
    config.tokens.device_poll_interval_secs = 1;
    let server = TestServer::start_with(
        config,
        Arc::new(techpass_domain::SystemClock),
        dir,
        Some(db),
    )
    .await;
    let b = browser();
    let alice = signed_in(&server, &b, "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "cli").await;
    let (app, _) = device_app(
        &server,
        Some(&tenant),
        false,
        &[DEVICE_GRANT, "refresh_token"],
        false,
    )
    .await;

    let mut child = tokio::process::Command::new("node")
        .arg("dpop_client.mjs")
        .current_dir(crate::interop::interop_dir())
        .env("ISSUER", &server.base)
        .env("CLIENT_ID", &app)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    crate::interop::drain(child.stderr.take().unwrap(), stderr.clone());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{test}: no answer; stderr: {}", stderr.lock().unwrap()))
            .unwrap()
            .unwrap_or_else(|| panic!("{test}: ended; stderr: {}", stderr.lock().unwrap()));
        serde_json::from_str::<Value>(&line).unwrap()
    };
    let asked = next().await;
    let user_code = asked["user_code"]
        .as_str()
        .unwrap_or_else(|| panic!("{test}: {asked}"))
        .to_string();
    decide(&b, &server, &user_code, "approve").await;
    let result = next().await;
    assert!(result.get("error").is_none(), "{test}: {result}");
    assert!(
        result["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("dpop")),
        "{result}"
    );
    let jkt = claims(result["access_token"].as_str().unwrap())["cnf"]["jkt"].clone();
    assert!(jkt.is_string(), "{result}");
    assert_eq!(result["sub"], alice);
    assert_eq!(result["userinfo_sub"], alice);
    assert!(
        result["refreshed_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("dpop")),
        "{result}"
    );
    assert_eq!(
        claims(result["refreshed_access_token"].as_str().unwrap())["cnf"]["jkt"],
        jkt
    );
    assert!(
        result["bearer"]
            .as_str()
            .is_some_and(|e| e.contains("invalid_token")),
        "the bound token as a bearer token: {result}"
    );
    server.stop().await;
}

/// RFC 9449 §5.2 `dpop_bound_access_tokens`, set by a tenant admin through the API: the app's
/// token requests without a proof are refused (`invalid_request`, nothing issued), with one
/// they get a bound token; turned off again, bearer tokens are back.
async fn an_app_that_requires_dpop_gets_no_bearer_token(backend: Backend) {
    let Some((server, _clock)) = start(backend, "e2e::dpop_required").await else {
        return;
    };
    let b = browser();
    let alice = signed_in(&server, &b, "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "robots").await;
    let (app, secret) =
        crate::machine::machine_app(&server, &crate::tenancy::user(&alice), &tenant).await;
    let path = format!("/api/v1/tenants/{tenant}/apps/{app}");
    let set = |on: bool| json!({ "dpop_bound_access_tokens": on });
    let (status, view) =
        crate::ci_workload::api(&b, &server, reqwest::Method::PATCH, &path, Some(set(true))).await;
    assert_eq!(
        (status, &view["dpop_bound_access_tokens"]),
        (200, &json!(true)),
        "{view}"
    );

    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", app.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let (status, body) = post_token(&server, &form, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("dpop_bound_access_tokens"));
    let key = Key::new();
    let (status, body) = post_token(
        &server,
        &form,
        &[&key.proof(&server, "POST", "/token", None)],
    )
    .await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("DPoP")),
        "{body}"
    );
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["cnf"]["jkt"], key.thumbprint());

    let (status, _) =
        crate::ci_workload::api(&b, &server, reqwest::Method::PATCH, &path, Some(set(false))).await;
    assert_eq!(status, 200);
    let (status, body) = post_token(&server, &form, &[]).await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("Bearer")),
        "{body}"
    );
    server.stop().await;
}

crate::both_backends!(
    a_cli_holds_its_tokens_with_a_dpop_key,
    an_app_that_requires_dpop_gets_no_bearer_token,
);
