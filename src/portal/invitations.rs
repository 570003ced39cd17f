//! A tenant's invitations: the invite form (an email address and an access end date, a date
//! input read as the end of that day, UTC), the list with each invitation's state (filterable,
//! paged), resending a pending one (a new link) and revoking it (asks first). Thin handlers
//! over [`crate::tenancy::invitations`]; it must never show an invitation link: the link is in
//! the invitee's email only.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use techpass_domain::tenancy::{InvitationStatus, TenantStatus};

use super::tenants::{administered, tenant_context};
use super::{
    confirm, date, done, emails_of, end_of_day, error_page, fill, form_failure, paths, render,
    trim, window, Confirm, Fields, Flash, Me, Page, Pager, Posted,
};
use crate::state::AppState;
use crate::tenancy::invitations::{self, NewInvitation};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::INVITATIONS, get(list).post(invite))
        .route(paths::INVITATION_RESEND, post(resend))
        .route(paths::INVITATION_REVOKE, post(revoke))
        .route(paths::MEMBER_END, post(end_membership))
}

#[derive(Debug, Serialize)]
struct InvitationRow {
    email: String,
    status: String,
    invited_by: String,
    sent: String,
    sent_count: i64,
    link_valid_until: String,
    access_ends: Option<String>,
    pending: bool,
    resend: String,
    revoke: String,
    /// Where to end the membership this invitation gave (accepted invitations only).
    end: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    me: Me,
    RawQuery(q): RawQuery,
) -> Page {
    let q = Fields::query(q);
    let status = q.opt("status");
    show(
        &state,
        &me,
        &tenant_id,
        status.as_deref(),
        q.page(),
        Flash::from_query(&q),
    )
    .await
}

async fn show(
    state: &AppState,
    me: &Me,
    tenant_id: &str,
    status: Option<&str>,
    page: u32,
    flash: Flash,
) -> Page {
    let tenant = administered(state, me, tenant_id).await?;
    let status = status.and_then(InvitationStatus::parse);
    let (limit, offset) = window(page);
    let found = invitations::list(state, &me.actor, tenant_id, status, limit, offset)
        .await
        .map_err(|e| error_page(state, e))?;
    let (found, more) = trim(found);
    let inviters: Vec<String> = found.iter().map(|i| i.invited_by.clone()).collect();
    let names = emails_of(state, &inviters).await?;
    let rows: Vec<InvitationRow> = found
        .into_iter()
        .map(|i| {
            let ids = [("tenant_id", tenant.id.as_str()), ("invitation_id", &i.id)];
            InvitationRow {
                pending: i.status == InvitationStatus::Pending,
                invited_by: names
                    .get(&i.invited_by)
                    .cloned()
                    .unwrap_or_else(|| i.invited_by.clone()),
                sent: date(i.created_at),
                sent_count: i.sent_count,
                link_valid_until: date(i.expires_at),
                access_ends: i.access_ends_at.map(date),
                resend: fill(paths::INVITATION_RESEND, &ids),
                revoke: fill(paths::INVITATION_REVOKE, &ids),
                end: i
                    .accepted_by
                    .as_deref()
                    .filter(|_| i.status == InvitationStatus::Accepted)
                    .map(|u| {
                        fill(
                            paths::MEMBER_END,
                            &[("tenant_id", tenant.id.as_str()), ("user_id", u)],
                        )
                    }),
                email: i.email,
                status: i.status.as_str().to_string(),
            }
        })
        .collect();
    let here = fill(paths::INVITATIONS, &[("tenant_id", &tenant.id)]);
    let status_name = status.map(InvitationStatus::as_str).unwrap_or("");
    let today = state.clock.now().as_secs();
    let statuses: Vec<&str> = InvitationStatus::ALL.iter().map(|s| s.as_str()).collect();
    Ok(render(
        state,
        me,
        &flash,
        "portal/invitations.html",
        minijinja::context! {
            invitations => rows,
            action => here,
            status => status_name,
            statuses => statuses,
            min_date => date(today + 86_400),
            max_date => date(today + state.config.invitations.max_vendor_access_days as i64 * 86_400),
            max_vendor_days => state.config.invitations.max_vendor_access_days,
            link_days => state.config.invitations.link_lifetime_days,
            active => tenant.status == TenantStatus::Active,
            pager => Pager::new(&here, &[("status", status_name)], page, more),
            ..tenant_context(&tenant, "invitations")
        },
    ))
}

async fn invite(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    Posted { me, fields }: Posted,
) -> Page {
    let access_ends_at = match fields.opt("access_ends") {
        None => None,
        Some(text) => match end_of_day(&text) {
            Some(t) => Some(t),
            None => {
                let flash = Flash::error(
                    StatusCode::BAD_REQUEST,
                    "The access end date is not a date (YYYY-MM-DD).",
                    &fields,
                );
                return show(&state, &me, &tenant_id, None, 1, flash).await;
            }
        },
    };
    let new = NewInvitation {
        email: fields.text("email"),
        access_ends_at,
    };
    match invitations::invite(&state, &me.actor, &tenant_id, new).await {
        Ok(_) => Ok(done(
            &fill(paths::INVITATIONS, &[("tenant_id", &tenant_id)]),
            "invited",
        )),
        Err(e) => {
            let flash = form_failure(&state, e, &fields)?;
            show(&state, &me, &tenant_id, None, 1, flash).await
        }
    }
}

async fn resend(
    State(state): State<AppState>,
    Path((tenant_id, invitation_id)): Path<(String, String)>,
    Posted { me, .. }: Posted,
) -> Page {
    match invitations::resend(&state, &me.actor, &tenant_id, &invitation_id).await {
        Ok(_) => Ok(done(
            &fill(paths::INVITATIONS, &[("tenant_id", &tenant_id)]),
            "invitation-resent",
        )),
        Err(e) => {
            let flash = form_failure(&state, e, &Fields::default())?;
            show(&state, &me, &tenant_id, None, 1, flash).await
        }
    }
}

async fn revoke(
    State(state): State<AppState>,
    Path((tenant_id, invitation_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let back = fill(paths::INVITATIONS, &[("tenant_id", &tenant_id)]);
    if !fields.confirmed() {
        let tenant = administered(&state, &me, &tenant_id).await?;
        // The invitation must be one of this tenant's (the service checks it again on revoke).
        let invitation = invitations::get(&state, &me.actor, &tenant.id, &invitation_id)
            .await
            .map_err(|e| error_page(&state, e))?;
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("Revoke the invitation to {}?", invitation.email),
                text: "The invitation link stops working at once. You can invite the person again later.".into(),
                items: vec![],
                action: fill(
                    paths::INVITATION_REVOKE,
                    &[("tenant_id", &tenant.id), ("invitation_id", &invitation_id)],
                ),
                button: "Revoke the invitation",
                cancel: back,
            },
        ));
    }
    match invitations::revoke(&state, &me.actor, &tenant_id, &invitation_id).await {
        Ok(()) => Ok(done(&back, "invitation-revoked")),
        Err(e) => {
            let flash = form_failure(&state, e, &Fields::default())?;
            show(&state, &me, &tenant_id, None, 1, flash).await
        }
    }
}

/// Ends a member's access to the tenant now: asks first (with the reason given), then ends it.
async fn end_membership(
    State(state): State<AppState>,
    Path((tenant_id, user_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let back = fill(paths::INVITATIONS, &[("tenant_id", &tenant_id)]);
    let reason = fields.text("reason");
    if !fields.confirmed() && !reason.is_empty() {
        let tenant = administered(&state, &me, &tenant_id).await?;
        // Only a member of this tenant is named (the service checks it again on ending).
        invitations::member(&state, &me.actor, &tenant.id, &user_id)
            .await
            .map_err(|e| error_page(&state, e))?;
        let who = emails_of(&state, std::slice::from_ref(&user_id)).await?;
        let who = who
            .get(&user_id)
            .cloned()
            .unwrap_or_else(|| user_id.clone());
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("End {who}'s membership of {}?", tenant.name),
                text: "Their access to this tenant's apps ends now: their sessions at these apps \
                       stop at their next refresh, their assignments, roles and groups here are \
                       removed, and the end is recorded with your reason. Their access through \
                       other tenants is not affected. To give access again, invite them again."
                    .into(),
                items: vec![format!("Reason: {reason}")],
                action: fill(
                    paths::MEMBER_END,
                    &[("tenant_id", &tenant.id), ("user_id", &user_id)],
                ),
                button: "End the membership",
                cancel: back,
            },
        ));
    }
    match invitations::end_membership(&state, &me.actor, &tenant_id, &user_id, &reason).await {
        Ok(_) => Ok(done(&back, "membership-ended")),
        Err(e) => {
            let flash = form_failure(&state, e, &Fields::default())?;
            show(&state, &me, &tenant_id, None, 1, flash).await
        }
    }
}
