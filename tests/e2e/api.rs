//! The JSON API under /api/v1 end to end: an authorisation matrix (every route, as a platform
//! admin, the admins of two tenants, a plain signed-in person, a tenant's automation app with
//! and without API access, and nobody), CSRF, malformed input, and the OpenAPI document
//! against the routes the router serves.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};
use techpass::api::{paths, ROUTES};
use techpass::config::{AccountTypeName, MfaMode, UpstreamConfig};
use techpass::tenancy::access::Principal;
use techpass::tenancy::apps::AppSpec;
use techpass::tenancy::invitations::NewInvitation;
use techpass::tenancy::tenants::NewTenant;
use techpass::tenancy::{access, apps, invitations, tenants, Actor};
use techpass_domain::client::AccessPolicy;
use techpass_domain::gate::UserStatus;
use techpass_domain::SystemClock;
use techpass_store::testing::{Backend, TestDatabase};
use techpass_upstream::dev::{self, DevClient, DevUpstream, Tamper};
use tokio::net::TcpListener;

use crate::signin::{register_if_asked, sign_in_via};
use crate::support::{browser, client, secret, see_other, test_config, TempDir, TestServer};

/// Who calls, in the order of each case's expected statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    PlatformAdmin,
    AdminA,
    AdminB,
    Plain,
    AppA,
    AppNoApi,
    Nobody,
}

const EVERYONE: [Who; 7] = [
    Who::PlatformAdmin,
    Who::AdminA,
    Who::AdminB,
    Who::Plain,
    Who::AppA,
    Who::AppNoApi,
    Who::Nobody,
];

/// A signed-in person: a cookie-keeping browser and the session's CSRF token.
struct Person {
    browser: reqwest::Client,
    csrf: String,
    user_id: String,
    email: &'static str,
}

/// Signs `person` in at `upstream` (registering a first-time officer) and reads the session's
/// CSRF token from the API.
async fn sign_in(server: &TestServer, upstream: &str, person: &str, email: &'static str) -> Person {
    let b = browser();
    let done = sign_in_via(
        &b,
        &server.base,
        &format!("upstream={upstream}&return_to=/"),
        person,
    )
    .await;
    let location = see_other(&done);
    if email.ends_with(".gov.sg") {
        register_if_asked(&b, &server.base, &location).await;
    }
    let me: Value = b
        .get(server.url(paths::ME))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["kind"], "user", "{me}");
    Person {
        browser: b,
        csrf: me["csrf_token"].as_str().unwrap().to_string(),
        user_id: me["user_id"].as_str().unwrap().to_string(),
        email,
    }
}

/// A development upstream on its own port whose MFA TechPass trusts: it lets Carol (who
/// signs in with a password only) in, so the test has a third registered officer.
async fn trusted_upstream(techpass_base: &str) -> (UpstreamConfig, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "http://{}{}",
        listener.local_addr().unwrap(),
        dev::PATH_PREFIX
    );
    let upstream = Arc::new(
        DevUpstream::new(
            url::Url::parse(&base).unwrap(),
            vec![DevClient {
                client_id: "techpass".into(),
                client_secret: "upstream-secret".into(),
                redirect_uris: vec![format!("{techpass_base}/callback")],
            }],
            Arc::new(SystemClock),
            Tamper::None,
        )
        .unwrap(),
    );
    let issuer = upstream.issuer(dev::WOG_TENANT_ID);
    let app = axum::Router::new().nest_service(dev::PATH_PREFIX, upstream.router());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let config = UpstreamConfig {
        id: "trusted-wog".into(),
        display_name: "Public officer (MFA by the upstream)".into(),
        issuer,
        client_id: "techpass".into(),
        client_secret: Some(secret("upstream-secret")),
        client_secret_env: None,
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        allowed_tenants: vec![dev::WOG_TENANT_ID.into()],
        account_types: vec![AccountTypeName::PublicOfficer],
        mfa: MfaMode::TrustedUpstream,
        mfa_amr_values: vec!["mfa".into()],
        email_authority: Default::default(),
    };
    (config, task)
}

/// A webhook endpoint that answers the challenge.
async fn webhook_receiver() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|axum::Json(body): axum::Json<Value>| async move {
            axum::Json(json!({ "challenge": body["challenge"] }))
        }),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

struct World {
    server: TestServer,
    /// Platform admin, admin of A, admin of B, plain.
    people: [Person; 4],
    app_token: String,
    no_api_token: String,
    tenant_a: String,
    tenant_b: String,
    /// A's web app (the target of the app routes) and A's shared group and webhook.
    app: String,
    app_b: String,
    group: String,
    webhook: String,
    hook_url: String,
    counter: std::sync::atomic::AtomicU32,
}

/// One API response, read once.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl World {
    fn person(&self, who: Who) -> Option<&Person> {
        match who {
            Who::PlatformAdmin => Some(&self.people[0]),
            Who::AdminA => Some(&self.people[1]),
            Who::AdminB => Some(&self.people[2]),
            Who::Plain => Some(&self.people[3]),
            _ => None,
        }
    }

    fn next(&self) -> u32 {
        self.counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    async fn call(&self, who: Who, method: &str, path: &str, body: Option<&Value>) -> Answer {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
        let url = self.server.url(path);
        let mut request = match self.person(who) {
            Some(p) => {
                let r = p.browser.request(method.clone(), url);
                if method == Method::GET {
                    r
                } else {
                    r.header("x-csrf-token", &p.csrf)
                }
            }
            None => client().request(method.clone(), url),
        };
        request = match who {
            Who::AppA => request.bearer_auth(&self.app_token),
            Who::AppNoApi => request.bearer_auth(&self.no_api_token),
            _ => request,
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }
}

async fn token(
    server: &TestServer,
    client_id: &str,
    secret: &str,
    resource: Option<&str>,
) -> String {
    let mut form = vec![("grant_type", "client_credentials".to_string())];
    if let Some(r) = resource {
        form.push(("resource", r.to_string()));
    }
    let response = client()
        .post(server.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

fn new_tenant(slug: &str) -> Value {
    json!({
        "slug": slug,
        "name": format!("Service {slug}"),
        "description": "A toolchain service",
        "purpose": "Testing the API",
    })
}

/// Starts the server, signs four people in, has two tenants requested and approved through
/// the API, and gives tenant A an automation app (with and without API access), a web app, a
/// group and a verified webhook.
async fn world() -> World {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (trusted, _upstream) = trusted_upstream(&base).await;
    let (hook_url, _receiver) = webhook_receiver().await;
    let db = TestDatabase::sqlite().await;
    let dir = TempDir::new();
    let mut config = test_config(&db.url, &dir);
    config.upstreams = vec![trusted];
    let server = TestServer::start_on(listener, config, Arc::new(SystemClock), dir, Some(db)).await;

    let carol = sign_in(&server, "trusted-wog", "carol", "carol_ng@tech.gov.sg").await;
    let alice = sign_in(&server, "dev-wog", "alice", "alice_tan@tech.gov.sg").await;
    let bob = sign_in(&server, "dev-wog", "bob", "bob_lim@hdb.gov.sg").await;
    // A vendor who signed in but was never invited: a person with a session and no role.
    let dave = sign_in(&server, "dev-vendors", "dave", "dave@vendorco.example").await;
    let state = &server.state;
    let carol_user = state.store.get_user(&carol.user_id).await.unwrap().unwrap();
    assert!(
        tenants::grant_platform_admin(state, &Actor::Operator, &carol_user)
            .await
            .unwrap()
    );

    let mut w = World {
        people: [carol, alice, bob, dave],
        server,
        app_token: String::new(),
        no_api_token: String::new(),
        tenant_a: String::new(),
        tenant_b: String::new(),
        app: String::new(),
        app_b: String::new(),
        group: String::new(),
        webhook: String::new(),
        hook_url,
        counter: Default::default(),
    };
    let requested = w
        .call(
            Who::AdminA,
            "post",
            paths::TENANTS,
            Some(&new_tenant("alpha")),
        )
        .await;
    assert_eq!(requested.status, 201, "{}", requested.body);
    assert_eq!(requested.json()["status"], "requested");
    w.tenant_a = requested.json()["id"].as_str().unwrap().to_string();
    let requested = w
        .call(
            Who::AdminB,
            "post",
            paths::TENANTS,
            Some(&new_tenant("bravo")),
        )
        .await;
    assert_eq!(requested.status, 201, "{}", requested.body);
    w.tenant_b = requested.json()["id"].as_str().unwrap().to_string();
    let taken = w
        .call(
            Who::AdminB,
            "post",
            paths::TENANTS,
            Some(&new_tenant("alpha")),
        )
        .await;
    assert_eq!(taken.status, 409, "{}", taken.body);
    assert_eq!(taken.json()["error"], "conflict");
    for tenant in [w.tenant_a.clone(), w.tenant_b.clone()] {
        let path = paths::TENANT_DECISION.replace("{tenant_id}", &tenant);
        let refused = w
            .call(
                Who::PlatformAdmin,
                "post",
                &path,
                Some(&json!({"action": "reject"})),
            )
            .await;
        assert_eq!(refused.status, 400, "a rejection needs a reason");
        let approved = w
            .call(
                Who::PlatformAdmin,
                "post",
                &path,
                Some(&json!({"action": "approve"})),
            )
            .await;
        assert_eq!(approved.status, 200, "{}", approved.body);
        assert_eq!(approved.json()["status"], "active");
        let again = w
            .call(
                Who::PlatformAdmin,
                "post",
                &path,
                Some(&json!({"action": "approve"})),
            )
            .await;
        assert_eq!(again.status, 409, "approved once");
    }

    // Tenant A's apps, through the API as its admin.
    let apps_a = paths::APPS.replace("{tenant_id}", &w.tenant_a);
    let machine = json!({
        "name": "Automation",
        "grant_types": ["client_credentials"],
        "user_assignment_required": false,
    });
    let mut machines = Vec::new();
    for n in 1..=2 {
        // Two apps of one tenant never share a name.
        let mut machine = machine.clone();
        machine["name"] = json!(format!("Automation {n}"));
        let made = w.call(Who::AdminA, "post", &apps_a, Some(&machine)).await;
        assert_eq!(made.status, 201, "{}", made.body);
        let body = made.json();
        assert_eq!(body["api_access"], false);
        assert!(body.get("secret_hash").is_none());
        machines.push((
            body["client_id"].as_str().unwrap().to_string(),
            body["client_secret"].as_str().unwrap().to_string(),
        ));
    }
    let grant = w
        .call(
            Who::AdminA,
            "patch",
            &format!("{apps_a}/{}", machines[0].0),
            Some(&json!({"api_access": true})),
        )
        .await;
    assert_eq!(grant.status, 200, "{}", grant.body);
    assert_eq!(grant.json()["api_access"], true);
    let audience = techpass::api::api_audience(&w.server.state);
    assert_eq!(audience, format!("{}/api/v1", w.server.base));
    w.app_token = token(&w.server, &machines[0].0, &machines[0].1, Some(&audience)).await;
    w.no_api_token = token(&w.server, &machines[1].0, &machines[1].1, Some(&audience)).await;
    let web = json!({
        "name": "Web",
        "redirect_uris": ["https://app.example.gov.sg/callback"],
    });
    let made = w.call(Who::AdminA, "post", &apps_a, Some(&web)).await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(
        made.json()["redirect_uris"],
        json!(["https://app.example.gov.sg/callback"])
    );
    w.app = made.json()["client_id"].as_str().unwrap().to_string();
    // Who may sign in: `assigned` unless asked; the deprecated flag still reads and writes it.
    assert_eq!(made.json()["access_policy"], "assigned");
    assert_eq!(made.json()["user_assignment_required"], true);
    assert_eq!(
        machine_policy(&w, &apps_a, &machines[0].0).await,
        "officers"
    );
    let app_path = format!("{apps_a}/{}", w.app);
    for (change, status, policy) in [
        (json!({"access_policy": "members"}), 200, "members"),
        (json!({"access_policy": "everyone"}), 400, "members"),
        (
            json!({"access_policy": "assigned", "user_assignment_required": false}),
            400,
            "members",
        ),
        // The deprecated `false` alone never widens a members' app to every officer.
        (json!({"user_assignment_required": false}), 200, "members"),
        (json!({"user_assignment_required": true}), 200, "assigned"),
    ] {
        let r = w.call(Who::AdminA, "patch", &app_path, Some(&change)).await;
        assert_eq!(r.status, status, "{change}: {}", r.body);
        let now = w.call(Who::AdminA, "get", &app_path, None).await;
        assert_eq!(now.json()["access_policy"], policy, "{change}");
    }
    let made = w
        .call(
            Who::AdminB,
            "post",
            &paths::APPS.replace("{tenant_id}", &w.tenant_b),
            Some(&web),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    w.app_b = made.json()["client_id"].as_str().unwrap().to_string();
    let group = w
        .call(
            Who::AdminA,
            "post",
            &paths::GROUPS.replace("{tenant_id}", &w.tenant_a),
            Some(&json!({"name": "developers"})),
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.body);
    w.group = group.json()["id"].as_str().unwrap().to_string();
    let hook = w
        .call(
            Who::AdminA,
            "post",
            &paths::WEBHOOKS.replace("{tenant_id}", &w.tenant_a),
            Some(&json!({"url": w.hook_url, "events": ["user-invited"]})),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.body);
    let hook_body = hook.json();
    assert_eq!(
        hook_body["verified"], true,
        "the receiver echoed the challenge"
    );
    assert!(hook_body["secret"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(hook_body.get("secret_sealed").is_none());
    w.webhook = hook_body["id"].as_str().unwrap().to_string();
    w
}

/// What a call needs made first (through the service layer, as an operator), so each
/// authorised caller acts on its own object.
#[derive(Debug, Clone, Copy)]
enum Fixture {
    None,
    /// A newly requested tenant, as `{tenant_id}`.
    RequestedTenant,
    /// The platform admin is not an admin of A (`{candidate}` is their email).
    NotCoAdmin,
    /// The platform admin is a co-admin of A, as `{user_id}`.
    CoAdmin,
    Invitation,
    /// B's admin (an officer) has accepted an invitation of A: a member of A, as `{user_id}`.
    Member,
    /// A new client_credentials app of A, as `{client_id}`.
    FreshApp,
    /// A new app with its first secret, as `{client_id}` and `{secret_id}`.
    AppSecret,
    /// A new app trusting a CI issuer, as `{client_id}` and `{issuer_id}`.
    CiIssuer,
    /// A new group of A, as `{group_id}`.
    FreshGroup,
    /// A new group assigned to the app, as `{principal_id}`.
    AssignedGroup,
    /// A new group with the plain person in it, as `{group_id}` and `{user_id}`.
    GroupWithMember,
    /// A new role of the app and a new group, as `{role}` and `{group_id}`.
    Role,
    /// A new role granted to a new group, as `{role}` and `{principal_id}`.
    RoleGranted,
    Webhook,
    /// A test event delivered to A's webhook, as `{delivery_id}`.
    Delivery,
    /// A new grant of access to the app by email, as `{grant_id}`.
    PendingGrant,
    /// A new API resource of the tenant, as `{resource_id}`.
    Resource,
    /// A new API resource granted to the app, as `{resource_id}`.
    ResourceGranted,
    /// A new disabled officer's account, as `{user_id}`.
    DisabledPerson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tenant {
    A,
    B,
}

struct Case {
    method: &'static str,
    path: &'static str,
    tenant: Tenant,
    fixture: Fixture,
    body: Option<&'static str>,
    expect: [u16; 7],
}

/// Statuses of a route on tenant A: its admins, the platform admin and A's app succeed.
fn on_a(ok: u16) -> [u16; 7] {
    [ok, ok, 403, 403, ok, 403, 401]
}

/// As [`on_a`] for decisions reserved to people: A's automation app is refused too.
fn people_on_a(ok: u16) -> [u16; 7] {
    [ok, ok, 403, 403, 403, 403, 401]
}

/// Statuses of a route on tenant B.
fn on_b(ok: u16) -> [u16; 7] {
    [ok, 403, ok, 403, 403, 403, 401]
}

fn case(
    method: &'static str,
    path: &'static str,
    fixture: Fixture,
    body: Option<&'static str>,
    expect: [u16; 7],
) -> Case {
    Case {
        method,
        path,
        tenant: Tenant::A,
        fixture,
        body,
        expect,
    }
}

fn cases() -> Vec<Case> {
    use Fixture as F;
    let everyone_signed_in = [200, 200, 200, 200, 200, 403, 401];
    vec![
        case("get", paths::OPENAPI, F::None, None, [200; 7]),
        case("get", paths::ME, F::None, None, everyone_signed_in),
        case("get", paths::TENANTS, F::None, None, everyone_signed_in),
        case(
            "post",
            paths::TENANTS,
            F::None,
            Some(r#"{"slug":"svc-{n}","name":"Service {n}","description":"d","purpose":"p"}"#),
            [201, 201, 201, 403, 403, 403, 401],
        ),
        case("get", paths::TENANT, F::None, None, on_a(200)),
        case("get", paths::TENANT_AUDIT, F::None, None, on_a(200)),
        case(
            "get",
            paths::AUDIT,
            F::None,
            None,
            [200, 403, 403, 403, 403, 403, 401],
        ),
        case(
            "post",
            paths::TENANT_DECISION,
            F::RequestedTenant,
            Some(r#"{"action":"approve"}"#),
            [200, 403, 403, 403, 403, 403, 401],
        ),
        case("get", paths::ADMINS, F::None, None, on_a(200)),
        case(
            "post",
            paths::ADMINS,
            F::NotCoAdmin,
            Some(r#"{"user":"{candidate}"}"#),
            people_on_a(201),
        ),
        case("delete", paths::ADMIN, F::CoAdmin, None, people_on_a(204)),
        case("get", paths::INVITATIONS, F::None, None, on_a(200)),
        case(
            "post",
            paths::INVITATIONS,
            F::None,
            Some(r#"{"email":"invitee-{n}@tech.gov.sg"}"#),
            on_a(201),
        ),
        case(
            "post",
            paths::INVITATION_RESEND,
            F::Invitation,
            None,
            on_a(200),
        ),
        case("delete", paths::INVITATION, F::Invitation, None, on_a(204)),
        case(
            "post",
            paths::MEMBER_END,
            F::Member,
            Some(r#"{"reason":"contract over"}"#),
            on_a(200),
        ),
        case("get", paths::APPS, F::None, None, on_a(200)),
        case(
            "post",
            paths::APPS,
            F::None,
            Some(r#"{"name":"App {n}","redirect_uris":["https://app.example.gov.sg/{n}"]}"#),
            on_a(201),
        ),
        case("get", paths::APP, F::None, None, on_a(200)),
        case(
            "patch",
            paths::APP,
            F::None,
            Some(r#"{"name":"Renamed {n}"}"#),
            on_a(200),
        ),
        // An automation app cannot hand out API access (not even to itself).
        case(
            "patch",
            paths::APP,
            F::FreshApp,
            Some(r#"{"api_access":false}"#),
            people_on_a(200),
        ),
        // Deleting another app of the tenant: its automation app may, as its admins.
        case("delete", paths::APP, F::FreshApp, None, on_a(204)),
        case("get", paths::APP_SECRETS, F::None, None, on_a(200)),
        case(
            "post",
            paths::APP_SECRETS,
            F::FreshApp,
            Some("{}"),
            on_a(201),
        ),
        case("delete", paths::APP_SECRET, F::AppSecret, None, on_a(204)),
        case(
            "put",
            paths::APP_KEYS,
            F::None,
            Some(r#"{"keys":[]}"#),
            on_a(200),
        ),
        case("get", paths::APP_CI_ISSUERS, F::None, None, on_a(200)),
        // Trusting a CI pipeline to act as an app is a decision for people.
        case(
            "post",
            paths::APP_CI_ISSUERS,
            F::FreshApp,
            Some(
                r#"{"issuer":"https://gitlab.example.com","audience":"{client_id}","rules":[{"claim":"project_path","pattern":"platform/app-{n}"}]}"#,
            ),
            people_on_a(201),
        ),
        case("delete", paths::APP_CI_ISSUER, F::CiIssuer, None, on_a(204)),
        case("get", paths::APP_ASSIGNMENTS, F::None, None, on_a(200)),
        case(
            "post",
            paths::APP_ASSIGNMENTS,
            F::FreshGroup,
            Some(r#"{"type":"group","id":"{group_id}"}"#),
            on_a(204),
        ),
        case(
            "delete",
            paths::APP_ASSIGNMENT,
            F::AssignedGroup,
            None,
            on_a(204),
        ),
        case("get", paths::APP_ROLES, F::None, None, on_a(200)),
        case(
            "post",
            paths::APP_ROLES,
            F::None,
            Some(r#"{"role":"role-{n}"}"#),
            on_a(201),
        ),
        case(
            "post",
            paths::APP_ROLE_GRANTS,
            F::Role,
            Some(r#"{"type":"group","id":"{group_id}"}"#),
            on_a(204),
        ),
        case(
            "delete",
            paths::APP_ROLE_GRANT,
            F::RoleGranted,
            None,
            on_a(204),
        ),
        case("get", paths::APP_REVIEW, F::None, None, on_a(200)),
        case(
            "post",
            paths::APP_REVIEW_REMOVE,
            F::None,
            Some(r#"{"user_ids":[]}"#),
            on_a(200),
        ),
        case("get", paths::PENDING_GRANTS, F::None, None, on_a(200)),
        case(
            "post",
            paths::PENDING_GRANTS,
            F::None,
            Some(r#"{"client_id":"{client_id}","email":"newcomer-{n}@tech.gov.sg"}"#),
            on_a(201),
        ),
        case(
            "delete",
            paths::PENDING_GRANT,
            F::PendingGrant,
            None,
            on_a(204),
        ),
        case(
            "post",
            paths::DIRECT_TENANTS,
            F::None,
            Some(
                r#"{"name":"Direct {n}","slug":"direct-{n}","admin":"first-admin-{n}@tech.gov.sg"}"#,
            ),
            [201, 403, 403, 403, 403, 403, 401],
        ),
        case(
            "post",
            paths::ADMIN_USER_ENABLE,
            F::DisabledPerson,
            None,
            [200, 403, 403, 403, 403, 403, 401],
        ),
        case("get", paths::GROUPS, F::None, None, on_a(200)),
        case(
            "post",
            paths::GROUPS,
            F::None,
            Some(r#"{"name":"group-{n}"}"#),
            on_a(201),
        ),
        case("delete", paths::GROUP, F::FreshGroup, None, on_a(204)),
        case("get", paths::GROUP_MEMBERS, F::None, None, on_a(200)),
        case(
            "post",
            paths::GROUP_MEMBERS,
            F::FreshGroup,
            Some(r#"{"user":"{officer_email}"}"#),
            on_a(204),
        ),
        case(
            "delete",
            paths::GROUP_MEMBER,
            F::GroupWithMember,
            None,
            on_a(204),
        ),
        case("get", paths::RESOURCES, F::None, None, on_a(200)),
        case(
            "post",
            paths::RESOURCES,
            F::None,
            Some(
                r#"{"identifier":"https://api-{n}.example.gov.sg/","name":"API {n}","scopes":["read"]}"#,
            ),
            on_a(201),
        ),
        case("delete", paths::RESOURCE, F::Resource, None, on_a(204)),
        case("get", paths::RESOURCE_GRANTS, F::Resource, None, on_a(200)),
        case(
            "put",
            paths::RESOURCE_GRANT,
            F::Resource,
            Some(r#"{"scopes":["read"]}"#),
            people_on_a(200),
        ),
        case(
            "delete",
            paths::RESOURCE_GRANT,
            F::ResourceGranted,
            None,
            on_a(204),
        ),
        case("get", paths::WEBHOOKS, F::None, None, on_a(200)),
        case(
            "post",
            paths::WEBHOOKS,
            F::None,
            Some(r#"{"url":"{hook_url}","events":["user-updated"]}"#),
            on_a(201),
        ),
        case("delete", paths::WEBHOOK, F::Webhook, None, on_a(204)),
        case("post", paths::WEBHOOK_VERIFY, F::None, None, on_a(200)),
        case("get", paths::WEBHOOK_DELIVERIES, F::None, None, on_a(200)),
        case(
            "patch",
            paths::WEBHOOK,
            F::None,
            Some(r#"{"events":["user-invited","user-updated"]}"#),
            on_a(200),
        ),
        case("post", paths::WEBHOOK_TEST, F::None, None, on_a(200)),
        case("post", paths::WEBHOOK_SECRET, F::Webhook, None, on_a(200)),
        case(
            "post",
            paths::WEBHOOK_REDELIVER,
            F::Delivery,
            None,
            on_a(200),
        ),
        // Tenant B: its admin and the platform admin, never A's admin or A's app.
        Case {
            tenant: Tenant::B,
            ..case("get", paths::TENANT, F::None, None, on_b(200))
        },
        Case {
            tenant: Tenant::B,
            ..case("get", paths::APPS, F::None, None, on_b(200))
        },
        Case {
            tenant: Tenant::B,
            ..case("get", paths::APP, F::None, None, on_b(200))
        },
        Case {
            tenant: Tenant::B,
            ..case(
                "post",
                paths::GROUPS,
                F::None,
                Some(r#"{"name":"b-group-{n}"}"#),
                on_b(201),
            )
        },
        Case {
            tenant: Tenant::B,
            ..case(
                "post",
                paths::INVITATIONS,
                F::None,
                Some(r#"{"email":"b-invitee-{n}@tech.gov.sg"}"#),
                on_b(201),
            )
        },
    ]
}

/// Makes the case's fixture and returns the placeholders of its path and body.
async fn prepare(w: &World, c: &Case) -> HashMap<&'static str, String> {
    let state = &w.server.state;
    let op = &Actor::Operator;
    let n = w.next();
    let (tenant, app) = match c.tenant {
        Tenant::A => (w.tenant_a.clone(), w.app.clone()),
        Tenant::B => (w.tenant_b.clone(), w.app_b.clone()),
    };
    let mut vars = HashMap::from([
        ("n", n.to_string()),
        ("tenant_id", tenant.clone()),
        ("client_id", app.clone()),
        ("group_id", w.group.clone()),
        ("webhook_id", w.webhook.clone()),
        ("hook_url", w.hook_url.clone()),
        ("officer_email", w.people[2].email.to_string()),
        ("candidate", w.people[0].email.to_string()),
    ]);
    let group = |name: String| async move {
        access::create_group(state, op, &w.tenant_a, &name)
            .await
            .unwrap()
            .id
    };
    match c.fixture {
        Fixture::None => {}
        Fixture::RequestedTenant => {
            let requester = Actor::User {
                id: w.people[1].user_id.clone(),
                platform_admin: false,
            };
            let t = tenants::request(
                state,
                &requester,
                NewTenant {
                    slug: format!("req-{n}"),
                    name: format!("Requested {n}"),
                    description: "d".into(),
                    purpose: "p".into(),
                },
            )
            .await
            .unwrap();
            vars.insert("tenant_id", t.id);
        }
        Fixture::NotCoAdmin => {
            let _ = tenants::remove_admin(state, op, &tenant, &w.people[0].user_id).await;
        }
        Fixture::CoAdmin => {
            let _ = tenants::add_admin(state, op, &tenant, w.people[0].email).await;
            vars.insert("user_id", w.people[0].user_id.clone());
        }
        Fixture::Invitation => {
            let i = invitations::invite(
                state,
                op,
                &tenant,
                NewInvitation {
                    email: format!("fixture-{n}@tech.gov.sg"),
                    access_ends_at: None,
                },
            )
            .await
            .unwrap();
            vars.insert("invitation_id", i.id);
        }
        Fixture::Member => {
            let i = invitations::invite(
                state,
                op,
                &tenant,
                NewInvitation {
                    email: w.people[2].email.to_string(),
                    access_ends_at: None,
                },
            )
            .await
            .unwrap();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let accepted = state
                .store
                .accept_invitation(&techpass_store::Acceptance {
                    invitation_id: i.id,
                    user_id: w.people[2].user_id.clone(),
                    at: now,
                    status: UserStatus::Registered,
                    terms_version: None,
                    access_ends_at: None,
                })
                .await
                .unwrap();
            assert_eq!(accepted, techpass_store::AcceptOutcome::Accepted);
            vars.insert("user_id", w.people[2].user_id.clone());
        }
        Fixture::FreshApp | Fixture::AppSecret | Fixture::CiIssuer => {
            let made = apps::create(
                state,
                op,
                &tenant,
                AppSpec {
                    name: format!("Fixture {n}"),
                    homepage: None,
                    redirect_uris: vec![],
                    post_logout_redirect_uris: vec![],
                    backchannel_logout_uri: None,
                    confidential: true,
                    grant_types: vec!["client_credentials".into()],
                    access_policy: Some(AccessPolicy::Assigned),
                    user_assignment_required: None,
                    id_token_signed_response_alg: None,
                    access_token_signed_response_alg: None,
                },
            )
            .await
            .unwrap();
            let secrets = apps::secrets(state, op, &tenant, &made.client_id)
                .await
                .unwrap();
            vars.insert("secret_id", secrets[0].id.clone());
            if matches!(c.fixture, Fixture::CiIssuer) {
                let trusted = techpass_service::tenancy::ci_issuers::create(
                    state,
                    op,
                    &tenant,
                    &made.client_id,
                    techpass_service::tenancy::ci_issuers::NewCiIssuer {
                        issuer: "https://gitlab.example.com".into(),
                        audience: made.client_id.clone(),
                        rules: vec![techpass_service::tenancy::ci_issuers::ClaimRule {
                            claim: "project_path".into(),
                            pattern: format!("platform/fixture-{n}"),
                        }],
                        description: String::new(),
                    },
                )
                .await
                .unwrap();
                vars.insert("issuer_id", trusted.id);
            }
            vars.insert("client_id", made.client_id);
        }
        Fixture::FreshGroup => {
            vars.insert("group_id", group(format!("fixture-{n}")).await);
        }
        Fixture::AssignedGroup => {
            let g = group(format!("assigned-{n}")).await;
            access::assign(state, op, &tenant, &app, &Principal::Group(g.clone()))
                .await
                .unwrap();
            vars.insert("principal_type", "group".into());
            vars.insert("principal_id", g);
        }
        Fixture::GroupWithMember => {
            let g = group(format!("members-{n}")).await;
            // An officer: the uninvited vendor (people[3]) is nobody to the tenant.
            access::set_membership(state, op, &tenant, &g, w.people[2].email, true)
                .await
                .unwrap();
            vars.insert("group_id", g);
            vars.insert("user_id", w.people[2].user_id.clone());
        }
        Fixture::Role | Fixture::RoleGranted => {
            let role = format!("fixture-role-{n}");
            access::define_role(state, op, &tenant, &app, &role)
                .await
                .unwrap();
            let g = group(format!("role-holders-{n}")).await;
            if matches!(c.fixture, Fixture::RoleGranted) {
                access::grant_role(
                    state,
                    op,
                    &tenant,
                    &app,
                    &role,
                    &Principal::Group(g.clone()),
                    true,
                )
                .await
                .unwrap();
            }
            vars.insert("role", role);
            vars.insert("principal_type", "group".into());
            vars.insert("principal_id", g.clone());
            vars.insert("group_id", g);
        }
        Fixture::Resource | Fixture::ResourceGranted => {
            let made = techpass::tenancy::resources::create(
                state,
                op,
                &tenant,
                techpass::tenancy::resources::NewResource {
                    identifier: format!("https://fixture-{n}.example.gov.sg/"),
                    name: format!("Fixture {n}"),
                    scopes: vec!["read".into()],
                },
            )
            .await
            .unwrap();
            if matches!(c.fixture, Fixture::ResourceGranted) {
                techpass::tenancy::resources::grant(
                    state,
                    op,
                    &tenant,
                    &made.id,
                    &app,
                    vec!["read".into()],
                )
                .await
                .unwrap();
            }
            vars.insert("resource_id", made.id);
        }
        Fixture::DisabledPerson => {
            let id = format!("disabled-{n}");
            state
                .store
                .upsert_user(&techpass_store::UserRecord {
                    id: id.clone(),
                    tenant_id: "fixture".into(),
                    object_id: id.clone(),
                    email: Some(format!("{id}@tech.gov.sg")),
                    name: None,
                    created_at: 1,
                    last_signin_at: 1,
                    status: UserStatus::Disabled,
                    account_type: "public_officer".into(),
                    terms_version: Some("1".into()),
                    registered_at: Some(1),
                    access_ends_at: None,
                    status_reason: Some("inactive".into()),
                    exempt: false,
                    app_signin_at: Some(1),
                    given_name: None,
                    family_name: None,
                    email_verified: true,
                    enabled_at: None,
                    terminated_at: None,
                })
                .await
                .unwrap();
            vars.insert("user_id", id);
        }
        Fixture::PendingGrant => {
            let made = techpass::tenancy::pending::grant_app_access(
                state,
                op,
                &tenant,
                &app,
                &format!("fixture-{n}@tech.gov.sg"),
            )
            .await
            .unwrap();
            vars.insert("grant_id", made.id);
        }
        Fixture::Webhook => {
            let made = techpass::webhooks::create(
                state,
                op,
                &tenant,
                &w.hook_url,
                &["user-deleted".to_string()],
            )
            .await
            .unwrap();
            vars.insert("webhook_id", made.webhook.id);
        }
        Fixture::Delivery => {
            let sent = techpass::webhooks::send_test(state, op, &w.tenant_a, &w.webhook)
                .await
                .unwrap();
            assert_eq!(sent.status, "delivered", "{sent:?}");
            vars.insert("delivery_id", sent.delivery_id);
        }
    }
    vars
}

fn fill(template: &str, vars: &HashMap<&'static str, String>) -> String {
    let mut text = template.to_string();
    for (key, value) in vars {
        text = text.replace(&format!("{{{key}}}"), value);
    }
    text
}

/// Secrets' hashes, link hashes and sealed secrets never appear in any response.
const NEVER_SHOWN: [&str; 4] = ["secret_hash", "token_hash", "secret_sealed", "id_hash"];

#[tokio::test]
async fn authorisation_matrix_over_every_route() {
    let w = world().await;
    let table = cases();

    // The table covers every route the router serves, and the document lists exactly those.
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let tested: BTreeSet<(String, String)> = table
        .iter()
        .map(|c| (c.method.to_string(), c.path.to_string()))
        .collect();
    assert_eq!(tested, served, "the matrix calls every route");
    let doc = w.call(Who::Nobody, "get", paths::OPENAPI, None).await;
    assert_eq!(doc.status, 200);
    let doc: Value = serde_json::from_str(&doc.body).expect("the document is JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    assert_eq!(documented, served, "the document lists every route");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(doc["servers"][0]["url"], w.server.base);
    for schema in [
        "TenantView",
        "InvitationView",
        "AppView",
        "NewSecret",
        "ErrorBody",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    for schema in ["AppView", "AppSpec", "AppChanges"] {
        for field in [
            "id_token_signed_response_alg",
            "access_token_signed_response_alg",
        ] {
            assert!(
                doc["components"]["schemas"][schema]["properties"][field].is_object(),
                "{schema}.{field} documented"
            );
        }
    }
    assert!(
        !doc["components"]["schemas"]["InvitationView"]["properties"]
            .as_object()
            .unwrap()
            .contains_key("token_hash")
    );

    let mut failures = Vec::new();
    for c in &table {
        for (who, expected) in EVERYONE.iter().zip(c.expect) {
            let vars = prepare(&w, c).await;
            let path = fill(c.path, &vars);
            assert!(!path.contains('{'), "unfilled {path}");
            let body = c
                .body
                .map(|b| serde_json::from_str::<Value>(&fill(b, &vars)).unwrap());
            let answer = w.call(*who, c.method, &path, body.as_ref()).await;
            if answer.status != expected {
                failures.push(format!(
                    "{} {} as {who:?}: {} (expected {expected}) {}",
                    c.method, c.path, answer.status, answer.body
                ));
            }
            assert_eq!(
                answer
                    .headers
                    .get("cache-control")
                    .map(|v| v.to_str().unwrap()),
                Some("no-store"),
                "{} {}",
                c.method,
                c.path
            );
            for hidden in NEVER_SHOWN {
                assert!(
                    !answer.body.contains(hidden),
                    "{} {}: {hidden}",
                    c.method,
                    c.path
                );
            }
            if answer.status >= 400 {
                let error = answer.json();
                assert!(
                    error["error"].is_string() && error["message"].is_string(),
                    "{error}"
                );
            }
            if answer.status == 401 {
                assert!(answer.headers.contains_key("www-authenticate"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    w.server.stop().await;
}

#[tokio::test]
async fn tokens_csrf_and_malformed_requests_are_refused_clearly() {
    let w = world().await;
    let a = &w.tenant_a;
    let groups = paths::GROUPS.replace("{tenant_id}", a);
    let admin = &w.people[1];

    // Re-enabling: an unknown person is 404, an account that is not disabled 409, both in the
    // API's error shape; the platform admin's own (registered) account is not disabled.
    let nobody = paths::ADMIN_USER_ENABLE.replace("{user_id}", "nobody");
    let answer = w.call(Who::PlatformAdmin, "post", &nobody, None).await;
    assert_eq!(
        (answer.status, answer.json()["error"].as_str()),
        (404, Some("not_found")),
        "{}",
        answer.body
    );
    let plain = paths::ADMIN_USER_ENABLE.replace("{user_id}", &w.people[3].user_id);
    let answer = w.call(Who::PlatformAdmin, "post", &plain, None).await;
    assert_eq!(
        (answer.status, answer.json()["error"].as_str()),
        (409, Some("conflict")),
        "{}",
        answer.body
    );
    assert!(answer.json()["message"]
        .as_str()
        .unwrap()
        .contains("not disabled"));

    // A change with the session but without (or with a wrong) CSRF token.
    for csrf in [None, Some("forged")] {
        let mut request = admin
            .browser
            .post(w.server.url(&groups))
            .json(&json!({"name": "no-csrf"}));
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "csrf_failed");
    }

    // With a valid CSRF token, but sent by another website: refused before anything happens.
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let response = admin
            .browser
            .post(w.server.url(&groups))
            .header("x-csrf-token", &admin.csrf)
            .header(header, value)
            .json(&json!({"name": "cross-origin"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{header}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "cross_origin", "{header}");
    }
    let listed = w.call(Who::AdminA, "get", &groups, None).await;
    assert!(!listed.body.contains("cross-origin"), "no group was made");

    // Wildcard redirect URIs are refused with a message that says why.
    let apps = paths::APPS.replace("{tenant_id}", a);
    for uri in [
        "https://*.example.gov.sg/cb",
        "https://app.example.gov.sg/cb*",
    ] {
        let answer = w
            .call(
                Who::AdminA,
                "post",
                &apps,
                Some(&json!({"name": "Wild", "redirect_uris": [uri]})),
            )
            .await;
        assert_eq!(answer.status, 400, "{uri}: {}", answer.body);
        assert!(
            answer.json()["message"]
                .as_str()
                .unwrap()
                .contains("wildcards are not supported, redirect URIs are compared exactly"),
            "{}",
            answer.body
        );
    }
    let plain = w
        .call(
            Who::AdminA,
            "post",
            &apps,
            Some(&json!({"name": "Plain", "redirect_uris": ["http://app.example.gov.sg/cb"]})),
        )
        .await;
    assert_eq!(plain.status, 400, "{}", plain.body);
    assert!(
        plain.json()["message"]
            .as_str()
            .unwrap()
            .contains("http://app.example.gov.sg/cb must use https"),
        "{}",
        plain.body
    );

    // Malformed and mistyped JSON, a missing content type, bad query parameters: 400s.
    let send = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = admin
            .browser
            .post(w.server.url(&groups))
            .header("x-csrf-token", &admin.csrf)
            .body(body);
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        async move { request.send().await.unwrap() }
    };
    for (case, body, content_type) in [
        ("malformed JSON", "{\"name\": ", Some("application/json")),
        ("wrong type", "{\"name\": 5}", Some("application/json")),
        ("missing field", "{}", Some("application/json")),
        ("no content type", "{\"name\": \"x\"}", None),
    ] {
        let response = send(body, content_type).await;
        assert_eq!(response.status(), 400, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{case}");
        assert!(!body["message"].as_str().unwrap().is_empty(), "{case}");
    }
    let invitations = paths::INVITATIONS.replace("{tenant_id}", a);
    for query in [
        "limit=201",
        "limit=0",
        "offset=-1",
        "status=bogus",
        "limit=many",
    ] {
        let answer = w
            .call(Who::AdminA, "get", &format!("{invitations}?{query}"), None)
            .await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
    }
    let answer = w
        .call(
            Who::AdminA,
            "get",
            &format!("{invitations}?status=pending&limit=200"),
            None,
        )
        .await;
    assert_eq!(answer.status, 200);

    // Unknown tenants and apps are 404s for those who could see them.
    let unknown = paths::TENANT.replace("{tenant_id}", "tnt_nope");
    assert_eq!(
        w.call(Who::PlatformAdmin, "get", &unknown, None)
            .await
            .status,
        404
    );
    let unknown_app = paths::APP
        .replace("{tenant_id}", a)
        .replace("{client_id}", &w.app_b);
    assert_eq!(
        w.call(Who::AdminA, "get", &unknown_app, None).await.status,
        404,
        "B's app is not A's"
    );
    assert_eq!(
        w.call(Who::AdminA, "delete", &unknown_app, None)
            .await
            .status,
        404,
        "nor can A delete it"
    );

    // Bearer tokens: garbage, another audience, a malformed header.
    let me = w.server.url(paths::ME);
    let garbage = client()
        .get(&me)
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
    assert!(garbage.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
    let apps_a = paths::APPS.replace("{tenant_id}", a);
    let listed: Value = w.call(Who::AdminA, "get", &apps_a, None).await.json();
    let automation = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|app| app["api_access"] == true)
        .unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    // An automation app cannot delete itself (it would lose its own access mid-call).
    let itself = paths::APP
        .replace("{tenant_id}", a)
        .replace("{client_id}", &automation);
    let refused = w.call(Who::AppA, "delete", &itself, None).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("cannot delete itself"),
        "{}",
        refused.body
    );
    assert_eq!(w.call(Who::AdminA, "get", &itself, None).await.status, 200);
    let secret = apps::add_secret(&w.server.state, &Actor::Operator, a, &automation, None)
        .await
        .unwrap()
        .secret;
    let elsewhere = token(&w.server, &automation, &secret, None).await;
    let refused = client()
        .get(&me)
        .bearer_auth(&elsewhere)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "a token for another audience");
    let malformed = client()
        .get(&me)
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);

    // The app's own view, then API access withdrawn and restored: effective at once.
    let mine = w.call(Who::AppA, "get", paths::ME, None).await.json();
    assert_eq!(mine["kind"], "app");
    assert_eq!(mine["tenant_id"], w.tenant_a.as_str());
    assert!(mine["csrf_token"].is_null());
    let listed = w.call(Who::AppA, "get", paths::TENANTS, None).await.json();
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "an app sees its own tenant"
    );
    let app_path = format!("{apps_a}/{automation}");
    let off = w
        .call(
            Who::AdminA,
            "patch",
            &app_path,
            Some(&json!({"api_access": false})),
        )
        .await;
    assert_eq!(off.status, 200);
    let withdrawn = w.call(Who::AppA, "get", &apps_a, None).await;
    assert_eq!(withdrawn.status, 403);
    assert_eq!(withdrawn.json()["error"], "insufficient_scope");
    let on = w
        .call(
            Who::AdminA,
            "patch",
            &app_path,
            Some(&json!({"api_access": true})),
        )
        .await;
    assert_eq!(on.status, 200);
    assert_eq!(w.call(Who::AppA, "get", &apps_a, None).await.status, 200);

    // Signing algorithms (issue 17 item 3): a supported one is taken and shown; anything else is
    // a 400 that names the field and the supported values, and changes nothing.
    let chosen = w
        .call(
            Who::AdminA,
            "patch",
            &app_path,
            Some(&json!({"id_token_signed_response_alg": "ES256",
                         "access_token_signed_response_alg": "EdDSA"})),
        )
        .await;
    assert_eq!(chosen.status, 200, "{}", chosen.body);
    assert_eq!(chosen.json()["id_token_signed_response_alg"], "ES256");
    assert_eq!(chosen.json()["access_token_signed_response_alg"], "EdDSA");
    for (field, value) in [
        ("id_token_signed_response_alg", "HS256"),
        ("access_token_signed_response_alg", "none"),
        ("access_token_signed_response_alg", "es256"),
    ] {
        let refused = w
            .call(
                Who::AdminA,
                "patch",
                &app_path,
                Some(&json!({ field: value })),
            )
            .await;
        assert_eq!(refused.status, 400, "{field}={value}: {}", refused.body);
        assert_eq!(refused.json()["error"], "invalid_request");
        let message = refused.json()["message"].as_str().unwrap().to_string();
        assert!(
            message.contains(field) && message.contains("RS256, ES256, EdDSA"),
            "{message}"
        );
    }
    let unchanged = w.call(Who::AdminA, "get", &app_path, None).await.json();
    assert_eq!(unchanged["id_token_signed_response_alg"], "ES256");
    assert_eq!(unchanged["access_token_signed_response_alg"], "EdDSA");
    let created = w
        .call(
            Who::AdminA,
            "post",
            &apps_a,
            Some(
                &json!({"name": "Bad alg", "redirect_uris": ["https://app.example.gov.sg/x"],
                         "id_token_signed_response_alg": "PS256"}),
            ),
        )
        .await;
    assert_eq!(created.status, 400, "{}", created.body);

    // A new secret is shown once; listings never show it.
    let secrets = paths::APP_SECRETS
        .replace("{tenant_id}", a)
        .replace("{client_id}", &w.app);
    let made = w
        .call(
            Who::AdminA,
            "post",
            &secrets,
            Some(&json!({"lifetime_days": 30})),
        )
        .await;
    assert_eq!(made.status, 201);
    let shown = made.json()["secret"].as_str().unwrap().to_string();
    let listing = w.call(Who::AdminA, "get", &secrets, None).await;
    assert!(!listing.body.contains(&shown));
    let too_long = w
        .call(
            Who::AdminA,
            "post",
            &secrets,
            Some(&json!({"lifetime_days": 9999})),
        )
        .await;
    assert_eq!(too_long.status, 400);

    // A suspended tenant's app loses the API; reinstated, it has it again.
    let decision = paths::TENANT_DECISION.replace("{tenant_id}", a);
    let suspended = w
        .call(
            Who::PlatformAdmin,
            "post",
            &decision,
            Some(&json!({"action": "suspend", "reason": "audit"})),
        )
        .await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    assert_eq!(w.call(Who::AppA, "get", &apps_a, None).await.status, 403);
    let reinstated = w
        .call(
            Who::PlatformAdmin,
            "post",
            &decision,
            Some(&json!({"action": "reinstate"})),
        )
        .await;
    assert_eq!(reinstated.status, 200);
    assert_eq!(w.call(Who::AppA, "get", &apps_a, None).await.status, 200);

    // Access by email: every refusal is the API's JSON with its status, never a 500.
    let grants = paths::PENDING_GRANTS.replace("{tenant_id}", a);
    let grant = |client_id: &str, email: &str| json!({"client_id": client_id, "email": email});
    for (who, path, body, status, code, needle) in [
        (
            Who::AdminA,
            grants.clone(),
            grant(&w.app, "nope"),
            400,
            "invalid_request",
            "not an email address",
        ),
        (
            Who::AdminA,
            grants.clone(),
            grant(&w.app, w.people[3].email),
            400,
            "invalid_request",
            "invite the person to this tenant first",
        ),
        (
            Who::AdminA,
            grants.clone(),
            json!({"email": "x@tech.gov.sg"}),
            400,
            "invalid_request",
            "client_id",
        ),
        (
            Who::AdminA,
            grants.clone(),
            grant("app_unknown", "x@tech.gov.sg"),
            404,
            "not_found",
            "app",
        ),
        (
            Who::AdminA,
            grants.clone(),
            grant(&w.app_b, "x@tech.gov.sg"),
            404,
            "not_found",
            "app",
        ),
        (
            Who::AdminB,
            grants.clone(),
            grant(&w.app, "x@tech.gov.sg"),
            403,
            "forbidden",
            "not an admin",
        ),
        (
            Who::PlatformAdmin,
            paths::PENDING_GRANTS.replace("{tenant_id}", "tnt_unknown"),
            grant(&w.app, "x@tech.gov.sg"),
            404,
            "not_found",
            "tenant",
        ),
    ] {
        let answer = w.call(who, "post", &path, Some(&body)).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        assert_eq!(answer.json()["error"], code, "{}", answer.body);
        assert!(answer.body.contains(needle), "{needle}: {}", answer.body);
    }
    // An address with an account (Bob's) and one without get the same answer.
    let mut shapes = Vec::new();
    for email in [w.people[2].email, "nobody-yet@tech.gov.sg"] {
        let made = w
            .call(Who::AdminA, "post", &grants, Some(&grant(&w.app, email)))
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
        let body = made.json();
        assert_eq!(body["email"], email);
        assert_eq!(body["kind"], "app_access");
        let mut keys: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        shapes.push(keys);
        let again = w
            .call(Who::AdminA, "post", &grants, Some(&grant(&w.app, email)))
            .await;
        assert_eq!(again.status, 409, "{}", again.body);
        assert_eq!(again.json()["error"], "conflict");
    }
    assert_eq!(shapes[0], shapes[1]);
    assert!(
        !shapes[0].iter().any(|k| k.contains("user")),
        "{:?}",
        shapes[0]
    );
    let listed = w.call(Who::AdminA, "get", &grants, None).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let first = listed[0]["id"].as_str().unwrap().to_string();
    let one = paths::PENDING_GRANT.replace("{tenant_id}", a);
    let on_b = paths::PENDING_GRANT.replace("{tenant_id}", &w.tenant_b);
    let wrong_tenant = w
        .call(
            Who::PlatformAdmin,
            "delete",
            &on_b.replace("{grant_id}", &first),
            None,
        )
        .await;
    assert_eq!(wrong_tenant.status, 404, "{}", wrong_tenant.body);
    let path = one.replace("{grant_id}", &first);
    assert_eq!(w.call(Who::AdminA, "delete", &path, None).await.status, 204);
    let gone = w.call(Who::AdminA, "delete", &path, None).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json()["error"], "not_found");

    // A tenant registered directly by a platform admin.
    let world_ref = &w;
    let direct = |body: Value| async move {
        world_ref
            .call(
                Who::PlatformAdmin,
                "post",
                paths::DIRECT_TENANTS,
                Some(&body),
            )
            .await
    };
    for (body, status, needle) in [
        (
            json!({"name": "Vendor's", "admin": world_ref.people[3].email}),
            400,
            "public officer",
        ),
        (
            json!({"name": "Bad admin", "admin": "not-an-email"}),
            400,
            "not an email address",
        ),
        (
            json!({"name": "Alpha again", "slug": "alpha", "admin": "x@tech.gov.sg"}),
            409,
            "taken",
        ),
        (json!({"name": "No admin"}), 400, "admin"),
        (json!({"name": "", "admin": "x@tech.gov.sg"}), 400, "name"),
        (
            json!({"name": "Bad slug", "slug": "Bad Slug", "admin": "x@tech.gov.sg"}),
            400,
            "slug",
        ),
    ] {
        let answer = direct(body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        assert!(answer.body.contains(needle), "{needle}: {}", answer.body);
    }
    let now = direct(json!({"name": "Registry", "admin": world_ref.people[1].email})).await;
    assert_eq!(now.status, 201, "{}", now.body);
    let body = now.json();
    assert_eq!(body["tenant"]["status"], "active");
    assert_eq!(body["tenant"]["slug"], "registry");
    assert_eq!(body["admin"]["pending"], false);
    assert_eq!(
        body["admin"]["user_id"],
        world_ref.people[1].user_id.as_str()
    );
    let later = direct(json!({"name": "Tickets", "admin": "Someone.New@Tech.gov.sg"})).await;
    assert_eq!(later.status, 201, "{}", later.body);
    let body = later.json();
    assert_eq!(body["admin"]["pending"], true);
    assert_eq!(body["admin"]["email"], "someone.new@tech.gov.sg");
    let tickets = body["tenant"]["id"].as_str().unwrap().to_string();
    let pending_admins = w
        .call(
            Who::PlatformAdmin,
            "get",
            &paths::PENDING_GRANTS.replace("{tenant_id}", &tickets),
            None,
        )
        .await
        .json();
    assert_eq!(
        pending_admins[0]["kind"], "tenant_admin",
        "{pending_admins}"
    );
    w.server.stop().await;
}

/// One route on each backend: request a tenant, read it back, list it, read the document.
async fn api_smoke(backend: Backend) {
    let Some(server) = TestServer::start(backend, "e2e::api_smoke").await else {
        return;
    };
    let alice = sign_in(&server, "dev-wog", "alice", "alice_tan@tech.gov.sg").await;
    let made = alice
        .browser
        .post(server.url(paths::TENANTS))
        .header("x-csrf-token", &alice.csrf)
        .json(&new_tenant("smoke"))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    assert_eq!(made["slug"], "smoke");
    assert_eq!(made["requested_by"], alice.user_id.as_str());
    let user = server
        .state
        .store
        .get_user(&alice.user_id)
        .await
        .unwrap()
        .unwrap();
    tenants::grant_platform_admin(&server.state, &Actor::Operator, &user)
        .await
        .unwrap();
    let listed: Value = alice
        .browser
        .get(server.url(&format!("{}?status=requested", paths::TENANTS)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["id"], made["id"]);
    let doc = server.get(paths::OPENAPI).await;
    assert_eq!(doc.status(), 200);
    assert!(doc.json::<Value>().await.unwrap()["paths"][paths::TENANTS].is_object());
    server.stop().await;
}

crate::both_backends!(api_smoke);

/// The access policy of one of `apps`' apps, as the API reports it.
async fn machine_policy(w: &World, apps: &str, client_id: &str) -> String {
    let r = w
        .call(Who::AdminA, "get", &format!("{apps}/{client_id}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_policy"].as_str().unwrap().to_string()
}
