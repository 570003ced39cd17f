//! The terms of use and privacy policy (issue 16 item 8): served at `/terms` from
//! configuration, versioned; a person who accepted an earlier version accepts the current one
//! before /authorize issues a code (`interaction_required` with `prompt=none`) and at their
//! next sign-in, on a page with a way back to the app; the acceptance is a CSRF-checked form,
//! recorded and audited, and a refused form changes nothing.

use techpass::tenancy;
use techpass::tenancy::apps::AppSpec;
use techpass_domain::client::AccessPolicy;
use techpass_store::testing::Backend;

use crate::provider::APP_CALLBACK;
use crate::signin::sign_in_via;
use crate::support::{browser, client, form_field, see_other, TestServer};
use crate::tenancy::{
    approved_tenant, authorize, authorize_url, signed_in, start_with_clock, user,
};

const ALICE: &str = "alice_tan@tech.gov.sg";

async fn recorded_version(server: &TestServer, id: &str) -> Option<String> {
    server
        .state
        .store
        .get_user(id)
        .await
        .unwrap()
        .unwrap()
        .terms_version
}

async fn accepted_events(server: &TestServer) -> Vec<serde_json::Value> {
    server
        .state
        .store
        .list_audit(&techpass_store::AuditFilter {
            event: Some("terms.accepted".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| serde_json::from_str(&e.details).unwrap())
        .collect()
}

async fn a_new_version_of_the_terms_is_accepted_before_going_on(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(backend, "e2e::terms").await else {
        return;
    };
    let current = server.state.terms.version.clone();

    // The document, for anyone, linked from every page.
    let page = client().get(server.url("/terms")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<h1>Terms of use and privacy policy</h1>"),
        "{html}"
    );
    assert!(html.contains(&format!("Version {current}")), "{html}");
    assert!(html.contains(r#"<a href="/terms">Terms of use and privacy</a>"#));

    let a = browser();
    let alice = signed_in(&server, &a, "alice", ALICE).await;
    assert_eq!(
        recorded_version(&server, &alice).await,
        Some(current.clone())
    );
    let wiki = approved_tenant(&server, &alice, "wiki").await;
    let app = tenancy::apps::create(
        &server.state,
        &user(&alice),
        &wiki,
        AppSpec {
            name: "Team wiki".into(),
            homepage: None,
            redirect_uris: vec![APP_CALLBACK.into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            confidential: true,
            grant_types: vec!["authorization_code".into()],
            access_policy: Some(AccessPolicy::Members),
            user_assignment_required: None,
            id_token_signed_response_alg: None,
            access_token_signed_response_alg: None,
        },
    )
    .await
    .unwrap()
    .client_id;
    authorize(&server, &a, &app, ALICE)
        .await
        .expect("current terms: a code at once");

    // Alice accepted an earlier version (the operator has since published a new one).
    assert!(server
        .state
        .store
        .accept_terms(&alice, "2020-01")
        .await
        .unwrap());

    // prompt=none cannot show the page: the app hears interaction_required.
    let silent = a
        .get(format!(
            "{}&prompt=none",
            authorize_url(&server, &app, ALICE)
        ))
        .send()
        .await
        .unwrap();
    let to = see_other(&silent);
    assert!(to.starts_with(APP_CALLBACK), "{to}");
    assert!(to.contains("error=interaction_required"), "{to}");

    // Otherwise /authorize sends her to accept, and back.
    let asked = a
        .get(authorize_url(&server, &app, ALICE))
        .send()
        .await
        .unwrap();
    let to = see_other(&asked);
    assert!(
        to.starts_with("/terms/accept?return_to=%2Fauthorize%3F"),
        "{to}"
    );
    let page = a.get(server.url(&to)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("The terms of use have changed"), "{html}");
    assert!(html.contains("accepted version 2020-01"), "{html}");
    assert!(
        html.contains(&format!("Version {current} replaces it")),
        "{html}"
    );
    assert!(html.contains("Not now: return to Team wiki"), "{html}");
    assert!(
        html.contains("<h2>What TechPass keeps about you</h2>"),
        "{html}"
    );
    let csrf = form_field(&html, "csrf_token");
    let return_to = form_field(&html, "return_to");
    assert!(return_to.starts_with("/authorize?"), "{return_to}");

    // Refused forms change nothing: no CSRF token, the box not ticked, a stale version.
    let post =
        |form: Vec<(&'static str, String)>| a.post(server.url("/terms/accept")).form(&form).send();
    let forged = post(vec![
        ("accept_terms", "yes".into()),
        ("terms_version", current.clone()),
        ("return_to", return_to.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(forged.status(), 403);
    let unticked = post(vec![
        ("csrf_token", csrf.clone()),
        ("terms_version", current.clone()),
        ("return_to", return_to.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(unticked.status(), 400);
    assert!(unticked
        .text()
        .await
        .unwrap()
        .contains("Please tick the box to accept"));
    let stale = post(vec![
        ("csrf_token", csrf.clone()),
        ("accept_terms", "yes".into()),
        ("terms_version", "2020-06".into()),
        ("return_to", return_to.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(stale.status(), 400);
    assert!(stale.text().await.unwrap().contains("changed again"));
    assert_eq!(
        recorded_version(&server, &alice).await.as_deref(),
        Some("2020-01")
    );
    assert!(accepted_events(&server).await.is_empty());

    // Accepted: recorded, audited, and on to the app with a code.
    let accepted = post(vec![
        ("csrf_token", csrf.clone()),
        ("accept_terms", "yes".into()),
        ("terms_version", current.clone()),
        ("return_to", return_to.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(see_other(&accepted), return_to);
    assert_eq!(
        recorded_version(&server, &alice).await,
        Some(current.clone())
    );
    let events = accepted_events(&server).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["previous_version"], "2020-01");
    assert_eq!(events[0]["terms_version"], current.as_str());
    let code = a.get(server.url(&return_to)).send().await.unwrap();
    let to = see_other(&code);
    assert!(to.starts_with(APP_CALLBACK) && to.contains("code="), "{to}");
    // Nothing more to accept: the page sends her on.
    let again = a
        .get(server.url("/terms/accept?return_to=%2Fportal"))
        .send()
        .await
        .unwrap();
    assert_eq!(see_other(&again), "/portal");

    // At a fresh sign-in too (the portal, no app): accept first, then where she was going.
    assert!(server
        .state
        .store
        .accept_terms(&alice, "2020-01")
        .await
        .unwrap());
    let b = browser();
    let done = sign_in_via(
        &b,
        &server.base,
        "upstream=dev-wog&return_to=%2Fportal",
        "alice",
    )
    .await;
    assert_eq!(see_other(&done), "/terms/accept?return_to=%2Fportal");
    // Not signed in: sign in first, then this page.
    let stranger = client()
        .get(server.url("/terms/accept?return_to=%2Fportal"))
        .send()
        .await
        .unwrap();
    let to = see_other(&stranger);
    assert!(
        to.starts_with("/login?return_to=%2Fterms%2Faccept%3Freturn_to%3D%252Fportal"),
        "{to}"
    );
    server.stop().await;
}

crate::both_backends!(a_new_version_of_the_terms_is_accepted_before_going_on,);
