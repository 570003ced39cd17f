//! Sessions told apart and ended one at a time (issue 16 item 5): each session shows its
//! browser, the address it signed in from and the apps it signed in to; the person ends one
//! (that browser is signed out, its apps told, the others untouched), as does a platform admin
//! from the person's page (tenants, groups, sessions, recent events). CSRF, another person's
//! session, an unknown one and a non-admin are refused; every end is audited.

use std::time::Duration;

use techpass::tenancy::{self, Actor};
use techpass_store::testing::Backend;

use crate::support::{form_field, see_other, unescape_html, TestServer};
use crate::tenancy::{approved_tenant, authorize, signed_in, start_with_clock, user};

const CHROME_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
const FIREFOX_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0";

fn browser_as(user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .user_agent(user_agent)
        .build()
        .unwrap()
}

async fn page(b: &reqwest::Client, server: &TestServer, path: &str) -> (u16, String) {
    let r = b.get(server.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    (status, unescape_html(&r.text().await.unwrap()))
}

/// The end-session form actions of a page, in table order.
fn end_actions(html: &str) -> Vec<String> {
    html.split("action=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|a| a.ends_with("/end"))
        .map(String::from)
        .collect()
}

/// The end-session action of the table row that shows `browser`.
fn end_action_of(html: &str, browser: &str) -> String {
    let row = html
        .split("<tr>")
        .find(|row| row.contains(browser) && row.contains("/end\""))
        .unwrap_or_else(|| panic!("no session row of {browser}: {html}"));
    end_actions(row).remove(0)
}

async fn ended_events(server: &TestServer) -> Vec<techpass_store::AuditRecord> {
    server
        .state
        .store
        .list_audit(&techpass_store::AuditFilter {
            event: Some("session.ended".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn sessions_are_told_apart_and_ended_one_at_a_time(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(backend, "e2e::sessions").await else {
        return;
    };
    let laptop = browser_as(CHROME_LINUX);
    let desktop = browser_as(FIREFOX_WINDOWS);
    let alice = signed_in(&server, &laptop, "alice", "alice_tan@tech.gov.sg").await;
    signed_in(&server, &desktop, "alice", "alice_tan@tech.gov.sg").await;
    // The desktop signs in to an app: its session lists it.
    let wiki = approved_tenant(&server, &alice, "wiki").await;
    let app = tenancy::apps::create(
        &server.state,
        &user(&alice),
        &wiki,
        tenancy::apps::AppSpec {
            name: "Team wiki".into(),
            homepage: None,
            redirect_uris: vec![crate::provider::APP_CALLBACK.into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            confidential: true,
            grant_types: vec!["authorization_code".into()],
            access_policy: Some(techpass_domain::client::AccessPolicy::Members),
            user_assignment_required: None,
            id_token_signed_response_alg: None,
            access_token_signed_response_alg: None,
        },
    )
    .await
    .unwrap();
    let code = authorize(&server, &desktop, &app.client_id, "alice_tan@tech.gov.sg")
        .await
        .expect("the admin signs in to her app");
    crate::tenancy::tokens(
        &server,
        &app.client_id,
        app.client_secret.as_ref().unwrap(),
        &code,
    )
    .await;

    // Her account page, from the laptop: both sessions, told apart.
    let (status, html) = page(&laptop, &server, "/portal").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("You have 2 active TechPass sessions"),
        "{html}"
    );
    assert!(
        html.contains("Chrome on Linux</span> <strong>(this browser)</strong>"),
        "{html}"
    );
    assert!(html.contains("Firefox on Windows"), "{html}");
    assert!(html.contains("<td>127.0.0.1</td>"), "{html}");
    assert!(
        html.contains("<td>Team wiki</td>"),
        "the desktop's app: {html}"
    );
    assert_eq!(end_actions(&html).len(), 2, "{html}");
    let desktop_end = end_action_of(&html, "Firefox on Windows");
    let csrf = form_field(&html, "csrf_token");

    // Refused: no CSRF token; an unknown session; another person's session through his own
    // page (Bob has no such session).
    let forged = laptop.post(server.url(&desktop_end)).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    let unknown = laptop
        .post(server.url("/portal/sessions/AAAAAAAAAAAAAAAAAAAAAA/end"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let bob_browser = browser_as(CHROME_LINUX);
    signed_in(&server, &bob_browser, "bob", "bob_lim@hdb.gov.sg").await;
    let (_, bob_page) = page(&bob_browser, &server, "/portal").await;
    let bobs = bob_browser
        .post(server.url(&desktop_end))
        .form(&[("csrf_token", form_field(&bob_page, "csrf_token").as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(bobs.status(), 404, "not his session");
    assert!(ended_events(&server).await.is_empty());

    // Alice ends the desktop's session from the laptop: the desktop is signed out, the laptop
    // is not, and the app's grant of that session is revoked.
    let done = laptop
        .post(server.url(&desktop_end))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(see_other(&done), "/portal?done=session-ended");
    let (status, _) = page(&desktop, &server, "/portal").await;
    assert_eq!(status, 303, "the desktop must sign in again");
    let (status, html) = page(&laptop, &server, "/portal?done=session-ended").await;
    assert_eq!(status, 200);
    assert!(html.contains("The session was ended"), "{html}");
    assert!(
        html.contains("You have 1 active TechPass session."),
        "{html}"
    );
    let events = ended_events(&server).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor.as_deref(), Some(alice.as_str()));
    assert!(
        events[0].details.contains("Firefox/140.0"),
        "{}",
        events[0].details
    );

    // A platform admin sees Alice's page and ends her laptop's session; Bob may not.
    let (status, _) = page(
        &bob_browser,
        &server,
        &format!("/portal/admin/users/{alice}"),
    )
    .await;
    assert_eq!(status, 403);
    let bob_user = server
        .state
        .store
        .find_users_by_email("bob_lim@hdb.gov.sg")
        .await
        .unwrap()
        .remove(0);
    tenancy::tenants::grant_platform_admin(&server.state, &Actor::Operator, &bob_user)
        .await
        .unwrap();
    let (status, html) = page(&bob_browser, &server, "/portal/admin/users").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("href=\"/portal/admin/users/{alice}\"")),
        "{html}"
    );
    let (status, html) = page(
        &bob_browser,
        &server,
        &format!("/portal/admin/users/{alice}"),
    )
    .await;
    assert_eq!(status, 200, "{html}");
    for expected in [
        "alice_tan@tech.gov.sg",
        "Public officer",
        "Tenant wiki",
        "Admin",
        "Chrome on Linux",
        "session.ended",
        "registration",
    ] {
        assert!(html.contains(expected), "{expected}: {html}");
    }
    let ends = end_actions(&html);
    assert_eq!(ends.len(), 1, "{html}");
    assert!(ends[0].starts_with(&format!("/portal/admin/users/{alice}/sessions/")));
    let done = bob_browser
        .post(server.url(&ends[0]))
        .form(&[("csrf_token", form_field(&html, "csrf_token").as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        see_other(&done),
        format!("/portal/admin/users/{alice}?done=session-ended")
    );
    let (status, _) = page(&laptop, &server, "/portal").await;
    assert_eq!(status, 303, "the laptop is signed out too");
    let events = ended_events(&server).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].actor.as_deref(), Some(bob_user.id.as_str()));
    assert!(events[0].details.contains("a platform admin"));
    // Ending it again: nothing to end.
    let again = bob_browser
        .post(server.url(&ends[0]))
        .form(&[("csrf_token", form_field(&html, "csrf_token").as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);

    // The platform admin role, from the person's page: another admin grants it after a
    // confirmation and takes it away; nobody changes their own; only registered officers.
    let role = format!("/portal/admin/users/{alice}/platform-admin");
    let bob_csrf = form_field(&html, "csrf_token");
    assert!(html.contains("Make platform admin"), "{html}");
    let post_role = |path: String, form: Vec<(&'static str, String)>| {
        bob_browser.post(server.url(&path)).form(&form).send()
    };
    let asked = post_role(
        role.clone(),
        vec![("csrf_token", bob_csrf.clone()), ("grant", "yes".into())],
    )
    .await
    .unwrap();
    assert_eq!(asked.status(), 200);
    assert!(unescape_html(&asked.text().await.unwrap())
        .contains("Make alice_tan@tech.gov.sg a platform admin?"));
    assert!(!server.state.store.is_platform_admin(&alice).await.unwrap());
    let granted = post_role(
        role.clone(),
        vec![
            ("csrf_token", bob_csrf.clone()),
            ("grant", "yes".into()),
            ("confirm", "yes".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        see_other(&granted),
        format!("/portal/admin/users/{alice}?done=platform-admin-granted")
    );
    assert!(server.state.store.is_platform_admin(&alice).await.unwrap());
    let bad = post_role(
        role.clone(),
        vec![("csrf_token", bob_csrf.clone()), ("grant", "maybe".into())],
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    let own = post_role(
        format!("/portal/admin/users/{}/platform-admin", bob_user.id),
        vec![
            ("csrf_token", bob_csrf.clone()),
            ("grant", "no".into()),
            ("confirm", "yes".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(own.status(), 403, "not one's own role");
    let (_, own_page) = page(
        &bob_browser,
        &server,
        &format!("/portal/admin/users/{}", bob_user.id),
    )
    .await;
    assert!(
        own_page.contains("changed by another platform admin"),
        "{own_page}"
    );
    // A vendor who signed in but was never invited: refused.
    let dave_browser = browser_as(FIREFOX_WINDOWS);
    let done = crate::signin::sign_in_via(
        &dave_browser,
        &server.base,
        "upstream=dev-vendors&return_to=%2F",
        "dave",
    )
    .await;
    assert_eq!(done.status(), 303);
    let dave = server
        .state
        .store
        .find_users_by_email("dave@vendorco.example")
        .await
        .unwrap()
        .remove(0);
    let refused = post_role(
        format!("/portal/admin/users/{}/platform-admin", dave.id),
        vec![
            ("csrf_token", bob_csrf.clone()),
            ("grant", "yes".into()),
            ("confirm", "yes".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(!server
        .state
        .store
        .is_platform_admin(&dave.id)
        .await
        .unwrap());

    // The people list filters by status and account type (a registered officer is "Active").
    let listed =
        |html: &str, id: &str| html.contains(&format!("href=\"/portal/admin/users/{id}\""));
    for (query, alice_in, dave_in) in [
        ("type=vendor", false, true),
        ("status=active&type=public_officer", true, false),
        ("status=unregistered", false, true),
        ("status=suspended", false, false),
        ("q=alice&status=active", true, false),
    ] {
        let (status, html) = page(
            &bob_browser,
            &server,
            &format!("/portal/admin/users?{query}"),
        )
        .await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(listed(&html, &alice), alice_in, "{query}: {html}");
        assert_eq!(listed(&html, &dave.id), dave_in, "{query}: {html}");
    }
    for bad in ["status=bogus", "type=robot"] {
        let (status, _) = page(&bob_browser, &server, &format!("/portal/admin/users?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
    }
    let revoked = post_role(
        role.clone(),
        vec![
            ("csrf_token", bob_csrf.clone()),
            ("grant", "no".into()),
            ("confirm", "yes".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        see_other(&revoked),
        format!("/portal/admin/users/{alice}?done=platform-admin-revoked")
    );
    assert!(!server.state.store.is_platform_admin(&alice).await.unwrap());
    let audited = server
        .state
        .store
        .list_audit(&techpass_store::AuditFilter {
            subject: Some(alice.clone()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    for event in ["platform_admin.granted", "platform_admin.revoked"] {
        assert!(
            audited
                .iter()
                .any(|e| e.event == event && e.actor.as_deref() == Some(bob_user.id.as_str())),
            "{event}"
        );
    }
    server.stop().await;
}

/// A person sees the apps holding their grants and takes one's access away: its refresh token
/// stops working at once, after a confirmation; audited.
async fn a_person_revokes_an_apps_access(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(backend, "e2e::revoke_app").await else {
        return;
    };
    let b = browser_as(CHROME_LINUX);
    let alice = signed_in(&server, &b, "alice", "alice_tan@tech.gov.sg").await;
    let (status, html) = page(&b, &server, "/portal").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("No app holds access to your account now."),
        "{html}"
    );
    let wiki = approved_tenant(&server, &alice, "wiki").await;
    let app = tenancy::apps::create(
        &server.state,
        &user(&alice),
        &wiki,
        tenancy::apps::AppSpec {
            name: "Team wiki".into(),
            homepage: None,
            redirect_uris: vec![crate::provider::APP_CALLBACK.into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            confidential: true,
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            access_policy: Some(techpass_domain::client::AccessPolicy::Members),
            user_assignment_required: None,
            id_token_signed_response_alg: None,
            access_token_signed_response_alg: None,
        },
    )
    .await
    .unwrap();
    let (client_id, secret) = (app.client_id, app.client_secret.unwrap());
    let code = authorize(&server, &b, &client_id, "alice_tan@tech.gov.sg")
        .await
        .expect("a code");
    let tokens = crate::tenancy::tokens(&server, &client_id, &secret, &code).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();

    let (_, html) = page(&b, &server, "/portal").await;
    assert!(html.contains("While you are away"), "{html}");
    let revoke = format!("/portal/apps/{client_id}/revoke");
    assert!(html.contains(&format!("action=\"{revoke}\"")), "{html}");
    let csrf = form_field(&html, "csrf_token");
    let asked = b
        .post(server.url(&revoke))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200, "a confirmation first");
    assert!(unescape_html(&asked.text().await.unwrap()).contains("Revoke the access of"));
    let (status, rotated) =
        crate::tenancy::refresh(&server, &client_id, &secret, &refresh_token).await;
    assert_eq!(
        status, 200,
        "nothing revoked before the confirmation: {rotated}"
    );
    let rotated = rotated["refresh_token"].as_str().unwrap().to_string();
    let (_, html) = page(&b, &server, "/portal").await;
    let csrf = form_field(&html, "csrf_token");
    let done = b
        .post(server.url(&revoke))
        .form(&[("csrf_token", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(see_other(&done), "/portal?done=app-access-revoked");
    let (status, body) = crate::tenancy::refresh(&server, &client_id, &secret, &rotated).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (_, html) = page(&b, &server, "/portal?done=app-access-revoked").await;
    assert!(
        html.contains("No app holds access to your account now."),
        "{html}"
    );
    let again = b
        .post(server.url(&revoke))
        .form(&[("csrf_token", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    let events = server
        .state
        .store
        .list_audit(&techpass_store::AuditFilter {
            event: Some("grant.revoked".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].details.contains(&client_id));
    server.stop().await;
}

crate::both_backends!(
    sessions_are_told_apart_and_ended_one_at_a_time,
    a_person_revokes_an_apps_access,
);
