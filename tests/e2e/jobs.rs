//! The scheduled jobs end to end: the account lifecycle under an injected clock, email through a
//! real SMTP conversation on loopback, and signed webhooks checked by an independent HMAC.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use hmac::Mac;
use techpass::tenancy::invitations::NewInvitation;
use techpass_domain::gate::UserStatus;
use techpass_domain::tenancy::DeliveryStatus;
use techpass_domain::{ManualClock, Timestamp};
use techpass_store::testing::{Backend, TestDatabase};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::support::{browser, test_config, TempDir, TestServer};
use crate::tenancy::{approved_tenant, signed_in, start_with_clock, user, DAY, T0};

async fn lifecycle_reminds_once_then_disables_and_spares_the_exempt(backend: Backend) {
    let Some((server, clock)) = start_with_clock(backend, "e2e::lifecycle").await else {
        return;
    };
    let state = &server.state;
    let b = browser();
    let alice = signed_in(&server, &b, "alice", "alice_tan@tech.gov.sg").await;
    let bob = signed_in(&server, &browser(), "bob", "bob_lim@hdb.gov.sg").await;
    let bob_user = state.store.get_user(&bob).await.unwrap().unwrap();
    techpass::accounts::set_exempt(state, &bob_user, true, "test")
        .await
        .unwrap();
    // Both used an app once at T0.
    state.store.record_app_signin(&alice, T0).await.unwrap();
    state.store.record_app_signin(&bob, T0).await.unwrap();

    clock.set(Timestamp(T0 + 10 * DAY));
    assert_eq!(techpass::jobs::run_once(state).await.transitions, 0);
    clock.set(Timestamp(T0 + 84 * DAY));
    let first = techpass::jobs::run_once(state).await;
    assert_eq!(first.reminders, 1, "{first:?}");
    let second = techpass::jobs::run_once(state).await;
    assert_eq!(second.reminders, 0, "each reminder is sent once");
    let mail = state
        .store
        .list_emails(Some("alice_tan@tech.gov.sg"), 10, 0)
        .await
        .unwrap();
    assert_eq!(mail.len(), 1);
    assert!(mail[0].body.contains("disabled"), "{}", mail[0].body);

    clock.set(Timestamp(T0 + 90 * DAY));
    let report = techpass::jobs::run_once(state).await;
    assert_eq!(report.transitions, 1, "{report:?}");
    let alice_now = state.store.get_user(&alice).await.unwrap().unwrap();
    assert_eq!(alice_now.status, UserStatus::Disabled);
    assert_eq!(alice_now.status_reason.as_deref(), Some("inactive"));
    assert!(
        state
            .store
            .sessions_of_user(&alice)
            .await
            .unwrap()
            .is_empty(),
        "sessions ended"
    );
    assert_eq!(
        state.store.get_user(&bob).await.unwrap().unwrap().status,
        UserStatus::Registered,
        "exempt"
    );

    clock.set(Timestamp(T0 + 181 * DAY));
    techpass::jobs::run_once(state).await;
    assert_eq!(
        state.store.get_user(&alice).await.unwrap().unwrap().status,
        UserStatus::Terminated
    );
    // Deleted lifecycle.delete_terminated_after_days (5) after the termination, not before.
    clock.set(Timestamp(T0 + 186 * DAY - 1));
    assert_eq!(techpass::jobs::run_once(state).await.accounts_deleted, 0);
    assert!(state.store.get_user(&alice).await.unwrap().is_some());
    clock.set(Timestamp(T0 + 186 * DAY));
    let report = techpass::jobs::run_once(state).await;
    assert_eq!(report.accounts_deleted, 1, "{report:?}");
    assert!(state.store.get_user(&alice).await.unwrap().is_none());
    assert_eq!(
        techpass::jobs::run_once(state).await.accounts_deleted,
        0,
        "once"
    );
    let history: Vec<String> = state
        .store
        .list_audit(&techpass_store::AuditFilter {
            subject: Some(alice.clone()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.event)
        .collect();
    for event in ["user.disabled", "user.terminated", "user.deleted"] {
        assert!(history.iter().any(|e| e == event), "{event}: {history:?}");
    }
    assert!(state.store.get_user(&bob).await.unwrap().is_some());
    server.stop().await;
}

/// A platform admin re-enables a disabled account (others cannot; unknown people and accounts
/// that are not disabled are refused clearly), and the lifecycle counts from the re-enablement.
async fn platform_admins_re_enable_disabled_accounts(backend: Backend) {
    use techpass::accounts::{enable, AccountError};
    use techpass::tenancy::Actor;
    let Some((server, clock)) = start_with_clock(backend, "e2e::re_enable").await else {
        return;
    };
    let state = &server.state;
    let alice = signed_in(&server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    state.store.record_app_signin(&alice, T0).await.unwrap();
    let admin = Actor::User {
        id: "someone".into(),
        platform_admin: true,
    };
    let tenant_admin = Actor::User {
        id: "someone-else".into(),
        platform_admin: false,
    };
    assert!(matches!(
        enable(state, &admin, &alice).await,
        Err(AccountError::WrongStatus(m)) if m.contains("registered, not disabled")
    ));
    clock.set(Timestamp(T0 + 90 * DAY));
    assert_eq!(techpass::jobs::run_once(state).await.transitions, 1);
    assert!(matches!(
        enable(state, &tenant_admin, &alice).await,
        Err(AccountError::Forbidden(_))
    ));
    assert!(matches!(
        enable(state, &admin, "nobody@tech.gov.sg").await,
        Err(AccountError::NotFound(_))
    ));
    let (_, status) = enable(state, &admin, "alice_tan@tech.gov.sg")
        .await
        .unwrap();
    assert_eq!(status.as_str(), "registered");
    let now = state.store.get_user(&alice).await.unwrap().unwrap();
    assert_eq!(
        (now.status.as_str(), now.status_reason),
        ("registered", None)
    );
    let audit = state
        .store
        .list_audit(&techpass_store::AuditFilter {
            subject: Some(alice.clone()),
            event: Some("user.enabled".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor.as_deref(), Some("someone"));
    // The next run does not disable the account again: inactivity counts from now.
    assert_eq!(techpass::jobs::run_once(state).await.transitions, 0);
    clock.set(Timestamp(T0 + 180 * DAY));
    assert_eq!(techpass::jobs::run_once(state).await.transitions, 1);
    assert_eq!(
        state.store.get_user(&alice).await.unwrap().unwrap().status,
        UserStatus::Disabled
    );
    server.stop().await;
}

/// A person suspended for months and then reinstated starts afresh: the next lifecycle run does
/// not disable them for the inactivity of the suspension (they could not sign in meanwhile).
async fn a_reinstated_account_is_not_disabled_for_its_suspension(backend: Backend) {
    use techpass::accounts::{reinstate, suspend, AccountError};
    let Some((server, clock)) = start_with_clock(backend, "e2e::reinstate_fresh").await else {
        return;
    };
    let state = &server.state;
    let alice = signed_in(&server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    state.store.record_app_signin(&alice, T0).await.unwrap();
    let user = state.store.get_user(&alice).await.unwrap().unwrap();
    // Only a suspended account can be reinstated.
    assert!(matches!(
        reinstate(state, &user, "ops").await,
        Err(AccountError::WrongStatus(m)) if m.contains("not suspended")
    ));
    suspend(state, &user, "investigation", "ops").await.unwrap();
    clock.set(Timestamp(T0 + 120 * DAY));
    assert_eq!(techpass::jobs::run_once(state).await.transitions, 0);
    let suspended = state.store.get_user(&alice).await.unwrap().unwrap();
    assert_eq!(
        reinstate(state, &suspended, "ops").await.unwrap().as_str(),
        "registered"
    );
    assert_eq!(techpass::jobs::run_once(state).await.transitions, 0);
    assert_eq!(
        state.store.get_user(&alice).await.unwrap().unwrap().status,
        UserStatus::Registered
    );
    // Inactivity counts from the reinstatement.
    clock.set(Timestamp(T0 + 210 * DAY));
    assert_eq!(techpass::jobs::run_once(state).await.transitions, 1);
    server.stop().await;
}

crate::both_backends!(
    lifecycle_reminds_once_then_disables_and_spares_the_exempt,
    platform_admins_re_enable_disabled_accounts,
    a_reinstated_account_is_not_disabled_for_its_suspension,
    mail_waits_in_the_outbox_while_smtp_is_down
);

/// A minimal SMTP server (RFC 5321) on loopback that keeps every message it accepts.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    smtp_sink_on(TcpListener::bind("127.0.0.1:0").await.unwrap())
}

/// [`smtp_sink`] on a listener the test chose (to bring SMTP back on the port it was down on).
fn smtp_sink_on(listener: TcpListener) -> (u16, Arc<Mutex<Vec<String>>>) {
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            store.lock().unwrap().push(data.take().unwrap());
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, received)
}

#[tokio::test]
async fn invitation_email_goes_out_over_smtp_once() {
    let (port, received) = smtp_sink().await;
    let db = TestDatabase::new(Backend::Sqlite, "e2e::smtp")
        .await
        .unwrap();
    let dir = TempDir::new();
    let mut config = test_config(&db.url, &dir);
    config.mail.smtp_url = format!("smtp://127.0.0.1:{port}");
    config.mail.from = "techpass@tech.gov.sg".into();
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let server = TestServer::start_with(config, clock, dir, Some(db)).await;
    let state = &server.state;
    let alice = signed_in(&server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    techpass::tenancy::invitations::invite(
        state,
        &user(&alice),
        &tenant,
        NewInvitation {
            email: "dave@vendorco.example".into(),
            access_ends_at: Some(T0 + 30 * DAY),
        },
    )
    .await
    .unwrap();
    let report = techpass::jobs::run_once(state).await;
    assert_eq!(report.emails_sent, 2, "approval and invitation: {report:?}");
    assert_eq!(
        techpass::jobs::run_once(state).await.emails_sent,
        0,
        "sent once"
    );
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    let invitation = got
        .iter()
        .find(|m| m.contains("dave@vendorco.example"))
        .unwrap();
    assert!(
        unfolded(invitation).contains("invited you to Tenant wiki on TechPass"),
        "{invitation}"
    );
    // The email names the admin who sent it, by address.
    assert!(
        unfolded(invitation).contains("alice_tan@tech.gov.sg"),
        "{invitation}"
    );
    assert!(invitation.contains("/invite?token="));
    let outbox = state.store.list_emails(None, 10, 0).await.unwrap();
    assert!(outbox.iter().all(|m| m.sent_at.is_some()));
    server.stop().await;
}

/// A message as it reads with long header lines unfolded (RFC 5322 2.2.3).
fn unfolded(message: &str) -> String {
    message
        .replace("\r\n", "\n")
        .replace("\n ", " ")
        .replace("\n\t", " ")
}

/// SMTP down (issue 15 item 8): mail queued while the relay refuses connections stays in the
/// outbox, unsent, with its error and a back-off; when the relay is back on the same address
/// and the back-off has passed, the next job run delivers every message, once.
async fn mail_waits_in_the_outbox_while_smtp_is_down(backend: Backend) {
    let Some(db) = TestDatabase::new(backend, "e2e::smtp_down").await else {
        return;
    };
    // A port with nothing listening: SMTP is down (the connection is refused).
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        probe.local_addr().unwrap().port()
    };
    let dir = TempDir::new();
    let mut config = test_config(&db.url, &dir);
    config.mail.smtp_url = format!("smtp://127.0.0.1:{port}");
    config.mail.from = "techpass@tech.gov.sg".into();
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let server = TestServer::start_with(config, clock.clone(), dir, Some(db)).await;
    let state = &server.state;
    let alice = signed_in(&server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    techpass::tenancy::invitations::invite(
        state,
        &user(&alice),
        &tenant,
        NewInvitation {
            email: "dave@vendorco.example".into(),
            access_ends_at: Some(T0 + 30 * DAY),
        },
    )
    .await
    .unwrap();

    let report = techpass::jobs::run_once(state).await;
    assert_eq!(report.emails_sent, 0, "SMTP is down: {report:?}");
    let outbox = state.store.list_emails(None, 10, 0).await.unwrap();
    assert_eq!(outbox.len(), 2, "approval and invitation stay queued");
    for m in &outbox {
        assert!(m.sent_at.is_none(), "{}", m.kind);
        assert_eq!(m.attempts, 1, "{}", m.kind);
        assert!(m.last_error.is_some(), "{}", m.kind);
        assert!(m.next_attempt_at > T0, "{}: backed off", m.kind);
    }
    // Still down a while later: still kept, nothing lost.
    clock.set(Timestamp(T0 + 61));
    assert_eq!(techpass::jobs::run_once(state).await.emails_sent, 0);
    assert_eq!(state.store.list_emails(None, 10, 0).await.unwrap().len(), 2);

    // SMTP returns on the same address; after the back-off every message goes out, once.
    let (_, received) = smtp_sink_on(
        TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the SMTP port was taken meanwhile"),
    );
    clock.set(Timestamp(T0 + 3600));
    let report = techpass::jobs::run_once(state).await;
    assert_eq!(
        report.emails_sent, 2,
        "delivered when SMTP is back: {report:?}"
    );
    assert_eq!(techpass::jobs::run_once(state).await.emails_sent, 0, "once");
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert!(got.iter().any(|m| m.contains("dave@vendorco.example")));
    let outbox = state.store.list_emails(None, 10, 0).await.unwrap();
    assert!(outbox.iter().all(|m| m.sent_at.is_some()));
    server.stop().await;
}

type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A tenant's webhook endpoint: answers the challenge, keeps each delivery.
async fn webhook_receiver() -> (String, Seen) {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let keep = keep.clone();
            async move {
                let text = String::from_utf8(body.to_vec()).unwrap();
                let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                keep.lock().unwrap().push((headers, text));
                if value["type"] == "challenge" {
                    axum::Json(serde_json::json!({ "challenge": value["challenge"] }))
                } else {
                    axum::Json(serde_json::json!({}))
                }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// The receiver's own check: `t=<unix>,v1=<hex HMAC-SHA256("<t>.<body>")>`.
pub fn signature_valid(secret: &str, header: &str, body: &str) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_string()),
            Some(("v1", value)) => v1 = Some(value.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    mac.verify_slice(&hex::decode(v1).unwrap_or_default())
        .is_ok()
}

#[tokio::test]
async fn webhooks_are_verified_then_signed_and_logged() {
    let (url, seen) = webhook_receiver().await;
    let Some((server, _clock)) = start_with_clock(Backend::Sqlite, "e2e::webhooks").await else {
        return;
    };
    let state = &server.state;
    let alice = signed_in(&server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    let admin = user(&alice);
    let bad =
        techpass::webhooks::create(state, &admin, &tenant, &url, &["user-created".into()]).await;
    assert!(bad.is_err(), "unknown events are refused");
    let created =
        techpass::webhooks::create(state, &admin, &tenant, &url, &["user-invited".into()])
            .await
            .unwrap();
    assert!(
        created.webhook.verified,
        "the endpoint echoed the challenge"
    );
    techpass::tenancy::invitations::invite(
        state,
        &admin,
        &tenant,
        NewInvitation {
            email: "dave@vendorco.example".into(),
            access_ends_at: Some(T0 + 30 * DAY),
        },
    )
    .await
    .unwrap();
    let report = techpass::jobs::run_once(state).await;
    assert_eq!(report.webhooks_delivered, 1, "{report:?}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "challenge, then the event");
    let (headers, body) = &seen[1];
    assert_eq!(headers["techpass-event"], "user-invited");
    let signature = headers["techpass-signature"].to_str().unwrap();
    assert!(
        signature_valid(&created.secret, signature, body),
        "{signature}"
    );
    assert!(!signature_valid("another secret", signature, body));
    assert!(!signature_valid(
        &created.secret,
        signature,
        &body.replace("dave", "eve")
    ));
    let event: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(event["data"]["email"], "dave@vendorco.example");
    assert!(!body.contains("token"), "no invitation secret in the event");
    let log = techpass::webhooks::deliveries(state, &admin, &tenant, &created.webhook.id, 10, 0)
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, DeliveryStatus::Delivered);
    assert_eq!(log[0].last_status_code, Some(200));
    server.stop().await;
}

#[tokio::test]
async fn tenant_admins_hear_of_a_secret_expiring_once() {
    let (url, seen) = webhook_receiver().await;
    let Some((server, clock)) = start_with_clock(Backend::Sqlite, "e2e::secret_expiry").await
    else {
        return;
    };
    let state = &server.state;
    let alice = signed_in(&server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    // The admin never signs in to an app during the year the clock jumps: kept out of the
    // lifecycle, which would otherwise terminate and then delete the account.
    let alice_user = state.store.get_user(&alice).await.unwrap().unwrap();
    techpass::accounts::set_exempt(state, &alice_user, true, "test")
        .await
        .unwrap();
    let admin = user(&alice);
    let (client_id, _) = crate::tenancy::tenant_app(&server, &admin, &tenant).await;
    techpass::webhooks::create(
        state,
        &admin,
        &tenant,
        &url,
        &["app-credentials-expiring".into()],
    )
    .await
    .unwrap();
    // A year's secret: nothing to say until the reminder window (14 days by default).
    clock.set(Timestamp(T0 + 300 * DAY));
    assert_eq!(
        techpass::jobs::run_once(state).await.credential_reminders,
        0
    );
    clock.set(Timestamp(T0 + 355 * DAY));
    let report = techpass::jobs::run_once(state).await;
    assert_eq!(report.credential_reminders, 1, "{report:?}");
    assert_eq!(report.webhooks_delivered, 1, "{report:?}");
    assert_eq!(
        techpass::jobs::run_once(state).await.credential_reminders,
        0,
        "once"
    );
    let mail = state
        .store
        .list_emails(Some("alice_tan@tech.gov.sg"), 10, 0)
        .await
        .unwrap();
    assert!(
        mail.iter()
            .any(|m| m.subject.contains("client secret of Wiki expires")),
        "{mail:?}"
    );
    let seen = seen.lock().unwrap().clone();
    let (headers, body) = seen.last().unwrap();
    assert_eq!(headers["techpass-event"], "app-credentials-expiring");
    assert!(body.contains(&client_id));
    server.stop().await;
}
