//! The token gate end to end: unregistered people get no token, and a suspension takes effect
//! at the next request on another replica.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::Value;
use techpass_domain::gate::UserStatus;
use techpass_domain::SystemClock;
use techpass_store::testing::{Backend, TestDatabase};
use techpass_store::AuditFilter;
use tokio::net::TcpListener;

use crate::provider::{authorize, register, APP_CALLBACK};
use crate::signin::sign_in_via_hint;
use crate::support::{browser, client, run_techpass, see_other, test_config, TempDir, TestServer};

fn authorize_url(server: &TestServer, client_id: &str, login_hint: &str) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", APP_CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid offline_access")
        .append_pair("state", "st")
        .append_pair("login_hint", login_hint);
    url.to_string()
}

#[tokio::test]
async fn an_uninvited_vendor_gets_a_clear_page_and_the_app_access_denied() {
    let Some(server) = TestServer::start(Backend::Sqlite, "e2e::uninvited_vendor").await else {
        return;
    };
    let app = register(&server, true, &["authorization_code"]).await;
    let b = browser();
    let start = b
        .get(authorize_url(
            &server,
            &app.client_id,
            "dave@vendorco.example",
        ))
        .send()
        .await
        .unwrap();
    let login = see_other(&start);
    let done = sign_in_via_hint(&b, &server.base, &login, "dave").await;
    // Not to /register, a dead end for a vendor: back to the app's request, whose refusal
    // explains the invitation and offers the way back to the app.
    let back = see_other(&done);
    assert!(back.starts_with("/authorize?"), "{back}");
    let denied = b.get(server.url(&back)).send().await.unwrap();
    assert_eq!(denied.status(), 403);
    let html = denied.text().await.unwrap();
    assert!(html.contains("not_registered"));
    assert!(
        html.contains("You are not registered for TechPass"),
        "{html}"
    );
    assert!(html.contains("Ask your project manager to invite you"));
    assert!(html.contains("Return to Test app"), "{html}");
    assert!(
        !html.contains("accept_terms"),
        "vendors cannot self-register"
    );

    // Their own /register is no dead end either: the same explanation.
    let page = b
        .get(server.url(&format!(
            "/register?return_to={}",
            url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403);
    let text = page.text().await.unwrap();
    assert!(text.contains("Ask your project manager to invite you"));
    assert!(text.contains("Return to Test app"), "{text}");
    let link = html
        .split("class=\"button\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
        .replace("&#x3f;", "?");
    let link = url::Url::parse(&link).unwrap();
    let q: std::collections::HashMap<_, _> = link.query_pairs().into_owned().collect();
    assert!(link.as_str().starts_with(APP_CALLBACK), "{link}");
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["error_description"], "not_registered");
    assert_eq!(q["state"], "st");
    assert_eq!(q["iss"], server.base);
    let denials = server
        .state
        .store
        .list_audit(&AuditFilter {
            event: Some("token.denied".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(denials[0].reason.as_deref(), Some("not_registered"));
    // The refused person is named by their email, and the page's reference finds the event.
    assert_eq!(
        denials[0].subject_email.as_deref(),
        Some("dave@vendorco.example")
    );
    let reference = html
        .split("Reference: <code>")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .expect("the refusal page shows a reference");
    assert_eq!(denials[0].reference.as_deref(), Some(reference));
    let found = server
        .state
        .store
        .list_audit(&AuditFilter {
            reference: Some(reference.to_string()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![denials[0].id]
    );
    server.stop().await;
}

async fn suspension_stops_the_next_refresh_on_another_replica(backend: Backend) {
    let Some(db) = TestDatabase::new(backend, "e2e::suspension_stops_the_next_refresh").await
    else {
        return;
    };
    // Two replicas: one database, one master key, one public issuer.
    let (dir_a, dir_b) = (TempDir::new(), TempDir::new());
    let listener_a = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener_a.local_addr().unwrap());
    let mut config_a = test_config(&db.url, &dir_a);
    config_a.issuer = issuer.clone();
    let mut config_b = test_config(&db.url, &dir_b);
    config_b.master_key = config_a.master_key.clone();
    config_b.issuer = issuer;
    let a = TestServer::start_on(listener_a, config_a, Arc::new(SystemClock), dir_a, None).await;
    let b_server = TestServer::start_with(config_b, Arc::new(SystemClock), dir_b, None).await;
    let app = register(&a, true, &["authorization_code", "refresh_token"]).await;
    let secret = app.client_secret.clone().unwrap();

    let b = browser();
    let back = authorize(
        &b,
        &a,
        &authorize_url(&a, &app.client_id, "alice_tan@tech.gov.sg"),
        "alice",
    )
    .await;
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: Value = client()
        .post(a.url("/token"))
        .basic_auth(&app.client_id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", APP_CALLBACK),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = tokens["access_token"].as_str().unwrap().to_string();
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    let introspect = |server: &TestServer, token: &str| {
        client()
            .post(server.url("/introspect"))
            .basic_auth(&app.client_id, Some(&secret))
            .form(&[("token", token)])
            .send()
    };
    let active: Value = introspect(&b_server, &at)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(active["active"], true, "replica B knows the token");

    // A platform admin suspends Alice (through replica A's database).
    let sub = active["sub"].as_str().unwrap().to_string();
    assert!(a
        .state
        .store
        .set_user_status(&sub, UserStatus::Suspended, Some("test"))
        .await
        .unwrap());

    // Replica B refuses at once: introspection, userinfo, refresh.
    let inactive: Value = introspect(&b_server, &at)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inactive, serde_json::json!({"active": false}));
    let info = client()
        .get(b_server.url("/userinfo"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 401);
    let refreshed = client()
        .post(b_server.url("/token"))
        .basic_auth(&app.client_id, Some(&secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 400);
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("account_suspended"));
    // And no new code: a page for the person, access_denied for the app.
    let again = b
        .get(authorize_url(
            &b_server,
            &app.client_id,
            "alice_tan@tech.gov.sg",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 403);
    assert!(again.text().await.unwrap().contains("account_suspended"));
    a.stop().await;
    b_server.stop().await;
    drop(db);
}

#[tokio::test]
async fn admin_suspend_from_the_cli_ends_sessions_and_reinstate_restores_access() {
    let db = TestDatabase::sqlite().await;
    let dir = TempDir::new();
    let config = test_config(&db.url, &dir);
    let master = config.master_key.clone().unwrap();
    let server = TestServer::start_with(config, Arc::new(SystemClock), dir, None).await;
    let app = register(&server, true, &["authorization_code", "refresh_token"]).await;
    let b = browser();
    let back = authorize(
        &b,
        &server,
        &authorize_url(&server, &app.client_id, "bob_lim@hdb.gov.sg"),
        "bob",
    )
    .await;
    assert!(query_code(&back).is_some());
    assert!(b
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("Signed in as"));

    let cwd = TempDir::new();
    let env = [
        ("TECHPASS_DATABASE_URL", db.url.as_str()),
        ("TECHPASS_MASTER_KEY", master.expose()),
    ];
    let (code, _, stderr) = run_techpass(
        &cwd.0,
        &["admin", "suspend", "nobody@tech.gov.sg", "--reason", "x"],
        &env,
    )
    .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("no user"), "{stderr}");
    let (code, stdout, stderr) = run_techpass(
        &cwd.0,
        &[
            "admin",
            "suspend",
            "BOB_LIM@hdb.gov.sg",
            "--reason",
            "investigation",
        ],
        &env,
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 session(s) ended"), "{stdout}");

    // The running server: the session is gone and no new code is issued.
    assert!(!b
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("Signed in as"));
    let events = server
        .state
        .store
        .list_audit(&AuditFilter {
            event: Some("user.suspended".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events[0].actor.as_deref(), Some("cli"));
    assert!(events[0].details.contains("investigation"));

    let (code, stdout, _) =
        run_techpass(&cwd.0, &["admin", "reinstate", "bob_lim@hdb.gov.sg"], &env).await;
    assert_eq!(code, 0);
    assert!(stdout.contains("as registered"), "{stdout}");
    let again = authorize(
        &b,
        &server,
        &authorize_url(&server, &app.client_id, "bob_lim@hdb.gov.sg"),
        "bob",
    )
    .await;
    assert!(query_code(&again).is_some(), "reinstated: codes again");

    // Re-enabling from the CLI: refused (exit 1, said why) unless the account is disabled.
    let (code, _, stderr) =
        run_techpass(&cwd.0, &["admin", "enable", "bob_lim@hdb.gov.sg"], &env).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("is registered, not disabled"), "{stderr}");
    let (code, _, stderr) =
        run_techpass(&cwd.0, &["admin", "enable", "nobody@tech.gov.sg"], &env).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("no user"), "{stderr}");
    let bob = server
        .state
        .store
        .find_users_by_email("bob_lim@hdb.gov.sg")
        .await
        .unwrap()
        .remove(0);
    assert!(server
        .state
        .store
        .transition_user(
            &bob.id,
            UserStatus::Registered,
            UserStatus::Disabled,
            Some("inactive"),
            1,
        )
        .await
        .unwrap());
    let (code, stdout, stderr) =
        run_techpass(&cwd.0, &["admin", "enable", "bob_lim@hdb.gov.sg"], &env).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("re-enabled") && stdout.contains("as registered"),
        "{stdout}"
    );
    let events = server
        .state
        .store
        .list_audit(&AuditFilter {
            event: Some("user.enabled".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events[0].actor.as_deref(), Some("cli"));
    let again = authorize(
        &b,
        &server,
        &authorize_url(&server, &app.client_id, "bob_lim@hdb.gov.sg"),
        "bob",
    )
    .await;
    assert!(query_code(&again).is_some(), "re-enabled: codes again");
    server.stop().await;
    drop(db);
}

fn query_code(url: &url::Url) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
}

/// A deleted app's tokens fail closed everywhere: userinfo (the grant and the app are gone),
/// introspection by another app, refresh and the app's own introspection (it can no longer
/// authenticate). Deleted from the command line while the server runs; the audit log keeps it.
async fn a_deleted_apps_tokens_are_refused_everywhere(backend: Backend) {
    let Some(db) = TestDatabase::new(backend, "e2e::a_deleted_apps_tokens").await else {
        return;
    };
    let dir = TempDir::new();
    let config = test_config(&db.url, &dir);
    let master = config.master_key.clone().unwrap();
    let server = TestServer::start_with(config, Arc::new(SystemClock), dir, None).await;
    let app = register(&server, true, &["authorization_code", "refresh_token"]).await;
    let other = register(&server, true, &["authorization_code"]).await;
    let secret = app.client_secret.clone().unwrap();
    let b = browser();
    let back = authorize(
        &b,
        &server,
        &authorize_url(&server, &app.client_id, "alice_tan@tech.gov.sg"),
        "alice",
    )
    .await;
    let code = query_code(&back).unwrap();
    let tokens: Value = client()
        .post(server.url("/token"))
        .basic_auth(&app.client_id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", APP_CALLBACK),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = tokens["access_token"].as_str().unwrap().to_string();
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    let userinfo = || {
        client()
            .get(server.url("/userinfo"))
            .bearer_auth(&at)
            .send()
    };
    assert_eq!(userinfo().await.unwrap().status(), 200, "works before");
    let payload = at.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let grant_id = claims["gid"]
        .as_str()
        .expect("a person's token names its grant");
    let grant = server
        .state
        .store
        .get_grant(grant_id)
        .await
        .unwrap()
        .unwrap();

    let cwd = TempDir::new();
    let env = [
        ("TECHPASS_DATABASE_URL", db.url.as_str()),
        ("TECHPASS_MASTER_KEY", master.expose()),
    ];
    let (code, _, stderr) = run_techpass(&cwd.0, &["app", "delete", "no-such-app"], &env).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("app not found"), "{stderr}");
    let (code, stdout, stderr) =
        run_techpass(&cwd.0, &["app", "delete", &app.client_id], &env).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&app.client_id), "{stdout}");

    // Another process deleted it: this server hears of it from the database (at once on
    // PostgreSQL, within 200 ms on SQLite), and its cached copy of the app lives 1 s at most.
    // The token's grant went with the app (read uncached: refused at once); the app's own
    // secret is refused once the cached app is dropped.
    let by_itself = || async {
        client()
            .post(server.url("/introspect"))
            .basic_auth(&app.client_id, Some(&secret))
            .form(&[("token", at.as_str())])
            .send()
            .await
            .unwrap()
            .status()
    };
    let (mut info, mut own) = (userinfo().await.unwrap(), by_itself().await);
    for _ in 0..30 {
        if info.status() == 401 && own == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        (info, own) = (userinfo().await.unwrap(), by_itself().await);
    }
    assert_eq!(info.status(), 401, "refused within 3 s of the deletion");
    assert!(info.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(own, 401, "its secret is gone within 3 s of the deletion");
    let by_other: Value = client()
        .post(server.url("/introspect"))
        .basic_auth(&other.client_id, other.client_secret.as_deref())
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_other, serde_json::json!({"active": false}));
    let refreshed = client()
        .post(server.url("/token"))
        .basic_auth(&app.client_id, Some(&secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 401);
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(server
        .state
        .store
        .get_grant(grant_id)
        .await
        .unwrap()
        .is_none());
    // Fail closed on the app alone: were the grant still there (a grant row outliving its app),
    // userinfo still refuses the token because its app is gone.
    server.state.store.insert_grant(&grant).await.unwrap();
    let info = userinfo().await.unwrap();
    assert_eq!(info.status(), 401, "a token of a missing app");
    assert!(info.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    // No new sign-in either: an unknown client is refused without a redirect.
    let again = b
        .get(authorize_url(
            &server,
            &app.client_id,
            "alice_tan@tech.gov.sg",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    let deleted = server
        .state
        .store
        .list_audit(&AuditFilter {
            event: Some("app.deleted".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].subject.as_deref(), Some(app.client_id.as_str()));
    assert_eq!(deleted[0].actor.as_deref(), Some("cli"));
    server.stop().await;
    drop(db);
}

crate::both_backends!(
    suspension_stops_the_next_refresh_on_another_replica,
    a_deleted_apps_tokens_are_refused_everywhere,
);
