//! The development pages: the demo relying party signs in with TechPass through the
//! `openidconnect` crate and shows verified claims; the outbox lists queued emails; neither
//! exists without the development upstream.

use techpass_store::testing::{Backend, TestDatabase};

use crate::signin::{register_if_asked, sign_in_via_hint};
use crate::support::{browser, form_field, see_other, test_config, TempDir, TestServer};
use crate::tenancy::{approved_tenant, signed_in};

#[tokio::test]
async fn the_demo_app_signs_in_and_shows_the_verified_claims() {
    let Some(server) = TestServer::start(Backend::Sqlite, "e2e::demo_app").await else {
        return;
    };
    techpass::dev::ensure_demo_app(&server.state).await.unwrap();
    // Idempotent, as at every start.
    techpass::dev::ensure_demo_app(&server.state).await.unwrap();
    let b = browser();
    let page = b.get(server.url("/dev/demo")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Sign in with TechPass"));
    let start = b.get(server.url("/dev/demo/start")).send().await.unwrap();
    let authorize = see_other(&start);
    assert!(
        authorize.starts_with(&server.url("/authorize?")),
        "{authorize}"
    );
    assert!(authorize.contains("code_challenge_method=S256"));
    let to_login = b.get(&authorize).send().await.unwrap();
    // Two directories: the hint picks the officers' (as a person would on the chooser).
    let login = format!(
        "{}&login_hint=alice_tan%40tech.gov.sg",
        see_other(&to_login)
    );
    let done = sign_in_via_hint(&b, &server.base, &login, "alice").await;
    let back = register_if_asked(&b, &server.base, &see_other(&done)).await;
    let again = b.get(server.url(&back)).send().await.unwrap();
    let callback = see_other(&again);
    assert!(callback.contains("/dev/demo/callback?"), "{callback}");
    let shown = b.get(&callback).send().await.unwrap();
    assert_eq!(shown.status(), 200);
    let html = shown.text().await.unwrap();
    assert!(html.contains("verified ID token"), "{html}");
    assert!(html.contains("alice_tan@tech.gov.sg"));
    assert!(html.contains("account_type"));
    // What a tenant app works with: the access token, and what userinfo answers for it.
    let section = |id: &str| {
        html.split(&format!("id=\"{id}\">"))
            .nth(1)
            .and_then(|rest| rest.split("</pre>").next())
            .unwrap_or_else(|| panic!("no {id} on the page: {html}"))
            .to_string()
    };
    let userinfo = section("userinfo");
    assert!(userinfo.contains("alice_tan@tech.gov.sg"), "{userinfo}");
    assert!(userinfo.contains("&quot;sub&quot;"), "{userinfo}");
    let access_token = section("access-token");
    assert_eq!(access_token.split('.').count(), 3, "a JWT: {access_token}");
    let direct = b
        .get(server.url("/userinfo"))
        .bearer_auth(access_token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(
        direct.status(),
        200,
        "the shown access token is the real one"
    );
    assert!(section("access-token-claims").contains("app_dev_demo"));
    assert!(html.contains("Roles (in this app)"), "{html}");
    // A replayed callback has lost its cookie and state.
    let replay = b.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), 502);

    // Sign out: the form goes to TechPass's end-session endpoint with the ID token as hint and
    // the registered post-logout URI, and TechPass sends the browser back to the demo app.
    let hidden = |name: &str| form_field(&html, name);
    let form = [
        ("id_token_hint", hidden("id_token_hint")),
        ("client_id", hidden("client_id")),
        (
            "post_logout_redirect_uri",
            hidden("post_logout_redirect_uri"),
        ),
        ("state", hidden("state")),
    ];
    assert_eq!(form[2].1, server.url("/dev/demo"));
    let out = b
        .post(server.url("/end-session"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let back = see_other(&out);
    assert!(
        back.starts_with(&format!("{}?state=", server.url("/dev/demo"))),
        "{back}"
    );
    let home = b.get(&back).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("You are signed out"), "{home}");
    // The TechPass session is gone: signing in again asks who you are.
    let start = b.get(server.url("/dev/demo/start")).send().await.unwrap();
    let again = b.get(see_other(&start)).send().await.unwrap();
    assert!(
        see_other(&again).contains("/login"),
        "signed out of TechPass too"
    );

    // A registration from before post-logout URIs (or another issuer) is brought up to date.
    let mut old = server
        .state
        .store
        .get_client(techpass::dev::DEMO_CLIENT_ID)
        .await
        .unwrap()
        .unwrap();
    old.post_logout_redirect_uris = vec![];
    server.state.store.update_client(&old).await.unwrap();
    techpass::dev::ensure_demo_app(&server.state).await.unwrap();
    let now = server
        .state
        .store
        .get_client(techpass::dev::DEMO_CLIENT_ID)
        .await
        .unwrap()
        .unwrap();
    assert!(now
        .post_logout_redirect_uris
        .iter()
        .any(|u| u.contains("/dev/demo")));
    server.stop().await;
}

#[tokio::test]
async fn the_outbox_lists_queued_email_in_development_only() {
    let Some(server) = TestServer::start(Backend::Sqlite, "e2e::outbox").await else {
        return;
    };
    let empty = server.get("/dev/outbox").await;
    assert_eq!(empty.status(), 200);
    assert!(empty.text().await.unwrap().contains("No email yet"));
    let alice = signed_in(&server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    approved_tenant(&server, &alice, "wiki").await;
    let page = server.get("/dev/outbox").await.text().await.unwrap();
    assert!(
        page.contains("Your tenant Tenant wiki is approved"),
        "{page}"
    );
    // The approval's portal link ends its sentence: the button drops the full stop.
    assert!(page.contains("portal\">Open the link"), "{page}");
    server.stop().await;

    let db = TestDatabase::new(Backend::Sqlite, "e2e::outbox_off")
        .await
        .unwrap();
    let dir = TempDir::new();
    let mut config = test_config(&db.url, &dir);
    config.dev_upstream.enabled = Some(false);
    let server = TestServer::start_with(
        config,
        std::sync::Arc::new(techpass_domain::SystemClock),
        dir,
        Some(db),
    )
    .await;
    for path in ["/dev/outbox", "/dev/demo", "/dev/demo/start"] {
        assert_eq!(server.get(path).await.status(), 404, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_newcomer_makes_themselves_platform_admin_in_development() {
    let Some(server) = TestServer::start(Backend::Sqlite, "e2e::dev_platform_admin").await else {
        return;
    };
    let b = browser();
    let alice = signed_in(&server, &b, "alice", "alice_tan@tech.gov.sg").await;
    let portal = b.get(server.url("/portal")).send().await.unwrap();
    let html = portal.text().await.unwrap();
    assert!(html.contains("Make me a platform admin"), "{html}");
    assert!(html.contains("Email outbox"));
    let csrf = html
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let forged = b
        .post(server.url("/dev/platform-admin"))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(!server.state.store.is_platform_admin(&alice).await.unwrap());
    let made = b
        .post(server.url("/dev/platform-admin"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(see_other(&made), "/portal/admin");
    assert!(server.state.store.is_platform_admin(&alice).await.unwrap());
    let admin = b.get(server.url("/portal/admin")).send().await.unwrap();
    assert_eq!(admin.status(), 200);
    server.stop().await;
}
