//! The device verification page in the browser: a person who is not signed in opens the
//! address a command-line tool printed, signs in at the upstream, types the code in lower case
//! without its dash, sees the app and its tenant and approves; a second request arrives with its
//! code in the link and is denied. The tool's polls get the tokens, then `access_denied`.

use fantoccini::Locator;
use techpass_store::testing::Backend;

use super::{bounded, Browser};
use crate::device::{device_app, device_authorization, poll, DEVICE_GRANT};
use crate::support::{browser, TestServer};
use crate::tenancy::{approved_tenant, signed_in};

async fn a_person_approves_and_denies_devices_body(test: &str) {
    let Some(b) = Browser::start(test).await else {
        return;
    };
    let Some(server) = TestServer::start(Backend::Sqlite, test).await else {
        return;
    };
    // Alice registered earlier (in another browser); her tenant has a command-line app.
    let alice = signed_in(&server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "deploy").await;
    let (app, _) = device_app(&server, Some(&tenant), false, &[DEVICE_GRANT], false).await;
    let (status, codes) = device_authorization(&server, &[("client_id", app.as_str())]).await;
    assert_eq!(status, 200, "{codes}");

    // The address the tool printed, without the code: sign-in first, then the form.
    b.goto(codes["verification_uri"].as_str().unwrap()).await;
    let h1 = b
        .heading(&["Sign in to TechPass", "pick a test person"])
        .await;
    if h1.contains("Sign in to TechPass") {
        b.click(Locator::LinkText("Public officer (development)"))
            .await;
        b.heading(&["pick a test person"]).await;
    }
    b.click(Locator::Css("button[name='person'][value='alice']"))
        .await;
    b.heading(&["Sign in a device"]).await;
    assert_eq!(b.path().await, "/device");
    b.screenshot("device-code-form").await;
    let typed = codes["user_code"]
        .as_str()
        .unwrap()
        .replace('-', "")
        .to_lowercase();
    b.fill("Code", &typed).await;
    b.press("Continue").await;
    b.heading(&["Approve sign-in to Deploy CLI?"]).await;
    let page = b.text().await;
    assert!(page.contains("Tenant deploy"), "{page}");
    assert!(
        page.contains(codes["user_code"].as_str().unwrap()),
        "the code as the tool shows it: {page}"
    );
    b.screenshot("device-confirm").await;
    b.press("Approve").await;
    b.sees("The device is signed in").await;
    assert_eq!(
        b.path().await,
        "/device?done=device-approved",
        "Post/Redirect/Get"
    );
    b.screenshot("device-approved").await;
    let (status, tokens) = poll(&server, &app, codes["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{tokens}");

    // A second request, with the code in the link (verification_uri_complete), denied.
    let (_, second) = device_authorization(&server, &[("client_id", app.as_str())]).await;
    b.goto(second["verification_uri_complete"].as_str().unwrap())
        .await;
    b.heading(&["Approve sign-in to Deploy CLI?"]).await;
    b.press("Deny").await;
    b.sees("The request was denied").await;
    let (status, answer) = poll(&server, &app, second["device_code"].as_str().unwrap()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("access_denied"))
    );
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_person_approves_and_denies_devices() {
    let test = "browser::device::a_person_approves_and_denies_devices";
    bounded(test, a_person_approves_and_denies_devices_body(test)).await;
}
