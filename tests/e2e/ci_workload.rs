//! CI workload identity (issue 14 item 3): a CI job exchanges its own OIDC ID token at `/token`
//! (RFC 8693 token exchange) for a short-lived access token of the app, with no secret in the
//! pipeline. The CI issuer is a real process (`tests/interop/ci_issuer.mjs`: a discovery
//! document and JWKS over loopback, RS256 tokens signed by panva's jose with GitLab's claims),
//! registered for the app through the JSON API by a tenant admin. Checked: the happy path and
//! its token, single use, every refusal (a table: each is `invalid_grant` naming the failed
//! check, or the RFC's error for a malformed request), the gate, the audit log, a key rotation
//! at the issuer (one refetch, then cached), and removal.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use techpass::tenancy::apps::AppChanges;
use techpass_domain::{ManualClock, Timestamp};
use techpass_store::testing::{Backend, TestDatabase};
use techpass_store::AuditFilter;

use crate::interop::{node_installed, node_modules_ready, NodeChild};
use crate::machine::{active, machine_app};
use crate::support::{browser, client, test_config, unescape_html, TempDir, TestServer};
use crate::tenancy::{approved_tenant, signed_in, user};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// A token request's form fields.
type Form<'a> = Vec<(&'a str, &'a str)>;

/// A token from the issuer for `aud`, with `claims` over its defaults and an optional forgery.
async fn ci_token(issuer: &NodeChild, aud: &str, claims: Value, forge: Option<&str>) -> String {
    let body: Value = client()
        .post(format!("{}/token", issuer.base()))
        .json(&json!({ "aud": aud, "claims": claims, "forge": forge }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["token"].as_str().unwrap().to_string()
}

async fn issuer_state(issuer: &NodeChild) -> Value {
    client()
        .get(format!("{}/state", issuer.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A token exchange with `form` (the grant type is added): (status, body).
async fn exchange(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![("grant_type", EXCHANGE)];
    all.extend_from_slice(form);
    let response = client()
        .post(server.url("/token"))
        .form(&all)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, response.json().await.unwrap())
}

async fn exchange_token(server: &TestServer, app: &str, token: &str) -> (u16, Value) {
    exchange(
        server,
        &[
            ("client_id", app),
            ("subject_token_type", JWT),
            ("subject_token", token),
        ],
    )
    .await
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// An API call with the portal session and its CSRF token: (status, body).
pub(crate) async fn api(
    b: &reqwest::Client,
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let me: Value = b
        .get(server.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = me["csrf_token"].as_str().unwrap().to_string();
    let mut request = b
        .request(method, server.url(path))
        .header("x-csrf-token", csrf);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn a_ci_job_exchanges_its_own_token(backend: Backend) {
    let test = "e2e::ci_workload";
    if !node_installed(test) {
        return;
    }
    node_modules_ready();
    let Some(db) = TestDatabase::new(backend, test).await else {
        return;
    };
    let dir = TempDir::new();
    let config = test_config(&db.url, &dir);
    // The server's clock starts at the real time (the issuer signs with it) and is moved past
    // the refetch interval for the key rotation.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let clock = Arc::new(ManualClock::new(Timestamp(now)));
    let server = TestServer::start_with(config, clock.clone(), dir, Some(db)).await;
    let issuer = NodeChild::start("ci_issuer.mjs", &[]).await;
    let iss = issuer.base();

    let b = browser();
    let alice = signed_in(&server, &b, "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "deploys").await;
    let (app, secret) = machine_app(&server, &user(&alice), &tenant).await;
    let first = ci_token(&issuer, &app, json!({}), None).await;

    // Before any registration the app may not use the grant at all.
    let (status, body) = exchange_token(&server, &app, &first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );

    // Registration through the API: refusals first, each a 400 naming the problem.
    let path = format!("/api/v1/tenants/{tenant}/apps/{app}/ci-issuers");
    let post = reqwest::Method::POST;
    let register = |rules: Value, issuer_url: &str| json!({ "issuer": issuer_url, "audience": app, "rules": rules, "description": "deployer" });
    for (rules, issuer_url, says) in [
        (json!([]), iss.as_str(), "claim rules"),
        (
            json!([{"claim": "ref", "pattern": "*"}]),
            iss.as_str(),
            "narrow",
        ),
        (
            json!([{"claim": "aud", "pattern": "x"}]),
            iss.as_str(),
            "checked by TechPass",
        ),
        (
            json!([{"claim": "bad name", "pattern": "x"}]),
            iss.as_str(),
            "claim name",
        ),
        (
            json!([{"claim": "ref", "pattern": "main"}]),
            "ftp://ci.example",
            "issuer",
        ),
        (
            json!([{"claim": "ref", "pattern": "main"}]),
            &server.base,
            "TechPass's own",
        ),
    ] {
        let (status, body) = api(
            &b,
            &server,
            post.clone(),
            &path,
            Some(register(rules, issuer_url)),
        )
        .await;
        assert_eq!(status, 400, "{says}: {body}");
        assert!(body.to_string().contains(says), "{says}: {body}");
    }
    let rules = json!([
        {"claim": "project_path", "pattern": "platform/*"},
        {"claim": "ref", "pattern": "main"},
        {"claim": "ref_protected", "pattern": "true"},
    ]);
    let (status, registered) = api(
        &b,
        &server,
        post.clone(),
        &path,
        Some(register(rules, &iss)),
    )
    .await;
    assert_eq!(status, 201, "{registered}");
    let registration = registered["id"].as_str().unwrap().to_string();
    assert_eq!(registered["rules"][0]["claim"], "project_path");
    let (status, listed) = api(&b, &server, reqwest::Method::GET, &path, None).await;
    assert_eq!((status, listed.as_array().unwrap().len()), (200, 1));
    let stored = server.state.store.get_client(&app).await.unwrap().unwrap();
    assert!(
        stored.grant_types.iter().any(|g| g == EXCHANGE),
        "registration enables the grant"
    );
    // The portal shows it on the app's CI page.
    let page = unescape_html(
        &b.get(server.url(&format!("/portal/tenants/{tenant}/apps/{app}/ci")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(
        page.contains(&iss) && page.contains("project_path = platform/*"),
        "{page}"
    );

    // The job's token buys a short-lived token of the app, naming the job.
    let (status, body) = exchange_token(&server, &app, &first).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert!(body["expires_in"].as_i64().unwrap() <= 900);
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let access = body["access_token"].as_str().unwrap();
    let claims = claims_of(access);
    assert_eq!(
        claims["sub"],
        format!("{registration}:project_path:platform/deployer:ref_type:branch:ref:main")
    );
    assert_eq!(
        (claims["aud"].as_str(), claims["client_id"].as_str()),
        (Some(app.as_str()), Some(app.as_str()))
    );
    assert_eq!(claims["ci"]["iss"], iss);
    assert_eq!(claims["ci"]["claims"]["project_path"], "platform/deployer");
    assert_eq!(claims["ci"]["claims"]["ref"], "main");
    assert!(
        active(&server, &app, &secret, access).await,
        "introspection knows it"
    );
    let first_access = access.to_string();
    assert_eq!(issuer_state(&issuer).await["jwks_fetches"], 1);

    // Single use: the same job token again is a replay.
    let (status, body) = exchange_token(&server, &app, &first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already exchanged"),
        "{body}"
    );

    // Each refusal is invalid_grant with the failed check in its description.
    let hour = 3600;
    let table: Vec<(&str, Value, Option<&str>, &str)> = vec![
        (
            "another audience",
            json!({"aud": "https://else.example"}),
            None,
            "aud does not name",
        ),
        (
            "another branch",
            json!({"ref": "dev"}),
            None,
            "rule ref = main does not match: the subject token's ref is 'dev'",
        ),
        (
            "another project",
            json!({"project_path": "other/tool"}),
            None,
            "rule project_path = platform/*",
        ),
        (
            "unprotected ref",
            json!({"ref_protected": "false"}),
            None,
            "rule ref_protected = true",
        ),
        (
            "a claim missing",
            json!({"project_path": null}),
            None,
            "no project_path claim",
        ),
        ("expired", json!({"exp": now - 120}), None, "expired"),
        ("not yet valid", json!({"nbf": now + hour}), None, "nbf"),
        (
            "issued in the future",
            json!({"iat": now + hour}),
            None,
            "iat",
        ),
        ("no jti", json!({"jti": null}), None, "no jti"),
        (
            "another issuer",
            json!({"iss": "https://gitlab.evil.example"}),
            None,
            "not a CI issuer this app trusts",
        ),
        ("alg none", json!({}), Some("none"), "algorithm 'none'"),
        (
            "HS256 with the public key",
            json!({}),
            Some("hs256"),
            "HS256",
        ),
        (
            "a key the issuer never published",
            json!({}),
            Some("foreign"),
            "signature does not verify",
        ),
        (
            "an unknown kid",
            json!({}),
            Some("unknown-kid"),
            "does not publish",
        ),
    ];
    for (case, claims, forge, says) in table {
        let token = ci_token(&issuer, &app, claims, forge).await;
        let (status, body) = exchange_token(&server, &app, &token).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{case}: {body}"
        );
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(says), "{case}: {description}");
    }
    // Malformed requests get the RFC's error, before any token is looked at.
    let good = ci_token(&issuer, &app, json!({}), None).await;
    let cases: Vec<(&str, Form, u16, &str)> = vec![
        (
            "not a JWT",
            vec![
                ("client_id", &app),
                ("subject_token_type", JWT),
                ("subject_token", "abc"),
            ],
            400,
            "invalid_grant",
        ),
        (
            "no subject token",
            vec![("client_id", &app), ("subject_token_type", JWT)],
            400,
            "invalid_request",
        ),
        (
            "no token type",
            vec![("client_id", &app), ("subject_token", &good)],
            400,
            "invalid_request",
        ),
        (
            "an access token type",
            vec![
                ("client_id", &app),
                ("subject_token", &good),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
            ],
            400,
            "invalid_request",
        ),
        (
            "delegation",
            vec![
                ("client_id", &app),
                ("subject_token", &good),
                ("subject_token_type", JWT),
                ("actor_token", &good),
                ("actor_token_type", JWT),
            ],
            400,
            "invalid_request",
        ),
        (
            "a refresh token wanted",
            vec![
                ("client_id", &app),
                ("subject_token", &good),
                ("subject_token_type", JWT),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
            400,
            "invalid_request",
        ),
        (
            "openid scope",
            vec![
                ("client_id", &app),
                ("subject_token", &good),
                ("subject_token_type", JWT),
                ("scope", "openid"),
            ],
            400,
            "invalid_scope",
        ),
        (
            "a resource not granted",
            vec![
                ("client_id", &app),
                ("subject_token", &good),
                ("subject_token_type", JWT),
                ("resource", "https://registry.example/"),
            ],
            400,
            "invalid_target",
        ),
        (
            "no client",
            vec![("subject_token", &good), ("subject_token_type", JWT)],
            401,
            "invalid_client",
        ),
        (
            "an unknown client",
            vec![
                ("client_id", "app_nobody"),
                ("subject_token", &good),
                ("subject_token_type", JWT),
            ],
            401,
            "invalid_client",
        ),
    ];
    for (case, form, status, error) in cases {
        let (got, body) = exchange(&server, &form).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{case}: {body}"
        );
    }
    // None of those spent the good token (scope and target are checked before it is).
    let (status, body) = exchange_token(&server, &app, &good).await;
    assert_eq!(status, 200, "{body}");

    // The gate: a disabled app gets nothing, whatever its pipelines hold.
    let admin = user(&alice);
    let disable = |enabled| AppChanges {
        enabled: Some(enabled),
        ..AppChanges::default()
    };
    techpass::tenancy::apps::update(&server.state, &admin, &tenant, &app, disable(false))
        .await
        .unwrap();
    let token = ci_token(&issuer, &app, json!({}), None).await;
    let (status, body) = exchange_token(&server, &app, &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    techpass::tenancy::apps::update(&server.state, &admin, &tenant, &app, disable(true))
        .await
        .unwrap();

    // The issuer rotates its key: a token under the new kid makes one refetch (once the
    // refetch interval has passed), and the keys are cached again after it.
    let fetches = issuer_state(&issuer).await["jwks_fetches"]
        .as_i64()
        .unwrap();
    client()
        .post(format!("{}/rotate", issuer.base()))
        .send()
        .await
        .unwrap();
    clock.advance(11);
    let rotated = ci_token(&issuer, &app, json!({}), None).await;
    let (status, body) = exchange_token(&server, &app, &rotated).await;
    assert_eq!(status, 200, "the rotated key is fetched: {body}");
    let again = ci_token(&issuer, &app, json!({}), None).await;
    assert_eq!(exchange_token(&server, &app, &again).await.0, 200);
    assert_eq!(
        issuer_state(&issuer).await["jwks_fetches"]
            .as_i64()
            .unwrap(),
        fetches + 1,
        "one refetch for the new key, then the cache"
    );

    // Every exchange is in the tenant's audit log, refusals with their reason.
    let events = server
        .state
        .store
        .list_audit(&AuditFilter {
            tenant: Some(tenant.clone()),
            event: Some("ci.exchange".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let granted = events.iter().filter(|e| e.outcome == "success").count();
    assert_eq!(
        granted, 4,
        "the first, the good one, and two after the rotation"
    );
    assert!(events
        .iter()
        .any(|e| e.outcome == "denied" && e.details.contains("rule ref = main does not match")));
    assert!(
        events.iter().all(|e| !e.details.contains(&first)),
        "no token in the log"
    );

    // Removed: the next job is refused.
    let (status, _) = api(
        &b,
        &server,
        reqwest::Method::DELETE,
        &format!("{path}/{registration}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert!(
        !active(&server, &app, &secret, &first_access).await,
        "its tokens are inactive at once"
    );
    let token = ci_token(&issuer, &app, json!({}), None).await;
    let (status, body) = exchange_token(&server, &app, &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("trusts no CI issuer"));
    server.stop().await;
}

/// Refused CI tokens count as failed authentications of (app, address), like wrong secrets:
/// past the burst the address gets 429 for that app, before any token is looked at.
async fn refused_ci_tokens_are_rate_limited(backend: Backend) {
    let test = "e2e::ci_workload_limits";
    if !node_installed(test) {
        return;
    }
    node_modules_ready();
    let Some(db) = TestDatabase::new(backend, test).await else {
        return;
    };
    let dir = TempDir::new();
    let mut config = test_config(&db.url, &dir);
    config.rate_limit.failed_auth_burst = 3;
    let server = TestServer::start_with(
        config,
        Arc::new(techpass_domain::SystemClock),
        dir,
        Some(db),
    )
    .await;
    let issuer = NodeChild::start("ci_issuer.mjs", &[]).await;
    let b = browser();
    let alice = signed_in(&server, &b, "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "deploys").await;
    let (app, _) = machine_app(&server, &user(&alice), &tenant).await;
    techpass_service::tenancy::ci_issuers::create(
        &server.state,
        &user(&alice),
        &tenant,
        &app,
        techpass_service::tenancy::ci_issuers::NewCiIssuer {
            issuer: issuer.base(),
            audience: app.clone(),
            rules: vec![techpass_service::tenancy::ci_issuers::ClaimRule {
                claim: "ref".into(),
                pattern: "main".into(),
            }],
            description: String::new(),
        },
    )
    .await
    .unwrap();
    for _ in 0..3 {
        let wrong = ci_token(&issuer, &app, json!({"ref": "dev"}), None).await;
        assert_eq!(exchange_token(&server, &app, &wrong).await.0, 400);
    }
    let good = ci_token(&issuer, &app, json!({}), None).await;
    let response = client()
        .post(server.url("/token"))
        .form(&[
            ("grant_type", EXCHANGE),
            ("client_id", app.as_str()),
            ("subject_token_type", JWT),
            ("subject_token", good.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429, "past the burst");
    assert!(response.headers().contains_key("retry-after"));
    server.stop().await;
}

crate::both_backends!(
    a_ci_job_exchanges_its_own_token,
    refused_ci_tokens_are_rate_limited,
);
