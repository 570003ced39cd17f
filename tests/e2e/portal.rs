//! The self-service portal's pages over real HTTP with a cookie-keeping client: a tenant admin
//! registers an app and creates a secret through the forms (each shown once, never on the
//! credentials page), invites a vendor and revokes the invitation after confirming; a platform
//! admin approves a requested tenant from the queue, suspends and reinstates a person and
//! rotates the keys; the admin of one tenant cannot open another's pages; every form posted
//! without the CSRF token is refused with nothing changed; the audit log is paged.

use techpass::portal::{fill, paths};
use techpass::provider::clients::PURPOSE_CLIENT_SECRET;
use techpass::tenancy::tenants::{self, NewTenant};
use techpass::tenancy::{self, Actor};
use techpass_domain::gate::UserStatus;
use techpass_domain::tenancy::InvitationStatus;
use techpass_domain::tenancy::TenantAction;
use techpass_domain::tenancy::TenantStatus;
use techpass_store::testing::Backend;
use techpass_store::{AuditFilter, AuditRecord};

use crate::support::{browser, see_other, TestServer};
use crate::tenancy::{approved_tenant, signed_in, start_with_clock, DAY, T0};

const ALICE: &str = "alice_tan@tech.gov.sg";
const BOB: &str = "bob_lim@hdb.gov.sg";
const DAVE: &str = "dave@vendorco.example";

/// How many audit entries of `event` name `subject`.
async fn audit_events(server: &TestServer, subject: &str, event: &str) -> usize {
    server
        .state
        .store
        .list_audit(&AuditFilter {
            subject: Some(subject.into()),
            event: Some(event.into()),
            limit: 50,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .len()
}

/// Undoes minijinja's HTML escaping of attribute values.
fn decode(text: &str) -> String {
    crate::support::unescape_html(text)
}

/// The `value` of the first element named `name`.
fn value_of(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no field {name} in {html}"));
    let value = html[at..]
        .split("value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no value for {name}"));
    decode(value)
}

fn csrf(html: &str) -> String {
    value_of(html, "csrf_token")
}

/// Every form action of the page that contains `needle`.
fn actions(html: &str, needle: &str) -> Vec<String> {
    html.split("action=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(decode)
        .filter(|a| a.contains(needle))
        .collect()
}

/// Every link of the page.
fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(decode)
        .collect()
}

async fn page(server: &TestServer, b: &reqwest::Client, path: &str) -> (u16, String) {
    let r = b.get(server.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// A page that must render: its HTML, with the portal's headers checked.
async fn ok_page(server: &TestServer, b: &reqwest::Client, path: &str) -> String {
    let r = b.get(server.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer", "{path}");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"),
        "{path}"
    );
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert_eq!(
        csp.matches("script-src").count(),
        1,
        "scripts only by hash on {path}: {csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    // The one script a page may carry is the copy script, byte for byte (its hash is in the
    // CSP); anything else would be refused by the browser and is a defect.
    let allowed = format!("<script>{}</script>", techpass::web::COPY_SCRIPT);
    assert!(
        !html.replace(&allowed, "").contains("<script"),
        "no other scripts on {path}"
    );
    html
}

async fn post(
    server: &TestServer,
    b: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    b.post(server.url(path)).form(form).send().await.unwrap()
}

async fn audit_count(server: &TestServer) -> usize {
    server
        .state
        .store
        .list_audit(&AuditFilter {
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .len()
}

async fn tenant_admin_registers_an_app_creates_secrets_and_invites(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(backend, "e2e::portal_tenant_admin").await else {
        return;
    };
    let state = &server.state;
    let b = browser();
    let alice = signed_in(&server, &b, "alice", ALICE).await;
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    let t = [("tenant_id", tenant.as_str())];

    let home = ok_page(&server, &b, "/").await;
    assert!(
        home.contains("href=\"/portal\""),
        "the home page links the portal"
    );
    let account = ok_page(&server, &b, paths::PORTAL).await;
    assert!(account.contains(ALICE) && account.contains("Public officer"));
    assert!(account.contains("(this browser)"), "{account}");
    assert!(account.contains("not been given access to any app"));
    let mine = ok_page(&server, &b, paths::TENANTS).await;
    assert!(mine.contains("Tenant wiki"), "{mine}");

    // Register an app through the form.
    let apps_path = fill(paths::APPS, &t);
    let apps_page = ok_page(&server, &b, &apps_path).await;
    assert!(
        apps_page.contains("no apps yet"),
        "an empty state says what to do"
    );
    let token = csrf(&apps_page);
    let app_form = [
        ("name", "Wiki"),
        ("redirect_uris", "https://wiki.example.gov.sg/callback"),
        ("kind", "confidential"),
        ("grant", "authorization_code"),
        ("grant", "refresh_token"),
        ("user_assignment_required", "yes"),
    ];
    let refused = post(&server, &b, &apps_path, &app_form).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("Request refused"));
    assert!(state
        .store
        .clients_of_tenant(&tenant)
        .await
        .unwrap()
        .is_empty());
    let mut with_token = app_form.to_vec();
    with_token.push(("csrf_token", &token));
    let bad = post(
        &server,
        &b,
        &apps_path,
        &[
            ("csrf_token", &token),
            ("name", "Wiki"),
            ("redirect_uris", "http://wiki.example/cb"),
        ],
    )
    .await;
    assert_eq!(
        bad.status(),
        400,
        "the service's refusal is shown on the form"
    );
    let bad = bad.text().await.unwrap();
    assert!(bad.contains("That did not work"), "{bad}");
    assert!(
        bad.contains("http:&#x2f;&#x2f;wiki.example&#x2f;cb"),
        "what was typed stays"
    );
    let created = post(&server, &b, &apps_path, &with_token).await;
    // Post/Redirect/Get: the values are shown once, on the page the form redirects to.
    let shown = see_other(&created);
    assert!(shown.starts_with("/portal/shown/"), "{shown}");
    let created = ok_page(&server, &b, &shown).await;
    assert!(created.contains("App registered"), "{created}");
    assert!(
        created.contains("action=\"/logout\"") && created.contains(">Sign out</button>"),
        "the portal offers a plain sign-out"
    );
    let client_id = value_of(&created, "client_id");
    let secret = value_of(&created, "client_secret");
    assert!(client_id.starts_with("app_"));
    assert_eq!(secret.len(), 43);
    let secrets = state.store.client_secrets(&client_id).await.unwrap();
    assert_eq!(secrets.len(), 1);
    assert_eq!(
        secrets[0].secret_hash,
        state.secrets.keyed_hash(PURPOSE_CLIENT_SECRET, &secret),
        "the secret shown is the one stored (hashed)"
    );
    let ids = [
        ("tenant_id", tenant.as_str()),
        ("client_id", client_id.as_str()),
    ];

    // The settings page: token signing algorithms (issue 17 item 3), RS256 until chosen.
    let app_path = fill(paths::APP, &ids);
    let settings = ok_page(&server, &b, &app_path).await;
    assert!(
        settings.contains(r#"<option value="RS256" selected>"#)
            && settings.contains(r#"<option value="ES256">"#)
            && settings.contains(r#"<option value="EdDSA">"#),
        "{settings}"
    );
    let token = csrf(&settings);
    let settings_form = |id_alg: &'static str| {
        vec![
            ("csrf_token", token.clone()),
            ("name", "Wiki".to_string()),
            (
                "redirect_uris",
                "https://wiki.example.gov.sg/callback".to_string(),
            ),
            ("user_assignment_required", "yes".to_string()),
            ("id_token_signed_response_alg", id_alg.to_string()),
            ("access_token_signed_response_alg", "ES256".to_string()),
        ]
    };
    let saved = b
        .post(server.url(&app_path))
        .form(&settings_form("EdDSA"))
        .send()
        .await
        .unwrap();
    see_other(&saved);
    let algs = |c: techpass_store::ClientRecord| {
        (
            c.id_token_signed_response_alg,
            c.access_token_signed_response_alg,
        )
    };
    let stored = state.store.get_client(&client_id).await.unwrap().unwrap();
    assert_eq!(
        algs(stored),
        (Some("EdDSA".to_string()), Some("ES256".to_string()))
    );
    let refused = b
        .post(server.url(&app_path))
        .form(&settings_form("HS256"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let refused = refused.text().await.unwrap();
    assert!(
        refused.contains("id_token_signed_response_alg") && refused.contains("RS256, ES256, EdDSA"),
        "{refused}"
    );
    let stored = state.store.get_client(&client_id).await.unwrap().unwrap();
    assert_eq!(
        algs(stored),
        (Some("EdDSA".to_string()), Some("ES256".to_string())),
        "a refused change changes nothing"
    );

    // The credentials page lists the secret, never shows it.
    let credentials_path = fill(paths::CREDENTIALS, &ids);
    let credentials = ok_page(&server, &b, &credentials_path).await;
    assert!(credentials.contains(&secrets[0].id));
    assert!(!credentials.contains(&secret), "a secret is shown once");
    let secrets_path = fill(paths::SECRETS, &ids);
    let refused = post(&server, &b, &secrets_path, &[("lifetime_days", "30")]).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        state.store.client_secrets(&client_id).await.unwrap().len(),
        1
    );
    let token = csrf(&credentials);
    let second = post(
        &server,
        &b,
        &secrets_path,
        &[("csrf_token", &token), ("lifetime_days", "30")],
    )
    .await;
    let second_shown = see_other(&second);
    let second = ok_page(&server, &b, &second_shown).await;
    assert!(second.contains("New client secret"));
    let second_secret = value_of(&second, "client_secret");
    assert_ne!(second_secret, secret);
    // Reloading what was shown once: neither the secret again, nor another app or secret.
    for page in [&shown, &second_shown] {
        let again = b.get(server.url(page)).send().await.unwrap();
        assert_eq!(again.status(), 410, "{page}");
        let again = again.text().await.unwrap();
        assert!(again.contains("Shown only once"), "{again}");
        assert!(!again.contains(&secret) && !again.contains(&second_secret));
    }
    assert_eq!(
        state.store.clients_of_tenant(&tenant).await.unwrap().len(),
        1
    );
    let reloaded = ok_page(&server, &b, &credentials_path).await;
    assert!(!reloaded.contains(&second_secret) && !reloaded.contains(&secret));
    assert_eq!(
        state.store.client_secrets(&client_id).await.unwrap().len(),
        2
    );

    // Revoking asks first.
    let revoke = actions(&reloaded, "/revoke");
    assert_eq!(revoke.len(), 2, "each live secret has a revoke button");
    let first = revoke
        .iter()
        .find(|a| a.contains(&secrets[0].id))
        .unwrap()
        .clone();
    let asked = post(&server, &b, &first, &[("csrf_token", &token)]).await;
    assert_eq!(asked.status(), 200);
    let asked = asked.text().await.unwrap();
    assert!(asked.contains("Revoke this secret"), "{asked}");
    assert!(asked.contains("name=\"confirm\" value=\"yes\""));
    let live = |s: &techpass_store::ClientSecretRecord| s.revoked_at.is_none();
    assert!(state
        .store
        .client_secrets(&client_id)
        .await
        .unwrap()
        .iter()
        .all(live));
    let revoked = post(
        &server,
        &b,
        &first,
        &[("csrf_token", &token), ("confirm", "yes")],
    )
    .await;
    let next = see_other(&revoked);
    assert_eq!(next, format!("{credentials_path}?done=secret-revoked"));
    let after = ok_page(&server, &b, &next).await;
    assert!(
        after.contains("The secret was revoked"),
        "the result is shown"
    );
    let stored = state.store.client_secrets(&client_id).await.unwrap();
    assert!(stored
        .iter()
        .any(|s| s.id == secrets[0].id && s.revoked_at.is_some()));

    // Disabling sign-in asks first too.
    let enabled_path = fill(paths::APP_ENABLED, &ids);
    let asked = post(
        &server,
        &b,
        &enabled_path,
        &[("csrf_token", &token), ("enabled", "no")],
    )
    .await;
    assert_eq!(asked.status(), 200);
    assert!(
        state
            .store
            .get_client(&client_id)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    let disabled = post(
        &server,
        &b,
        &enabled_path,
        &[
            ("csrf_token", &token),
            ("enabled", "no"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert!(see_other(&disabled).ends_with("done=app-disabled"));
    assert!(
        !state
            .store
            .get_client(&client_id)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );

    // Invite a vendor (a date input), see it pending, then revoke it after confirming.
    let invitations_path = fill(paths::INVITATIONS, &t);
    let invitations = ok_page(&server, &b, &invitations_path).await;
    assert!(invitations.contains("No invitations yet"));
    let token = csrf(&invitations);
    let ends = techpass_service::dates::date(T0 + 30 * DAY);
    let no_end = post(
        &server,
        &b,
        &invitations_path,
        &[("csrf_token", &token), ("email", DAVE), ("access_ends", "")],
    )
    .await;
    assert_eq!(no_end.status(), 400, "a vendor needs an access end date");
    assert!(
        no_end.text().await.unwrap().contains(DAVE),
        "the form keeps the email"
    );
    let refused = post(
        &server,
        &b,
        &invitations_path,
        &[("email", DAVE), ("access_ends", &ends)],
    )
    .await;
    assert_eq!(refused.status(), 403);
    let pending = |server: &TestServer| {
        let state = server.state.clone();
        let tenant = tenant.clone();
        async move {
            state
                .store
                .invitations_of_tenant(&tenant, None, 10, 0)
                .await
                .unwrap()
        }
    };
    assert!(pending(&server).await.is_empty());
    let invited = post(
        &server,
        &b,
        &invitations_path,
        &[
            ("csrf_token", &token),
            ("email", DAVE),
            ("access_ends", &ends),
        ],
    )
    .await;
    let next = see_other(&invited);
    assert_eq!(next, format!("{invitations_path}?done=invited"));
    let listed = ok_page(&server, &b, &next).await;
    assert!(listed.contains("The invitation was sent by email"));
    assert!(
        listed.contains(DAVE) && listed.contains(">pending<"),
        "{listed}"
    );
    assert!(listed.contains(&ends), "the access end date is shown");
    let stored = pending(&server).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, InvitationStatus::Pending);
    assert_eq!(
        stored[0].access_ends_at,
        Some(techpass::portal::end_of_day(&ends).unwrap())
    );
    assert!(
        !listed.contains("/invite?token="),
        "the link is in the email only"
    );
    let revoke = actions(&listed, "/revoke");
    assert_eq!(revoke.len(), 1);
    let asked = post(&server, &b, &revoke[0], &[("csrf_token", &token)]).await;
    assert_eq!(asked.status(), 200);
    assert!(asked
        .text()
        .await
        .unwrap()
        .contains(&format!("Revoke the invitation to {DAVE}?")));
    assert_eq!(pending(&server).await[0].status, InvitationStatus::Pending);
    let revoked = post(
        &server,
        &b,
        &revoke[0],
        &[("csrf_token", &token), ("confirm", "yes")],
    )
    .await;
    let next = see_other(&revoked);
    assert!(next.ends_with("done=invitation-revoked"));
    assert_eq!(pending(&server).await[0].status, InvitationStatus::Revoked);
    let listed = ok_page(&server, &b, &next).await;
    assert!(listed.contains(">revoked<") && listed.contains("The invitation was revoked"));

    // Groups and access: a group assigned to the app is listed on its access page.
    let groups_path = fill(paths::GROUPS, &t);
    let groups = ok_page(&server, &b, &groups_path).await;
    assert!(groups.contains("no groups yet"));
    let made = post(
        &server,
        &b,
        &groups_path,
        &[("csrf_token", &token), ("name", "editors")],
    )
    .await;
    assert!(see_other(&made).ends_with("done=group-created"));
    let group = state
        .store
        .groups_of_tenant(&tenant)
        .await
        .unwrap()
        .remove(0);
    let assigned = post(
        &server,
        &b,
        &fill(paths::ASSIGN, &ids),
        &[
            ("csrf_token", &token),
            ("type", "group"),
            ("group_id", &group.id),
        ],
    )
    .await;
    assert!(see_other(&assigned).ends_with("done=assigned"));
    let access = ok_page(&server, &b, &fill(paths::ACCESS, &ids)).await;
    assert!(access.contains("wiki:editors"), "{access}");
    let unknown = post(
        &server,
        &b,
        &fill(paths::ASSIGN, &ids),
        &[
            ("csrf_token", &token),
            ("type", "user"),
            ("who", "nobody@tech.gov.sg"),
        ],
    )
    .await;
    assert_eq!(
        unknown.status(),
        400,
        "an unknown email is the form's problem"
    );
    assert!(unknown
        .text()
        .await
        .unwrap()
        .contains("grant access by email"));

    // Access by email for someone who has not signed in: listed, then withdrawn after a
    // confirmation; a vendor the tenant did not invite is refused on the form.
    let by_email = |email: &'static str| {
        let (server, b, path, token) = (&server, &b, fill(paths::EMAIL_GRANT, &ids), token.clone());
        async move {
            post(
                server,
                b,
                &path,
                &[("csrf_token", token.as_str()), ("email", email)],
            )
            .await
        }
    };
    let granted = by_email("newcomer@tech.gov.sg").await;
    assert!(see_other(&granted).ends_with("done=email-granted"));
    let access = ok_page(&server, &b, &fill(paths::ACCESS, &ids)).await;
    assert!(access.contains("newcomer@tech.gov.sg"), "{access}");
    let again = by_email("newcomer@tech.gov.sg").await;
    assert_eq!(again.status(), 409);
    let vendor = by_email("stranger@vendor.example").await;
    assert_eq!(vendor.status(), 400);
    assert!(vendor
        .text()
        .await
        .unwrap()
        .contains("invite the person to this tenant first"));
    let bad = by_email("not-an-email").await;
    assert_eq!(bad.status(), 400);
    let grant_id = techpass::tenancy::pending::list(&server.state, &Actor::Operator, &tenant)
        .await
        .unwrap()
        .remove(0)
        .id;
    let revoke = fill(paths::EMAIL_GRANT_REVOKE, &ids);
    let asked = post(
        &server,
        &b,
        &revoke,
        &[("csrf_token", &token), ("grant_id", &grant_id)],
    )
    .await;
    assert_eq!(asked.status(), 200);
    assert!(asked
        .text()
        .await
        .unwrap()
        .contains("Withdraw the access of newcomer@tech.gov.sg"));
    let withdrawn = post(
        &server,
        &b,
        &revoke,
        &[
            ("csrf_token", &token),
            ("grant_id", &grant_id),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert!(see_other(&withdrawn).ends_with("done=email-grant-revoked"));
    let access = ok_page(&server, &b, &fill(paths::ACCESS, &ids)).await;
    assert!(!access.contains("newcomer@tech.gov.sg"));

    // Every tenant page renders for its admin.
    for path in [
        fill(paths::TENANT, &t),
        fill(paths::APP, &ids),
        fill(paths::REVIEW, &ids),
        fill(paths::ADMINS, &t),
        fill(paths::WEBHOOKS, &t),
        fill(
            paths::GROUP,
            &[
                ("tenant_id", tenant.as_str()),
                ("group_id", group.id.as_str()),
            ],
        ),
    ] {
        ok_page(&server, &b, &path).await;
    }
    let log = ok_page(&server, &b, &fill(paths::TENANT_AUDIT, &t)).await;
    for event in [
        "app.created",
        "app.secret_revoked",
        "invitation.revoked",
        "group.created",
    ] {
        assert!(log.contains(event), "{event} in the tenant's audit log");
    }
    server.stop().await;
}

async fn platform_admin_approves_suspends_and_rotates(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(backend, "e2e::portal_platform_admin").await
    else {
        return;
    };
    let state = &server.state;
    let alice_browser = browser();
    let alice = signed_in(&server, &alice_browser, "alice", ALICE).await;
    let bob_browser = browser();
    let bob = signed_in(&server, &bob_browser, "bob", BOB).await;
    let bob_user = state.store.get_user(&bob).await.unwrap().unwrap();
    assert!(
        tenants::grant_platform_admin(state, &Actor::Operator, &bob_user)
            .await
            .unwrap()
    );

    // Alice requests a tenant through the form.
    let mine = ok_page(&server, &alice_browser, paths::TENANTS).await;
    assert!(mine.contains("You do not administer any tenant yet"));
    let token = csrf(&mine);
    let requested = post(
        &server,
        &alice_browser,
        paths::TENANTS,
        &[
            ("csrf_token", &token),
            ("slug", "ci"),
            ("name", "Continuous integration"),
            ("description", "Builds and tests"),
            ("purpose", "Every team needs CI"),
        ],
    )
    .await;
    let next = see_other(&requested);
    assert!(next.ends_with("?done=tenant-requested"), "{next}");
    let tenant = state
        .store
        .tenants_requested_by(&alice)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(tenant.status, TenantStatus::Requested);
    let waiting = ok_page(&server, &alice_browser, &next).await;
    assert!(
        waiting.contains("waiting for a platform admin"),
        "{waiting}"
    );
    let taken = post(
        &server,
        &alice_browser,
        paths::TENANTS,
        &[
            ("csrf_token", &token),
            ("slug", "ci"),
            ("name", "Again"),
            ("description", "d"),
            ("purpose", "p"),
        ],
    )
    .await;
    assert_eq!(
        taken.status(),
        409,
        "a taken slug is a conflict shown on the form"
    );
    // Announced (role=alert) and tied to the form's fields for screen readers.
    let taken = taken.text().await.unwrap();
    assert!(taken.contains(r#"role="alert" id="form-error""#), "{taken}");
    assert!(
        taken.contains(r#"aria-describedby="slug-hint form-error""#),
        "{taken}"
    );

    // Only platform admins see the admin pages.
    for path in [
        paths::ADMIN,
        paths::ADMIN_QUEUE,
        paths::ADMIN_TENANTS,
        paths::ADMIN_USERS,
        paths::ADMIN_KEYS,
        paths::ADMIN_AUDIT,
    ] {
        let (status, _) = page(&server, &alice_browser, path).await;
        assert_eq!(status, 403, "{path} for a non-admin");
        ok_page(&server, &bob_browser, path).await;
    }
    let alice_token = csrf(&ok_page(&server, &alice_browser, paths::PORTAL).await);
    let decision = fill(paths::ADMIN_DECISION, &[("tenant_id", &tenant.id)]);
    let not_admin = post(
        &server,
        &alice_browser,
        &decision,
        &[
            ("csrf_token", &alice_token),
            ("action", "approve"),
            ("back", "queue"),
        ],
    )
    .await;
    assert_eq!(not_admin.status(), 403, "a tenant cannot approve itself");

    // Bob approves it from the queue.
    let queue = ok_page(&server, &bob_browser, paths::ADMIN_QUEUE).await;
    assert!(
        queue.contains("Continuous integration") && queue.contains(ALICE),
        "{queue}"
    );
    let token = csrf(&queue);
    let refused = post(
        &server,
        &bob_browser,
        &decision,
        &[("action", "approve"), ("back", "queue")],
    )
    .await;
    assert_eq!(refused.status(), 403);
    let rejected_without_reason = post(
        &server,
        &bob_browser,
        &decision,
        &[
            ("csrf_token", &token),
            ("action", "reject"),
            ("back", "queue"),
            ("reason", " "),
        ],
    )
    .await;
    assert_eq!(
        rejected_without_reason.status(),
        400,
        "a rejection needs a reason"
    );
    assert_eq!(
        state
            .store
            .get_tenant(&tenant.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        TenantStatus::Requested
    );
    let approved = post(
        &server,
        &bob_browser,
        &decision,
        &[
            ("csrf_token", &token),
            ("action", "approve"),
            ("back", "queue"),
        ],
    )
    .await;
    assert_eq!(
        see_other(&approved),
        format!("{}?done=tenant-approved", paths::ADMIN_QUEUE)
    );
    assert_eq!(
        state
            .store
            .get_tenant(&tenant.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        TenantStatus::Active
    );
    assert!(state
        .store
        .is_tenant_admin(&tenant.id, &alice)
        .await
        .unwrap());
    let queue = ok_page(&server, &bob_browser, &see_other(&approved)).await;
    assert!(queue.contains("The tenant was approved") && queue.contains("No tenant requests"));
    let overview = ok_page(
        &server,
        &alice_browser,
        &fill(paths::TENANT, &[("tenant_id", &tenant.id)]),
    )
    .await;
    assert!(
        overview.contains("Manage the tenant"),
        "the new admin manages it"
    );

    // Bob finds Alice and suspends her (a reason, then a confirmation).
    let users = ok_page(
        &server,
        &bob_browser,
        &format!("{}?q=alice", paths::ADMIN_USERS),
    )
    .await;
    assert!(users.contains(ALICE) && !users.contains(BOB), "{users}");
    let suspend = fill(paths::ADMIN_USER_SUSPEND, &[("user_id", &alice)]);
    let no_reason = post(
        &server,
        &bob_browser,
        &suspend,
        &[("csrf_token", &token), ("q", "alice")],
    )
    .await;
    assert_eq!(no_reason.status(), 400);
    let asked = post(
        &server,
        &bob_browser,
        &suspend,
        &[
            ("csrf_token", &token),
            ("q", "alice"),
            ("reason", "Left the service"),
        ],
    )
    .await;
    assert_eq!(asked.status(), 200);
    let asked = asked.text().await.unwrap();
    assert!(asked.contains("Suspend alice_tan@tech.gov.sg?") && asked.contains("Left the service"));
    assert_eq!(
        state.store.get_user(&alice).await.unwrap().unwrap().status,
        UserStatus::Registered
    );
    let suspended = post(
        &server,
        &bob_browser,
        &suspend,
        &[
            ("csrf_token", &token),
            ("q", "alice"),
            ("reason", "Left the service"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(
        see_other(&suspended),
        format!("{}?q=alice&done=user-suspended", paths::ADMIN_USERS)
    );
    let alice_now = state.store.get_user(&alice).await.unwrap().unwrap();
    assert_eq!(alice_now.status, UserStatus::Suspended);
    assert_eq!(alice_now.status_reason.as_deref(), Some("Left the service"));
    assert!(state
        .store
        .sessions_of_user(&alice)
        .await
        .unwrap()
        .is_empty());
    let (status, _) = page(&server, &alice_browser, paths::PORTAL).await;
    assert_eq!(status, 303, "her session ended: sign in again");
    // Signing in again, she finds the portal closed, and the way on is signing out (not a
    // "back to the portal" that leads to the same page).
    signed_in(&server, &alice_browser, "alice", "alice_tan@tech.gov.sg").await;
    let (status, closed) = page(&server, &alice_browser, paths::PORTAL).await;
    assert_eq!(status, 403);
    assert!(closed.contains("Your account is blocked"), "{closed}");
    assert!(!closed.contains("Back to the portal"), "{closed}");
    assert!(closed.contains("action=\"/logout\""), "{closed}");
    let out = post(
        &server,
        &alice_browser,
        "/logout",
        &[("csrf_token", &csrf(&closed))],
    )
    .await;
    assert_eq!(see_other(&out), "/?signed_out=1");
    let (status, _) = page(&server, &alice_browser, paths::PORTAL).await;
    assert_eq!(status, 303, "signed out");
    let own = post(
        &server,
        &bob_browser,
        &fill(paths::ADMIN_USER_SUSPEND, &[("user_id", &bob)]),
        &[("csrf_token", &token), ("reason", "x"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(own.status(), 400, "nobody suspends themselves");
    let reinstated = post(
        &server,
        &bob_browser,
        &fill(paths::ADMIN_USER_REINSTATE, &[("user_id", &alice)]),
        &[("csrf_token", &token)],
    )
    .await;
    assert!(see_other(&reinstated).ends_with("done=user-reinstated"));
    assert_eq!(
        state.store.get_user(&alice).await.unwrap().unwrap().status,
        UserStatus::Registered
    );
    // Re-enabling: only a disabled account, only by a platform admin, only someone who exists.
    let enable = fill(paths::ADMIN_USER_ENABLE, &[("user_id", &alice)]);
    let not_disabled = post(
        &server,
        &bob_browser,
        &enable,
        &[("csrf_token", &token), ("q", "alice")],
    )
    .await;
    assert_eq!(not_disabled.status(), 409);
    assert!(not_disabled
        .text()
        .await
        .unwrap()
        .contains("is registered, not disabled"));
    let unknown = post(
        &server,
        &bob_browser,
        &fill(paths::ADMIN_USER_ENABLE, &[("user_id", "nobody")]),
        &[("csrf_token", &token)],
    )
    .await;
    assert_eq!(unknown.status(), 404);
    assert!(state
        .store
        .transition_user(
            &alice,
            UserStatus::Registered,
            UserStatus::Disabled,
            Some("inactive"),
            T0,
        )
        .await
        .unwrap());
    let users = ok_page(
        &server,
        &bob_browser,
        &format!("{}?q=alice", paths::ADMIN_USERS),
    )
    .await;
    assert!(
        decode(&users).contains(&format!("action=\"{enable}\"")) && users.contains("Re-enable"),
        "{users}"
    );
    signed_in(&server, &alice_browser, "alice", "alice_tan@tech.gov.sg").await;
    let (_, closed) = page(&server, &alice_browser, paths::PORTAL).await;
    let not_admin = post(
        &server,
        &alice_browser,
        &enable,
        &[("csrf_token", &csrf(&closed))],
    )
    .await;
    assert_eq!(not_admin.status(), 403, "not a platform admin");
    assert_eq!(
        state.store.get_user(&alice).await.unwrap().unwrap().status,
        UserStatus::Disabled
    );
    let enabled = post(
        &server,
        &bob_browser,
        &enable,
        &[("csrf_token", &token), ("q", "alice")],
    )
    .await;
    assert_eq!(
        see_other(&enabled),
        format!("{}?q=alice&done=user-enabled", paths::ADMIN_USERS)
    );
    let alice_now = state.store.get_user(&alice).await.unwrap().unwrap();
    assert_eq!(
        (alice_now.status.as_str(), alice_now.status_reason),
        ("registered", None)
    );
    assert_eq!(
        audit_events(&server, &alice, "user.enabled").await,
        1,
        "audited"
    );
    let exempted = post(
        &server,
        &bob_browser,
        &fill(paths::ADMIN_USER_EXEMPT, &[("user_id", &alice)]),
        &[("csrf_token", &token), ("exempt", "yes")],
    )
    .await;
    assert!(see_other(&exempted).ends_with("done=user-exempted"));
    assert!(state.store.get_user(&alice).await.unwrap().unwrap().exempt);

    // Tenants: suspend with a reason, after a confirmation.
    let tenants_page = ok_page(&server, &bob_browser, paths::ADMIN_TENANTS).await;
    assert!(tenants_page.contains("Continuous integration"));
    let asked = post(
        &server,
        &bob_browser,
        &decision,
        &[
            ("csrf_token", &token),
            ("action", "suspend"),
            ("reason", "Audit"),
        ],
    )
    .await;
    assert_eq!(asked.status(), 200);
    assert_eq!(
        state
            .store
            .get_tenant(&tenant.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        TenantStatus::Active
    );
    let done = post(
        &server,
        &bob_browser,
        &decision,
        &[
            ("csrf_token", &token),
            ("action", "suspend"),
            ("reason", "Audit"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert!(see_other(&done).ends_with("done=tenant-suspended"));
    assert_eq!(
        state
            .store
            .get_tenant(&tenant.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        TenantStatus::Suspended
    );

    // Signing keys: list and rotate; a second rotation waits for the pending key.
    let keys = ok_page(&server, &bob_browser, paths::ADMIN_KEYS).await;
    let before = state.keys.statuses();
    assert!(keys.contains(&before[0].kid));
    let rotated = post(
        &server,
        &bob_browser,
        paths::ADMIN_KEYS_ROTATE,
        &[("csrf_token", &token)],
    )
    .await;
    assert!(see_other(&rotated).ends_with("done=key-rotated"));
    let after = state.keys.statuses();
    assert_eq!(after.len(), before.len() + 3, "one new key per algorithm");
    let keys = ok_page(&server, &bob_browser, paths::ADMIN_KEYS).await;
    assert!(keys.contains(&after.last().unwrap().kid) && keys.contains("pending"));
    assert!(
        ["RS256", "ES256", "EdDSA"]
            .iter()
            .all(|alg| keys.contains(&format!("<td>{alg}</td>"))),
        "each key's algorithm is shown"
    );
    let again = post(
        &server,
        &bob_browser,
        paths::ADMIN_KEYS_ROTATE,
        &[("csrf_token", &token)],
    )
    .await;
    assert_eq!(again.status(), 409, "refused while a key is pending");

    // Emergency retirement of the RS256 key that signs: a confirmation saying what follows,
    // then gone from the JWKS at once, a new RS256 key signing, the pending one withdrawn.
    let signing = state
        .keys
        .signing_key(techpass_oidc::keys::SigningAlg::RS256)
        .unwrap()
        .kid()
        .to_string();
    assert!(
        keys.contains("RSA 2048-bit") && keys.contains("Ed25519"),
        "each key's size"
    );
    assert!(
        actions(&keys, paths::ADMIN_KEYS_RETIRE).len() >= 6,
        "a button per key"
    );
    let not_admin = post(
        &server,
        &alice_browser,
        paths::ADMIN_KEYS_RETIRE,
        &[
            ("csrf_token", &alice_token),
            ("kid", &signing),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(not_admin.status(), 403, "only platform admins retire keys");
    let ask = post(
        &server,
        &bob_browser,
        paths::ADMIN_KEYS_RETIRE,
        &[("csrf_token", &token), ("kid", &signing)],
    )
    .await;
    assert_eq!(ask.status(), 200);
    let ask = ask.text().await.unwrap();
    assert!(ask.contains("Retire the RS256 key"), "{ask}");
    assert!(
        ask.contains("signs at once") && ask.contains("stops verifying"),
        "{ask}"
    );
    assert_eq!(
        value_of(&ask, "kid"),
        signing,
        "the confirmation carries the key"
    );
    assert!(
        state.keys.jwks().keys.iter().any(|k| k.kid == signing),
        "nothing changes before the confirmation"
    );
    let retired = post(
        &server,
        &bob_browser,
        paths::ADMIN_KEYS_RETIRE,
        &[
            ("csrf_token", &token),
            ("kid", &signing),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert!(see_other(&retired).ends_with("done=key-retired"));
    let jwks: serde_json::Value = server.get("/jwks").await.json().await.unwrap();
    let rs256: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == "RS256")
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        rs256.len(),
        1,
        "only the new RS256 key is published: {rs256:?}"
    );
    assert_ne!(rs256[0], signing);
    assert_eq!(
        state
            .keys
            .signing_key(techpass_oidc::keys::SigningAlg::RS256)
            .unwrap()
            .kid(),
        rs256[0],
        "and it signs now"
    );
    let gone = post(
        &server,
        &bob_browser,
        paths::ADMIN_KEYS_RETIRE,
        &[
            ("csrf_token", &token),
            ("kid", &signing),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(gone.status(), 404, "a retired key cannot be retired twice");
    assert!(gone
        .text()
        .await
        .unwrap()
        .contains("No published key has that id"));

    // The whole audit log, filtered.
    let log = ok_page(
        &server,
        &bob_browser,
        &format!("{}?event=tenant.approved", paths::ADMIN_AUDIT),
    )
    .await;
    assert!(log.contains("tenant.approved") && !log.contains("user.suspended"));
    let by_bob = ok_page(
        &server,
        &bob_browser,
        &format!("{}?actor=bob_lim%40hdb.gov.sg", paths::ADMIN_AUDIT),
    )
    .await;
    assert!(by_bob.contains("user.suspended") && by_bob.contains("key.rotated"));
    assert!(
        by_bob.contains("key.retired_now"),
        "the retirement is audited"
    );
    assert!(
        !by_bob.contains("tenant.requested"),
        "Alice requested it, not Bob"
    );
    server.stop().await;
}

async fn tenant_admins_see_only_their_tenants(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(backend, "e2e::portal_isolation").await else {
        return;
    };
    let state = &server.state;
    let alice_browser = browser();
    let alice = signed_in(&server, &alice_browser, "alice", ALICE).await;
    let bob_browser = browser();
    let bob = signed_in(&server, &bob_browser, "bob", BOB).await;
    let a = approved_tenant(&server, &alice, "alpha").await;
    let b_tenant = tenancy::tenants::request(
        state,
        &crate::tenancy::user(&bob),
        NewTenant {
            slug: "beta".into(),
            name: "Tenant beta".into(),
            description: "d".into(),
            purpose: "p".into(),
        },
    )
    .await
    .unwrap()
    .id;
    tenancy::tenants::decide(
        state,
        &Actor::Operator,
        &b_tenant,
        TenantAction::Approve,
        None,
    )
    .await
    .unwrap();

    let mine = ok_page(&server, &alice_browser, paths::TENANTS).await;
    assert!(mine.contains("Tenant alpha") && !mine.contains("Tenant beta"));
    let token = csrf(&mine);
    let theirs = [("tenant_id", b_tenant.as_str())];
    for template in [
        paths::TENANT,
        paths::APPS,
        paths::INVITATIONS,
        paths::GROUPS,
        paths::ADMINS,
        paths::WEBHOOKS,
        paths::TENANT_AUDIT,
    ] {
        let path = fill(template, &theirs);
        let (status, html) = page(&server, &alice_browser, &path).await;
        assert_eq!(status, 403, "{path}");
        assert!(html.contains("Not allowed"), "{html}");
    }
    let before = audit_count(&server).await;
    let invite = post(
        &server,
        &alice_browser,
        &fill(paths::INVITATIONS, &theirs),
        &[
            ("csrf_token", &token),
            ("email", DAVE),
            ("access_ends", "2027-02-01"),
        ],
    )
    .await;
    assert_eq!(invite.status(), 403);
    let app = post(
        &server,
        &alice_browser,
        &fill(paths::APPS, &theirs),
        &[
            ("csrf_token", &token),
            ("name", "Mine now"),
            ("redirect_uris", "https://x.example.gov.sg/cb"),
        ],
    )
    .await;
    assert_eq!(app.status(), 403);
    assert!(state
        .store
        .invitations_of_tenant(&b_tenant, None, 10, 0)
        .await
        .unwrap()
        .is_empty());
    assert!(state
        .store
        .clients_of_tenant(&b_tenant)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(audit_count(&server).await, before, "nothing happened");
    let (status, _) = page(
        &server,
        &alice_browser,
        &fill(paths::TENANT, &[("tenant_id", "tnt_nope")]),
    )
    .await;
    assert_eq!(status, 404);
    // Her own tenant still opens.
    ok_page(
        &server,
        &alice_browser,
        &fill(paths::APPS, &[("tenant_id", &a)]),
    )
    .await;

    // Not signed in: to the sign-in, and back here afterwards.
    let stranger = browser();
    let r = stranger
        .get(server.url(paths::TENANTS))
        .send()
        .await
        .unwrap();
    assert_eq!(see_other(&r), "/login?return_to=%2Fportal%2Ftenants");
    let r = post(
        &server,
        &stranger,
        &fill(paths::APPS, &[("tenant_id", &a)]),
        &[],
    )
    .await;
    assert!(see_other(&r).starts_with("/login?"));
    server.stop().await;
}

/// Every form of the portal, posted without the session's CSRF token (or with a wrong one),
/// is refused before anything runs: the audit log, where every change is written, is unchanged.
async fn forms_without_the_csrf_token_are_refused(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(backend, "e2e::portal_csrf").await else {
        return;
    };
    let state = &server.state;
    let b = browser();
    let alice = signed_in(&server, &b, "alice", ALICE).await;
    let alice_user = state.store.get_user(&alice).await.unwrap().unwrap();
    tenants::grant_platform_admin(state, &Actor::Operator, &alice_user)
        .await
        .unwrap();
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    let (client_id, _) =
        crate::tenancy::tenant_app(&server, &crate::tenancy::user(&alice), &tenant).await;
    let ids = [
        ("tenant_id", tenant.as_str()),
        ("client_id", client_id.as_str()),
        ("user_id", alice.as_str()),
        ("secret_id", "sec_x"),
        ("group_id", "grp_x"),
        ("invitation_id", "inv_x"),
        ("webhook_id", "whk_x"),
    ];
    let before = audit_count(&server).await;
    let sessions = state.store.sessions_of_user(&alice).await.unwrap().len();
    for template in [
        paths::SIGN_OUT_EVERYWHERE,
        paths::TENANTS,
        paths::ADMINS,
        paths::ADMIN_REMOVE,
        paths::APPS,
        paths::APP,
        paths::APP_ENABLED,
        paths::APP_DELETE,
        paths::SECRETS,
        paths::SECRET_REVOKE,
        paths::KEYS,
        paths::ASSIGN,
        paths::UNASSIGN,
        paths::ROLES,
        paths::ROLE_GRANT,
        paths::EMAIL_GRANT,
        paths::EMAIL_GRANT_REVOKE,
        paths::REVIEW,
        paths::GROUPS,
        paths::GROUP,
        paths::GROUP_DELETE,
        paths::GROUP_MEMBER_REMOVE,
        paths::INVITATIONS,
        paths::INVITATION_RESEND,
        paths::INVITATION_REVOKE,
        paths::WEBHOOKS,
        paths::WEBHOOK_VERIFY,
        paths::WEBHOOK_DELETE,
        paths::ADMIN_DECISION,
        paths::ADMIN_USER_SUSPEND,
        paths::ADMIN_USER_REINSTATE,
        paths::ADMIN_USER_ENABLE,
        paths::ADMIN_USER_EXEMPT,
        paths::ADMIN_KEYS_ROTATE,
        paths::ADMIN_KEYS_RETIRE,
    ] {
        let path = fill(template, &ids);
        let form = [
            ("confirm", "yes"),
            ("name", "x"),
            ("email", DAVE),
            ("action", "suspend"),
            ("reason", "x"),
            ("enabled", "no"),
        ];
        let r = post(&server, &b, &path, &form).await;
        assert_eq!(r.status(), 403, "POST {path} without a token");
        assert!(r.text().await.unwrap().contains("Request refused"));
        let mut forged = form.to_vec();
        forged.push(("csrf_token", "forged"));
        let r = post(&server, &b, &path, &forged).await;
        assert_eq!(r.status(), 403, "POST {path} with a wrong token");
    }
    assert_eq!(audit_count(&server).await, before, "nothing changed");
    assert_eq!(
        state.store.sessions_of_user(&alice).await.unwrap().len(),
        sessions
    );
    assert!(
        state
            .store
            .get_client(&client_id)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    server.stop().await;
}

async fn the_audit_log_is_paged(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(backend, "e2e::portal_audit_pages").await else {
        return;
    };
    let state = &server.state;
    let b = browser();
    let alice = signed_in(&server, &b, "alice", ALICE).await;
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    let group = tenancy::access::create_group(state, &Actor::Operator, &tenant, "editors")
        .await
        .unwrap();
    for n in 0..120 {
        state
            .store
            .append_audit(&AuditRecord {
                at: T0 + n,
                event: format!("probe.e{n:03}"),
                outcome: if n == 7 { "denied" } else { "success" }.into(),
                reference: (n == 7).then(|| "REF-0007".into()),
                subject: (n == 8).then(|| group.id.clone()),
                tenant: Some(tenant.clone()),
                details: "{}".into(),
                ..AuditRecord::default()
            })
            .await
            .unwrap();
    }
    let path = fill(paths::TENANT_AUDIT, &[("tenant_id", &tenant)]);
    let older = |html: &str| {
        links(html)
            .into_iter()
            .find(|l| l.contains("cursor="))
            .map(|l| l.strip_prefix(&server.base).unwrap_or(&l).to_string())
    };
    // Newest first, 50 a page, the next page by the log's cursor, back to the newest.
    let first = ok_page(&server, &b, &path).await;
    assert!(first.contains("probe.e119") && first.contains("probe.e070"));
    assert!(!first.contains("probe.e069"), "50 a page, newest first");
    assert!(first.contains("Older events") && !first.contains("Newest events"));
    let second = ok_page(&server, &b, &older(&first).unwrap()).await;
    assert!(second.contains("probe.e069") && second.contains("probe.e020"));
    assert!(!second.contains("probe.e070") && !second.contains("probe.e019"));
    assert!(second.contains("Newest events") && links(&second).contains(&path));
    let third = ok_page(&server, &b, &older(&second).unwrap()).await;
    assert!(third.contains("probe.e019") && third.contains("probe.e000"));
    assert!(
        third.contains("tenant.approved"),
        "the tenant's own events come last"
    );
    assert!(
        older(&third).is_none(),
        "the end of the log: {:?}",
        older(&third)
    );
    // Ids read as names; a refusal shows its reference.
    assert!(third.contains("group editors"), "a group by name");
    assert!(third.contains("REF-0007"));

    // Filters: event, outcome, reference, dates (UTC days, inclusive); they carry into the
    // export links.
    let filtered = ok_page(&server, &b, &format!("{path}?event=probe.e005")).await;
    assert!(filtered.contains("probe.e005") && !filtered.contains("probe.e006"));
    let denied = ok_page(&server, &b, &format!("{path}?outcome=denied")).await;
    assert!(denied.contains("probe.e007") && !denied.contains("probe.e006"));
    assert!(links(&denied)
        .iter()
        .any(|l| l.ends_with("/audit/export?outcome=denied&format=csv")));
    let by_reference = ok_page(&server, &b, &format!("{path}?reference=REF-0007")).await;
    assert!(by_reference.contains("probe.e007") && !by_reference.contains("probe.e008"));
    let that_day = ok_page(
        &server,
        &b,
        &format!("{path}?from=2027-01-15&to=2027-01-15"),
    )
    .await;
    assert!(that_day.contains("probe.e119"));
    let day_before = ok_page(&server, &b, &format!("{path}?to=2027-01-14")).await;
    assert!(day_before.contains("No events match these filters"));
    for bad in [
        "outcome=maybe",
        "from=15/01/2027",
        "to=2027-02-30",
        "cursor=nonsense",
    ] {
        let (status, html) = page(&server, &b, &format!("{path}?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {html}");
    }
    server.stop().await;
}

crate::both_backends!(
    an_app_page_serves_integrators_and_the_app_is_deleted_after_confirming,
    tenant_admin_registers_an_app_creates_secrets_and_invites,
    platform_admin_approves_suspends_and_rotates,
    tenant_admins_see_only_their_tenants,
    forms_without_the_csrf_token_are_refused,
    the_audit_log_is_paged,
);

/// Item 4 of issue 16 and app deletion: the app page shows the issuer, the discovery URL and
/// the client id (copyable: the one script allowed by its hash in the CSP), the exact redirect
/// URIs and the effective token lifetimes; a wildcard or plain-http redirect URI is refused
/// with a message that says why; a client_credentials-only app shows no sign-in settings (and
/// saving its form keeps them); deleting asks first, then removes the app, audited; a
/// suspended tenant's pages say why its apps sign nobody in.
async fn an_app_page_serves_integrators_and_the_app_is_deleted_after_confirming(backend: Backend) {
    use base64::Engine as _;
    use sha2::Digest as _;
    use techpass::tenancy::apps::{self, AppSpec};

    let Some((server, _clock)) = start_with_clock(backend, "e2e::portal_app_page").await else {
        return;
    };
    let state = &server.state;
    let b = browser();
    let alice = signed_in(&server, &b, "alice", ALICE).await;
    let tenant = approved_tenant(&server, &alice, "docs").await;
    let admin = crate::tenancy::user(&alice);
    let (web, _) = crate::tenancy::tenant_app(&server, &admin, &tenant).await;
    let machine = apps::create(
        state,
        &admin,
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
    .unwrap()
    .client_id;
    let ids = [("tenant_id", tenant.as_str()), ("client_id", web.as_str())];
    let app_path = fill(paths::APP, &ids);

    // The CSP allows the copy script by its hash, computed here independently.
    let r = b.get(server.url(&app_path)).send().await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let hash = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(techpass::web::COPY_SCRIPT.as_bytes()));
    assert!(
        csp.contains(&format!("script-src 'sha256-{hash}';")),
        "{csp}"
    );
    let page = decode(&ok_page(&server, &b, &app_path).await);
    let issuer = state.metadata.issuer.to_string();
    assert!(
        page.contains(&format!(
            "id=\"issuer\" type=\"text\" readonly data-select value=\"{issuer}\""
        )),
        "{page}"
    );
    assert!(page.contains(&format!(
        "value=\"{}/.well-known/openid-configuration\"",
        issuer.trim_end_matches('/')
    )));
    assert!(page.contains(&format!(
        "id=\"client-id\" type=\"text\" readonly data-select value=\"{web}\""
    )));
    assert!(page.contains("data-copy=\"client-id\" hidden>Copy</button>"));
    assert!(page.contains("<li><code>https://app.example.gov.sg/callback</code></li>"));
    assert!(page.contains("compared exactly, character for character"));
    let access_max = state.config.tokens.access_token_lifetime_secs;
    let idle_max = state.config.tokens.refresh_token_idle_secs;
    assert!(page.contains(&format!("Now the platform's default: {access_max} s.")));
    assert!(page.contains(&format!("placeholder=\"{access_max}\"")));
    assert!(page.contains(&format!("placeholder=\"{idle_max}\"")));
    assert!(page.contains("Who may sign in"));
    assert!(!page.contains("sign nobody in"), "an active tenant");

    // Wildcards and plain http are refused on the form, saying why; nothing changes.
    let token = csrf(&page);
    for (uri, why) in [
        (
            "https://*.example.gov.sg/cb",
            "wildcards are not supported, redirect URIs are compared exactly",
        ),
        ("http://app.example.gov.sg/cb", "must use https"),
    ] {
        let refused = post(
            &server,
            &b,
            &app_path,
            &[
                ("csrf_token", &token),
                ("name", "Wiki"),
                ("redirect_uris", uri),
                ("access_policy", "assigned"),
            ],
        )
        .await;
        assert_eq!(refused.status(), 400, "{uri}");
        let refused = decode(&refused.text().await.unwrap());
        assert!(refused.contains(why), "{uri}: {refused}");
    }
    let stored = state.store.get_client(&web).await.unwrap().unwrap();
    assert_eq!(
        stored.redirect_uris,
        vec!["https://app.example.gov.sg/callback"]
    );
    // An app's own lifetime is shown as its own.
    let saved = post(
        &server,
        &b,
        &app_path,
        &[
            ("csrf_token", &token),
            ("name", "Wiki"),
            ("redirect_uris", "https://app.example.gov.sg/callback"),
            ("access_policy", "assigned"),
            ("access_token_lifetime_secs", "120"),
        ],
    )
    .await;
    assert!(see_other(&saved).ends_with("done=app-updated"));
    let page = ok_page(&server, &b, &app_path).await;
    assert!(
        page.contains("This app&#x27;s own: 120 s.") || page.contains("This app's own: 120 s."),
        "{page}"
    );

    // A machine client: no redirect URIs, refresh settings or access policy; saving keeps them.
    let machine_ids = [
        ("tenant_id", tenant.as_str()),
        ("client_id", machine.as_str()),
    ];
    let machine_path = fill(paths::APP, &machine_ids);
    let page = decode(&ok_page(&server, &b, &machine_path).await);
    for absent in [
        "name=\"redirect_uris\"",
        "name=\"post_logout_redirect_uris\"",
        "name=\"refresh_token_idle_secs\"",
        "name=\"access_policy\"",
        "Who may sign in",
        "<h3>Redirect URIs</h3>",
    ] {
        assert!(
            !page.contains(absent),
            "{absent} on a machine client's page"
        );
    }
    assert!(page.contains("name=\"access_token_lifetime_secs\""));
    assert!(page.contains("name=\"api_access\""));
    assert!(page.contains("it signs nobody in, so it has no redirect URIs"));
    let before = state.store.get_client(&machine).await.unwrap().unwrap();
    let saved = post(
        &server,
        &b,
        &machine_path,
        &[
            ("csrf_token", &token),
            ("name", "Nightly sync job"),
            ("homepage", ""),
            ("access_token_lifetime_secs", "300"),
        ],
    )
    .await;
    assert!(see_other(&saved).ends_with("done=app-updated"));
    let after = state.store.get_client(&machine).await.unwrap().unwrap();
    assert_eq!(after.name, "Nightly sync job");
    assert_eq!(after.access_token_lifetime_secs, Some(300));
    assert_eq!(
        (
            &after.redirect_uris,
            &after.access_policy,
            after.refresh_token_idle_secs
        ),
        (
            &before.redirect_uris,
            &before.access_policy,
            before.refresh_token_idle_secs
        ),
        "the sign-in settings it does not show stay as they were"
    );
    let listed = ok_page(&server, &b, &fill(paths::APPS, &[("tenant_id", &tenant)])).await;
    assert!(listed.contains("Nobody: a machine client"), "{listed}");

    // Deleting asks first, saying what goes; then the app and what names it are gone.
    let delete_path = fill(paths::APP_DELETE, &ids);
    let page = ok_page(&server, &b, &app_path).await;
    assert_eq!(
        actions(&page, "/delete"),
        std::slice::from_ref(&delete_path)
    );
    let asked = post(&server, &b, &delete_path, &[("csrf_token", &token)]).await;
    assert_eq!(asked.status(), 200);
    let asked = decode(&asked.text().await.unwrap());
    assert!(asked.contains("Delete Wiki?"), "{asked}");
    assert!(asked.contains("its grants and refresh tokens"), "{asked}");
    assert!(asked.contains("name=\"confirm\" value=\"yes\""));
    assert!(state.store.get_client(&web).await.unwrap().is_some());
    let deleted = post(
        &server,
        &b,
        &delete_path,
        &[("csrf_token", &token), ("confirm", "yes")],
    )
    .await;
    let next = see_other(&deleted);
    assert_eq!(
        next,
        format!(
            "{}?done=app-deleted",
            fill(paths::APPS, &[("tenant_id", &tenant)])
        )
    );
    let after = ok_page(&server, &b, &next).await;
    assert!(after.contains("The app was deleted"), "{after}");
    assert!(!after.contains(&web));
    assert!(state.store.get_client(&web).await.unwrap().is_none());
    assert!(state.store.client_secrets(&web).await.unwrap().is_empty());
    assert_eq!(audit_events(&server, &web, "app.deleted").await, 1);
    assert_eq!(
        b.get(server.url(&app_path)).send().await.unwrap().status(),
        404
    );
    // Posting the confirmation again (a reload) finds nothing to delete.
    let again = post(
        &server,
        &b,
        &delete_path,
        &[("csrf_token", &token), ("confirm", "yes")],
    )
    .await;
    assert_eq!(again.status(), 404);
    assert_eq!(audit_events(&server, &web, "app.deleted").await, 1);

    // A suspended tenant's pages say why its apps sign nobody in.
    tenancy::tenants::decide(
        state,
        &Actor::Operator,
        &tenant,
        TenantAction::Suspend,
        Some("audit"),
    )
    .await
    .unwrap();
    for path in [
        fill(paths::APPS, &[("tenant_id", &tenant)]),
        machine_path.clone(),
    ] {
        let page = ok_page(&server, &b, &path).await;
        assert!(
            page.contains("This tenant is suspended: its apps sign nobody in."),
            "{path}: {page}"
        );
    }
    let listed = ok_page(&server, &b, &fill(paths::APPS, &[("tenant_id", &tenant)])).await;
    assert!(listed.contains("Off: the tenant is suspended"), "{listed}");
    server.stop().await;
}
