//! Per-tenant access (issue 13 item 3): a vendor reaches only the tenants that invited them, each
//! until that tenant's invitation ends, whatever another tenant's invitation says; a tenant
//! admin assigns only the tenant's members (vendors) or officers, and cannot look up or review
//! anyone else.

use techpass::tenancy::access::Principal;
use techpass::tenancy::apps::AppSpec;
use techpass::tenancy::invitations::NewInvitation;
use techpass::tenancy::{self, Actor, TenancyError};
use techpass_domain::client::AccessPolicy;
use techpass_store::testing::Backend;
use techpass_store::AssignmentRecord;

use crate::provider::APP_CALLBACK;
use crate::support::{browser, see_other, TestServer};
use crate::tenancy::{
    accept, approved_tenant, authorize, authorize_url, invitation_link, open_link, refresh,
    signed_in, start_with_clock, tokens, user, T0,
};

const DAVE: &str = "dave@vendorco.example";

/// An app of `tenant_id` that does not require assignment: (client id, secret).
async fn open_app(server: &TestServer, actor: &Actor, tenant_id: &str) -> (String, String) {
    let created = tenancy::apps::create(
        &server.state,
        actor,
        tenant_id,
        AppSpec {
            name: "Open app".into(),
            homepage: None,
            redirect_uris: vec![APP_CALLBACK.into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            confidential: true,
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            access_policy: Some(AccessPolicy::Officers),
            user_assignment_required: None,
            id_token_signed_response_alg: None,
            access_token_signed_response_alg: None,
        },
    )
    .await
    .unwrap();
    (created.client_id, created.client_secret.unwrap())
}

/// `admin` invites Dave to `tenant_id` until `ends`, and Dave accepts in `b`.
async fn dave_joins(
    server: &TestServer,
    b: &reqwest::Client,
    admin: &Actor,
    tenant_id: &str,
    ends: i64,
) {
    tenancy::invitations::invite(
        &server.state,
        admin,
        tenant_id,
        NewInvitation {
            email: DAVE.into(),
            access_ends_at: Some(ends),
        },
    )
    .await
    .unwrap();
    let link = invitation_link(server, DAVE).await;
    let page = open_link(server, b, &link, "dave").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert_eq!(accept(server, b, &html).await.status(), 200);
}

async fn dave_id(server: &TestServer) -> String {
    server
        .state
        .store
        .find_users_by_email(DAVE)
        .await
        .unwrap()
        .remove(0)
        .id
}

/// The reason of the newest `token.denied` audit event, with its tenant.
async fn last_denial(server: &TestServer) -> (Option<String>, Option<String>) {
    let denials = server
        .state
        .store
        .list_audit(&techpass_store::AuditFilter {
            event: Some("token.denied".into()),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let d = denials.first().expect("a denial in the audit log");
    (d.reason.clone(), d.tenant.clone())
}

async fn a_vendor_reaches_only_the_tenants_that_invited_them(backend: Backend) {
    let Some((server, clock)) = start_with_clock(backend, "e2e::vendor_per_tenant").await else {
        return;
    };
    let alice = signed_in(&server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    let bob = signed_in(&server, &browser(), "bob", "bob_lim@hdb.gov.sg").await;
    let wiki = approved_tenant(&server, &alice, "wiki").await;
    let ci = approved_tenant(&server, &bob, "ci").await;
    let (wiki_app, _) = open_app(&server, &user(&alice), &wiki).await;
    let (ci_app, ci_secret) = open_app(&server, &user(&bob), &ci).await;

    // Dave is invited by the wiki only, for two hours.
    let b = browser();
    dave_joins(&server, &b, &user(&alice), &wiki, T0 + 7200).await;
    authorize(&server, &b, &wiki_app, DAVE)
        .await
        .expect("the wiki's own app lets its vendor in");

    // The CI tenant never invited him: a page that says so, and the app's way back carries
    // access_denied; audited under the CI tenant.
    let (status, body) = authorize(&server, &b, &ci_app, DAVE).await.unwrap_err();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not_a_member"), "{body}");
    assert!(body.contains("error=access_denied"), "{body}");
    assert_eq!(
        last_denial(&server).await,
        (Some("not_a_member".into()), Some(ci.clone()))
    );
    // prompt=none: straight back to the app with the error.
    let silent = b
        .get(format!(
            "{}&prompt=none",
            authorize_url(&server, &ci_app, DAVE)
        ))
        .send()
        .await
        .unwrap();
    let to = see_other(&silent);
    assert!(to.starts_with(APP_CALLBACK), "{to}");
    assert!(to.contains("error=access_denied"), "{to}");
    assert!(to.contains("not_a_member"), "{to}");
    assert!(!to.contains("code="), "{to}");

    // The CI tenant invites him too, for one hour: he gets in and holds a refresh token.
    // A second later, so "the newest email" is the new invitation's.
    clock.advance(1);
    dave_joins(&server, &b, &user(&bob), &ci, T0 + 3600).await;
    let code = authorize(&server, &b, &ci_app, DAVE).await.unwrap();
    let t = tokens(&server, &ci_app, &ci_secret, &code).await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let (status, t2) = refresh(&server, &ci_app, &ci_secret, &rt).await;
    assert_eq!(status, 200, "{t2}");
    let rt = t2["refresh_token"].as_str().unwrap().to_string();
    let account = server
        .state
        .store
        .get_user(&dave_id(&server).await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        account.access_ends_at,
        Some(T0 + 7200),
        "the account-wide date is the later invitation's"
    );

    // The CI invitation ends; the wiki's still runs. The CI refresh is refused, and so is a new
    // sign-in at CI's app; the wiki's app still lets him in.
    clock.set(techpass_domain::Timestamp(T0 + 3601));
    let (status, refused) = refresh(&server, &ci_app, &ci_secret, &rt).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
    assert_eq!(
        last_denial(&server).await,
        (Some("membership_ended".into()), Some(ci.clone()))
    );
    let (status, body) = authorize(&server, &b, &ci_app, DAVE).await.unwrap_err();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("membership_ended"), "{body}");
    authorize(&server, &b, &wiki_app, DAVE)
        .await
        .expect("the wiki's invitation still runs");
    server.stop().await;
}

async fn tenant_admins_assign_only_their_members_and_officers(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(backend, "e2e::assign_members_only").await else {
        return;
    };
    let state = &server.state;
    let alice = signed_in(&server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    let bob = signed_in(&server, &browser(), "bob", "bob_lim@hdb.gov.sg").await;
    let wiki = approved_tenant(&server, &alice, "wiki").await;
    let ci = approved_tenant(&server, &bob, "ci").await;
    let (ci_app, _) = crate::tenancy::tenant_app(&server, &user(&bob), &ci).await;
    let (wiki_app, _) = crate::tenancy::tenant_app(&server, &user(&alice), &wiki).await;
    let b = browser();
    dave_joins(&server, &b, &user(&alice), &wiki, T0 + 7200).await;
    let dave = dave_id(&server).await;
    let bob_admin = user(&bob);

    // Bob (CI) cannot assign the wiki's vendor, by email or by id: to him Dave does not exist.
    for who in [DAVE.to_string(), dave.clone()] {
        let refused =
            tenancy::access::assign(state, &bob_admin, &ci, &ci_app, &Principal::User(who)).await;
        assert!(
            matches!(refused, Err(TenancyError::NotFound("user"))),
            "{refused:?}"
        );
    }
    let unknown = tenancy::access::assign(
        state,
        &bob_admin,
        &ci,
        &ci_app,
        &Principal::User("nobody@vendorco.example".into()),
    )
    .await;
    assert!(
        matches!(unknown, Err(TenancyError::NotFound("user"))),
        "the same answer as for nobody: {unknown:?}"
    );
    // Nor put him in a group or give him a role.
    let group = tenancy::access::create_group(state, &bob_admin, &ci, "devs")
        .await
        .unwrap();
    let grouped =
        tenancy::access::set_membership(state, &bob_admin, &ci, &group.id, DAVE, true).await;
    assert!(
        matches!(grouped, Err(TenancyError::NotFound("user"))),
        "{grouped:?}"
    );
    // An officer can be assigned (the current rule for officers).
    tenancy::access::assign(
        state,
        &bob_admin,
        &ci,
        &ci_app,
        &Principal::User("alice_tan@tech.gov.sg".into()),
    )
    .await
    .unwrap();
    // The wiki's admin assigns her own vendor.
    tenancy::access::assign(
        state,
        &user(&alice),
        &wiki,
        &wiki_app,
        &Principal::User(DAVE.into()),
    )
    .await
    .unwrap();

    // An assignment made before the rule (stored directly): the CI access review does not show
    // Dave's name, status or last sign-in, and the gate still refuses him.
    state
        .store
        .assign(&AssignmentRecord {
            client_id: ci_app.clone(),
            principal_type: techpass_store::PRINCIPAL_USER.into(),
            principal_id: dave.clone(),
            assigned_at: T0,
            assigned_by: "legacy".into(),
        })
        .await
        .unwrap();
    let review = tenancy::access::review(state, &bob_admin, &ci, &ci_app)
        .await
        .unwrap();
    assert!(review.iter().all(|e| e.user_id != dave), "{review:?}");
    assert!(review.iter().any(|e| e.user_id == alice), "{review:?}");
    let wiki_review = tenancy::access::review(state, &user(&alice), &wiki, &wiki_app)
        .await
        .unwrap();
    assert!(wiki_review.iter().any(|e| e.user_id == dave));
    let (status, body) = authorize(&server, &b, &ci_app, DAVE).await.unwrap_err();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not_a_member"), "{body}");

    // Bob can take the old assignment away by the id the assignment list shows, but naming
    // Dave by email still finds nobody.
    let by_email = tenancy::access::unassign(
        state,
        &bob_admin,
        &ci,
        &ci_app,
        &Principal::User(DAVE.into()),
    )
    .await;
    assert!(
        matches!(by_email, Err(TenancyError::NotFound("user"))),
        "{by_email:?}"
    );
    // The portal's review and access pages do not name him either.
    let bob_browser = browser();
    signed_in(&server, &bob_browser, "bob", "bob_lim@hdb.gov.sg").await;
    for path in [techpass::paths::REVIEW, techpass::paths::ACCESS] {
        let path = techpass::paths::fill(path, &[("tenant_id", &ci), ("client_id", &ci_app)]);
        let page = bob_browser.get(server.url(&path)).send().await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        let page = page.text().await.unwrap();
        assert!(page.contains("alice_tan@tech.gov.sg"), "{path}: {page}");
        assert!(!page.contains(DAVE), "{path} does not name Dave: {page}");
    }
    // Bob types Dave's address on the access form: the form's problem (400), worded exactly as
    // for an address nobody has, not a server error.
    let access_path = techpass::paths::fill(
        techpass::paths::ACCESS,
        &[("tenant_id", &ci), ("client_id", &ci_app)],
    );
    let html = bob_browser
        .get(server.url(&access_path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = html
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let assign_path = techpass::paths::fill(
        techpass::paths::ASSIGN,
        &[("tenant_id", &ci), ("client_id", &ci_app)],
    );
    let mut answers = Vec::new();
    for who in [DAVE, "nobody@vendorco.example"] {
        let r = bob_browser
            .post(server.url(&assign_path))
            .form(&[
                ("csrf_token", token.as_str()),
                ("type", "user"),
                ("who", who),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{who}");
        answers.push(r.text().await.unwrap().replace(who, "ADDRESS"));
    }
    assert_eq!(answers[0], answers[1], "Dave is answered as nobody");
    // The old assignment can be taken away by the id the assignment list shows.
    tenancy::access::unassign(
        state,
        &bob_admin,
        &ci,
        &ci_app,
        &Principal::User(dave.clone()),
    )
    .await
    .unwrap();
    let assigned = tenancy::access::assignments(state, &bob_admin, &ci, &ci_app)
        .await
        .unwrap();
    assert!(assigned.iter().all(|a| a.principal_id != dave));

    // Bob records that the CI app's access review is complete: who, when, who had access.
    let review_path = techpass::paths::fill(
        techpass::paths::REVIEW,
        &[("tenant_id", &ci), ("client_id", &ci_app)],
    );
    let complete = format!("{review_path}/complete");
    let page = bob_browser
        .get(server.url(&review_path))
        .send()
        .await
        .unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("never been reviewed"), "{page}");
    let forged = bob_browser
        .post(server.url(&complete))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "no CSRF token");
    let alice_browser = browser();
    signed_in(&server, &alice_browser, "alice", "alice_tan@tech.gov.sg").await;
    let alice_page = alice_browser
        .get(server.url("/portal"))
        .send()
        .await
        .unwrap();
    let alice_token = crate::support::form_field(&alice_page.text().await.unwrap(), "csrf_token");
    let stranger = alice_browser
        .post(server.url(&complete))
        .form(&[("csrf_token", alice_token.as_str())])
        .send()
        .await
        .unwrap();
    assert!(
        [403, 404].contains(&stranger.status().as_u16()),
        "not her tenant: {}",
        stranger.status()
    );
    let done = bob_browser
        .post(server.url(&complete))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        crate::support::see_other(&done),
        format!("{review_path}?done=review-completed")
    );
    let page = bob_browser
        .get(server.url(&review_path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("by bob_lim@hdb.gov.sg, when 1 person had access"),
        "{page}"
    );
    let events = state
        .store
        .list_audit(&techpass_store::AuditFilter {
            event: Some("access_review.completed".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "only Bob's completion");
    assert_eq!(events[0].actor.as_deref(), Some(bob.as_str()));
    assert_eq!(events[0].tenant.as_deref(), Some(ci.as_str()));
    assert!(events[0].details.contains("alice_tan@tech.gov.sg"));
    assert!(!events[0].details.contains(DAVE));
    server.stop().await;
}

/// Whether introspection by the app answers `active: true` for `token`.
async fn introspect_active(server: &TestServer, app: &str, secret: &str, token: &str) -> bool {
    let r: serde_json::Value = crate::support::client()
        .post(server.url("/introspect"))
        .basic_auth(app, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["active"] == true
}

async fn a_tenant_admin_ends_a_vendor_s_membership_now(backend: Backend) {
    let Some((server, clock)) = start_with_clock(backend, "e2e::end_membership").await else {
        return;
    };
    let state = &server.state;
    let alice = signed_in(&server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    let bob = signed_in(&server, &browser(), "bob", "bob_lim@hdb.gov.sg").await;
    let wiki = approved_tenant(&server, &alice, "wiki").await;
    let ci = approved_tenant(&server, &bob, "ci").await;
    let (wiki_app, wiki_secret) = open_app(&server, &user(&alice), &wiki).await;
    let (ci_app, ci_secret) = open_app(&server, &user(&bob), &ci).await;
    let b = browser();
    dave_joins(&server, &b, &user(&alice), &wiki, T0 + 7200).await;
    let dave = dave_id(&server).await;
    let end = |actor: Actor, tenant: String, who: String, reason: &'static str| async move {
        tenancy::invitations::end_membership(state, &actor, &tenant, &who, reason).await
    };

    // Refusals, with nothing changed: CI's admin on the wiki (not an admin of it); CI's admin
    // on CI, where Dave is not (yet) a member, is answered as for an unknown person; an
    // unknown id; an officer who is no member; no reason.
    let refused = end(user(&bob), wiki.clone(), dave.clone(), "x").await;
    assert!(
        matches!(refused, Err(TenancyError::Forbidden(_))),
        "{refused:?}"
    );
    let not_ours = end(user(&bob), ci.clone(), dave.clone(), "x").await;
    assert!(
        matches!(not_ours, Err(TenancyError::NotFound("member"))),
        "{not_ours:?}"
    );
    let unknown = end(user(&alice), wiki.clone(), "nobody".into(), "x").await;
    assert!(
        matches!(unknown, Err(TenancyError::NotFound("member"))),
        "{unknown:?}"
    );
    let officer = end(user(&alice), wiki.clone(), bob.clone(), "x").await;
    match officer {
        Err(TenancyError::Conflict(m)) => assert!(m.contains("public officer"), "{m}"),
        other => panic!("{other:?}"),
    }
    let no_reason = end(user(&alice), wiki.clone(), dave.clone(), "  ").await;
    assert!(
        matches!(no_reason, Err(TenancyError::Invalid(_))),
        "{no_reason:?}"
    );
    assert_eq!(
        state
            .store
            .membership(&wiki, &dave)
            .await
            .unwrap()
            .unwrap()
            .access_ends_at,
        Some(T0 + 7200)
    );

    // CI invites him too; he holds tokens at both tenants' apps.
    clock.advance(1);
    dave_joins(&server, &b, &user(&bob), &ci, T0 + 7200).await;
    let code = authorize(&server, &b, &wiki_app, DAVE).await.unwrap();
    let wt = tokens(&server, &wiki_app, &wiki_secret, &code).await;
    let wiki_at = wt["access_token"].as_str().unwrap().to_string();
    let wiki_rt = wt["refresh_token"].as_str().unwrap().to_string();
    let code = authorize(&server, &b, &ci_app, DAVE).await.unwrap();
    let ct = tokens(&server, &ci_app, &ci_secret, &code).await;
    let ci_at = ct["access_token"].as_str().unwrap().to_string();
    let ci_rt = ct["refresh_token"].as_str().unwrap().to_string();
    assert!(introspect_active(&server, &wiki_app, &wiki_secret, &wiki_at).await);

    // Alice ends his wiki membership.
    clock.advance(10);
    let ended = end(user(&alice), wiki.clone(), dave.clone(), "contract over")
        .await
        .unwrap();
    let now = T0 + 11;
    assert_eq!(ended.access_ends_at, Some(now));
    assert_eq!(ended.grants_revoked, 1);
    // Kept for the record.
    let kept = state.store.membership(&wiki, &dave).await.unwrap().unwrap();
    assert_eq!(kept.access_ends_at, Some(now));
    let audited = state
        .store
        .list_audit(&techpass_store::AuditFilter {
            event: Some("membership.ended".into()),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let a = audited.first().expect("audited");
    assert_eq!(a.actor.as_deref(), Some(alice.as_str()));
    assert_eq!(
        (a.subject.as_deref(), a.tenant.as_deref()),
        (Some(dave.as_str()), Some(wiki.as_str()))
    );
    assert!(a.details.contains("contract over"), "{}", a.details);

    // At the wiki: the refresh is invalid_grant, introspection inactive, a new sign-in refused.
    let (status, refused) = refresh(&server, &wiki_app, &wiki_secret, &wiki_rt).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
    assert!(!introspect_active(&server, &wiki_app, &wiki_secret, &wiki_at).await);
    let (status, body) = authorize(&server, &b, &wiki_app, DAVE).await.unwrap_err();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("membership_ended"), "{body}");

    // At CI, nothing changed.
    assert!(introspect_active(&server, &ci_app, &ci_secret, &ci_at).await);
    let (status, t) = refresh(&server, &ci_app, &ci_secret, &ci_rt).await;
    assert_eq!(status, 200, "{t}");
    authorize(&server, &b, &ci_app, DAVE)
        .await
        .expect("CI's invitation still runs");
    assert_eq!(
        state
            .store
            .membership(&ci, &dave)
            .await
            .unwrap()
            .unwrap()
            .access_ends_at,
        Some(T0 + 7200)
    );
    server.stop().await;
}

/// The portal's CSRF token on the page at `path`, with the page.
async fn page_and_token(server: &TestServer, b: &reqwest::Client, path: &str) -> (String, String) {
    let html = b
        .get(server.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = html
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token on {path}: {html}"))
        .to_string();
    (html, token)
}

async fn the_portal_ends_a_membership_after_asking(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(backend, "e2e::end_membership_portal").await
    else {
        return;
    };
    let state = &server.state;
    let alice_browser = browser();
    let alice = signed_in(&server, &alice_browser, "alice", "alice_tan@tech.gov.sg").await;
    let bob_browser = browser();
    let bob = signed_in(&server, &bob_browser, "bob", "bob_lim@hdb.gov.sg").await;
    let wiki = approved_tenant(&server, &alice, "wiki").await;
    let ci = approved_tenant(&server, &bob, "ci").await;
    dave_joins(&server, &browser(), &user(&alice), &wiki, T0 + 7200).await;
    let dave = dave_id(&server).await;
    let invitations_path =
        techpass::paths::fill(techpass::paths::INVITATIONS, &[("tenant_id", &wiki)]);
    let end_path = techpass::paths::fill(
        techpass::paths::MEMBER_END,
        &[("tenant_id", &wiki), ("user_id", &dave)],
    );
    let ends_at = || async {
        state
            .store
            .membership(&wiki, &dave)
            .await
            .unwrap()
            .unwrap()
            .access_ends_at
    };

    // The accepted invitation has the button.
    let (html, token) = page_and_token(&server, &alice_browser, &invitations_path).await;
    assert!(html.contains(&end_path.replace('/', "&#x2f;")), "{html}");
    assert!(html.contains("End membership"), "{html}");

    // Without the CSRF token: refused, nothing changed.
    let r = alice_browser
        .post(server.url(&end_path))
        .form(&[("reason", "contract over"), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(ends_at().await, Some(T0 + 7200));

    // Another tenant's admin: not an admin of the wiki (403); at his own tenant Dave is
    // nobody (404). No 500, nothing changed.
    let (_, bob_token) = page_and_token(
        &server,
        &bob_browser,
        &techpass::paths::fill(techpass::paths::INVITATIONS, &[("tenant_id", &ci)]),
    )
    .await;
    let r = bob_browser
        .post(server.url(&end_path))
        .form(&[("csrf_token", bob_token.as_str()), ("reason", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let at_ci = techpass::paths::fill(
        techpass::paths::MEMBER_END,
        &[("tenant_id", &ci), ("user_id", &dave)],
    );
    let r = bob_browser
        .post(server.url(&at_ci))
        .form(&[("csrf_token", bob_token.as_str()), ("reason", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body = r.text().await.unwrap();
    assert!(!body.contains(DAVE), "Dave is not named to CI: {body}");
    assert_eq!(ends_at().await, Some(T0 + 7200));

    // With a reason: the confirmation first, naming the person and the reason.
    let r = alice_browser
        .post(server.url(&end_path))
        .form(&[("csrf_token", token.as_str()), ("reason", "contract over")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let confirm = r.text().await.unwrap();
    assert!(confirm.contains("End the membership"), "{confirm}");
    assert!(confirm.contains(DAVE), "{confirm}");
    assert!(confirm.contains("contract over"), "{confirm}");
    assert_eq!(ends_at().await, Some(T0 + 7200));

    // Confirmed: ended now, and back to the invitations with a notice.
    let r = alice_browser
        .post(server.url(&end_path))
        .form(&[
            ("csrf_token", token.as_str()),
            ("reason", "contract over"),
            ("confirm", "yes"),
        ])
        .send()
        .await
        .unwrap();
    let to = see_other(&r);
    assert!(to.contains("membership-ended"), "{to}");
    let now = state.clock.now().as_secs();
    assert_eq!(ends_at().await, Some(now));

    // The API's refusals are clear answers, never a 500.
    let api = |b: &reqwest::Client, tenant: &str, who: &str, body: serde_json::Value| {
        let b = b.clone();
        let path = format!("/api/v1/tenants/{tenant}/members/{who}/end");
        let url = server.url(&path);
        let me = server.url("/api/v1/me");
        async move {
            let me: serde_json::Value = b.get(me).send().await.unwrap().json().await.unwrap();
            let r = b
                .post(url)
                .header("X-CSRF-Token", me["csrf_token"].as_str().unwrap())
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let reason = serde_json::json!({ "reason": "contract over" });
    let (status, body) = api(&bob_browser, &ci, &dave, reason.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, body) = api(&bob_browser, &wiki, &dave, reason.clone()).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = api(&alice_browser, &wiki, "nobody", reason.clone()).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = api(&alice_browser, &wiki, &bob, reason.clone()).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("public officer"), "{body}");
    let (status, body) = api(&alice_browser, &wiki, &dave, serde_json::json!({})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = api(
        &alice_browser,
        &wiki,
        &dave,
        serde_json::json!({ "reason": " " }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // Ending again answers the first end, unchanged.
    let (status, body) = api(&alice_browser, &wiki, &dave, reason).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["access_ends_at"], now, "{body}");
    assert_eq!(body["grants_revoked"], 0, "{body}");
    server.stop().await;
}

crate::both_backends!(
    the_portal_ends_a_membership_after_asking,
    a_vendor_reaches_only_the_tenants_that_invited_them,
    tenant_admins_assign_only_their_members_and_officers,
    a_tenant_admin_ends_a_vendor_s_membership_now,
);
