//! What a person does in the browser: a first-time officer signs in and registers; a vendor opens
//! an invitation link, signs in and accepts; a form posted without its CSRF token is refused and
//! leaves the session alone. Each journey runs in its own server and its own browser.

use fantoccini::Locator;
use techpass::tenancy::invitations::{self, NewInvitation};
use techpass_domain::gate::UserStatus;
use techpass_store::testing::Backend;

use super::{bounded, Browser};
use crate::support::{browser as http_browser, TestServer};
use crate::tenancy::{
    approved_tenant, invitation_link, signed_in, start_with_clock, user, DAY, T0,
};

const PICKER: &str = "pick a test person";

/// From the home page, signed out: Sign in, the upstream chooser (when there is one), Alice on
/// the development upstream's picker, the registration page, and back home signed in.
async fn officer_signs_in_and_registers(b: &Browser, server: &TestServer) {
    b.goto(&server.url("/")).await;
    b.heading(&["Welcome to TechPass"]).await;
    b.screenshot("home").await;

    b.click(Locator::LinkText("Sign in")).await;
    let h1 = b.heading(&["Sign in to TechPass", PICKER]).await;
    if h1.contains("Sign in to TechPass") {
        b.screenshot("chooser").await;
        b.click(Locator::LinkText("Public officer (development)"))
            .await;
        b.heading(&[PICKER]).await;
    }
    assert!(
        b.text().await.contains("Alice Tan"),
        "the picker lists Alice"
    );
    b.screenshot("picker").await;
    b.click(Locator::Css("button[name='person'][value='alice']"))
        .await;

    b.heading(&["Register for TechPass"]).await;
    assert!(
        b.path().await.starts_with("/register"),
        "{}",
        b.path().await
    );
    assert!(b.text().await.contains("alice_tan@tech.gov.sg"));
    // Tick the terms through their label, as a person clicks the sentence.
    b.click(Locator::Css("label[for='accept_terms']")).await;
    assert!(
        b.is_ticked("#accept_terms").await,
        "the label ticks the box"
    );
    b.screenshot("register").await;
    b.press("Register").await;

    b.heading(&["Signed in as Alice Tan"]).await;
    assert_eq!(b.path().await, "/");
    let page = b.text().await;
    for expected in ["alice_tan@tech.gov.sg", "Public officer", "Active"] {
        assert!(page.contains(expected), "home shows {expected}: {page}");
    }
    assert!(!page.contains("You have not registered"), "{page}");
    b.screenshot("home-signed-in").await;
}

async fn an_officer_signs_in_and_registers_in_the_browser_body(test: &str) {
    let Some(b) = Browser::start(test).await else {
        return;
    };
    let Some(server) = TestServer::start(Backend::Sqlite, test).await else {
        return;
    };
    officer_signs_in_and_registers(&b, &server).await;
    let alice = server
        .state
        .store
        .find_users_by_email("alice_tan@tech.gov.sg")
        .await
        .unwrap()
        .remove(0);
    assert_eq!(alice.status, UserStatus::Registered);

    // A new version of the terms since (Alice's acceptance is of an earlier one): her next
    // sign-in asks her to read and accept it, then goes where she was going.
    assert!(server
        .state
        .store
        .accept_terms(&alice.id, "2020-01")
        .await
        .unwrap());
    b.goto(&server.url("/login?upstream=dev-wog&prompt=login&return_to=%2Fportal"))
        .await;
    b.heading(&[PICKER]).await;
    b.click(Locator::Css("button[name='person'][value='alice']"))
        .await;
    b.heading(&["The terms of use have changed"]).await;
    assert!(b.text().await.contains("What TechPass keeps about you"));
    b.screenshot("terms-accept").await;
    b.click(Locator::Css("label[for='accept_terms']")).await;
    b.press("Accept and continue").await;
    b.heading(&["My account"]).await;
    assert_eq!(b.path().await, "/portal");

    // The document itself, from the link in every page's footer.
    b.click(Locator::LinkText("Terms of use and privacy")).await;
    b.heading(&["Terms of use and privacy policy"]).await;
    b.screenshot("terms").await;
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn an_officer_signs_in_and_registers_in_the_browser() {
    let test = "browser::journeys::an_officer_signs_in_and_registers_in_the_browser";
    bounded(
        test,
        an_officer_signs_in_and_registers_in_the_browser_body(test),
    )
    .await;
}

async fn a_vendor_accepts_an_invitation_in_the_browser_body(test: &str) {
    let Some(b) = Browser::start(test).await else {
        return;
    };
    let Some((server, _clock)) = start_with_clock(Backend::Sqlite, test).await else {
        return;
    };
    // Alice (signed in over plain HTTP) gets a tenant approved and invites Dave.
    let alice = signed_in(&server, &http_browser(), "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    invitations::invite(
        &server.state,
        &user(&alice),
        &tenant,
        NewInvitation {
            email: "dave@vendorco.example".into(),
            access_ends_at: Some(T0 + 30 * DAY),
        },
    )
    .await
    .unwrap();
    let link = invitation_link(&server, "dave@vendorco.example").await;

    // The link leads straight to the vendor directory's picker, Dave suggested by the hint.
    b.goto(&link).await;
    b.heading(&[PICKER]).await;
    let hinted = b
        .client()
        .find(Locator::Css("li.hinted button[name='person']"))
        .await
        .unwrap();
    assert_eq!(hinted.attr("value").await.unwrap().as_deref(), Some("dave"));
    b.screenshot("picker").await;
    b.click(Locator::Css("button[name='person'][value='dave']"))
        .await;

    b.heading(&["You are invited to Tenant wiki"]).await;
    assert_eq!(
        b.path().await,
        "/invite",
        "the secret is not in the address bar"
    );
    let page = b.text().await;
    assert!(page.contains("dave@vendorco.example"), "{page}");
    assert!(!page.contains("terms of use"), "vendors do not register");
    b.screenshot("invitation").await;
    b.press("Accept the invitation").await;

    b.heading(&["Invitation accepted"]).await;
    assert!(b.text().await.contains("You joined Tenant wiki"));
    b.screenshot("accepted").await;

    let dave = server
        .state
        .store
        .find_users_by_email("dave@vendorco.example")
        .await
        .unwrap()
        .remove(0);
    assert_eq!(dave.status, UserStatus::Active);
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_vendor_accepts_an_invitation_in_the_browser() {
    let test = "browser::journeys::a_vendor_accepts_an_invitation_in_the_browser";
    bounded(
        test,
        a_vendor_accepts_an_invitation_in_the_browser_body(test),
    )
    .await;
}

async fn a_form_without_its_csrf_token_is_refused_body(test: &str) {
    let Some(b) = Browser::start(test).await else {
        return;
    };
    let Some(server) = TestServer::start(Backend::Sqlite, test).await else {
        return;
    };
    officer_signs_in_and_registers(&b, &server).await;

    // A page that posts the sign-out form to TechPass without the token (here: the same form,
    // its hidden token removed).
    let removed = b
        .client()
        .execute(
            "const input = document.querySelector('input[name=csrf_token]');
             if (!input) { return false; }
             input.remove();
             return true;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(removed, serde_json::Value::Bool(true), "a token to remove");
    b.press("Sign out").await;
    b.heading(&["Request refused"]).await;
    assert!(b
        .text()
        .await
        .contains("security token is missing or wrong"));
    b.screenshot("refused").await;

    // Still signed in.
    b.goto(&server.url("/")).await;
    b.heading(&["Signed in as Alice Tan"]).await;
    b.screenshot("home-still-signed-in").await;
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused() {
    let test = "browser::journeys::a_form_without_its_csrf_token_is_refused";
    bounded(test, a_form_without_its_csrf_token_is_refused_body(test)).await;
}
