//! The CI pipelines an app trusts (CI workload identity): the registered CI issuers with their
//! audience and claim rules, a form to add one (rules one per line, `claim = pattern`), removal
//! after a confirmation, and the copy-paste exchange a job runs. Thin handlers over
//! [`techpass_service::tenancy::ci_issuers`].

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use techpass_domain::tenancy::TenantStatus;
use techpass_service::tenancy::ci_issuers::{self, ClaimRule, NewCiIssuer};

use super::apps::{administered_app, app_context};
use super::{
    confirm, datetime, done, error_page, fill, form_failure, paths, render, Confirm, Fields, Flash,
    Me, Page, Posted,
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::CI_ISSUERS, get(page).post(add))
        .route(paths::CI_ISSUER_REMOVE, post(remove))
}

#[derive(Debug, Serialize)]
struct IssuerRow {
    id: String,
    issuer: String,
    audience: String,
    rules: Vec<String>,
    description: String,
    created: String,
    remove: String,
}

async fn page(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    me: Me,
    RawQuery(q): RawQuery,
) -> Page {
    let q = Fields::query(q);
    show(&state, &me, &tenant_id, &client_id, Flash::from_query(&q)).await
}

async fn show(state: &AppState, me: &Me, tenant_id: &str, client_id: &str, flash: Flash) -> Page {
    let (tenant, app) = administered_app(state, me, tenant_id, client_id).await?;
    let listed = ci_issuers::list(state, &me.actor, tenant_id, client_id)
        .await
        .map_err(|e| error_page(state, e))?;
    let rows: Vec<IssuerRow> = listed
        .into_iter()
        .map(|r| IssuerRow {
            rules: ci_issuers::rules_of(&r)
                .unwrap_or_default()
                .into_iter()
                .map(|rule| format!("{} = {}", rule.claim, rule.pattern))
                .collect(),
            remove: fill(
                paths::CI_ISSUER_REMOVE,
                &[
                    ("tenant_id", &tenant.id),
                    ("client_id", &app.client_id),
                    ("issuer_id", &r.id),
                ],
            ),
            created: datetime(r.created_at),
            id: r.id,
            issuer: r.issuer,
            audience: r.audience,
            description: r.description,
        })
        .collect();
    let ids = [
        ("tenant_id", tenant.id.as_str()),
        ("client_id", &app.client_id),
    ];
    Ok(render(
        state,
        me,
        &flash,
        "portal/ci.html",
        minijinja::context! {
            issuers => rows,
            add_action => fill(paths::CI_ISSUERS, &ids),
            token_endpoint => state.metadata.token_endpoint.clone(),
            max_issuers => ci_issuers::MAX_ISSUERS,
            active => tenant.status == TenantStatus::Active,
            ..app_context(&tenant, &app, "ci")
        },
    ))
}

/// The rules textarea: one `claim = pattern` per line; a line without `=` is refused by name.
fn rules_field(fields: &Fields) -> Result<Vec<ClaimRule>, String> {
    fields
        .lines("rules")
        .into_iter()
        .map(|line| {
            ClaimRule::parse(&line).ok_or_else(|| {
                format!("Rule {line:?} has no '=': write each rule as claim = pattern.")
            })
        })
        .collect()
}

async fn add(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let rules = match rules_field(&fields) {
        Ok(r) => r,
        Err(message) => {
            let flash = Flash::error(StatusCode::BAD_REQUEST, message, &fields);
            return show(&state, &me, &tenant_id, &client_id, flash).await;
        }
    };
    let spec = NewCiIssuer {
        issuer: fields.text("issuer"),
        audience: fields.text("audience"),
        rules,
        description: fields.text("description"),
    };
    match ci_issuers::create(&state, &me.actor, &tenant_id, &client_id, spec).await {
        Ok(_) => {
            let ids = [("tenant_id", tenant_id.as_str()), ("client_id", &client_id)];
            Ok(done(&fill(paths::CI_ISSUERS, &ids), "ci-issuer-added"))
        }
        Err(e) => {
            let flash = form_failure(&state, e, &fields)?;
            show(&state, &me, &tenant_id, &client_id, flash).await
        }
    }
}

async fn remove(
    State(state): State<AppState>,
    Path((tenant_id, client_id, issuer_id)): Path<(String, String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let ids = [("tenant_id", tenant_id.as_str()), ("client_id", &client_id)];
    if !fields.confirmed() {
        let (_, app) = administered_app(&state, &me, &tenant_id, &client_id).await?;
        let listed = ci_issuers::list(&state, &me.actor, &tenant_id, &client_id)
            .await
            .map_err(|e| error_page(&state, e))?;
        let issuer = listed
            .into_iter()
            .find(|i| i.id == issuer_id)
            .map_or_else(|| issuer_id.clone(), |i| i.issuer);
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("Stop trusting this CI issuer for {}?", app.name),
                text: "Pipelines of this issuer can no longer exchange their tokens for the app's; introspection reports their access tokens inactive at once, and APIs that check tokens themselves accept them until they expire (at most 15 minutes).".into(),
                items: vec![issuer],
                action: fill(
                    paths::CI_ISSUER_REMOVE,
                    &[
                        ("tenant_id", &tenant_id),
                        ("client_id", &client_id),
                        ("issuer_id", &issuer_id),
                    ],
                ),
                button: "Stop trusting it",
                cancel: fill(paths::CI_ISSUERS, &ids),
            },
        ));
    }
    ci_issuers::delete(&state, &me.actor, &tenant_id, &client_id, &issuer_id)
        .await
        .map_err(|e| error_page(&state, e))?;
    Ok(done(&fill(paths::CI_ISSUERS, &ids), "ci-issuer-removed"))
}
