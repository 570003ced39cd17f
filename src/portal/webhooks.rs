//! A tenant's webhooks: registering one (the events as checkboxes; its signing secret shown
//! once on the result page), the list with each one's verification, a webhook's delivery log
//! (paged), sending the challenge again, and deleting it (asks first). Thin handlers over
//! [`crate::webhooks`]; it must not sign or send anything itself.

use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use techpass_domain::tenancy::{DeliveryStatus, TenantStatus};

use super::tenants::{administered, tenant_context};
use super::{
    confirm, datetime, done, error_page, fill, form_failure, paths, render, slice, trim, window,
    Confirm, Fields, Flash, Me, Page, Pager, Posted,
};
use super::{show_once, shown_value};
use crate::state::AppState;
use crate::tenancy::TenancyError;
use crate::webhooks::{self, WebhookInfo, EVENTS};
use techpass_service::reveal::Shown;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::WEBHOOKS, get(list).post(create))
        .route(paths::WEBHOOK, get(deliveries))
        .route(paths::WEBHOOK_VERIFY, post(verify))
        .route(paths::WEBHOOK_DELETE, post(delete))
        .route(paths::WEBHOOK_EVENTS, post(events))
        .route(paths::WEBHOOK_TEST, post(send_test))
        .route(paths::WEBHOOK_ROTATE, post(rotate))
        .route(paths::WEBHOOK_REDELIVER, post(redeliver))
}

#[derive(Debug, Serialize)]
struct WebhookRow {
    url: String,
    events: Vec<String>,
    verified: bool,
    created: String,
    href: String,
    verify: String,
    delete: String,
    events_action: String,
    test: String,
    rotate: String,
    challenge_at: Option<String>,
    challenge_error: Option<String>,
}

fn row(tenant_id: &str, w: WebhookInfo) -> WebhookRow {
    let ids = [("tenant_id", tenant_id), ("webhook_id", w.id.as_str())];
    WebhookRow {
        href: fill(paths::WEBHOOK, &ids),
        verify: fill(paths::WEBHOOK_VERIFY, &ids),
        delete: fill(paths::WEBHOOK_DELETE, &ids),
        events_action: fill(paths::WEBHOOK_EVENTS, &ids),
        test: fill(paths::WEBHOOK_TEST, &ids),
        rotate: fill(paths::WEBHOOK_ROTATE, &ids),
        challenge_at: w.challenge_at.map(datetime),
        challenge_error: w.challenge_error,
        url: w.url,
        events: w.events,
        verified: w.verified,
        created: datetime(w.created_at),
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
    let hooks = webhooks::list(state, &me.actor, tenant_id)
        .await
        .map_err(|e| error_page(state, e))?;
    let (hooks, more) = slice(hooks, page);
    let rows: Vec<WebhookRow> = hooks.into_iter().map(|w| row(&tenant.id, w)).collect();
    let here = fill(paths::WEBHOOKS, &[("tenant_id", &tenant.id)]);
    Ok(render(
        state,
        me,
        &flash,
        "portal/webhooks.html",
        minijinja::context! {
            webhooks => rows,
            events => EVENTS,
            action => here,
            active => tenant.status == TenantStatus::Active,
            pager => Pager::new(&here, &[], page, more),
            ..tenant_context(&tenant, "webhooks")
        },
    ))
}

async fn create(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    Posted { me, fields }: Posted,
) -> Page {
    let url = fields.text("url");
    let events = fields.all("events");
    match webhooks::create(&state, &me.actor, &tenant_id, &url, &events).await {
        Ok(created) => {
            let verified = created.webhook.verified;
            let href = fill(
                paths::WEBHOOK,
                &[
                    ("tenant_id", &tenant_id),
                    ("webhook_id", &created.webhook.id),
                ],
            );
            let values = vec![shown_value(
                "Signing secret",
                "webhook_secret",
                created.secret,
                true,
            )];
            let intro = if verified {
                "The endpoint answered the challenge and will receive events. Check each delivery's TechPass-Signature header with this secret. It is shown only now."
            } else {
                "The endpoint did not answer the challenge yet, so it receives no events: fix it, then send the challenge again from the webhook's page. Check each delivery's TechPass-Signature header with this secret. It is shown only now."
            };
            show_once(
                &state,
                &me,
                &Shown {
                    title: "Webhook registered".into(),
                    intro: intro.into(),
                    values,
                    next_href: href,
                    next_label: "Go to the webhook".into(),
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

#[derive(Debug, Serialize)]
struct DeliveryRow {
    event: String,
    created: String,
    status: String,
    attempts: i64,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    delivered: Option<String>,
    next_attempt: Option<String>,
    /// The form that delivers it again (not while it is pending).
    redeliver: Option<String>,
}

async fn deliveries(
    State(state): State<AppState>,
    Path((tenant_id, webhook_id)): Path<(String, String)>,
    me: Me,
    RawQuery(q): RawQuery,
) -> Page {
    let q = Fields::query(q);
    let page = q.page();
    let tenant = administered(&state, &me, &tenant_id).await?;
    let hook = webhooks::list(&state, &me.actor, &tenant_id)
        .await
        .map_err(|e| error_page(&state, e))?
        .into_iter()
        .find(|w| w.id == webhook_id)
        .ok_or_else(|| error_page(&state, TenancyError::NotFound("webhook")))?;
    let (limit, offset) = window(page);
    let found = webhooks::deliveries(&state, &me.actor, &tenant_id, &webhook_id, limit, offset)
        .await
        .map_err(|e| error_page(&state, e))?;
    let (found, more) = trim(found);
    let rows: Vec<DeliveryRow> = found
        .into_iter()
        .map(|d| DeliveryRow {
            redeliver: (d.status != DeliveryStatus::Pending).then(|| {
                fill(
                    paths::WEBHOOK_REDELIVER,
                    &[
                        ("tenant_id", tenant.id.as_str()),
                        ("webhook_id", webhook_id.as_str()),
                        ("delivery_id", d.id.as_str()),
                    ],
                )
            }),
            next_attempt: (d.status == DeliveryStatus::Pending)
                .then(|| datetime(d.next_attempt_at)),
            event: d.event,
            created: datetime(d.created_at),
            status: d.status.as_str().to_string(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            delivered: d.delivered_at.map(datetime),
        })
        .collect();
    let row = row(&tenant.id, hook);
    let here = row.href.clone();
    Ok(render(
        &state,
        &me,
        &Flash::from_query(&q),
        "portal/webhook.html",
        minijinja::context! {
            webhook => row,
            deliveries => rows,
            all_events => EVENTS,
            example_secret_header => webhooks::SIGNATURE_HEADER,
            webhooks_href => fill(paths::WEBHOOKS, &[("tenant_id", &tenant.id)]),
            pager => Pager::new(&here, &[], page, more),
            ..tenant_context(&tenant, "webhooks")
        },
    ))
}

async fn verify(
    State(state): State<AppState>,
    Path((tenant_id, webhook_id)): Path<(String, String)>,
    Posted { me, .. }: Posted,
) -> Page {
    let failure = webhooks::reverify(&state, &me.actor, &tenant_id, &webhook_id)
        .await
        .map_err(|e| error_page(&state, e))?;
    let verified = failure.is_none();
    Ok(done(
        &fill(
            paths::WEBHOOK,
            &[("tenant_id", &tenant_id), ("webhook_id", &webhook_id)],
        ),
        if verified {
            "webhook-verified"
        } else {
            "webhook-unverified"
        },
    ))
}

fn webhook_href(tenant_id: &str, webhook_id: &str) -> String {
    fill(
        paths::WEBHOOK,
        &[("tenant_id", tenant_id), ("webhook_id", webhook_id)],
    )
}

/// Changes the subscribed events (the checkboxes of the webhook page).
async fn events(
    State(state): State<AppState>,
    Path((tenant_id, webhook_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let chosen = fields.all("events");
    match webhooks::update_events(&state, &me.actor, &tenant_id, &webhook_id, &chosen).await {
        Ok(_) => Ok(done(
            &webhook_href(&tenant_id, &webhook_id),
            "webhook-events-saved",
        )),
        Err(TenancyError::Invalid(message)) => Err(error_page(
            &state,
            TenancyError::Invalid(format!("{message}. Tick at least one event.")),
        )),
        Err(e) => Err(error_page(&state, e)),
    }
}

/// Sends a test event now; the result message says how it went (the log shows the detail).
async fn send_test(
    State(state): State<AppState>,
    Path((tenant_id, webhook_id)): Path<(String, String)>,
    Posted { me, .. }: Posted,
) -> Page {
    let outcome = webhooks::send_test(&state, &me.actor, &tenant_id, &webhook_id)
        .await
        .map_err(|e| error_page(&state, e))?;
    Ok(done(
        &webhook_href(&tenant_id, &webhook_id),
        attempt_message("webhook-test", &outcome.status),
    ))
}

/// Delivers one event of the log again now.
async fn redeliver(
    State(state): State<AppState>,
    Path((tenant_id, webhook_id, delivery_id)): Path<(String, String, String)>,
    Posted { me, .. }: Posted,
) -> Page {
    let outcome = webhooks::redeliver(&state, &me.actor, &tenant_id, &webhook_id, &delivery_id)
        .await
        .map_err(|e| error_page(&state, e))?;
    Ok(done(
        &webhook_href(&tenant_id, &webhook_id),
        attempt_message("webhook-redelivery", &outcome.status),
    ))
}

/// A new signing secret after a confirmation, shown once; the old one keeps signing next to it
/// for a day.
async fn rotate(
    State(state): State<AppState>,
    Path((tenant_id, webhook_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let href = webhook_href(&tenant_id, &webhook_id);
    if !fields.confirmed() {
        let hook = webhooks::list(&state, &me.actor, &tenant_id)
            .await
            .map_err(|e| error_page(&state, e))?
            .into_iter()
            .find(|w| w.id == webhook_id)
            .ok_or_else(|| error_page(&state, TenancyError::NotFound("webhook")))?;
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("Rotate the signing secret of the webhook to {}?", hook.url),
                text: "A new secret is shown once. For the next 24 hours every request carries two v1 signatures, one under each secret, so the endpoint can switch to the new secret without missing a delivery; after that only the new one signs.".into(),
                items: vec![],
                action: fill(
                    paths::WEBHOOK_ROTATE,
                    &[("tenant_id", &tenant_id), ("webhook_id", &webhook_id)],
                ),
                button: "Rotate the secret",
                cancel: href,
            },
        ));
    }
    let rotated = webhooks::rotate_secret(&state, &me.actor, &tenant_id, &webhook_id)
        .await
        .map_err(|e| error_page(&state, e))?;
    show_once(
        &state,
        &me,
        &Shown {
            title: "New signing secret".into(),
            intro: format!(
                "Until {}, each request carries a v1 signature under this secret and one under the previous secret; then only this one signs. Give it to the endpoint now. It is shown only now.",
                datetime(rotated.previous_signs_until)
            ),
            values: vec![shown_value(
                "Signing secret",
                "webhook_secret",
                rotated.secret,
                true,
            )],
            next_href: href,
            next_label: "Go to the webhook".into(),
        },
    )
    .await
}

/// The result message of an attempt made at once.
fn attempt_message(prefix: &str, status: &str) -> &'static str {
    match (prefix, status) {
        ("webhook-test", "delivered") => "webhook-test-delivered",
        ("webhook-test", _) => "webhook-test-failed",
        (_, "delivered") => "webhook-redelivery-delivered",
        _ => "webhook-redelivery-failed",
    }
}

async fn delete(
    State(state): State<AppState>,
    Path((tenant_id, webhook_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    if !fields.confirmed() {
        let hook = webhooks::list(&state, &me.actor, &tenant_id)
            .await
            .map_err(|e| error_page(&state, e))?
            .into_iter()
            .find(|w| w.id == webhook_id)
            .ok_or_else(|| error_page(&state, TenancyError::NotFound("webhook")))?;
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("Delete the webhook to {}?", hook.url),
                text: "It receives no more events, and its delivery log is deleted with it.".into(),
                items: vec![],
                action: fill(
                    paths::WEBHOOK_DELETE,
                    &[("tenant_id", &tenant_id), ("webhook_id", &webhook_id)],
                ),
                button: "Delete the webhook",
                cancel: fill(
                    paths::WEBHOOK,
                    &[("tenant_id", &tenant_id), ("webhook_id", &webhook_id)],
                ),
            },
        ));
    }
    webhooks::delete(&state, &me.actor, &tenant_id, &webhook_id)
        .await
        .map_err(|e| error_page(&state, e))?;
    Ok(done(
        &fill(paths::WEBHOOKS, &[("tenant_id", &tenant_id)]),
        "webhook-deleted",
    ))
}
