//! The portal in the browser: a newcomer walks the whole development journey from one
//! `techpass serve` (sign in, register, request a tenant, make themselves platform admin,
//! approve it, register an app, read the approval email in the outbox, sign in to the demo app);
//! and a tenant admin creates a client secret, which is shown once and never again. Each
//! journey runs in its own server and its own browser.

use fantoccini::Locator;
use techpass_store::testing::Backend;

use super::{bounded, Browser};
use crate::support::TestServer;
use crate::tenancy::{approved_tenant, tenant_app, user};

const PICKER: &str = "pick a test person";
const ALICE: &str = "alice_tan@tech.gov.sg";

/// A development server as `techpass serve` starts one: its demo app registered.
async fn dev_server(test: &str) -> Option<TestServer> {
    let server = TestServer::start(Backend::Sqlite, test).await?;
    assert!(
        server.state.dev_tools_enabled(),
        "the test server runs in development mode"
    );
    techpass::dev::ensure_demo_app(&server.state).await.unwrap();
    Some(server)
}

/// Signs Alice in from the home page (chooser, picker, registration), screenshotting each page
/// when `shoot`, and ends on the home page signed in.
async fn alice_signs_in_and_registers(b: &Browser, server: &TestServer, shoot: bool) {
    b.goto(&server.url("/")).await;
    b.heading(&["Welcome to TechPass"]).await;
    if shoot {
        b.screenshot("home").await;
    }
    b.click(Locator::LinkText("Sign in")).await;
    let h1 = b.heading(&["Sign in to TechPass", PICKER]).await;
    if h1.contains("Sign in to TechPass") {
        if shoot {
            b.screenshot("chooser").await;
        }
        b.click(Locator::LinkText("Public officer (development)"))
            .await;
        b.heading(&[PICKER]).await;
    }
    assert!(
        b.text().await.contains("Alice Tan"),
        "the picker lists Alice"
    );
    if shoot {
        b.screenshot("picker").await;
    }
    b.click(Locator::Css("button[name='person'][value='alice']"))
        .await;
    b.heading(&["Register for TechPass"]).await;
    assert!(b.text().await.contains(ALICE));
    b.click(Locator::Css("label[for='accept_terms']")).await;
    assert!(
        b.is_ticked("#accept_terms").await,
        "the label ticks the box"
    );
    if shoot {
        b.screenshot("register").await;
    }
    b.press("Register").await;
    b.heading(&["Signed in as Alice Tan"]).await;
    assert_eq!(b.path().await, "/");
}

async fn a_newcomer_walks_the_whole_journey_body(test: &str) {
    let Some(b) = Browser::start(test).await else {
        return;
    };
    let Some(server) = dev_server(test).await else {
        return;
    };
    alice_signs_in_and_registers(&b, &server, true).await;
    b.screenshot("home-signed-in").await;

    // The portal, from the home page's link.
    b.click(Locator::LinkText("Open the portal")).await;
    b.heading(&["My account"]).await;
    assert_eq!(b.path().await, "/portal");
    let page = b.text().await;
    for expected in [ALICE, "Development mode", "Email outbox", "Demo app"] {
        assert!(
            page.contains(expected),
            "the portal shows {expected}: {page}"
        );
    }
    b.screenshot("portal-account").await;

    // Request a tenant.
    b.click(Locator::LinkText("My tenants")).await;
    b.heading(&["My tenants"]).await;
    assert!(b
        .text()
        .await
        .contains("You do not administer any tenant yet"));
    b.screenshot("tenants").await;
    // The browser's own check of the short name really runs (a `pattern` Chromium rejects as an
    // invalid regular expression is silently ignored).
    for (typed, mismatch) in [
        ("1wiki", true),
        ("wiki-", true),
        ("Wiki", true),
        ("wiki", false),
    ] {
        b.fill("Short name", typed).await;
        let found = b
            .client()
            .execute(
                "return document.getElementById('slug').validity.patternMismatch;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(found, serde_json::json!(mismatch), "{typed:?}");
    }
    b.fill("Short name", "wiki").await;
    b.fill("Name", "Team Wiki").await;
    b.fill("What the service is", "The engineering wiki").await;
    b.fill("Why it should be onboarded", "Sign in with TechPass")
        .await;
    // By keyboard alone, from the first link of the page: every stop on the way shows its focus, the
    // form's fields come in order, and Enter on the button sends it.
    b.client()
        .execute(
            "window.scrollTo(0, 0); document.querySelector('a[href]').focus();",
            vec![],
        )
        .await
        .unwrap();
    b.tab_to("slug").await;
    assert_eq!(b.tab_to("name").await, 1, "the name follows the short name");
    assert_eq!(b.tab_to("description").await, 1);
    assert_eq!(b.tab_to("purpose").await, 1);
    b.tab_to("send-request").await;
    b.enter().await;
    b.heading(&["Team Wiki"]).await;
    b.sees("Your request was sent").await;
    assert!(b.text().await.contains("requested"));
    b.screenshot("tenant-requested").await;

    // Become platform admin (development only) and approve it.
    b.press("Make me a platform admin (development only)").await;
    b.heading(&["Platform admin"]).await;
    assert_eq!(b.path().await, "/portal/admin");
    assert!(
        b.text().await.contains("1 tenant request waiting"),
        "{}",
        b.text().await
    );
    b.screenshot("platform-admin").await;
    b.click(Locator::LinkText("Onboarding queue")).await;
    b.heading(&["Onboarding queue"]).await;
    assert!(b.text().await.contains("The engineering wiki"));
    b.screenshot("admin-queue").await;
    // The button's accessible name carries the tenant's name (a visually hidden span).
    b.press("Approve Team Wiki").await;
    b.sees("The tenant was approved").await;
    b.heading(&["Onboarding queue"]).await;
    assert!(b.text().await.contains("No tenant requests are waiting"));
    b.screenshot("admin-queue-approved").await;

    // The signing keys: algorithm and size of each; an EdDSA key retired at once after a
    // confirmation that says what follows.
    b.click(Locator::LinkText("Platform admin")).await;
    b.click(Locator::LinkText("Signing keys")).await;
    b.heading(&["Signing keys"]).await;
    let page = b.text().await;
    for expected in ["RSA 2048-bit", "EC P-256", "Ed25519", "Retire now"] {
        assert!(
            page.contains(expected),
            "the keys page shows {expected}: {page}"
        );
    }
    b.screenshot("signing-keys").await;
    let eddsa = server
        .state
        .keys
        .signing_key(techpass_oidc::keys::SigningAlg::EdDSA)
        .unwrap()
        .kid()
        .to_string();
    b.press(&format!("Retire now the EdDSA key {eddsa}")).await;
    b.heading(&[&format!("Retire the EdDSA key {eddsa} now?")])
        .await;
    b.sees("signs at once").await;
    b.screenshot("retire-key-confirm").await;
    b.press("Retire the key now").await;
    b.sees("The key was retired at once").await;
    assert!(!b.text().await.contains(&eddsa), "gone from the list");
    b.screenshot("signing-keys-retired").await;

    // People → Alice's own page: her tenant request, this browser's session (Chrome on Linux,
    // from loopback), her events.
    b.click(Locator::LinkText("People")).await;
    b.heading(&["People"]).await;
    b.click(Locator::LinkText(ALICE)).await;
    b.heading(&["Alice Tan"]).await;
    let page = b.text().await;
    for expected in [
        "Public officer",
        "platform admin",
        "Chrome on Linux",
        "127.0.0.1",
        "registration",
    ] {
        assert!(
            page.contains(expected),
            "the person's page shows {expected}: {page}"
        );
    }
    b.screenshot("person").await;

    // My tenants → the tenant → Apps.
    b.click(Locator::LinkText("My tenants")).await;
    b.heading(&["My tenants"]).await;
    b.click(Locator::LinkText("Team Wiki")).await;
    b.heading(&["Team Wiki"]).await;
    let page = b.text().await;
    assert!(page.contains("active"), "{page}");
    assert!(page.contains("Manage the tenant"), "{page}");
    b.screenshot("tenant-overview").await;
    b.click(Locator::LinkText("Apps")).await;
    b.heading(&["Apps of Team Wiki"]).await;
    assert!(b.text().await.contains("This tenant has no apps yet"));
    b.screenshot("apps").await;

    // Register a confidential app (the form's defaults) for a tenant's own callback.
    b.fill("Name", "Wiki web").await;
    b.fill("Redirect URIs", "https://app.example.gov.sg/callback")
        .await;
    b.press("Register the app").await;
    b.heading(&["App registered"]).await;
    let client_id = b.value("Client ID").await;
    let secret = b.value("Client secret").await;
    assert!(!client_id.is_empty() && !secret.is_empty());
    let app = server
        .state
        .store
        .get_client(&client_id)
        .await
        .unwrap()
        .expect("the app is stored");
    assert_eq!(app.name, "Wiki web");
    assert!(app.confidential);
    assert!(app
        .redirect_uris
        .iter()
        .any(|u| u == "https://app.example.gov.sg/callback"));
    b.screenshot("app-created").await;

    // The approval email, in the outbox the development nav links to.
    b.click(Locator::LinkText("Email outbox")).await;
    b.heading(&["Email outbox"]).await;
    let page = b.text().await;
    assert!(page.contains("Your tenant Team Wiki is approved"), "{page}");
    assert!(page.contains(ALICE), "{page}");
    b.screenshot("outbox").await;

    // The demo app (a relying party of its own) signs Alice in with TechPass.
    b.goto(&server.url("/dev/demo")).await;
    b.heading(&["Demo app"]).await;
    b.screenshot("demo").await;
    b.click(Locator::LinkText("Sign in with TechPass")).await;
    // Alice's TechPass session is still there: no picker, straight back with the claims.
    b.sees("The verified ID token's claims").await;
    assert!(
        b.path().await.starts_with("/dev/demo/callback"),
        "{}",
        b.path().await
    );
    let page = b.text().await;
    for expected in [ALICE, "account_type", "public_officer"] {
        assert!(
            page.contains(expected),
            "the claims show {expected}: {page}"
        );
    }
    for expected in ["Userinfo", "Access token", "Groups and roles"] {
        assert!(page.contains(expected), "the demo app shows {expected}");
    }
    b.screenshot("demo-claims").await;
    // Its sign-out ends the TechPass session too and comes back to the demo app.
    b.click(Locator::Css("#demo-sign-out button")).await;
    b.sees("You are signed out").await;
    assert_eq!(b.path().await.split('?').next(), Some("/dev/demo"));
    b.screenshot("demo-signed-out").await;
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_newcomer_walks_the_whole_journey_in_the_browser() {
    let test = "browser::portal::a_newcomer_walks_the_whole_journey_in_the_browser";
    bounded(test, a_newcomer_walks_the_whole_journey_body(test)).await;
}

/// Whether the credentials page shows nothing of `secret`, anywhere in its HTML.
async fn credentials_hide(b: &Browser, secret: &str) {
    b.heading(&["Credentials of Wiki"]).await;
    let html = b.source().await;
    assert!(
        !html.contains(secret),
        "the credentials page shows the secret: {html}"
    );
}

async fn a_tenant_admin_creates_a_secret_shown_once_body(test: &str) {
    let Some(b) = Browser::start(test).await else {
        return;
    };
    let Some(server) = dev_server(test).await else {
        return;
    };
    alice_signs_in_and_registers(&b, &server, false).await;
    let alice = server
        .state
        .store
        .find_users_by_email(ALICE)
        .await
        .unwrap()
        .remove(0)
        .id;
    // Alice administers an approved tenant with a confidential app (its first secret made at
    // registration).
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    let (client_id, first_secret) = tenant_app(&server, &user(&alice), &tenant).await;

    // Portal → My tenants → the tenant → Apps → the app → Credentials.
    b.goto(&server.url("/portal")).await;
    b.heading(&["My account"]).await;
    b.click(Locator::LinkText("My tenants")).await;
    b.click(Locator::LinkText("Tenant wiki")).await;
    b.heading(&["Tenant wiki"]).await;
    b.click(Locator::LinkText("Apps")).await;
    b.heading(&["Apps of Tenant wiki"]).await;
    b.click(Locator::LinkText("Wiki")).await;
    b.heading(&["Wiki"]).await;
    b.click(Locator::LinkText("Credentials")).await;
    credentials_hide(&b, &first_secret).await;
    b.sees("1 of at most").await;
    let credentials = b.path().await;

    b.press("Create a secret").await;
    b.heading(&["New client secret"]).await;
    let secret = b.value("New client secret").await;
    assert!(secret.len() >= 32, "a long random secret: {secret:?}");
    assert_eq!(b.value("Client ID").await, client_id);
    assert!(b.text().await.contains("It is shown only now"));
    assert!(b.source().await.contains(&secret), "the page shows it once");
    // A click in the secret selects all of it (the copy script, allowed by its CSP hash).
    b.click(Locator::Id("client_secret")).await;
    let selection = b
        .client()
        .execute(
            "const f = document.getElementById('client_secret'); \
             return [f.selectionStart, f.selectionEnd, f.value.length];",
            vec![],
        )
        .await
        .unwrap();
    let n = secret.len();
    assert_eq!(selection, serde_json::json!([0, n, n]), "click selects all");
    b.screenshot("secret").await;

    // The form was answered with a redirect to a page shown once: Back and a reload show it no
    // more and create nothing (Post/Redirect/Get).
    let shown = b.path().await;
    assert!(shown.starts_with("/portal/shown/"), "{shown}");
    b.click(Locator::LinkText("Back to the credentials")).await;
    credentials_hide(&b, &secret).await;
    assert_eq!(b.path().await, credentials);
    b.sees("2 of at most").await;
    // Back may bring the page back from the browser's own memory (Chromium's back/forward
    // cache keeps even no-store pages for a while): nothing is asked of TechPass. Any request
    // for it, a reload included, finds it gone.
    b.client().back().await.unwrap();
    assert_eq!(b.path().await, shown);
    b.client().refresh().await.unwrap();
    b.heading(&["Shown only once"]).await;
    assert!(
        !b.source().await.contains(&secret),
        "a reload shows the secret again"
    );
    b.screenshot("secret-shown-once").await;
    b.goto(&server.url(&credentials)).await;
    credentials_hide(&b, &secret).await;
    b.sees("2 of at most").await;
    b.screenshot("credentials-after-reload").await;
    b.click(Locator::LinkText("Settings")).await;
    b.heading(&["Wiki"]).await;
    b.click(Locator::LinkText("Credentials")).await;
    credentials_hide(&b, &secret).await;

    // The store holds only hashes.
    let stored = server.state.store.client_secrets(&client_id).await.unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    for s in &stored {
        for plain in [&secret, &first_secret] {
            assert_ne!(&s.secret_hash, plain);
            for field in [&s.id, &s.client_id, &s.secret_hash] {
                assert!(!field.contains(plain.as_str()), "{s:?} holds a secret");
            }
        }
    }
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_tenant_admin_creates_a_secret_shown_once() {
    let test = "browser::portal::a_tenant_admin_creates_a_secret_shown_once";
    bounded(test, a_tenant_admin_creates_a_secret_shown_once_body(test)).await;
}

/// Issue 16 item 4 and app deletion in the browser: the app page's copy script runs (allowed by
/// its CSP hash: its buttons appear), a click in the client id selects all of it, the copy
/// button copies it; a machine client's page has no sign-in settings; deleting asks first,
/// then the app is gone; a suspended tenant's apps page says why its apps sign nobody in.
async fn an_integrator_copies_the_client_id_and_deletes_the_app_body(test: &str) {
    use techpass::tenancy::apps::{self, AppSpec};
    let Some(b) = Browser::start(test).await else {
        return;
    };
    let Some(server) = dev_server(test).await else {
        return;
    };
    alice_signs_in_and_registers(&b, &server, false).await;
    let alice = server
        .state
        .store
        .find_users_by_email(ALICE)
        .await
        .unwrap()
        .remove(0)
        .id;
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    let (client_id, _) = tenant_app(&server, &user(&alice), &tenant).await;
    apps::create(
        &server.state,
        &user(&alice),
        &tenant,
        AppSpec {
            name: "Nightly sync".into(),
            homepage: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            confidential: true,
            grant_types: vec!["client_credentials".into()],
            access_policy: None,
            user_assignment_required: None,
            id_token_signed_response_alg: None,
            access_token_signed_response_alg: None,
        },
    )
    .await
    .unwrap();

    b.goto(&server.url(&format!("/portal/tenants/{tenant}/apps")))
        .await;
    b.heading(&["Apps of Tenant wiki"]).await;
    b.click(Locator::LinkText("Wiki")).await;
    b.heading(&["Wiki"]).await;
    assert_eq!(b.value("Client ID").await, client_id);
    assert_eq!(
        b.value("Discovery URL").await,
        format!(
            "{}/.well-known/openid-configuration",
            server
                .state
                .metadata
                .issuer
                .to_string()
                .trim_end_matches('/')
        )
    );
    b.sees("https://app.example.gov.sg/callback").await;
    // The script ran (the CSP let it): the copy buttons it reveals are shown.
    let copy = b
        .client()
        .find(Locator::Css("button[data-copy='client-id']"))
        .await
        .unwrap();
    assert!(
        copy.is_displayed().await.unwrap(),
        "the copy script did not run"
    );
    b.screenshot("app-settings").await;

    // A click in the field selects the whole client id.
    let selected = "const f = document.getElementById('client-id'); \
        return [document.activeElement.id, f.selectionStart, f.selectionEnd, f.value.length];";
    b.click(Locator::Id("client-id")).await;
    let state = b.client().execute(selected, vec![]).await.unwrap();
    let n = client_id.len();
    assert_eq!(
        state,
        serde_json::json!(["client-id", 0, n, n]),
        "click selects all"
    );
    // Elsewhere, then Copy: the field is selected and the copy is confirmed.
    b.click(Locator::Id("name")).await;
    copy.click().await.unwrap();
    b.sees("Copied.").await;
    let state = b.client().execute(selected, vec![]).await.unwrap();
    assert_eq!(
        state,
        serde_json::json!(["client-id", 0, n, n]),
        "Copy selects all"
    );
    b.screenshot("app-client-id-copied").await;

    // A machine client: no redirect URIs, refresh settings or "who may sign in".
    b.click(Locator::LinkText("Apps")).await;
    b.click(Locator::LinkText("Nightly sync")).await;
    b.heading(&["Nightly sync"]).await;
    b.sees("it signs nobody in, so it has no redirect URIs")
        .await;
    let text = b.text().await;
    for absent in [
        "Who may sign in",
        "Refresh token idle time",
        "Post-logout redirect URIs",
    ] {
        assert!(
            !text.contains(absent),
            "{absent} on a machine client's page"
        );
    }
    b.screenshot("machine-app-settings").await;

    // Deleting asks first.
    b.click(Locator::LinkText("Apps")).await;
    b.click(Locator::LinkText("Wiki")).await;
    b.press("Delete the app…").await;
    b.heading(&["Delete Wiki?"]).await;
    b.sees("its grants and refresh tokens").await;
    b.screenshot("app-delete-confirm").await;
    b.press("Delete the app").await;
    b.heading(&["Apps of Tenant wiki"]).await;
    b.sees("The app was deleted").await;
    assert!(!b.text().await.contains(&client_id));
    assert!(server
        .state
        .store
        .get_client(&client_id)
        .await
        .unwrap()
        .is_none());
    b.screenshot("app-deleted").await;

    // A suspended tenant's apps page says why its apps sign nobody in.
    techpass::tenancy::tenants::decide(
        &server.state,
        &techpass::tenancy::Actor::Operator,
        &tenant,
        techpass_domain::tenancy::TenantAction::Suspend,
        Some("audit"),
    )
    .await
    .unwrap();
    b.client().refresh().await.unwrap();
    b.sees("This tenant is suspended: its apps sign nobody in.")
        .await;
    b.sees("Off: the tenant is suspended").await;
    b.screenshot("apps-tenant-suspended").await;
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn an_integrator_copies_the_client_id_and_deletes_the_app() {
    let test = "browser::portal::an_integrator_copies_the_client_id_and_deletes_the_app";
    bounded(
        test,
        an_integrator_copies_the_client_id_and_deletes_the_app_body(test),
    )
    .await;
}

/// Issue 16 item 6 in the browser: a webhook whose endpoint answers 404 shows why on its page,
/// with what TechPass sends; fixed, the challenge again, a test event from the button lands in
/// the delivery log with its "Deliver again" button.
async fn a_tenant_admin_fixes_a_webhook_body(test: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let Some(b) = Browser::start(test).await else {
        return;
    };
    let Some(server) = dev_server(test).await else {
        return;
    };
    alice_signs_in_and_registers(&b, &server, false).await;
    let alice = server
        .state
        .store
        .find_users_by_email(ALICE)
        .await
        .unwrap()
        .remove(0)
        .id;
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    // An endpoint that answers 404 until it is fixed.
    let fixed = Arc::new(AtomicBool::new(false));
    let answers = fixed.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let fixed = answers.load(Ordering::SeqCst);
            async move {
                use axum::response::IntoResponse;
                if fixed {
                    axum::Json(serde_json::json!({ "challenge": body["challenge"] }))
                        .into_response()
                } else {
                    axum::http::StatusCode::NOT_FOUND.into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let made = techpass::webhooks::create(
        &server.state,
        &user(&alice),
        &tenant,
        &url,
        &["user-invited".into()],
    )
    .await
    .unwrap();
    b.goto(&server.url(&format!(
        "/portal/tenants/{tenant}/webhooks/{}",
        made.webhook.id
    )))
    .await;
    b.heading(&[&format!("Webhook to {url}")]).await;
    b.sees("The last challenge failed: the endpoint answered HTTP 404")
        .await;
    b.sees("What TechPass sends").await;
    b.screenshot("webhook-challenge-failed").await;
    fixed.store(true, Ordering::SeqCst);
    b.press("Send the challenge again").await;
    b.sees("answered").await;
    b.press("Send a test event").await;
    b.sees("The test event was delivered").await;
    assert!(b.text().await.contains("Deliver again"));
    b.screenshot("webhook-test-delivered").await;
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_tenant_admin_fixes_a_webhook() {
    let test = "browser::portal::a_tenant_admin_fixes_a_webhook";
    bounded(test, a_tenant_admin_fixes_a_webhook_body(test)).await;
}

/// Issue 14 item 5: a tenant admin trusts a CI issuer for an app on its CI pipelines page,
/// in Chromium: a malformed rule is refused with the form kept, the registration is listed
/// (and a reload adds nothing), and removing it asks first.
async fn a_tenant_admin_trusts_a_ci_pipeline_body(test: &str) {
    let Some(b) = Browser::start(test).await else {
        return;
    };
    let Some(server) = dev_server(test).await else {
        return;
    };
    alice_signs_in_and_registers(&b, &server, false).await;
    let alice = server
        .state
        .store
        .find_users_by_email(ALICE)
        .await
        .unwrap()
        .remove(0)
        .id;
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    let (client_id, _) = tenant_app(&server, &user(&alice), &tenant).await;
    let trusted = || async {
        server
            .state
            .store
            .ci_issuers_of_client(&client_id)
            .await
            .unwrap()
    };

    b.goto(&server.url(&format!("/portal/tenants/{tenant}/apps/{client_id}")))
        .await;
    b.click(Locator::LinkText("CI pipelines")).await;
    b.heading(&["CI pipelines of Wiki"]).await;
    b.sees("No CI issuer is trusted").await;
    assert_eq!(
        b.value("Audience").await,
        client_id,
        "the client id is proposed"
    );
    b.screenshot("ci-empty").await;

    b.fill("Issuer URL", "https://gitlab.example.gov.sg").await;
    b.fill("Claim rules", "project_path platform/deployer")
        .await;
    b.press("Trust the issuer").await;
    b.sees("has no '='").await;
    assert_eq!(b.value("Issuer URL").await, "https://gitlab.example.gov.sg");
    assert!(trusted().await.is_empty());
    b.screenshot("ci-refused").await;

    b.fill("Claim rules", "project_path = platform/*\nref = main")
        .await;
    b.press("Trust the issuer").await;
    b.sees("The CI issuer is trusted").await;
    b.sees("project_path = platform/*").await;
    b.sees("ref = main").await;
    b.screenshot("ci-trusted").await;
    b.client().refresh().await.unwrap();
    b.heading(&["CI pipelines of Wiki"]).await;
    let listed = trusted().await;
    assert_eq!(listed.len(), 1, "a reload adds nothing");
    assert_eq!(listed[0].issuer, "https://gitlab.example.gov.sg");
    let app = server
        .state
        .store
        .get_client(&client_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        app.grant_types
            .iter()
            .any(|g| g.ends_with("token-exchange")),
        "{:?}",
        app.grant_types
    );

    b.press("Remove https://gitlab.example.gov.sg").await;
    b.heading(&["Stop trusting this CI issuer for Wiki?"]).await;
    b.screenshot("ci-remove-confirm").await;
    b.press("Stop trusting it").await;
    b.sees("no longer trusted").await;
    assert!(trusted().await.is_empty());
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_tenant_admin_trusts_a_ci_pipeline() {
    let test = "browser::portal::a_tenant_admin_trusts_a_ci_pipeline";
    bounded(test, a_tenant_admin_trusts_a_ci_pipeline_body(test)).await;
}

/// Issue 16 item 2: the whole audit log fits a 1,100 px window (it overflowed to 1,622 px),
/// with long subjects, a refusal's reference and details among its rows; its filters read
/// back what was asked.
async fn the_audit_log_fits_the_window_body(test: &str) {
    let Some(b) = Browser::start(test).await else {
        return;
    };
    let Some(server) = dev_server(test).await else {
        return;
    };
    alice_signs_in_and_registers(&b, &server, false).await;
    let now = server.state.clock.now().as_secs();
    for n in 0..20 {
        server
            .state
            .store
            .append_audit(&techpass_store::AuditRecord {
                at: now,
                event: "ci.exchange".into(),
                outcome: if n % 2 == 0 { "denied" } else { "success" }.into(),
                reason: Some("ci_token_refused".into()),
                reference: Some(format!("REF-{n:04}-ABCDEFGHIJKLMNOP")),
                actor: Some(format!(
                    "ci:cii_0123456789abcdefghij:project_path:platform/very-long-project-name-{n}:ref_type:branch:ref:refs/heads/feature/a-rather-long-branch-name"
                )),
                subject: Some("app_0123456789abcdefghijklmnop".into()),
                subject_email: Some("someone.with.a.long.address@agency.example.gov.sg".into()),
                details: serde_json::json!({
                    "reason": "rule ref = main does not match: the subject token's ref is \"refs/heads/feature/a-rather-long-branch-name\"",
                    "claims": {"project_path": "platform/very-long-project-name", "ref": "refs/heads/feature/x"},
                })
                .to_string(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    b.goto(&server.url("/portal")).await;
    b.press("Make me a platform admin (development only)").await;
    b.heading(&["Platform admin"]).await;
    b.client().set_window_size(1100, 900).await.unwrap();
    b.goto(&server.url("/portal/admin/audit?outcome=denied"))
        .await;
    b.heading(&["Audit log"]).await;
    b.sees("REF-0000-ABCDEFGHIJKLMNOP").await;
    let widths = b
        .client()
        .execute(
            "const t = document.querySelector('table.audit'); \
             return [t.scrollWidth, t.parentElement.clientWidth, document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .unwrap();
    let w: Vec<i64> = widths
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert!(
        w[0] <= w[1],
        "the table ({} px) overflows its column ({} px)",
        w[0],
        w[1]
    );
    assert!(
        w[2] <= w[3],
        "the page ({} px) is wider than the window ({} px)",
        w[2],
        w[3]
    );
    assert_eq!(b.value("Outcome").await, "denied", "the filter reads back");
    assert!(!b.text().await.contains("REF-0001"), "only refusals");
    b.screenshot("audit-1100").await;
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn the_audit_log_fits_the_window() {
    let test = "browser::portal::the_audit_log_fits_the_window";
    bounded(test, the_audit_log_fits_the_window_body(test)).await;
}
