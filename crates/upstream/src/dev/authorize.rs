//! The authorization endpoint (RFC 6749 §3.1, §4.1.1–§4.1.2; OpenID Connect Core §3.1.2.1): it
//! checks the client and the redirect URI exactly, shows the "pick a test person" page instead of
//! a password prompt, and answers on the registered redirect URI with a single-use code.
//!
//! Until the client and its redirect URI are known good, every problem is an HTML page and never
//! a redirect (RFC 6749 §4.1.2.1: no open redirector); after that, errors go back to the client.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use url::Url;

use super::codes::{Grant, CODE_LIFETIME};
use super::params::{is_form, Params, Repeated};
use super::{
    known_tenant, people, person, tenant_label, DevClient, DevUpstream, Failure, Tamper,
    AUTHORIZE_PATH,
};

/// The authorization request parameters the picker form carries through to its POST.
const FORWARDED: [&str; 11] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
    "prompt",
];

/// RFC 7636 §4.2: BASE64URL(SHA-256(verifier)) is always 43 characters.
const S256_CHALLENGE_LEN: usize = 43;

pub(super) async fn show(
    State(dev): State<Arc<DevUpstream>>,
    Path(tid): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    match dev.validate(&tid, &params) {
        Ok(request) => dev.picker(&request, &params),
        Err(refusal) => dev.refuse(refusal),
    }
}

pub(super) async fn submit(
    State(dev): State<Arc<DevUpstream>>,
    Path(tid): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    if !is_form(&headers) {
        return dev.error_page(
            StatusCode::BAD_REQUEST,
            Some(900144),
            "The request body must be application/x-www-form-urlencoded.",
        );
    }
    let params = Params::parse(&body);
    // A disabled person cannot sign in (Azure AD's AADSTS50057), whatever the request.
    if let Ok(Some(key)) = params.get("person") {
        match dev.is_disabled(key).await {
            Ok(false) => {}
            Ok(true) => {
                return dev.error_page(
                    StatusCode::FORBIDDEN,
                    Some(50057),
                    "The user account is disabled. The account has been disabled by an \
                     administrator.",
                )
            }
            Err(_) => {
                return dev.error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some(50000),
                    "The directory could not be read; try again.",
                )
            }
        }
    }
    match dev.validate(&tid, &params) {
        Ok(request) => dev.choose(request, &params),
        Err(refusal) => dev.refuse(refusal),
    }
}

/// An authorization request whose client and redirect URI are trusted.
struct Request<'a> {
    tenant: &'static str,
    client: &'a DevClient,
    redirect_uri: &'a str,
    redirect: Url,
    state: Option<&'a str>,
    nonce: Option<&'a str>,
    code_challenge: Option<&'a str>,
    scope: &'a str,
    login_hint: Option<&'a str>,
}

enum Refusal {
    Tenant(Failure),
    /// Shown in the browser: the redirect URI cannot be trusted.
    Page {
        code: u32,
        message: String,
    },
    /// Sent back to the client (RFC 6749 §4.1.2.1).
    Redirect {
        tenant: &'static str,
        redirect: Box<Url>,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

fn page(code: u32, message: String) -> Refusal {
    Refusal::Page { code, message }
}

fn repeated_page(Repeated(name): Repeated) -> Refusal {
    page(
        9002313,
        format!(
            "Invalid request. Request is malformed or invalid: '{name}' was sent more than once."
        ),
    )
}

impl DevUpstream {
    fn validate<'a>(&'a self, tid: &str, params: &'a Params) -> Result<Request<'a>, Refusal> {
        let tenant =
            known_tenant(tid).ok_or_else(|| Refusal::Tenant(Failure::unknown_tenant(tid)))?;
        let missing = |name: &str| {
            page(
                900144,
                format!("The request body must contain the following parameter: '{name}'."),
            )
        };
        let client_id = params
            .get("client_id")
            .map_err(repeated_page)?
            .ok_or_else(|| missing("client_id"))?;
        let client = self.client(client_id).ok_or_else(|| {
            page(
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory \
                     '{}'. This can happen if the application has not been installed by the \
                     administrator of the tenant or consented to by any user in the tenant. You \
                     may have sent your authentication request to the wrong tenant.",
                    tenant_label(tenant)
                ),
            )
        })?;
        let redirect_uri = params
            .get("redirect_uri")
            .map_err(repeated_page)?
            .ok_or_else(|| missing("redirect_uri"))?;
        let mismatch = || {
            page(
                50011,
                format!(
                    "The redirect URI '{redirect_uri}' specified in the request does not match \
                     the redirect URIs configured for the application '{client_id}'. Make sure \
                     the redirect URI sent in the request matches one added to your application \
                     in the Azure portal."
                ),
            )
        };
        if !client.redirect_uris.iter().any(|uri| uri == redirect_uri) {
            return Err(mismatch());
        }
        let redirect = Url::parse(redirect_uri).map_err(|_| mismatch())?;

        // From here on the client hears about problems on its redirect URI.
        let state = params.get("state").ok().flatten();
        let fail = |error: &'static str, description: String| Refusal::Redirect {
            tenant,
            redirect: Box::new(redirect.clone()),
            state: state.map(str::to_owned),
            error,
            description,
        };
        let get = |name| {
            params.get(name).map_err(|Repeated(name)| {
                fail(
                    "invalid_request",
                    format!(
                        "AADSTS9002313: Invalid request. Request is malformed or invalid: \
                         '{name}' was sent more than once."
                    ),
                )
            })
        };
        let missing = |name: &str| {
            fail(
                "invalid_request",
                format!(
                    "AADSTS900144: The request body must contain the following parameter: \
                     '{name}'."
                ),
            )
        };
        get("state")?;
        match get("response_type")? {
            None => return Err(missing("response_type")),
            Some("code") => {}
            Some(other) => {
                return Err(fail(
                    "unsupported_response_type",
                    format!(
                        "AADSTS70005: response_type '{other}' is not enabled for the \
                         application. The development upstream serves the authorization code \
                         flow only."
                    ),
                ))
            }
        }
        if let Some(mode) = get("response_mode")?.filter(|m| *m != "query") {
            return Err(fail(
                "invalid_request",
                format!(
                    "AADSTS9002313: Invalid request. The development upstream answers with \
                     response_mode=query only, not '{mode}'."
                ),
            ));
        }
        let scope = get("scope")?.ok_or_else(|| missing("scope"))?;
        if !scope.split(' ').any(|s| s == "openid") {
            return Err(fail(
                "invalid_scope",
                "AADSTS70011: The provided value for the input parameter 'scope' is not valid. \
                 The development upstream issues ID tokens and requires 'openid'."
                    .to_owned(),
            ));
        }
        let code_challenge = get("code_challenge")?;
        let method = get("code_challenge_method")?;
        if let Some(challenge) = code_challenge {
            // RFC 7636 §4.3 lets `plain` be the default; RFC 9700 §2.1.1 says use S256.
            if method != Some("S256") {
                return Err(fail(
                    "invalid_request",
                    "AADSTS9002313: Invalid request. code_challenge_method must be S256; the \
                     development upstream does not accept 'plain'."
                        .to_owned(),
                ));
            }
            let well_formed = challenge.len() == S256_CHALLENGE_LEN
                && challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !well_formed {
                return Err(fail(
                    "invalid_request",
                    "AADSTS501491: Invalid size of Code_Challenge parameter.".to_owned(),
                ));
            }
        }
        if get("prompt")?.is_some_and(|p| p.split(' ').any(|p| p == "none")) {
            // Nobody ever has a session here, so a silent sign-in always fails.
            return Err(fail(
                "login_required",
                "AADSTS50058: A silent sign-in request was sent but no user is signed in."
                    .to_owned(),
            ));
        }
        Ok(Request {
            tenant,
            client,
            redirect_uri,
            redirect: redirect.clone(),
            state,
            nonce: get("nonce")?,
            code_challenge,
            scope,
            login_hint: get("login_hint")?,
        })
    }

    fn refuse(&self, refusal: Refusal) -> Response {
        match refusal {
            Refusal::Tenant(failure) => self.json_error(failure),
            Refusal::Page { code, message } => {
                self.error_page(StatusCode::BAD_REQUEST, Some(code), &message)
            }
            Refusal::Redirect {
                tenant,
                redirect,
                state,
                error,
                description,
            } => self.redirect(
                tenant,
                *redirect,
                &[("error", error), ("error_description", &description)],
                state.as_deref(),
            ),
        }
    }

    /// The POST from the picker: a person, or a cancellation.
    fn choose(&self, request: Request<'_>, params: &Params) -> Response {
        let field = |name| params.get(name).map_err(repeated_page);
        let cancel = match field("cancel") {
            Ok(cancel) => cancel,
            Err(refusal) => return self.refuse(refusal),
        };
        if cancel.is_some() {
            return self.redirect(
                request.tenant,
                request.redirect,
                &[
                    ("error", "access_denied"),
                    (
                        "error_description",
                        "AADSTS65004: User declined to consent to access the app.",
                    ),
                ],
                request.state,
            );
        }
        let key = match field("person") {
            Ok(Some(key)) => key,
            Ok(None) => {
                return self.error_page(
                    StatusCode::BAD_REQUEST,
                    None,
                    "Pick a test person, or cancel.",
                )
            }
            Err(refusal) => return self.refuse(refusal),
        };
        let Some(person) = person(key) else {
            return self.error_page(
                StatusCode::BAD_REQUEST,
                None,
                &format!("There is no test person '{key}'."),
            );
        };
        let Ok(code) = self.random_token(32) else {
            return self.error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(50000),
                "There was an error issuing an authorization code.",
            );
        };
        let now = self.now();
        let grant = Grant {
            person,
            client_id: request.client.client_id.clone(),
            redirect_uri: request.redirect_uri.to_owned(),
            tenant: request.tenant,
            nonce: request.nonce.map(str::to_owned),
            code_challenge: request.code_challenge.map(str::to_owned),
            scope: request.scope.to_owned(),
            expires_at: now + CODE_LIFETIME,
        };
        self.codes.insert(&code, grant, now);
        self.redirect(
            request.tenant,
            request.redirect,
            &[("code", &code)],
            request.state,
        )
    }

    /// 303 to the client's redirect URI, the parameters appended to any query it already has;
    /// then `state`, and `iss` when this instance sends it (RFC 9207 §2: on errors too).
    fn redirect(
        &self,
        tenant: &str,
        mut target: Url,
        pairs: &[(&str, &str)],
        state: Option<&str>,
    ) -> Response {
        {
            let mut query = target.query_pairs_mut();
            for (name, value) in pairs {
                query.append_pair(name, value);
            }
            if let Some(state) = state {
                query.append_pair("state", state);
            }
            if let Some(iss) = self.iss_parameter(tenant) {
                query.append_pair("iss", &iss);
            }
        }
        let Ok(location) = HeaderValue::from_str(target.as_str()) else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        response
    }

    fn picker(&self, request: &Request<'_>, params: &Params) -> Response {
        let hinted = |email: &str| {
            request
                .login_hint
                .is_some_and(|hint| hint.eq_ignore_ascii_case(email))
        };
        let mut listed: Vec<PersonView> = people()
            .iter()
            .map(|p| PersonView {
                key: p.key,
                name: p.name,
                email: p.email,
                description: p.description,
                tenant: tenant_label(p.tid),
                tid: p.tid,
                mfa: p.has_mfa(),
                guest_home_tenant: p.guest_home_tenant,
                hinted: hinted(p.email),
            })
            .collect();
        // The person named by login_hint comes first; the others keep their order.
        listed.sort_by_key(|p| !p.hinted);
        let hidden = FORWARDED
            .iter()
            .filter_map(|name| match params.get(name) {
                Ok(Some(value)) => Some(Hidden { name, value }),
                _ => None,
            })
            .collect();
        let view = PickerView {
            action: format!("{}/{}{AUTHORIZE_PATH}", self.base_path, request.tenant),
            tenant: tenant_label(request.tenant),
            tid: request.tenant,
            client_id: &request.client.client_id,
            redirect_uri: request.redirect_uri,
            tamper: (self.tamper != Tamper::None).then(|| format!("{:?}", self.tamper)),
            people: listed,
            hidden,
        };
        // The form posts here and, through the redirects that follow, to the client and on to
        // wherever the client sends its user next (a broker forwards to its own apps, on
        // origins no upstream can know). Browsers apply `form-action` to that whole chain, so
        // the picker, like Azure AD's own sign-in page, restricts none of it.
        self.render(StatusCode::OK, "pick.html", &view, None)
    }

    pub(super) fn error_page(
        &self,
        status: StatusCode,
        code: Option<u32>,
        message: &str,
    ) -> Response {
        let view = ErrorView {
            code,
            message,
            trace_id: self.random_uuid(),
            correlation_id: self.random_uuid(),
            timestamp: self.timestamp(),
        };
        self.render(status, "error.html", &view, Some("'none'"))
    }

    pub(super) fn render(
        &self,
        status: StatusCode,
        template: &str,
        view: &impl Serialize,
        form_action: Option<&str>,
    ) -> Response {
        let html = self
            .templates
            .get_template(template)
            .and_then(|t| t.render(view));
        let Ok(html) = html else {
            tracing::error!(template, "development upstream page failed to render");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let form_action = form_action
            .map(|sources| format!(" form-action {sources};"))
            .unwrap_or_default();
        let csp = format!(
            "default-src 'none'; style-src 'unsafe-inline';{form_action} \
             frame-ancestors 'none'; base-uri 'none'"
        );
        let Ok(csp) = HeaderValue::from_str(&csp) else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let mut response = (status, html).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        response
    }
}

#[derive(Serialize)]
struct PickerView<'a> {
    action: String,
    tenant: &'static str,
    tid: &'static str,
    client_id: &'a str,
    redirect_uri: &'a str,
    tamper: Option<String>,
    people: Vec<PersonView>,
    hidden: Vec<Hidden<'a>>,
}

#[derive(Serialize)]
struct PersonView {
    key: &'static str,
    name: &'static str,
    email: &'static str,
    description: &'static str,
    tenant: &'static str,
    tid: &'static str,
    mfa: bool,
    guest_home_tenant: Option<&'static str>,
    hinted: bool,
}

#[derive(Serialize)]
struct Hidden<'a> {
    name: &'static str,
    value: &'a str,
}

#[derive(Serialize)]
struct ErrorView<'a> {
    code: Option<u32>,
    message: &'a str,
    trace_id: String,
    correlation_id: String,
    timestamp: String,
}
