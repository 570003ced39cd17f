//! Machine tokens through the gate (issue 13): `client_credentials` and the introspection of
//! the tokens it minted need the app's tenant active and the app enabled, and every refusal is
//! audited under the tenant, where the tenant's admins read it.

use serde_json::Value;
use techpass::tenancy::apps::{AppChanges, AppSpec};
use techpass::tenancy::{self, Actor};
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
            user_assignment_required: false,
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

crate::both_backends!(the_machine_gate_follows_the_tenant_and_the_app);
