//! Webhooks as a tenant admin runs them (issue 16 item 6): the page says why the challenge
//! failed (an HTTP status, no JSON, another value, unreachable) and documents what TechPass
//! sends; a test event goes out signed at once and lands in the log; a delivery is delivered
//! again from the log; the subscribed events are edited. Refusals: an unverified webhook's
//! test (409), a pending delivery's redelivery (409), no events (400), another tenant's admin,
//! a form without its CSRF token.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use techpass::tenancy::TenancyError;
use techpass_store::testing::Backend;
use tokio::net::TcpListener;

use crate::jobs::signature_valid;
use crate::support::{browser, form_field, see_other, unescape_html, TestServer};
use crate::tenancy::{approved_tenant, signed_in, start_with_clock, user};

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Echo,
    NotFound,
    NotJson,
    WrongValue,
}

type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;

async fn receiver(mode: Arc<Mutex<Mode>>) -> (String, Seen) {
    use axum::response::IntoResponse;
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let keep = keep.clone();
            let mode = *mode.lock().unwrap();
            async move {
                let text = String::from_utf8(body.to_vec()).unwrap();
                let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                keep.lock().unwrap().push((headers, text));
                match mode {
                    Mode::Echo => {
                        axum::Json(serde_json::json!({ "challenge": value["challenge"] }))
                            .into_response()
                    }
                    Mode::NotFound => axum::http::StatusCode::NOT_FOUND.into_response(),
                    Mode::NotJson => "ok".into_response(),
                    Mode::WrongValue => {
                        axum::Json(serde_json::json!({ "challenge": "something else" }))
                            .into_response()
                    }
                }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn page(b: &reqwest::Client, server: &TestServer, path: &str) -> (u16, String) {
    let r = b.get(server.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    (status, unescape_html(&r.text().await.unwrap()))
}

async fn a_tenant_admin_runs_a_webhook(backend: Backend) {
    let Some((server, clock)) = start_with_clock(backend, "e2e::webhook_admin").await else {
        return;
    };
    let state = &server.state;
    let mode = Arc::new(Mutex::new(Mode::NotFound));
    let (url, seen) = receiver(mode.clone()).await;
    let b = browser();
    let alice = signed_in(&server, &b, "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    let admin = user(&alice);

    // The challenge fails, and says why, each way it can.
    let made = techpass::webhooks::create(state, &admin, &tenant, &url, &["user-invited".into()])
        .await
        .unwrap();
    assert!(!made.webhook.verified);
    assert!(
        made.webhook
            .challenge_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 404")),
        "{:?}",
        made.webhook
    );
    let hook = made.webhook.id.clone();
    let reasons = [
        (Mode::NotJson, "without a JSON body"),
        (Mode::WrongValue, "another challenge value"),
    ];
    for (answer, reason) in reasons {
        *mode.lock().unwrap() = answer;
        let failure = techpass::webhooks::reverify(state, &admin, &tenant, &hook)
            .await
            .unwrap();
        assert!(
            failure.as_deref().is_some_and(|f| f.contains(reason)),
            "{answer:?}: {failure:?}"
        );
    }
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let unreachable =
        techpass::webhooks::create(state, &admin, &tenant, &gone, &["user-invited".into()])
            .await
            .unwrap();
    assert!(unreachable
        .webhook
        .challenge_error
        .as_deref()
        .is_some_and(|e| e.contains("could not be reached")));
    // An unverified webhook gets no test event.
    let refused =
        techpass::webhooks::send_test(state, &admin, &tenant, &unreachable.webhook.id).await;
    assert!(
        matches!(refused, Err(TenancyError::Conflict(_))),
        "{refused:?}"
    );

    // The page says why and what to answer.
    let here = format!("/portal/tenants/{tenant}/webhooks/{hook}");
    let (status, html) = page(&b, &server, &here).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(
            "The last challenge failed: the endpoint answered with another challenge value"
        ),
        "{html}"
    );
    assert!(
        html.contains(r#"{"challenge": "<the same value>"}"#),
        "{html}"
    );
    assert!(
        !html.contains("Send a test event"),
        "not before it is verified"
    );
    let csrf = form_field(&html, "csrf_token");

    // Fixed: the challenge again from the page, then a test event, signed, in the log.
    *mode.lock().unwrap() = Mode::Echo;
    let verified = b
        .post(server.url(&format!("{here}/verify")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        see_other(&verified),
        format!("{here}?done=webhook-verified")
    );
    let (_, html) = page(&b, &server, &here).await;
    assert!(html.contains(": answered"), "{html}");
    assert!(!html.contains("The last challenge failed"), "{html}");
    let forged = b
        .post(server.url(&format!("{here}/test")))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "no CSRF token");
    let tested = b
        .post(server.url(&format!("{here}/test")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        see_other(&tested),
        format!("{here}?done=webhook-test-delivered")
    );
    let (headers, body) = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(headers["techpass-event"], "test");
    assert!(signature_valid(
        &made.secret,
        headers["techpass-signature"].to_str().unwrap(),
        &body
    ));
    let event: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["type"], "test");
    assert_eq!(event["tenant_id"], tenant.as_str());
    let first_delivery = headers["techpass-delivery"].to_str().unwrap().to_string();

    // The endpoint breaks: a test event fails (and waits for its retry); it cannot be
    // redelivered while pending; the delivered one is delivered again once fixed.
    *mode.lock().unwrap() = Mode::NotFound;
    let failed = techpass::webhooks::send_test(state, &admin, &tenant, &hook)
        .await
        .unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.status_code),
        ("pending", Some(404))
    );
    let pending =
        techpass::webhooks::redeliver(state, &admin, &tenant, &hook, &failed.delivery_id).await;
    assert!(
        matches!(pending, Err(TenancyError::Conflict(_))),
        "{pending:?}"
    );
    let unknown = techpass::webhooks::redeliver(state, &admin, &tenant, &hook, "dlv_nope").await;
    assert!(
        matches!(unknown, Err(TenancyError::Conflict(_))),
        "{unknown:?}"
    );
    *mode.lock().unwrap() = Mode::Echo;
    let (_, html) = page(&b, &server, &here).await;
    let redeliver = format!("{here}/deliveries/{first_delivery}/redeliver");
    assert!(html.contains(&format!("action=\"{redeliver}\"")), "{html}");
    assert!(
        html.contains("on its way"),
        "the pending one has no button: {html}"
    );
    let again = b
        .post(server.url(&redeliver))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        see_other(&again),
        format!("{here}?done=webhook-redelivery-delivered")
    );
    let (headers, _) = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        headers["techpass-delivery"],
        first_delivery.as_str(),
        "the same delivery"
    );
    let log = techpass::webhooks::deliveries(state, &admin, &tenant, &hook, 10, 0)
        .await
        .unwrap();
    let redelivered = log.iter().find(|d| d.id == first_delivery).unwrap();
    assert_eq!(
        (redelivered.status.as_str(), redelivered.attempts),
        ("delivered", 1)
    );

    // The events: edited with checkboxes, at least one, known ones only.
    let events = format!("{here}/events");
    let none = b
        .post(server.url(&events))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 400);
    let odd = b
        .post(server.url(&events))
        .form(&[("csrf_token", csrf.as_str()), ("events", "user-created")])
        .send()
        .await
        .unwrap();
    assert_eq!(odd.status(), 400);
    let saved = b
        .post(server.url(&events))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("events", "user-deleted"),
            ("events", "user-invited"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        see_other(&saved),
        format!("{here}?done=webhook-events-saved")
    );
    let listed = techpass::webhooks::list(state, &admin, &tenant)
        .await
        .unwrap();
    let edited = listed.iter().find(|w| w.id == hook).unwrap();
    assert_eq!(edited.events, vec!["user-deleted", "user-invited"]);

    // The secret rotated with overlap: for a day both secrets sign (two v1 values), then only
    // the new one.
    let rotate = format!("{here}/secret");
    let asked = b
        .post(server.url(&rotate))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200, "a confirmation first");
    assert!(unescape_html(&asked.text().await.unwrap()).contains("Rotate the signing secret"));
    let rotated = b
        .post(server.url(&rotate))
        .form(&[("csrf_token", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    let shown = see_other(&rotated);
    let (_, html) = page(&b, &server, &shown).await;
    let new_secret = html
        .split("id=\"webhook_secret\"")
        .nth(1)
        .and_then(|rest| rest.split("value=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no secret shown: {html}"))
        .to_string();
    assert_ne!(new_secret, made.secret);
    let (_, again) = page(&b, &server, &shown).await;
    assert!(!again.contains(&new_secret), "shown once");
    let signatures = |header: &str| -> Vec<String> {
        let t = header
            .split(',')
            .find_map(|p| p.strip_prefix("t="))
            .unwrap()
            .to_string();
        header
            .split(',')
            .filter_map(|p| p.strip_prefix("v1="))
            .map(|v1| format!("t={t},v1={v1}"))
            .collect()
    };
    techpass::webhooks::send_test(state, &admin, &tenant, &hook)
        .await
        .unwrap();
    let (headers, body) = seen.lock().unwrap().last().cloned().unwrap();
    let both = signatures(headers["techpass-signature"].to_str().unwrap());
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(signature_valid(&new_secret, &both[0], &body), "new first");
    assert!(
        signature_valid(&made.secret, &both[1], &body),
        "then the previous"
    );
    clock.advance(24 * 3600 + 1);
    techpass::webhooks::send_test(state, &admin, &tenant, &hook)
        .await
        .unwrap();
    let (headers, body) = seen.lock().unwrap().last().cloned().unwrap();
    let one = signatures(headers["techpass-signature"].to_str().unwrap());
    assert_eq!(one.len(), 1, "the overlap is over: {one:?}");
    assert!(signature_valid(&new_secret, &one[0], &body));
    assert!(!signature_valid(&made.secret, &one[0], &body));

    // Another tenant's admin reaches none of it.
    let bob_browser = browser();
    let bob = signed_in(&server, &bob_browser, "bob", "bob_lim@hdb.gov.sg").await;
    approved_tenant(&server, &bob, "ci").await;
    let (_, bob_page) = page(&bob_browser, &server, "/portal").await;
    let bob_csrf = form_field(&bob_page, "csrf_token");
    for path in [
        format!("{here}/test"),
        redeliver.clone(),
        events.clone(),
        rotate.clone(),
    ] {
        let r = bob_browser
            .post(server.url(&path))
            .form(&[
                ("csrf_token", bob_csrf.as_str()),
                ("events", "user-deleted"),
            ])
            .send()
            .await
            .unwrap();
        assert!(
            [403, 404].contains(&r.status().as_u16()),
            "{path}: {}",
            r.status()
        );
    }
    let audited = state
        .store
        .list_audit(&techpass_store::AuditFilter {
            tenant: Some(tenant.clone()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    for event in [
        "webhook.test_sent",
        "webhook.redelivered",
        "webhook.updated",
        "webhook.secret_rotated",
    ] {
        assert!(audited.iter().any(|e| e.event == event), "{event}");
    }
    server.stop().await;
}

crate::both_backends!(a_tenant_admin_runs_a_webhook,);
