//! An app on another origin than TechPass (another port), as every real tenant app is: the
//! browser must follow each answer that ends at the app — after registration, after a sign-in
//! at the upstream's form, after the sign-out confirmation — and a refusal's "Return to <app>"
//! must reach it. Browsers apply CSP `form-action` to the redirects after a form post, which a
//! same-origin demo app never shows.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{Html, Redirect};
use axum::routing::get;
use axum::Router;
use fantoccini::Locator;
use techpass::provider::clients::{create_app, NewApp};
use techpass_store::testing::Backend;
use tokio::net::TcpListener;

use super::{bounded, Browser};
use crate::support::TestServer;

const PICKER: &str = "pick a test person";

/// The app: `/start` sends the person to TechPass; `/cb` and `/bye` show what arrived.
struct App {
    base: String,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct AppConfig {
    authorize: Arc<std::sync::OnceLock<String>>,
}

async fn start_app() -> (App, AppConfig) {
    let config = AppConfig {
        authorize: Arc::new(std::sync::OnceLock::new()),
    };
    let router = Router::new()
        .route(
            "/start",
            get(|State(c): State<AppConfig>| async move {
                Redirect::to(c.authorize.get().map(String::as_str).unwrap_or("/"))
            }),
        )
        .route(
            "/cb",
            get(
                |Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    let h1 = match (q.get("code"), q.get("error")) {
                        (Some(_), _) => "App received a code".to_string(),
                        (None, Some(e)) => format!("App was told {e}"),
                        _ => "App received nothing".to_string(),
                    };
                    let state = q.get("state").cloned().unwrap_or_default();
                    Html(format!("<h1>{h1}</h1><p id=state>{state}</p>"))
                },
            ),
        )
        .route("/bye", get(|| async { Html("<h1>App: signed out</h1>") }))
        .with_state(config.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (App { base, task }, config)
}

async fn a_first_time_officer_gets_back_to_an_app_on_another_origin_body(test: &str) {
    let Some(b) = Browser::start(test).await else {
        return;
    };
    let Some(server) = TestServer::start(Backend::Sqlite, test).await else {
        return;
    };
    let (app, config) = start_app().await;
    assert_ne!(app.base, server.base, "two origins");
    let callback = format!("{}/cb", app.base);
    let bye = format!("{}/bye", app.base);
    let created = create_app(
        server.state.store.as_ref(),
        &server.state.secrets,
        server.state.clock.now().as_secs(),
        server.state.http.policy(),
        NewApp {
            name: "Wiki".into(),
            confidential: true,
            redirect_uris: vec![callback.clone()],
            post_logout_redirect_uris: vec![bye.clone()],
            grant_types: vec!["authorization_code".into()],
            ..NewApp::default()
        },
    )
    .await
    .unwrap();
    let mut authorize = url::Url::parse(&server.url("/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &created.client_id)
        .append_pair("redirect_uri", &callback)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile")
        .append_pair("state", "from-the-wiki");
    config.authorize.set(authorize.to_string()).unwrap();

    // Carol signs in without MFA: the page explains, and "Return to Wiki" reaches the app.
    b.goto(&format!("{}/start", app.base)).await;
    let h1 = b.heading(&["Sign in to TechPass", PICKER]).await;
    if h1.contains("Sign in to TechPass") {
        // The chooser names the app that asked.
        let page = b.text().await;
        assert!(
            page.contains("Wiki asked you to sign in with TechPass"),
            "{page}"
        );
        b.screenshot("chooser").await;
        b.click(Locator::LinkText("Public officer (development)"))
            .await;
        b.heading(&[PICKER]).await;
    }
    b.click(Locator::Css("button[name='person'][value='carol']"))
        .await;
    b.heading(&["Multi-factor authentication required"]).await;
    b.screenshot("no-mfa").await;
    b.click(Locator::LinkText("Return to Wiki")).await;
    b.heading(&["App was told access_denied"]).await;
    assert!(b.text().await.contains("from-the-wiki"), "state came back");

    // Alice, first time: sign in, register, and the app receives its code.
    b.goto(&format!("{}/start", app.base)).await;
    let h1 = b.heading(&["Sign in to TechPass", PICKER]).await;
    if h1.contains("Sign in to TechPass") {
        b.click(Locator::LinkText("Public officer (development)"))
            .await;
        b.heading(&[PICKER]).await;
    }
    b.click(Locator::Css("button[name='person'][value='alice']"))
        .await;
    b.heading(&["Register for TechPass"]).await;
    b.click(Locator::Css("label[for='accept_terms']")).await;
    b.screenshot("register").await;
    b.press("Register").await;
    b.heading(&["App received a code"]).await;
    let at = b.client().current_url().await.unwrap();
    assert_eq!(at.origin().ascii_serialization(), app.base, "{at}");
    b.screenshot("app-after-register").await;

    // Signing out through the confirmation form returns to the app.
    let mut end = url::Url::parse(&server.url("/end-session")).unwrap();
    end.query_pairs_mut()
        .append_pair("client_id", &created.client_id)
        .append_pair("post_logout_redirect_uri", &bye);
    b.goto(end.as_str()).await;
    b.heading(&["Sign out of TechPass?"]).await;
    b.press("Sign out").await;
    b.heading(&["App: signed out"]).await;

    // Signing in again: the upstream's form answer leads through TechPass to the app.
    b.goto(&format!("{}/start", app.base)).await;
    let h1 = b.heading(&["Sign in to TechPass", PICKER]).await;
    if h1.contains("Sign in to TechPass") {
        b.click(Locator::LinkText("Public officer (development)"))
            .await;
        b.heading(&[PICKER]).await;
    }
    b.click(Locator::Css("button[name='person'][value='alice']"))
        .await;
    b.heading(&["App received a code"]).await;
    b.screenshot("app-after-sign-in").await;

    b.close().await;
    app.task.abort();
    server.stop().await;
}

#[tokio::test]
async fn a_first_time_officer_gets_back_to_an_app_on_another_origin() {
    let test = "browser::cross_origin::a_first_time_officer_gets_back_to_an_app_on_another_origin";
    bounded(
        test,
        a_first_time_officer_gets_back_to_an_app_on_another_origin_body(test),
    )
    .await;
}
