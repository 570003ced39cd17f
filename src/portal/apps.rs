//! A tenant's apps (OIDC clients): the list and the registration form (the new app's client
//! id and secret shown once on the result page), the settings form (redirect URIs, lifetimes,
//! assignment required, API access; what an integrator needs to configure their library), the
//! sign-in kill switch and deletion after a confirmation, plus the app view and section
//! navigation the other app pages share. Thin handlers over [`crate::tenancy::apps`]; it must
//! not validate URIs or lifetimes itself (the service does, and its message is shown).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use techpass_oidc::keys::SigningAlg;
use techpass_store::{ClientRecord, TenantRecord};

use super::tenants::{administered, tenant_context};
use super::{
    confirm, date, done, error_page, fill, form_failure, paths, render, slice, Confirm, Fields,
    Flash, Me, Page, Pager, Posted,
};
use super::{show_once, shown_value};
use crate::provider::clients::{GRANT_CLIENT_CREDENTIALS, GRANT_TYPES};
use crate::state::AppState;
use crate::tenancy::apps::{self, AppChanges, AppSpec};
use techpass_domain::client::AccessPolicy;
use techpass_domain::tenancy::TenantStatus;
use techpass_service::reveal::Shown;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::APPS, get(list).post(create))
        .route(paths::APP, get(settings).post(update))
        .route(paths::APP_ENABLED, post(set_enabled))
        .route(paths::APP_DELETE, post(delete))
}

/// An app as its pages show it.
#[derive(Debug, Serialize)]
pub struct AppView {
    pub client_id: String,
    pub name: String,
    pub homepage: Option<String>,
    pub confidential: bool,
    pub enabled: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub grant_types: Vec<String>,
    pub access_policy: String,
    /// Who may sign in, in words.
    pub access_label: &'static str,
    pub access_token_lifetime_secs: Option<i64>,
    pub refresh_token_idle_secs: Option<i64>,
    pub api_access: bool,
    pub dpop_bound_access_tokens: bool,
    /// The JWS algorithms of its ID tokens and access tokens (the default when it chose none).
    pub id_token_signed_response_alg: String,
    pub access_token_signed_response_alg: String,
    pub machine: bool,
    /// Only `client_credentials`: signs nobody in, so has no redirect URIs, refresh tokens or
    /// access policy to show.
    pub machine_only: bool,
    pub has_keys: bool,
    pub created: String,
    pub href: String,
}

fn machine_only(grant_types: &[String]) -> bool {
    !grant_types.is_empty() && grant_types.iter().all(|g| g == GRANT_CLIENT_CREDENTIALS)
}

/// Why a tenant's apps sign nobody in, or `None` while it is active.
pub fn tenant_blocks_signin(tenant: &TenantRecord) -> Option<String> {
    match tenant.status {
        TenantStatus::Active => None,
        TenantStatus::Suspended => Some(
            "This tenant is suspended: its apps sign nobody in. Every sign-in, token refresh, userinfo and introspection request for them is refused until a platform admin reinstates the tenant.".into(),
        ),
        other => Some(format!(
            "This tenant is {}, not active: its apps sign nobody in until a platform admin approves it.",
            other.as_str()
        )),
    }
}

impl AppView {
    pub fn new(tenant_id: &str, c: &ClientRecord) -> AppView {
        let grant_types = c.grant_types.clone();
        AppView {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            homepage: c.homepage.clone(),
            confidential: c.confidential,
            enabled: c.enabled,
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            machine: grant_types.iter().any(|g| g == GRANT_CLIENT_CREDENTIALS),
            machine_only: machine_only(&grant_types),
            grant_types,
            access_policy: c.access_policy.as_str().to_string(),
            access_label: c.access_policy.label(),
            access_token_lifetime_secs: c.access_token_lifetime_secs,
            refresh_token_idle_secs: c.refresh_token_idle_secs,
            api_access: c.api_access,
            dpop_bound_access_tokens: c.dpop_bound_access_tokens,
            id_token_signed_response_alg: c
                .id_token_signed_response_alg
                .clone()
                .unwrap_or_else(|| SigningAlg::DEFAULT.as_str().into()),
            access_token_signed_response_alg: c
                .access_token_signed_response_alg
                .clone()
                .unwrap_or_else(|| SigningAlg::DEFAULT.as_str().into()),
            has_keys: c.jwks.is_some(),
            created: date(c.created_at),
            href: fill(
                paths::APP,
                &[("tenant_id", tenant_id), ("client_id", &c.client_id)],
            ),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AppNavItem {
    pub key: &'static str,
    pub label: &'static str,
    pub href: String,
}

/// The context every app page shares: the tenant's navigation, the app and its sections.
pub fn app_context(tenant: &TenantRecord, app: &ClientRecord, section: &str) -> minijinja::Value {
    let ids = [
        ("tenant_id", tenant.id.as_str()),
        ("client_id", &app.client_id),
    ];
    let nav: Vec<AppNavItem> = [
        ("settings", "Settings", paths::APP),
        ("credentials", "Credentials", paths::CREDENTIALS),
        ("ci", "CI pipelines", paths::CI_ISSUERS),
        ("access", "Access and roles", paths::ACCESS),
        ("review", "Access review", paths::REVIEW),
    ]
    .into_iter()
    .map(|(key, label, path)| AppNavItem {
        key,
        label,
        href: fill(path, &ids),
    })
    .collect();
    minijinja::context! {
        app => AppView::new(&tenant.id, app),
        app_nav => nav,
        app_section => section,
        ..tenant_context(tenant, "apps")
    }
}

/// The tenant and the app, if the person administers the tenant, or the page saying why not.
pub async fn administered_app(
    state: &AppState,
    me: &Me,
    tenant_id: &str,
    client_id: &str,
) -> Result<(TenantRecord, ClientRecord), Response> {
    let tenant = administered(state, me, tenant_id).await?;
    let app = apps::get(state, &me.actor, tenant_id, client_id)
        .await
        .map_err(|e| error_page(state, e))?;
    Ok((tenant, app))
}

/// The access policy chosen on a form (absent: not on this form); an unknown value is refused.
fn policy_field(fields: &Fields) -> Result<Option<AccessPolicy>, String> {
    match fields.get("access_policy") {
        None => Ok(None),
        Some(v) => AccessPolicy::parse(v)
            .map(Some)
            .ok_or_else(|| "Choose who may sign in to the app.".to_string()),
    }
}

async fn list(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    me: Me,
    RawQuery(q): RawQuery,
) -> Page {
    let q = Fields::query(q);
    show_list(&state, &me, &tenant_id, q.page(), Flash::from_query(&q)).await
}

async fn show_list(state: &AppState, me: &Me, tenant_id: &str, page: u32, flash: Flash) -> Page {
    let tenant = administered(state, me, tenant_id).await?;
    let all = apps::list(state, &me.actor, tenant_id)
        .await
        .map_err(|e| error_page(state, e))?;
    let (found, more) = slice(all, page);
    let views: Vec<AppView> = found.iter().map(|c| AppView::new(&tenant.id, c)).collect();
    let here = fill(paths::APPS, &[("tenant_id", &tenant.id)]);
    Ok(render(
        state,
        me,
        &flash,
        "portal/apps.html",
        minijinja::context! {
            apps => views,
            pager => Pager::new(&here, &[], page, more),
            action => here,
            grants => GRANT_TYPES,
            active => tenant.status == TenantStatus::Active,
            blocked => tenant_blocks_signin(&tenant),
            ..tenant_context(&tenant, "apps")
        },
    ))
}

async fn create(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    Posted { me, fields }: Posted,
) -> Page {
    let access_policy = match policy_field(&fields) {
        Ok(p) => p,
        Err(message) => {
            let flash = Flash::error(StatusCode::BAD_REQUEST, message, &fields);
            return show_list(&state, &me, &tenant_id, 1, flash).await;
        }
    };
    let spec = AppSpec {
        name: fields.text("name"),
        homepage: fields.opt("homepage"),
        redirect_uris: fields.lines("redirect_uris"),
        post_logout_redirect_uris: fields.lines("post_logout_redirect_uris"),
        backchannel_logout_uri: fields.opt("backchannel_logout_uri"),
        confidential: fields.get("kind") != Some("public"),
        grant_types: fields.all("grant"),
        access_policy,
        user_assignment_required: None,
        id_token_signed_response_alg: fields.opt("id_token_signed_response_alg"),
        access_token_signed_response_alg: fields.opt("access_token_signed_response_alg"),
    };
    match apps::create(&state, &me.actor, &tenant_id, spec).await {
        Ok(created) => {
            let app_href = fill(
                paths::APP,
                &[("tenant_id", &tenant_id), ("client_id", &created.client_id)],
            );
            let mut values = vec![shown_value(
                "Client ID",
                "client_id",
                created.client_id,
                false,
            )];
            if let Some(secret) = created.client_secret {
                values.push(shown_value("Client secret", "client_secret", secret, true));
            }
            show_once(
                &state,
                &me,
                &Shown {
                    title: "App registered".into(),
                    intro: "Configure your app with these values. The secret is shown only now: TechPass keeps only a hash of it. Copy it into your app's secret store before you leave this page.".into(),
                    values,
                    next_href: app_href,
                    next_label: "Go to the app's settings".into(),
                },
            )
            .await
        }
        Err(e) => {
            let flash = form_failure(&state, e, &fields)?;
            show_list(&state, &me, &tenant_id, 1, flash).await
        }
    }
}

async fn settings(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    me: Me,
    RawQuery(q): RawQuery,
) -> Page {
    let q = Fields::query(q);
    show_settings(&state, &me, &tenant_id, &client_id, Flash::from_query(&q)).await
}

async fn show_settings(
    state: &AppState,
    me: &Me,
    tenant_id: &str,
    client_id: &str,
    flash: Flash,
) -> Page {
    let (tenant, app) = administered_app(state, me, tenant_id, client_id).await?;
    let ids = [
        ("tenant_id", tenant.id.as_str()),
        ("client_id", &app.client_id),
    ];
    let issuer = state.metadata.issuer.to_string();
    Ok(render(
        state,
        me,
        &flash,
        "portal/app.html",
        minijinja::context! {
            action => fill(paths::APP, &ids),
            enabled_action => fill(paths::APP_ENABLED, &ids),
            delete_action => fill(paths::APP_DELETE, &ids),
            max_access_token_secs => state.config.tokens.access_token_lifetime_secs,
            max_refresh_idle_secs => state.config.tokens.refresh_token_idle_secs,
            signing_algs => SigningAlg::names(),
            issuer => issuer,
            discovery_url => format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')),
            active => tenant.status == TenantStatus::Active,
            blocked => tenant_blocks_signin(&tenant),
            ..app_context(&tenant, &app, "settings")
        },
    ))
}

/// A whole number of seconds, or empty (unchanged).
fn seconds(fields: &Fields, name: &str, label: &str) -> Result<Option<i64>, String> {
    match fields.opt(name) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("{label} must be a whole number of seconds")),
    }
}

async fn update(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let (_, app) = administered_app(&state, &me, &tenant_id, &client_id).await?;
    let lifetimes = seconds(
        &fields,
        "access_token_lifetime_secs",
        "The access token lifetime",
    )
    .and_then(|a| {
        seconds(
            &fields,
            "refresh_token_idle_secs",
            "The refresh token idle time",
        )
        .map(|r| (a, r))
    });
    let lifetimes = lifetimes.and_then(|l| policy_field(&fields).map(|p| (l, p)));
    let ((access, refresh), access_policy) = match lifetimes {
        Ok(v) => v,
        Err(message) => {
            let flash = Flash::error(StatusCode::BAD_REQUEST, message, &fields);
            return show_settings(&state, &me, &tenant_id, &client_id, flash).await;
        }
    };
    let grants = &app.grant_types;
    let machine = grants.iter().any(|g| g == GRANT_CLIENT_CREDENTIALS);
    // A client_credentials-only app's form has no sign-in fields: those stay as they are.
    let signs_in = !machine_only(grants);
    let changes = AppChanges {
        name: Some(fields.text("name")),
        homepage: Some(fields.text("homepage")),
        redirect_uris: signs_in.then(|| fields.lines("redirect_uris")),
        post_logout_redirect_uris: signs_in.then(|| fields.lines("post_logout_redirect_uris")),
        backchannel_logout_uri: signs_in.then(|| fields.text("backchannel_logout_uri")),
        enabled: None,
        access_policy: access_policy.filter(|_| signs_in),
        user_assignment_required: None,
        access_token_lifetime_secs: access,
        refresh_token_idle_secs: refresh.filter(|_| signs_in),
        api_access: machine.then(|| fields.checked("api_access")),
        id_token_signed_response_alg: fields
            .get("id_token_signed_response_alg")
            .map(str::to_string),
        access_token_signed_response_alg: fields
            .get("access_token_signed_response_alg")
            .map(str::to_string),
        dpop_bound_access_tokens: Some(fields.checked("dpop_bound_access_tokens")),
    };
    match apps::update(&state, &me.actor, &tenant_id, &client_id, changes).await {
        Ok(_) => Ok(done(
            &fill(
                paths::APP,
                &[("tenant_id", &tenant_id), ("client_id", &client_id)],
            ),
            "app-updated",
        )),
        Err(e) => {
            let flash = form_failure(&state, e, &fields)?;
            show_settings(&state, &me, &tenant_id, &client_id, flash).await
        }
    }
}

/// The sign-in kill switch; turning sign-in off asks first.
async fn set_enabled(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let enable = fields.get("enabled") == Some("yes");
    let ids = [("tenant_id", tenant_id.as_str()), ("client_id", &client_id)];
    if !enable && !fields.confirmed() {
        let (_, app) = administered_app(&state, &me, &tenant_id, &client_id).await?;
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("Disable sign-in to {}?", app.name),
                text: "Nobody can sign in to the app while it is disabled, and its tokens stop working at their next refresh or introspection. You can enable it again at any time.".into(),
                items: vec![],
                action: fill(paths::APP_ENABLED, &ids),
                button: "Disable sign-in",
                cancel: fill(paths::APP, &ids),
            },
        ));
    }
    let changes = AppChanges {
        enabled: Some(enable),
        ..AppChanges::default()
    };
    match apps::update(&state, &me.actor, &tenant_id, &client_id, changes).await {
        Ok(_) => Ok(done(
            &fill(paths::APP, &ids),
            if enable {
                "app-enabled"
            } else {
                "app-disabled"
            },
        )),
        Err(e) => {
            let flash = form_failure(&state, e, &Fields::default())?;
            show_settings(&state, &me, &tenant_id, &client_id, flash).await
        }
    }
}

/// Deletes the app after a confirmation that says what goes with it.
async fn delete(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let ids = [("tenant_id", tenant_id.as_str()), ("client_id", &client_id)];
    if !fields.confirmed() {
        let (_, app) = administered_app(&state, &me, &tenant_id, &client_id).await?;
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("Delete {}?", app.name),
                text: format!(
                    "The app {} ({}) is deleted at once and for good, with what belongs to it. The audit log keeps its history. To stop sign-ins for a while instead, disable sign-in.",
                    app.name, app.client_id
                ),
                items: vec![
                    "its client secrets and public keys: it can no longer authenticate".into(),
                    "its grants and refresh tokens: every token it holds stops working, and everyone signed in to it must sign in again (to a new app)".into(),
                    "its assignments, roles, consents, API resource grants and access granted by email".into(),
                ],
                action: fill(paths::APP_DELETE, &ids),
                button: "Delete the app",
                cancel: fill(paths::APP, &ids),
            },
        ));
    }
    match apps::delete(&state, &me.actor, &tenant_id, &client_id).await {
        Ok(()) => Ok(done(
            &fill(paths::APPS, &[("tenant_id", &tenant_id)]),
            "app-deleted",
        )),
        Err(e) => Err(error_page(&state, e)),
    }
}
