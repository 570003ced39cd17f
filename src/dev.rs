//! Development-mode pages, so a newcomer can walk the whole journey from one `techpass serve`:
//! the email outbox (`/dev/outbox`: every message TechPass queued, with its links) and a tiny
//! demo relying party (`/dev/demo`) that signs in with TechPass through the `openidconnect`
//! crate, like any tenant app, and shows the claims it received. Mounted only in development
//! mode with a loopback issuer; never in production.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use axum_extra::extract::cookie::CookieJar;
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::Deserialize;
use techpass_store::{ClientRecord, StoreError};

use crate::state::AppState;

pub use crate::paths::{
    DEMO, DEMO_CALLBACK, DEMO_START, MAKE_PLATFORM_ADMIN, OUTBOX, SWITCH_PERSON,
};
/// The demo app's client id: a public client (PKCE, no secret), open to any registered user.
pub const DEMO_CLIENT_ID: &str = "app_dev_demo";
const DEMO_COOKIE: &str = "tp_demo";
const PAGE_SIZE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(OUTBOX, get(outbox))
        .route(DEMO, get(demo))
        .route(DEMO_START, get(demo_start))
        .route(DEMO_CALLBACK, get(demo_callback))
        .route(
            MAKE_PLATFORM_ADMIN,
            axum::routing::post(make_platform_admin),
        )
}

fn demo_redirect(state: &AppState) -> String {
    format!("{}{DEMO_CALLBACK}", base(state))
}

/// Where TechPass sends the browser back after signing out of the demo app.
fn demo_home(state: &AppState) -> String {
    format!("{}{DEMO}", base(state))
}

fn base(state: &AppState) -> &str {
    state.issuer.as_str().trim_end_matches('/')
}

/// Registers the demo app if it is missing (development start-up).
pub async fn ensure_demo_app(state: &AppState) -> Result<(), StoreError> {
    let record = ClientRecord {
        client_id: DEMO_CLIENT_ID.into(),
        name: "Demo app (development)".into(),
        confidential: false,
        redirect_uris: vec![demo_redirect(state)],
        post_logout_redirect_uris: vec![demo_home(state)],
        backchannel_logout_uri: None,
        grant_types: vec!["authorization_code".into()],
        jwks: None,
        enabled: true,
        created_at: state.clock.now().as_secs(),
        tenant_id: None,
        homepage: None,
        access_policy: techpass_domain::client::AccessPolicy::Officers,
        access_token_lifetime_secs: None,
        refresh_token_idle_secs: None,
        api_access: false,
        id_token_signed_response_alg: None,
        access_token_signed_response_alg: None,
        dpop_bound_access_tokens: false,
    };
    techpass_service::clients::ensure_registered(state.store.as_ref(), &record).await
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    page: Option<i64>,
}

/// `/dev/demo`, also where TechPass sends the browser back after signing out (`state` set).
#[derive(Debug, Deserialize)]
struct DemoQuery {
    state: Option<String>,
}

async fn outbox(State(state): State<AppState>, Query(q): Query<PageQuery>) -> Response {
    if !AppState::dev_tools_enabled(&state) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let page = q.page.unwrap_or(1).max(1);
    let emails = match crate::mail::list(&state, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE).await {
        Ok(e) => e,
        Err(_) => return state.pages.unavailable(),
    };
    let more = emails.len() as i64 > PAGE_SIZE;
    let items: Vec<_> = emails
        .into_iter()
        .take(PAGE_SIZE as usize)
        .map(|m| {
            let links: Vec<String> = m
                .body
                .split_whitespace()
                .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
                // A link that ends a sentence keeps none of its punctuation.
                .map(|w| {
                    w.trim_end_matches(['.', ',', ';', ':', ')', '!', '?'])
                        .to_string()
                })
                .collect();
            minijinja::context! {
                to => m.recipient, subject => m.subject, body => m.body, kind => m.kind,
                created => techpass_service::dates::date(m.created_at), sent => m.sent_at.is_some(), links => links,
            }
        })
        .collect();
    state.pages.render(
        StatusCode::OK,
        "dev_outbox.html",
        minijinja::context! {
            emails => items, page => page, more => more,
            smtp => state.mailer.is_some(),
        },
    )
}

async fn demo(State(state): State<AppState>, Query(q): Query<DemoQuery>) -> Response {
    if !AppState::dev_tools_enabled(&state) {
        return StatusCode::NOT_FOUND.into_response();
    }
    state.pages.render(
        StatusCode::OK,
        "dev_demo.html",
        minijinja::context! {
            start => DEMO_START,
            claims => None::<String>,
            signed_out => q.state.is_some(),
        },
    )
}

type DemoClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The demo app's own HTTP client: it calls this TechPass on its loopback issuer, which the
/// outbound policy for registered URLs is not meant for. No redirects, bounded time.
fn demo_http() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())
}

fn demo_http_or_default() -> reqwest::Client {
    demo_http().unwrap_or_default()
}

/// The demo app's view of TechPass, discovered over HTTP like any relying party's.
async fn client(state: &AppState) -> Result<DemoClient, String> {
    Ok(discover(state).await?.0)
}

/// The client and the discovered userinfo endpoint.
async fn discover(state: &AppState) -> Result<(DemoClient, Option<String>), String> {
    let issuer = IssuerUrl::new(state.metadata.issuer.to_string()).map_err(|e| e.to_string())?;
    let metadata = CoreProviderMetadata::discover_async(issuer, &demo_http()?)
        .await
        .map_err(|e| format!("discovery failed: {e}"))?;
    let userinfo = metadata.userinfo_endpoint().map(|u| u.url().to_string());
    let redirect = RedirectUrl::new(demo_redirect(state)).map_err(|e| e.to_string())?;
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new(DEMO_CLIENT_ID.into()), None)
            .set_redirect_uri(redirect);
    Ok((client, userinfo))
}

/// The claims of a JWT, pretty-printed, read without verification (display only: the ID
/// token was verified before this is called; an access token is the resource server's to
/// verify). `None` for a token that is not a JWT.
fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A claim holding a list of strings (`groups`, `roles`), empty when absent.
fn strings(claims: &serde_json::Value, name: &str) -> Vec<String> {
    claims[name]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// What the userinfo endpoint answers for `access_token`, as JSON text, or why it did not.
async fn userinfo(endpoint: Option<&str>, access_token: &str) -> String {
    let Some(endpoint) = endpoint else {
        return "(discovery named no userinfo endpoint)".into();
    };
    let answer = demo_http_or_default()
        .get(endpoint)
        .bearer_auth(access_token)
        .send()
        .await;
    match answer {
        Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
            Ok(v) => pretty(&v),
            Err(e) => format!("(the answer was not JSON: {e})"),
        },
        Ok(r) => format!("(userinfo answered {})", r.status()),
        Err(e) => format!("(userinfo could not be reached: {e})"),
    }
}

/// state, nonce and PKCE verifier, all derived from the browser's random cookie value.
fn derived(state: &AppState, seed: &str) -> (String, String, String) {
    let h = |p: &str| state.secrets.keyed_hash(p, seed);
    (h("demo-state"), h("demo-nonce"), h("demo-pkce"))
}

fn failure(state: &AppState, text: &str) -> Response {
    state.pages.message(
        StatusCode::BAD_GATEWAY,
        "The demo app could not sign you in",
        text,
    )
}

async fn demo_start(State(state): State<AppState>, jar: CookieJar) -> Response {
    if !AppState::dev_tools_enabled(&state) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(seed) = techpass_oidc::Secrets::random_token() else {
        return failure(&state, "No random source.");
    };
    let client = match client(&state).await {
        Ok(c) => c,
        Err(e) => return failure(&state, &e),
    };
    let (csrf, nonce, verifier) = derived(&state, &seed);
    let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier));
    let (url, _, _) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            move || CsrfToken::new(csrf.clone()),
            move || Nonce::new(nonce.clone()),
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let jar = jar.add(state.cookies.cookie(DEMO_COOKIE, seed, 600));
    (jar, Redirect::to(url.as_str())).into_response()
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn demo_callback(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<CallbackQuery>,
) -> Response {
    if !AppState::dev_tools_enabled(&state) {
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Some(error) = q.error {
        let text = format!(
            "TechPass answered {error}: {}",
            q.error_description.unwrap_or_default()
        );
        return state
            .pages
            .message(StatusCode::FORBIDDEN, "TechPass did not sign you in", &text);
    }
    let Some(seed) = jar.get(DEMO_COOKIE).map(|c| c.value().to_string()) else {
        return failure(
            &state,
            "The demo app's sign-in cookie is missing: start again.",
        );
    };
    let (csrf, nonce, verifier) = derived(&state, &seed);
    if q.state.as_deref() != Some(csrf.as_str()) {
        return failure(&state, "The state does not match: start again.");
    }
    let Some(code) = q.code else {
        return failure(&state, "No code came back.");
    };
    let (client, userinfo_endpoint) = match discover(&state).await {
        Ok(c) => c,
        Err(e) => return failure(&state, &e),
    };
    let exchange = match client.exchange_code(AuthorizationCode::new(code)) {
        Ok(r) => r,
        Err(e) => return failure(&state, &e.to_string()),
    };
    let response = match exchange
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&demo_http_or_default())
        .await
    {
        Ok(r) => r,
        Err(e) => return failure(&state, &format!("the token request failed: {e}")),
    };
    let Some(id_token) = response.id_token() else {
        return failure(&state, "No ID token came back.");
    };
    // Signature (from the published JWKS), issuer, audience, expiry and nonce.
    if let Err(e) = id_token.claims(&client.id_token_verifier(), &Nonce::new(nonce)) {
        return failure(&state, &format!("the ID token did not verify: {e}"));
    }
    // Verified: show every claim as sent (TechPass's own, such as account_type, included),
    // the access token and what userinfo answers for it, as a tenant app would see them.
    let id_token_text = id_token.to_string();
    let claims = jwt_claims(&id_token_text).unwrap_or_default();
    let access_token = response.access_token().secret().clone();
    let access_claims = jwt_claims(&access_token).map(|v| pretty(&v));
    let userinfo = userinfo(userinfo_endpoint.as_deref(), &access_token).await;
    let jar = jar.remove(state.cookies.removal(DEMO_COOKIE));
    (
        jar,
        state.pages.render(
            StatusCode::OK,
            "dev_demo.html",
            minijinja::context! {
                start => DEMO_START,
                claims => pretty(&claims),
                groups => strings(&claims, "groups"),
                roles => strings(&claims, "roles"),
                access_token => access_token,
                access_claims => access_claims,
                userinfo => userinfo,
                end_session => format!("{}{}", base(&state), techpass_oidc::paths::END_SESSION),
                id_token => id_token_text,
                post_logout_redirect_uri => demo_home(&state),
                logout_state => derived(&state, &seed).0,
            },
        ),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf_token: Option<String>,
}

async fn make_platform_admin(
    State(state): State<AppState>,
    jar: CookieJar,
    axum::extract::Form(form): axum::extract::Form<CsrfForm>,
) -> Response {
    if !AppState::dev_tools_enabled(&state) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let cookie = jar
        .get(state.cookies.session())
        .map(|c| c.value().to_string());
    let session = match crate::signin::current_session(&state, cookie.as_deref()).await {
        Ok(Some(s)) => s,
        Ok(None) => return Redirect::to("/login?return_to=%2Fportal").into_response(),
        Err(_) => return state.pages.unavailable(),
    };
    if !crate::signin::csrf_valid(
        &state.secrets,
        &session,
        form.csrf_token.as_deref().unwrap_or(""),
    ) {
        return state.pages.message(
            StatusCode::FORBIDDEN,
            "Request refused",
            "The form was not sent by this TechPass page (its security token is missing or wrong). Go back, reload the page and try again.",
        );
    }
    let user = match crate::accounts::get(&state, &session.user_id).await {
        Ok(Some(u)) => u,
        _ => return state.pages.unavailable(),
    };
    let registered = matches!(
        user.status,
        techpass_domain::gate::UserStatus::Registered | techpass_domain::gate::UserStatus::Active
    );
    if !registered {
        return state.pages.message(
            StatusCode::FORBIDDEN,
            "Register first",
            "Only a registered person can be made a platform admin.",
        );
    }
    match crate::tenancy::tenants::grant_platform_admin(
        &state,
        &crate::tenancy::Actor::Operator,
        &user,
    )
    .await
    {
        Ok(_) => Redirect::to(crate::paths::ADMIN).into_response(),
        Err(_) => state.pages.unavailable(),
    }
}
