//! Server-rendered pages: one template environment (minijinja, auto-escaping HTML), one style
//! sheet served from our own origin, and the headers every page carries (a strict CSP that
//! forbids framing and third-party resources, no caching of personal pages).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::Environment;
use serde::Serialize;

pub const STYLE_PATH: &str = "/assets/style.css";
const STYLE: &str = include_str!("templates/style.css");

/// The one script pages may carry, inline (`copy_script` in templates): select-on-focus for
/// read-only fields marked `data-select` and the copy buttons (`data-copy`, hidden until the
/// script shows them). The CSP allows exactly these bytes by their hash, nothing else.
pub const COPY_SCRIPT: &str = include_str!("templates/copy.js");

/// Content-Security-Policy of every page: our own style sheet, forms only to ourselves, never
/// framed (RFC 9700 §4.16), and no script but [`COPY_SCRIPT`] (CSP Level 3 hash-source).
pub fn page_csp() -> String {
    use base64::Engine as _;
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, COPY_SCRIPT.as_bytes());
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        base64::engine::general_purpose::STANDARD.encode(hash.as_ref())
    )
}

#[derive(Debug)]
pub struct Pages {
    env: Environment<'static>,
    csp: String,
}

impl Pages {
    /// The help contact every page shows (the `[support]` configuration).
    pub fn with_support(mut self, support: &crate::config::SupportConfig) -> Self {
        self.env
            .add_global("support", minijinja::Value::from_serialize(support));
        self
    }

    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.add_global(
            "copy_script",
            minijinja::Value::from_safe_string(COPY_SCRIPT.to_string()),
        );
        for (name, source) in [
            ("base.html", include_str!("templates/base.html")),
            ("home.html", include_str!("templates/home.html")),
            ("choose.html", include_str!("templates/choose.html")),
            ("denied.html", include_str!("templates/denied.html")),
            ("message.html", include_str!("templates/message.html")),
            (
                "confirm_logout.html",
                include_str!("templates/confirm_logout.html"),
            ),
            ("register.html", include_str!("templates/register.html")),
            ("terms.html", include_str!("templates/terms.html")),
            (
                "terms_accept.html",
                include_str!("templates/terms_accept.html"),
            ),
            ("consent.html", include_str!("templates/consent.html")),
            ("invitation.html", include_str!("templates/invitation.html")),
            ("dev_outbox.html", include_str!("templates/dev_outbox.html")),
            ("dev_demo.html", include_str!("templates/dev_demo.html")),
        ]
        .into_iter()
        .chain(PORTAL_TEMPLATES.iter().copied())
        {
            env.add_template(name, source)?;
        }
        Ok(Pages {
            env,
            csp: page_csp(),
        })
    }

    /// Renders `template` as a complete response with the page headers.
    pub fn render(&self, status: StatusCode, template: &str, context: impl Serialize) -> Response {
        self.render_with_form_target(status, template, context, None)
    }

    /// As [`Pages::render`], for a page whose form's answer redirects on to an app: `form_target`
    /// (a CSP source, from [`crate::app_return::form_action_source`]) is added to
    /// `form-action`, which browsers apply to every redirect after the submission too.
    pub fn render_with_form_target(
        &self,
        status: StatusCode,
        template: &str,
        context: impl Serialize,
        form_target: Option<&str>,
    ) -> Response {
        let body = self
            .env
            .get_template(template)
            .and_then(|t| t.render(context));
        match body {
            Ok(html) => page_headers((status, Html(html)).into_response(), &self.csp, form_target),
            Err(e) => {
                tracing::error!(error = %e, template, "page rendering failed");
                page_headers(
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Html("<!doctype html><title>TechPass</title><p>Something went wrong. Please try again.</p>"),
                    )
                        .into_response(),
                    &self.csp,
                    None,
                )
            }
        }
    }

    /// The page shown when the database does not answer.
    pub fn unavailable(&self) -> Response {
        self.message(
            StatusCode::SERVICE_UNAVAILABLE,
            "TechPass is unavailable",
            "TechPass cannot reach its database right now. Try again in a few minutes.",
        )
    }

    /// A simple page with a title and a paragraph.
    pub fn message(&self, status: StatusCode, title: &str, text: &str) -> Response {
        self.render(
            status,
            "message.html",
            minijinja::context! { title => title, text => text },
        )
    }
}

fn page_headers(mut response: Response, csp: &str, form_target: Option<&str>) -> Response {
    let csp = form_target
        .map(|source| {
            csp.replace(
                "form-action 'self'",
                &format!("form-action 'self' {source}"),
            )
        })
        .and_then(|csp| HeaderValue::from_str(&csp).ok())
        .or_else(|| HeaderValue::from_str(csp).ok())
        .unwrap_or(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        ));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The style sheet's route, for any application state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route(STYLE_PATH, get(style))
}

async fn style() -> Response {
    let mut response = STYLE.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

macro_rules! portal_templates {
    ($($name:literal),* $(,)?) => {
        /// Every portal template: (name, source).
        const PORTAL_TEMPLATES: &[(&str, &str)] = &[
            $((concat!("portal/", $name), include_str!(concat!("templates/portal/", $name)))),*
        ];
    };
}

portal_templates!(
    "base.html",
    "_access_policy.html",
    "_pager.html",
    "_tenant_nav.html",
    "_app_nav.html",
    "_session_row.html",
    "problem.html",
    "confirm.html",
    "secret.html",
    "account.html",
    "tenants.html",
    "tenant.html",
    "admins.html",
    "apps.html",
    "app.html",
    "credentials.html",
    "ci.html",
    "access.html",
    "review.html",
    "groups.html",
    "group.html",
    "invitations.html",
    "webhooks.html",
    "webhook.html",
    "audit.html",
    "admin.html",
    "admin_queue.html",
    "admin_tenants.html",
    "admin_users.html",
    "admin_user.html",
    "admin_keys.html",
    "device.html",
    "device_confirm.html",
);
