//! An app's credentials: its client secrets (a new one is shown once, on the result page, and
//! never again; the list shows each one's expiry and state; revoking asks first) and its public
//! keys for `private_key_jwt` (a JWK set; removing them all asks first). Thin handlers over
//! [`crate::tenancy::apps`]; it must never store or log a secret, and the credentials page
//! itself never shows one.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use techpass_domain::tenancy::TenantStatus;

use super::apps::{administered_app, app_context};
use super::{
    confirm, datetime, done, error_page, fill, form_failure, paths, render, slice, Confirm, Fields,
    Flash, Me, Page, Pager, Posted,
};
use super::{show_once, shown_value};
use crate::state::AppState;
use crate::tenancy::apps;
use techpass_service::reveal::Shown;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::CREDENTIALS, get(page))
        .route(paths::SECRETS, post(add_secret))
        .route(paths::SECRET_REVOKE, post(revoke_secret))
        .route(paths::KEYS, post(set_keys))
}

#[derive(Debug, Serialize)]
struct SecretRow {
    id: String,
    created: String,
    expires: String,
    state: &'static str,
    revoke: Option<String>,
}

async fn page(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    me: Me,
    RawQuery(q): RawQuery,
) -> Page {
    let q = Fields::query(q);
    show(
        &state,
        &me,
        &tenant_id,
        &client_id,
        q.page(),
        Flash::from_query(&q),
    )
    .await
}

async fn show(
    state: &AppState,
    me: &Me,
    tenant_id: &str,
    client_id: &str,
    page: u32,
    flash: Flash,
) -> Page {
    let (tenant, app) = administered_app(state, me, tenant_id, client_id).await?;
    let now = state.clock.now().as_secs();
    let mut secrets = apps::secrets(state, &me.actor, tenant_id, client_id)
        .await
        .map_err(|e| error_page(state, e))?;
    secrets.reverse(); // newest first
    let live = secrets
        .iter()
        .filter(|s| s.revoked_at.is_none() && s.expires_at > now)
        .count();
    let (secrets, more) = slice(secrets, page);
    let ids = [
        ("tenant_id", tenant.id.as_str()),
        ("client_id", &app.client_id),
    ];
    let rows: Vec<SecretRow> = secrets
        .into_iter()
        .map(|s| {
            let state_label = if s.revoked_at.is_some() {
                "revoked"
            } else if s.expires_at <= now {
                "expired"
            } else {
                "live"
            };
            SecretRow {
                revoke: (state_label == "live").then(|| {
                    fill(
                        paths::SECRET_REVOKE,
                        &[
                            ("tenant_id", &tenant.id),
                            ("client_id", &app.client_id),
                            ("secret_id", &s.id),
                        ],
                    )
                }),
                id: s.id,
                created: datetime(s.created_at),
                expires: datetime(s.expires_at),
                state: state_label,
            }
        })
        .collect();
    // The stored key set, laid out for editing.
    let jwks = app
        .jwks
        .as_deref()
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_default();
    let here = fill(paths::CREDENTIALS, &ids);
    Ok(render(
        state,
        me,
        &flash,
        "portal/credentials.html",
        minijinja::context! {
            secrets => rows,
            live => live,
            max_secrets => state.config.apps.max_secrets,
            max_days => state.config.apps.secret_max_lifetime_days,
            max_keys => state.config.apps.max_public_keys,
            jwks => jwks,
            secret_action => fill(paths::SECRETS, &ids),
            keys_action => fill(paths::KEYS, &ids),
            pager => Pager::new(&here, &[], page, more),
            active => tenant.status == TenantStatus::Active,
            ..app_context(&tenant, &app, "credentials")
        },
    ))
}

async fn add_secret(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let days = match fields.opt("lifetime_days").map(|d| d.parse::<i64>()) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            let flash = Flash::error(
                StatusCode::BAD_REQUEST,
                "The lifetime is a whole number of days.",
                &fields,
            );
            return show(&state, &me, &tenant_id, &client_id, 1, flash).await;
        }
    };
    match apps::add_secret(&state, &me.actor, &tenant_id, &client_id, days).await {
        Ok(new) => {
            let ids = [("tenant_id", tenant_id.as_str()), ("client_id", &client_id)];
            let values = vec![
                shown_value("Client ID", "client_id", client_id.clone(), false),
                shown_value("New client secret", "client_secret", new.secret, true),
            ];
            show_once(
                &state,
                &me,
                &Shown {
                    title: "New client secret".into(),
                    intro: format!(
                        "This secret (id {}) works until {}. It is shown only now: TechPass keeps only a hash of it. Put it in your app's secret store, then revoke the old secret once the app uses the new one.",
                        new.id, datetime(new.expires_at)
                    ),
                    values,
                    next_href: fill(paths::CREDENTIALS, &ids),
                    next_label: "Back to the credentials".into(),
                },
            )
            .await
        }
        Err(e) => {
            let flash = form_failure(&state, e, &fields)?;
            show(&state, &me, &tenant_id, &client_id, 1, flash).await
        }
    }
}

async fn revoke_secret(
    State(state): State<AppState>,
    Path((tenant_id, client_id, secret_id)): Path<(String, String, String)>,
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
                title: format!("Revoke this secret of {}?", app.name),
                text: "The secret stops authenticating the app at once. If the app still uses it, its sign-ins and token requests will fail until it uses another secret.".into(),
                items: vec![format!("Secret {secret_id}")],
                action: fill(
                    paths::SECRET_REVOKE,
                    &[
                        ("tenant_id", &tenant_id),
                        ("client_id", &client_id),
                        ("secret_id", &secret_id),
                    ],
                ),
                button: "Revoke the secret",
                cancel: fill(paths::CREDENTIALS, &ids),
            },
        ));
    }
    apps::revoke_secret(&state, &me.actor, &tenant_id, &client_id, &secret_id)
        .await
        .map_err(|e| error_page(&state, e))?;
    Ok(done(&fill(paths::CREDENTIALS, &ids), "secret-revoked"))
}

async fn set_keys(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let ids = [("tenant_id", tenant_id.as_str()), ("client_id", &client_id)];
    let text = fields.text("jwks");
    let jwks = if text.is_empty() {
        r#"{"keys":[]}"#.to_string()
    } else {
        text
    };
    let removes_all = serde_json::from_str::<serde_json::Value>(&jwks)
        .ok()
        .and_then(|v| v.get("keys").and_then(|k| k.as_array()).map(Vec::is_empty))
        .unwrap_or(false);
    if removes_all && !fields.confirmed() {
        let (_, app) = administered_app(&state, &me, &tenant_id, &client_id).await?;
        if app.jwks.is_some() {
            return Ok(confirm(
                &state,
                &me,
                &fields,
                Confirm {
                    title: format!("Remove every public key of {}?", app.name),
                    text: "The app can no longer authenticate with private_key_jwt until keys are registered again.".into(),
                    items: vec![],
                    action: fill(paths::KEYS, &ids),
                    button: "Remove the keys",
                    cancel: fill(paths::CREDENTIALS, &ids),
                },
            ));
        }
    }
    match apps::set_keys(&state, &me.actor, &tenant_id, &client_id, &jwks).await {
        Ok(_) => Ok(done(&fill(paths::CREDENTIALS, &ids), "keys-saved")),
        Err(e) => {
            let flash = form_failure(&state, e, &fields)?;
            show(&state, &me, &tenant_id, &client_id, 1, flash).await
        }
    }
}
