//! Machine tokens through the gate (issue 13): `client_credentials` and the introspection of
//! the tokens it minted need the app's tenant active and the app enabled, and every refusal is
//! audited under the tenant, where the tenant's admins read it. Audiences are a tenant's
//! registered API resources granted to the app, never chosen by the caller (RFC 8707).

use serde_json::Value;
use techpass::tenancy::apps::{AppChanges, AppSpec};
use techpass::tenancy::resources::{self, NewResource};
use techpass::tenancy::{self, Actor, TenancyError};
use techpass_domain::client::AccessPolicy;
use techpass_domain::tenancy::TenantAction;
use techpass_store::testing::Backend;
use techpass_store::AuditFilter;

use crate::support::{browser, client, TestServer};
use crate::tenancy::{approved_tenant, signed_in, user};

/// A confidential `client_credentials` app of `tenant_id`: (client id, secret).
pub async fn machine_app(server: &TestServer, actor: &Actor, tenant_id: &str) -> (String, String) {
    let created = tenancy::apps::create(
        &server.state,
        actor,
        tenant_id,
        AppSpec {
            name: "Robot".into(),
            homepage: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            confidential: true,
            grant_types: vec!["client_credentials".into()],
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

/// A `client_credentials` request with `extra` fields: (status, body).
pub async fn machine_token(
    server: &TestServer,
    id: &str,
    secret: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let response = client()
        .post(server.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, response.json().await.unwrap())
}

/// Whether introspection by the app answers `active: true` for `token`.
pub async fn active(server: &TestServer, id: &str, secret: &str, token: &str) -> bool {
    let body: Value = client()
        .post(server.url("/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["active"].as_bool().unwrap()
}

/// The refusals of the gate written under `tenant`, as (reason, subject, where).
async fn refusals(server: &TestServer, tenant: &str) -> Vec<(String, String, String)> {
    server
        .state
        .store
        .list_audit(&AuditFilter {
            tenant: Some(tenant.into()),
            event: Some("token.denied".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let details: Value = serde_json::from_str(&r.details).unwrap();
            (
                r.reason.unwrap_or_default(),
                r.subject.unwrap_or_default(),
                details["at"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn the_machine_gate_follows_the_tenant_and_the_app(backend: Backend) {
    let Some(server) = TestServer::start(backend, "e2e::machine_gate").await else {
        return;
    };
    let b = browser();
    let alice = signed_in(&server, &b, "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "robots").await;
    let (id, secret) = machine_app(&server, &user(&alice), &tenant).await;
    let subject = format!("app:{id}");

    let (status, body) = machine_token(&server, &id, &secret, &[]).await;
    assert_eq!(status, 200, "{body}");
    let earlier = body["access_token"].as_str().unwrap().to_string();
    assert!(active(&server, &id, &secret, &earlier).await);
    assert!(refusals(&server, &tenant).await.is_empty());

    // The tenant suspended: no new token, and the earlier one is no longer active.
    tenancy::tenants::decide(
        &server.state,
        &Actor::Operator,
        &tenant,
        TenantAction::Suspend,
        Some("audit"),
    )
    .await
    .unwrap();
    let (status, body) = machine_token(&server, &id, &secret, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    assert!(body.get("access_token").is_none());
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("tenant_inactive"),
        "{body}"
    );
    assert!(!active(&server, &id, &secret, &earlier).await);
    let seen = refusals(&server, &tenant).await;
    for at in ["token", "introspect"] {
        assert!(
            seen.contains(&("tenant_inactive".into(), subject.clone(), at.into())),
            "{at}: {seen:?}"
        );
    }
    // The tenant's admin reads them on the tenant's audit page.
    let page = b
        .get(server.url(&format!("/portal/tenants/{tenant}/audit")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("token.denied"), "{html}");
    assert!(html.contains("tenant_inactive"), "{html}");

    // Reinstated: tokens again, and the earlier token (never revoked) is active again.
    tenancy::tenants::decide(
        &server.state,
        &Actor::Operator,
        &tenant,
        TenantAction::Reinstate,
        None,
    )
    .await
    .unwrap();
    let (status, body) = machine_token(&server, &id, &secret, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(active(&server, &id, &secret, &earlier).await);

    // The app disabled: no token, nothing active; audited under the tenant too.
    tenancy::apps::update(
        &server.state,
        &user(&alice),
        &tenant,
        &id,
        AppChanges {
            enabled: Some(false),
            ..AppChanges::default()
        },
    )
    .await
    .unwrap();
    let (status, body) = machine_token(&server, &id, &secret, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("app_disabled"));
    assert!(!active(&server, &id, &secret, &earlier).await);
    let seen = refusals(&server, &tenant).await;
    for at in ["token", "introspect"] {
        assert!(
            seen.contains(&("app_disabled".into(), subject.clone(), at.into())),
            "{at}: {seen:?}"
        );
    }
    server.stop().await;
}

fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part).unwrap(),
    )
    .unwrap()
}

fn assert_error((status, body): &(u16, Value), error: &str, case: &str) {
    assert_eq!(
        (*status, body["error"].as_str()),
        (400, Some(error)),
        "{case}: {body}"
    );
    assert!(body.get("access_token").is_none(), "{case}");
}

const REGISTRY: &str = "https://registry.example.gov.sg/";

async fn audiences_are_granted_never_chosen(backend: Backend) {
    let Some(server) = TestServer::start(backend, "e2e::resources").await else {
        return;
    };
    let b = browser();
    let alice = signed_in(&server, &b, "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "registry").await;
    let other_tenant = approved_tenant(&server, &alice, "wiki").await;
    let admin = user(&alice);
    let (id, secret) = machine_app(&server, &admin, &tenant).await;
    let (other_id, other_secret) = machine_app(&server, &admin, &other_tenant).await;
    let token = |extra: &'static [(&'static str, &'static str)]| {
        let (server, id, secret) = (&server, id.clone(), secret.clone());
        async move { machine_token(server, &id, &secret, extra).await }
    };

    // Nobody registered it: no token for that audience.
    assert_error(
        &token(&[("resource", REGISTRY)]).await,
        "invalid_target",
        "unregistered",
    );
    let registry = resources::create(
        &server.state,
        &admin,
        &tenant,
        NewResource {
            identifier: REGISTRY.into(),
            name: "Registry API".into(),
            scopes: vec!["packages:read".into(), "packages:write".into()],
        },
    )
    .await
    .unwrap();
    // Registered but not granted to this app.
    assert_error(
        &token(&[("resource", REGISTRY)]).await,
        "invalid_target",
        "not granted",
    );
    resources::grant(
        &server.state,
        &admin,
        &tenant,
        &registry.id,
        &id,
        vec!["packages:read".into()],
    )
    .await
    .unwrap();

    // Granted: the audience, and only granted scopes.
    let (status, body) = token(&[("resource", REGISTRY)]).await;
    assert_eq!(status, 200, "{body}");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], REGISTRY);
    assert_eq!(c["scope"], "packages:read");
    assert_eq!(body["scope"], "packages:read");
    let (status, body) = token(&[("resource", REGISTRY), ("scope", "packages:read")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["scope"],
        "packages:read"
    );
    for (case, extra) in [
        (
            "a scope defined but not granted",
            &[
                ("resource", REGISTRY),
                ("scope", "packages:read packages:write"),
            ][..],
        ),
        (
            "a scope nobody defined",
            &[("resource", REGISTRY), ("scope", "admin")][..],
        ),
        (
            "a scope without a resource",
            &[("scope", "packages:read")][..],
        ),
        (
            "a malformed scope",
            &[("resource", REGISTRY), ("scope", "a\"b")][..],
        ),
    ] {
        assert_error(&token(extra).await, "invalid_scope", case);
    }
    for (case, extra) in [
        (
            "another address",
            &[("resource", "https://anything.example/")][..],
        ),
        (
            "a near miss",
            &[("resource", "https://registry.example.gov.sg")][..],
        ),
        ("not a URI", &[("resource", "registry")][..]),
        (
            "a fragment",
            &[("resource", "https://registry.example.gov.sg/#x")][..],
        ),
    ] {
        assert_error(&token(extra).await, "invalid_target", case);
    }
    // Another tenant's app cannot name it, even granted nothing.
    assert_error(
        &machine_token(&server, &other_id, &other_secret, &[("resource", REGISTRY)]).await,
        "invalid_target",
        "another tenant's app",
    );
    // TechPass's own API: any tenant app may ask (the API checks its access per request).
    let api = format!("{}/api/v1", server.base);
    let (status, body) = machine_token(&server, &id, &secret, &[("resource", &api)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["aud"], api);

    // Withdrawn: invalid_target again; deleted: the identifier is gone.
    resources::revoke(&server.state, &admin, &tenant, &registry.id, &id)
        .await
        .unwrap();
    assert_error(
        &token(&[("resource", REGISTRY)]).await,
        "invalid_target",
        "withdrawn",
    );
    let listed = resources::list(&server.state, &admin, &tenant)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    resources::delete(&server.state, &admin, &tenant, &registry.id)
        .await
        .unwrap();
    assert!(resources::list(&server.state, &admin, &tenant)
        .await
        .unwrap()
        .is_empty());
    server.stop().await;
}

async fn resource_management_refuses_what_it_must(backend: Backend) {
    let Some(server) = TestServer::start(backend, "e2e::resources_refused").await else {
        return;
    };
    let b = browser();
    let alice = signed_in(&server, &b, "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "registry").await;
    let other_tenant = approved_tenant(&server, &alice, "wiki").await;
    let admin = user(&alice);
    let (other_app, _) = machine_app(&server, &admin, &other_tenant).await;
    let spec = |identifier: &str, scopes: &[&str]| NewResource {
        identifier: identifier.into(),
        name: "API".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    };
    let issuer_api = format!("{}/api/v1", server.base);
    for (case, bad) in [
        ("not a URI", spec("registry", &["read"])),
        ("http", spec("http://registry.example/", &["read"])),
        ("not normal", spec("https://registry.example", &["read"])),
        ("a fragment", spec("https://registry.example/#x", &["read"])),
        ("a query", spec("https://registry.example/?a=1", &["read"])),
        ("TechPass's own", spec(&issuer_api, &[])),
        (
            "an OpenID scope",
            spec("https://registry.example/", &["openid"]),
        ),
        ("a bad scope", spec("https://registry.example/", &["a b"])),
        (
            "no name",
            NewResource {
                name: " ".into(),
                ..spec("https://registry.example/", &["read"])
            },
        ),
    ] {
        let refused = resources::create(&server.state, &admin, &tenant, bad).await;
        assert!(
            matches!(refused, Err(TenancyError::Invalid(_))),
            "{case}: {refused:?}"
        );
    }
    assert!(resources::list(&server.state, &admin, &tenant)
        .await
        .unwrap()
        .is_empty());
    let registry = resources::create(&server.state, &admin, &tenant, spec(REGISTRY, &["read"]))
        .await
        .unwrap();
    // One audience, one owner.
    let taken = resources::create(&server.state, &admin, &other_tenant, spec(REGISTRY, &[])).await;
    assert!(matches!(taken, Err(TenancyError::Conflict(_))), "{taken:?}");
    // Strangers neither see nor change them.
    let stranger = user("someone-else");
    let seen = resources::list(&server.state, &stranger, &tenant).await;
    assert!(matches!(seen, Err(TenancyError::Forbidden(_))), "{seen:?}");
    let made = resources::create(
        &server.state,
        &stranger,
        &tenant,
        spec("https://x.example/", &[]),
    )
    .await;
    assert!(matches!(made, Err(TenancyError::Forbidden(_))), "{made:?}");
    // Grants: only the tenant's own apps, only scopes the resource defines.
    let (app, _) = machine_app(&server, &admin, &tenant).await;
    let foreign = resources::grant(
        &server.state,
        &admin,
        &tenant,
        &registry.id,
        &other_app,
        vec![],
    )
    .await;
    assert!(
        matches!(foreign, Err(TenancyError::NotFound("app"))),
        "{foreign:?}"
    );
    let undefined = resources::grant(
        &server.state,
        &admin,
        &tenant,
        &registry.id,
        &app,
        vec!["write".into()],
    )
    .await;
    assert!(
        matches!(undefined, Err(TenancyError::Invalid(_))),
        "{undefined:?}"
    );
    let elsewhere = resources::grant(
        &server.state,
        &admin,
        &other_tenant,
        &registry.id,
        &other_app,
        vec![],
    )
    .await;
    assert!(
        matches!(elsewhere, Err(TenancyError::NotFound("resource"))),
        "{elsewhere:?}"
    );
    assert!(
        resources::grants(&server.state, &admin, &tenant, &registry.id)
            .await
            .unwrap()
            .is_empty()
    );
    let missing = resources::revoke(&server.state, &admin, &tenant, &registry.id, &app).await;
    assert!(
        matches!(missing, Err(TenancyError::NotFound("grant"))),
        "{missing:?}"
    );
    server.stop().await;
}

crate::both_backends!(
    the_machine_gate_follows_the_tenant_and_the_app,
    audiences_are_granted_never_chosen,
    resource_management_refuses_what_it_must,
);
