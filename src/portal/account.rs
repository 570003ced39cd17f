//! "My account" (`/portal`): the signed-in person as TechPass knows them, the apps they can use,
//! their active sessions, and "sign out everywhere" (every session ended with back-channel
//! logout to its apps, every grant revoked; the account stays as it is). It must not change
//! the account's status: suspending is a platform admin's act ([`crate::accounts::suspend`]).

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::CookieJar;
use serde::Serialize;
use techpass_store::{AuditRecord, StoreError, UserRecord};

use super::{
    confirm, date, datetime, paths, render, slice, Confirm, Fields, Flash, Me, Page, Pager, Posted,
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::PORTAL, get(page))
        .route(paths::SIGN_OUT_EVERYWHERE, post(sign_out_everywhere))
        .route(paths::CONSENT_WITHDRAW, post(withdraw_consent))
        .route(paths::SESSION_END, post(end_session))
        .route(paths::APP_ACCESS_REVOKE, post(revoke_app))
}

/// A User-Agent as a person recognises their browser: "Firefox on Windows", "Chrome on
/// macOS" (the engine tokens every browser also sends are skipped); the raw text when
/// nothing is recognised.
pub fn browser_label(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|u| !u.trim().is_empty()) else {
        return "Unknown browser".into();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map(|(_, name)| *name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_string(),
        (None, Some(s)) => format!("A browser on {s}"),
        (None, None) => ua.chars().take(60).collect(),
    }
}

/// One session in a table: what tells it apart, and the form that ends it.
#[derive(Debug, Serialize)]
pub struct SessionRow {
    pub current: bool,
    pub upstream: String,
    pub browser: String,
    pub user_agent: String,
    pub address: String,
    pub apps: Vec<String>,
    pub signed_in: String,
    pub last_seen: String,
    pub ends: String,
    pub end: String,
}

impl SessionRow {
    pub fn new(
        state: &AppState,
        d: techpass_service::accounts::SessionDetail,
        current: Option<&str>,
        end: String,
    ) -> SessionRow {
        let s = d.record;
        SessionRow {
            current: current == Some(s.id_hash.as_str()),
            upstream: state
                .upstreams
                .get(&s.upstream)
                .map(|u| u.connector.display_name().to_string())
                .unwrap_or_else(|| s.upstream.clone()),
            browser: browser_label(s.user_agent.as_deref()),
            user_agent: s.user_agent.unwrap_or_default(),
            address: s.address.unwrap_or_else(|| "unknown".into()),
            apps: d.apps,
            signed_in: datetime(s.auth_time),
            last_seen: datetime(s.last_seen_at),
            ends: datetime(s.expires_at),
            end,
        }
    }
}

pub fn account_type_label(kind: &str) -> &'static str {
    match kind {
        "public_officer" => "Public officer",
        "vendor" => "Vendor",
        _ => "Unknown",
    }
}

#[derive(Debug, Serialize)]
struct AppLink {
    name: String,
    tenant: String,
    homepage: Option<String>,
}

#[derive(Debug, Serialize)]
struct ConsentView {
    app_name: String,
    tenant_name: Option<String>,
    claims: Vec<&'static str>,
    given: String,
    withdraw: String,
}

/// The enabled apps of active tenants the person is assigned to (directly or through a
/// group of the app's tenant). Apps open to every registered user are not listed.
async fn my_apps(state: &AppState, user: &UserRecord) -> Result<Vec<AppLink>, StoreError> {
    let apps = crate::accounts::assigned_apps(state, &user.id).await?;
    Ok(apps
        .into_iter()
        .map(|(app, tenant)| AppLink {
            name: app.name,
            tenant: tenant.name,
            homepage: app.homepage,
        })
        .collect())
}

async fn page(State(state): State<AppState>, me: Me, RawQuery(q): RawQuery) -> Page {
    let q = Fields::query(q);
    let unavailable = |e: StoreError| super::error_page(&state, e.into());
    let apps = my_apps(&state, &me.user).await.map_err(unavailable)?;
    let consents: Vec<ConsentView> = techpass_service::consent::of_user(&state, &me.user.id)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|c| ConsentView {
            withdraw: super::fill(paths::CONSENT_WITHDRAW, &[("client_id", &c.client_id)]),
            app_name: c.app_name,
            tenant_name: c.tenant_name,
            claims: c.claims,
            given: date(c.granted_at),
        })
        .collect();
    let granted: Vec<minijinja::Value> = crate::accounts::granted_apps(&state, &me.user.id)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|g| {
            minijinja::context! {
                name => g.name, tenant => g.tenant, since => date(g.since), offline => g.offline,
                revoke => super::fill(paths::APP_ACCESS_REVOKE, &[("client_id", &g.client_id)]),
            }
        })
        .collect();
    let sessions = crate::accounts::session_details(&state, &me.user.id)
        .await
        .map_err(unavailable)?;
    let count = sessions.len();
    let page = q.page();
    let (sessions, more) = slice(sessions, page);
    let sessions: Vec<SessionRow> = sessions
        .into_iter()
        .map(|d| {
            let end = super::fill(paths::SESSION_END, &[("reference", &d.reference)]);
            SessionRow::new(&state, d, Some(&me.session.id_hash), end)
        })
        .collect();
    let upstream = state
        .upstreams
        .get(&me.session.upstream)
        .map(|u| u.connector.display_name().to_string())
        .unwrap_or_else(|| me.session.upstream.clone());
    let user = &me.user;
    Ok(render(
        &state,
        &me,
        &Flash::from_query(&q),
        "portal/account.html",
        minijinja::context! {
            name => user.name,
            email => user.email,
            account_type => account_type_label(&user.account_type),
            status => user.status.label(),
            access_ends => user.access_ends_at.map(date),
            registered => user.registered_at.map(date),
            upstream => upstream,
            apps => apps,
            consents => consents,
            granted => granted,
            sessions => sessions,
            session_count => count,
            pager => Pager::new(paths::PORTAL, &[], page, more),
            sign_out_everywhere => paths::SIGN_OUT_EVERYWHERE,
            area => "account",
        },
    ))
}

/// Ends every session of the person (this one too) and revokes every grant, after a
/// confirmation.
async fn sign_out_everywhere(
    State(state): State<AppState>,
    jar: CookieJar,
    Posted { me, fields }: Posted,
) -> Page {
    if !fields.confirmed() {
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: "Sign out everywhere?".into(),
                text: "This ends every TechPass session of yours, on every device and browser, including this one, and signs you out of the apps you use with TechPass. You will need to sign in again.".into(),
                items: vec![],
                action: paths::SIGN_OUT_EVERYWHERE.into(),
                button: "Sign out everywhere",
                cancel: paths::PORTAL.into(),
            },
        ));
    }
    let unavailable = |e: StoreError| super::error_page(&state, e.into());
    // Back-channel logouts continue in the background.
    let ended = crate::accounts::end_everything(&state, &me.user.id)
        .await
        .map_err(unavailable)?;
    let now = state.clock.now().as_secs();
    crate::signin::audit(
        &state,
        AuditRecord {
            at: now,
            event: "signout.everywhere".into(),
            outcome: "success".into(),
            actor: Some(me.user.id.clone()),
            subject: Some(me.user.id.clone()),
            upstream: Some(me.session.upstream.clone()),
            details:
                serde_json::json!({ "sessions_ended": ended.sessions_ended, "grants_revoked": ended.grants_revoked })
                    .to_string(),
            ..AuditRecord::default()
        },
    )
    .await;
    Ok((
        jar.remove(state.cookies.removal(state.cookies.session())),
        Redirect::to("/?signed_out=1"),
    )
        .into_response())
}

/// Takes an app's access to the person's account away, after a confirmation.
async fn revoke_app(
    State(state): State<AppState>,
    axum::extract::Path(client_id): axum::extract::Path<String>,
    Posted { me, fields }: Posted,
) -> Page {
    let action = super::fill(paths::APP_ACCESS_REVOKE, &[("client_id", &client_id)]);
    let app = crate::accounts::granted_apps(&state, &me.user.id)
        .await
        .map_err(|e| super::error_page(&state, e.into()))?
        .into_iter()
        .find(|g| g.client_id == client_id)
        .ok_or_else(|| {
            super::error_page(
                &state,
                techpass_service::tenancy::TenancyError::NotFound("app with access"),
            )
        })?;
    if !fields.confirmed() {
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("Revoke the access of {}?", app.name),
                text: "Its refresh tokens stop working and its access tokens are refused at once; it can act for you again only after you sign in to it again.".into(),
                items: vec![],
                action,
                button: "Revoke",
                cancel: paths::PORTAL.into(),
            },
        ));
    }
    crate::accounts::revoke_app(&state, &me.user, &client_id, None)
        .await
        .map_err(|e| super::error_page(&state, e.into()))?;
    Ok(super::forms::done(paths::PORTAL, "app-access-revoked"))
}

/// Ends one of the person's own sessions (its apps told by back-channel logout); ending the
/// session of this browser signs it out.
async fn end_session(
    State(state): State<AppState>,
    jar: CookieJar,
    axum::extract::Path(reference): axum::extract::Path<String>,
    Posted { me, fields: _ }: Posted,
) -> Page {
    let current = crate::accounts::session_details(&state, &me.user.id)
        .await
        .map_err(|e| super::error_page(&state, e.into()))?
        .into_iter()
        .any(|d| d.reference == reference && d.record.id_hash == me.session.id_hash);
    let ended = crate::accounts::end_one_session(&state, &me.actor, &me.user.id, &reference, None)
        .await
        .map_err(|e| super::admin::account_failure(&state, e))?;
    if !ended {
        return Err(super::error_page(
            &state,
            techpass_service::tenancy::TenancyError::NotFound("session"),
        ));
    }
    if current {
        return Ok((
            jar.remove(state.cookies.removal(state.cookies.session())),
            Redirect::to("/?signed_out=1"),
        )
            .into_response());
    }
    Ok(super::forms::done(paths::PORTAL, "session-ended"))
}

/// Withdraws the person's consent to an app, after a confirmation: the app's grants for them
/// are revoked with it, and it asks again at their next sign-in.
async fn withdraw_consent(
    State(state): State<AppState>,
    axum::extract::Path(client_id): axum::extract::Path<String>,
    Posted { me, fields }: Posted,
) -> Page {
    let action = super::fill(paths::CONSENT_WITHDRAW, &[("client_id", &client_id)]);
    if !fields.confirmed() {
        let name = techpass_service::clients::find_client(state.store.as_ref(), &client_id)
            .await
            .ok()
            .flatten()
            .map(|c| c.name)
            .unwrap_or_else(|| "this app".into());
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("Withdraw your consent to {name}?"),
                text: format!("{name} will no longer receive your details, and its access for you stops now. It asks for your consent again the next time you sign in to it."),
                items: vec![],
                action,
                button: "Withdraw consent",
                cancel: paths::PORTAL.into(),
            },
        ));
    }
    let withdrawn = techpass_service::consent::withdraw(&state, &me.user, &client_id, None)
        .await
        .map_err(|e| super::error_page(&state, e.into()))?;
    if !withdrawn {
        return Ok(super::forms::done(paths::PORTAL, "nothing-to-withdraw"));
    }
    Ok(super::forms::done(paths::PORTAL, "consent-withdrawn"))
}

#[cfg(test)]
mod tests {
    use super::browser_label;

    #[test]
    fn browsers_are_named_as_people_know_them() {
        for (ua, label) in [
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36", "Chrome on Linux"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36 Edg/130.0", "Edge on Windows"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari on macOS"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iOS"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0", "Firefox on Windows"),
            ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36", "Chrome on Android"),
            ("SomeTool/1.0", "SomeTool/1.0"),
        ] {
            assert_eq!(browser_label(Some(ua)), label, "{ua}");
        }
        assert_eq!(browser_label(None), "Unknown browser");
        assert_eq!(browser_label(Some("  ")), "Unknown browser");
    }
}
