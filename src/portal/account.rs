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

#[derive(Debug, Serialize)]
struct SessionView {
    current: bool,
    upstream: String,
    signed_in: String,
    last_seen: String,
    ends: String,
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
    let sessions = crate::accounts::sessions(&state, &me.user.id)
        .await
        .map_err(unavailable)?;
    let count = sessions.len();
    let page = q.page();
    let (sessions, more) = slice(sessions, page);
    let sessions: Vec<SessionView> = sessions
        .into_iter()
        .map(|s| SessionView {
            current: s.id_hash == me.session.id_hash,
            upstream: state
                .upstreams
                .get(&s.upstream)
                .map(|u| u.connector.display_name().to_string())
                .unwrap_or_else(|| s.upstream.clone()),
            signed_in: datetime(s.auth_time),
            last_seen: datetime(s.last_seen_at),
            ends: datetime(s.expires_at),
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
            status => techpass_domain::gate::UserStatus::label_of(&user.status),
            access_ends => user.access_ends_at.map(date),
            registered => user.registered_at.map(date),
            upstream => upstream,
            apps => apps,
            consents => consents,
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
