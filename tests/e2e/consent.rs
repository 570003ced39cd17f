//! Access policies and consent over HTTP (issue 13 items 3 and 4): an app for the tenant's
//! members refuses an officer outside it with a page; an app open to every officer asks an
//! officer with no relationship to the tenant once, on a page naming the app, the tenant and
//! what it receives; `prompt=none` is `consent_required`; refusing sends the app
//! `access_denied`; the consent is remembered, asked again with `prompt=consent`, listed on the
//! account page and withdrawn there, which ends the app's refresh tokens.

use techpass::tenancy;
use techpass::tenancy::apps::AppSpec;
use techpass_domain::client::AccessPolicy;
use techpass_store::testing::Backend;

use crate::provider::APP_CALLBACK;
use crate::refusals::unescape;
use crate::support::{browser, see_other, TestServer};
use crate::tenancy::{
    approved_tenant, authorize, authorize_url, field, refresh, signed_in, start_with_clock, tokens,
    user,
};

const BOB: &str = "bob_lim@hdb.gov.sg";

async fn app(
    server: &TestServer,
    admin: &str,
    tenant_id: &str,
    name: &str,
    policy: AccessPolicy,
) -> (String, String) {
    let created = tenancy::apps::create(
        &server.state,
        &user(admin),
        tenant_id,
        AppSpec {
            name: name.into(),
            homepage: None,
            redirect_uris: vec![APP_CALLBACK.into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            confidential: true,
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            access_policy: Some(policy),
            user_assignment_required: None,
            id_token_signed_response_alg: None,
            access_token_signed_response_alg: None,
        },
    )
    .await
    .unwrap();
    (created.client_id, created.client_secret.unwrap())
}

/// The query pairs of a redirect to the app.
fn told(to: &str) -> std::collections::HashMap<String, String> {
    assert!(to.starts_with(APP_CALLBACK), "{to}");
    url::Url::parse(to)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

async fn events(server: &TestServer, event: &str) -> usize {
    server
        .state
        .store
        .list_audit(&techpass_store::AuditFilter {
            event: Some(event.into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .len()
}

async fn an_officer_outside_the_tenant_consents_once_at_an_open_app(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(backend, "e2e::consent").await else {
        return;
    };
    let a = browser();
    let alice = signed_in(&server, &a, "alice", "alice_tan@tech.gov.sg").await;
    let wiki = approved_tenant(&server, &alice, "wiki").await;
    let (open, secret) = app(
        &server,
        &alice,
        &wiki,
        "Staff directory",
        AccessPolicy::Officers,
    )
    .await;
    let (members, _) = app(&server, &alice, &wiki, "Team wiki", AccessPolicy::Members).await;

    // The tenant's admin is a member: no consent, no refusal.
    authorize(&server, &a, &open, "alice_tan@tech.gov.sg")
        .await
        .expect("the admin signs in to the open app at once");
    authorize(&server, &a, &members, "alice_tan@tech.gov.sg")
        .await
        .expect("the admin is a member");

    let b = browser();
    signed_in(&server, &b, "bob", BOB).await;
    // An app for the tenant's members: Bob is not one.
    let (status, body) = authorize(&server, &b, &members, BOB).await.unwrap_err();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not_a_member"), "{body}");

    // prompt=none cannot show the consent page.
    let silent = b
        .get(format!(
            "{}&prompt=none",
            authorize_url(&server, &open, BOB)
        ))
        .send()
        .await
        .unwrap();
    let q = told(&see_other(&silent));
    assert_eq!(q["error"], "consent_required");
    assert_eq!(q["state"], "st");
    assert!(!q.contains_key("code"));

    // `prompt=login consent`: after the forced sign-in, the way back still asks for consent.
    let forced = b
        .get(format!(
            "{}&prompt=login%20consent",
            authorize_url(&server, &open, BOB)
        ))
        .send()
        .await
        .unwrap();
    let to_login = url::Url::parse(&server.url(&see_other(&forced))).unwrap();
    let back: String = to_login
        .query_pairs()
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert!(back.contains("prompt=consent"), "{back}");
    assert!(
        !back.contains("login%20") && !back.contains("prompt=login"),
        "{back}"
    );

    // The page names the app, the tenant and what the app receives.
    let (status, html) = authorize(&server, &b, &open, BOB).await.unwrap_err();
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("Share your details with Staff directory?"),
        "{html}"
    );
    assert!(html.contains("An identifier for you"), "{html}");
    let csrf = field(&html, "csrf_token");
    let return_to = unescape(&field(&html, "return_to"));
    assert!(return_to.starts_with("/authorize?"), "{return_to}");
    let post = |form: Vec<(&'static str, String)>| {
        let b = b.clone();
        let url = server.url("/consent");
        async move { b.post(url).form(&form).send().await.unwrap() }
    };

    // A forged form, or one that resumes no authorization request, changes nothing.
    let forged = post(vec![
        ("csrf_token", "forged".into()),
        ("return_to", return_to.clone()),
        ("decision", "allow".into()),
    ])
    .await;
    assert_eq!(forged.status(), 403);
    let elsewhere = post(vec![
        ("csrf_token", csrf.clone()),
        ("return_to", "/portal".into()),
        ("decision", "allow".into()),
    ])
    .await;
    assert_eq!(elsewhere.status(), 400);
    let undecided = post(vec![
        ("csrf_token", csrf.clone()),
        ("return_to", return_to.clone()),
    ])
    .await;
    assert_eq!(undecided.status(), 400);
    assert_eq!(events(&server, "consent.granted").await, 0);

    // Refusing: the app hears access_denied with its state and TechPass's issuer.
    let denied = post(vec![
        ("csrf_token", csrf.clone()),
        ("return_to", return_to.clone()),
        ("decision", "deny".into()),
    ])
    .await;
    let q = told(&see_other(&denied));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st");
    assert_eq!(q["iss"], server.base);
    assert_eq!(events(&server, "consent.denied").await, 1);

    // Not remembered: asked again; allowing resumes the request, which issues the code.
    let (status, _) = authorize(&server, &b, &open, BOB).await.unwrap_err();
    assert_eq!(status, 200);
    let allowed = post(vec![
        ("csrf_token", csrf.clone()),
        ("return_to", return_to.clone()),
        ("decision", "allow".into()),
    ])
    .await;
    let back = see_other(&allowed);
    assert_eq!(back, return_to);
    let resumed = b.get(server.url(&back)).send().await.unwrap();
    let q = told(&see_other(&resumed));
    let issued = tokens(&server, &open, &secret, &q["code"]).await;
    let refresh_token = issued["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(events(&server, "consent.granted").await, 1);

    // Remembered; `prompt=consent` asks again, and its way back does not ask a third time.
    authorize(&server, &b, &open, BOB)
        .await
        .expect("no second consent page");
    let again = b
        .get(format!(
            "{}&prompt=consent",
            authorize_url(&server, &open, BOB)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let html = again.text().await.unwrap();
    let forced_return = unescape(&field(&html, "return_to"));
    assert!(!forced_return.contains("prompt"), "{forced_return}");

    // The account page lists it; withdrawing asks first, then ends the app's refresh tokens.
    let account = b.get(server.url("/portal")).send().await.unwrap();
    let html = account.text().await.unwrap();
    assert!(html.contains("Apps you consented to"), "{html}");
    assert!(html.contains("Staff directory"), "{html}");
    let withdraw = format!("/portal/consents/{open}/withdraw");
    let asked = b
        .post(server.url(&withdraw))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    assert!(asked
        .text()
        .await
        .unwrap()
        .contains("Withdraw your consent to Staff directory?"));
    let (status, rotated) = refresh(&server, &open, &secret, &refresh_token).await;
    assert_eq!(status, 200, "{rotated}");
    let rotated = rotated["refresh_token"].as_str().unwrap().to_string();
    let done = b
        .post(server.url(&withdraw))
        .form(&[("csrf_token", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(see_other(&done), "/portal?done=consent-withdrawn");
    let (status, body) = refresh(&server, &open, &secret, &rotated).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(events(&server, "consent.revoked").await, 1);
    let (status, _) = authorize(&server, &b, &open, BOB).await.unwrap_err();
    assert_eq!(status, 200, "asked again after withdrawing");
    server.stop().await;
}

crate::both_backends!(an_officer_outside_the_tenant_consents_once_at_an_open_app,);
