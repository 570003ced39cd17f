//! Discovery, keys and the authorization endpoint.

use super::*;

#[tokio::test]
async fn discovery_document_is_azure_v2_shaped() {
    let h = start(Tamper::None).await;
    for tid in [WOG_TENANT_ID, VENDOR_TENANT_ID, OTHER_TENANT_ID] {
        let doc: Value = h
            .http
            .get(h.url(tid, DISCOVERY_PATH))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let base = &h.base;
        assert_eq!(doc["issuer"], format!("{base}/{tid}/v2.0"));
        assert_eq!(doc["issuer"], h.dev.issuer(tid));
        assert_eq!(
            doc["authorization_endpoint"],
            format!("{base}/{tid}/oauth2/v2.0/authorize")
        );
        assert_eq!(
            doc["token_endpoint"],
            format!("{base}/{tid}/oauth2/v2.0/token")
        );
        assert_eq!(doc["jwks_uri"], format!("{base}/{tid}/discovery/v2.0/keys"));
        assert_eq!(
            doc["response_types_supported"],
            serde_json::json!(["code", "id_token", "code id_token", "id_token token"])
        );
        assert_eq!(
            doc["response_modes_supported"],
            serde_json::json!(["query", "fragment", "form_post"])
        );
        assert_eq!(
            doc["subject_types_supported"],
            serde_json::json!(["pairwise"])
        );
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            serde_json::json!(["RS256"])
        );
        assert_eq!(
            doc["scopes_supported"],
            serde_json::json!(["openid", "profile", "email", "offline_access"])
        );
        assert_eq!(
            doc["token_endpoint_auth_methods_supported"],
            serde_json::json!([
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic"
            ])
        );
        assert!(doc["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&"tid".into()));
        // Not an RFC 9207 upstream unless asked to be.
        assert!(doc
            .get("authorization_response_iss_parameter_supported")
            .is_none());
    }
    let unknown = "5d1e2c3b-0000-4000-8000-0000000000ff";
    let response = h
        .http
        .get(h.url(unknown, DISCOVERY_PATH))
        .send()
        .await
        .unwrap();
    error_of(response, StatusCode::BAD_REQUEST, "invalid_tenant", 90002).await;
    let response = h.get_authorize("common", &authorize_params(&[])).await;
    error_of(response, StatusCode::BAD_REQUEST, "invalid_tenant", 90002).await;
}

#[tokio::test]
async fn jwks_has_one_rsa_key_without_alg() {
    let h = start(Tamper::None).await;
    let jwks: Value = h
        .http
        .get(h.url(VENDOR_TENANT_ID, JWKS_PATH))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().unwrap();
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["e"], "AQAB");
    assert_eq!(key["x5t"], key["kid"]);
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );
    assert!(!key.contains_key("alg"));
    assert_eq!(key["kid"], h.dev.key.kid());
}

#[tokio::test]
async fn authorize_page_lists_everyone_and_is_locked_down() {
    let h = start(Tamper::None).await;
    let response = h
        .get_authorize(
            WOG_TENANT_ID,
            &authorize_params(&[("state", "<b>\"x\"</b>")]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(
        headers[CONTENT_SECURITY_POLICY],
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers[CACHE_CONTROL], "no-store");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains("development upstream"));
    assert!(html.contains("not for production"));
    for person in people() {
        assert!(html.contains(person.name), "{}", person.name);
        assert!(html.contains(person.email));
        assert!(html.contains(&format!("name=\"person\" value=\"{}\"", person.key)));
    }
    assert!(html.contains("name=\"cancel\""));
    // minijinja's HTML escaping writes `/` as `&#x2f;`, which the browser reads back as `/`.
    let action = format!("{PATH_PREFIX}/{WOG_TENANT_ID}/oauth2/v2.0/authorize");
    assert!(html.contains(&format!("action=\"{}\"", action.replace('/', "&#x2f;"))));
    // Everything from the request is escaped.
    assert!(!html.contains("<b>"));
    assert!(html.contains("&lt;b&gt;"));

    // login_hint brings its person to the top.
    let html = h
        .get_authorize(
            WOG_TENANT_ID,
            &authorize_params(&[("login_hint", "dave@vendorco.example")]),
        )
        .await
        .text()
        .await
        .unwrap();
    let dave = html.find("Dave Kumar").unwrap();
    assert!(dave < html.find("Alice Tan").unwrap());
    assert!(html.contains("class=\"hinted\""));
    assert!(html.contains("name=\"login_hint\" value=\"dave@vendorco.example\""));
}

#[tokio::test]
async fn untrusted_client_or_redirect_gets_a_page_never_a_redirect() {
    let h = start(Tamper::None).await;
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("redirect_uri", "http://127.0.0.1:9/callback")],
            "AADSTS50011",
        ),
        (
            &[("redirect_uri", "https://evil.example/callback")],
            "AADSTS50011",
        ),
        (
            &[("client_id", "00000000-0000-0000-0000-000000000000")],
            "AADSTS700016",
        ),
        (&[("client_id", "")], "AADSTS900144"),
        (
            &[
                ("response_type", "token"),
                ("redirect_uri", "https://evil.example/"),
            ],
            "AADSTS50011",
        ),
    ];
    for (overrides, code) in cases {
        for post in [false, true] {
            let mut params = authorize_params(overrides);
            let response = if post {
                params.push(("person".into(), "alice".into()));
                h.post_authorize(WOG_TENANT_ID, &params).await
            } else {
                h.get_authorize(WOG_TENANT_ID, &params).await
            };
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{overrides:?}");
            assert!(response.headers().get(LOCATION).is_none());
            let html = response.text().await.unwrap();
            assert!(html.contains(code), "{overrides:?}: {html}");
        }
    }
}

#[tokio::test]
async fn bad_requests_from_a_trusted_client_go_back_to_it() {
    let h = start(Tamper::None).await;
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[("response_type", "id_token")],
            "unsupported_response_type",
        ),
        (&[("response_type", "")], "invalid_request"),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("code_challenge", "too-short")], "invalid_request"),
        (&[("scope", "profile email")], "invalid_scope"),
        (&[("prompt", "none")], "login_required"),
    ];
    for (overrides, error) in cases {
        let response = h
            .get_authorize(WOG_TENANT_ID, &authorize_params(overrides))
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{overrides:?}");
        let query = query_of(response.headers()[LOCATION].to_str().unwrap());
        assert_eq!(param(&query, "from"), Some("techpass"));
        assert_eq!(param(&query, "error"), Some(error), "{overrides:?}");
        assert_eq!(param(&query, "state"), Some(STATE));
        assert!(param(&query, "code").is_none());
    }
    // A challenge without its method is not taken as `plain`.
    let mut params = authorize_params(&[]);
    params.retain(|(k, _)| k != "code_challenge_method");
    let response = h.get_authorize(WOG_TENANT_ID, &params).await;
    let query = query_of(response.headers()[LOCATION].to_str().unwrap());
    assert_eq!(param(&query, "error"), Some("invalid_request"));
}

#[tokio::test]
async fn picking_a_person_redirects_with_code_and_state() {
    let h = start(Tamper::None).await;
    let mut params = authorize_params(&[]);
    params.push(("person".into(), "alice".into()));
    let response = h.post_authorize(WOG_TENANT_ID, &params).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let query = query_of(response.headers()[LOCATION].to_str().unwrap());
    assert_eq!(param(&query, "from"), Some("techpass"));
    assert_eq!(param(&query, "state"), Some(STATE));
    let code = param(&query, "code").unwrap();
    assert_eq!(URL_SAFE_NO_PAD.decode(code).unwrap().len(), 32);

    // Cancel.
    let mut params = authorize_params(&[]);
    params.push(("cancel".into(), "1".into()));
    let response = h.post_authorize(WOG_TENANT_ID, &params).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let query = query_of(response.headers()[LOCATION].to_str().unwrap());
    assert_eq!(param(&query, "error"), Some("access_denied"));
    assert_eq!(
        param(&query, "error_description"),
        Some("AADSTS65004: User declined to consent to access the app.")
    );
    assert_eq!(param(&query, "state"), Some(STATE));

    // Nobody by that name, or nobody at all.
    for extra in [Some("eve"), None] {
        let mut params = authorize_params(&[]);
        if let Some(key) = extra {
            params.push(("person".into(), key.into()));
        }
        let response = h.post_authorize(WOG_TENANT_ID, &params).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get(LOCATION).is_none());
    }
}

/// RFC 9207: `iss` on every authorization response (codes, errors, cancellations) only when the
/// instance is told to send it, the metadata saying so; and the two defects around it.
#[tokio::test]
async fn iss_parameter_follows_the_mode_and_the_defects() {
    async fn advertised(h: &Harness, tid: &str) -> Option<bool> {
        let doc: Value = h
            .http
            .get(h.url(tid, DISCOVERY_PATH))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        doc.get("authorization_response_iss_parameter_supported")
            .map(|v| v.as_bool().unwrap())
    }
    /// The query of the redirect after `extra` is posted to `tid`'s endpoint.
    async fn answer(h: &Harness, tid: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut params = authorize_params(&[]);
        params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let response = h.post_authorize(tid, &params).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{extra:?}");
        query_of(response.headers()[LOCATION].to_str().unwrap())
    }
    let outcomes = [
        (&[("person", "alice")][..], "code"),
        (&[("cancel", "1")][..], "error"),
        (&[("prompt", "none")][..], "error"),
    ];
    let cases = [
        (Tamper::None, false, None, None),
        (Tamper::None, true, Some(true), Some(WOG_TENANT_ID)),
        (
            Tamper::WrongIssParameter,
            false,
            None,
            Some(OTHER_TENANT_ID),
        ),
        (Tamper::MissingIssParameter, false, Some(true), None),
    ];
    for (tamper, on, advertises, iss_tenant) in cases {
        let h = start_with(tamper, on).await;
        assert_eq!(
            advertised(&h, WOG_TENANT_ID).await,
            advertises,
            "{tamper:?}"
        );
        for (extra, kind) in outcomes {
            let query = answer(&h, WOG_TENANT_ID, extra).await;
            assert!(param(&query, kind).is_some(), "{tamper:?} {extra:?}");
            let expected = iss_tenant.map(|tid| h.dev.issuer(tid));
            assert_eq!(
                param(&query, "iss"),
                expected.as_deref(),
                "{tamper:?} {extra:?}"
            );
            if expected.is_some() {
                // After the response's own parameters and `state`, as RFC 9207 §2 shows it.
                let names: Vec<&str> = query.iter().map(|(k, _)| k.as_str()).collect();
                assert_eq!(names.last(), Some(&"iss"));
                assert_eq!(names[names.len() - 2], "state");
            }
        }
    }
    // `iss` names the endpoint's tenant, even when the person signs in to another one.
    let h = start_with(Tamper::None, true).await;
    let query = answer(&h, VENDOR_TENANT_ID, &[("person", "alice")]).await;
    let issuer = h.dev.issuer(VENDOR_TENANT_ID);
    assert_eq!(param(&query, "iss"), Some(issuer.as_str()));
    let tokens: Value = h
        .http
        .post(h.url(VENDOR_TENANT_ID, TOKEN_PATH))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", param(&query, "code").unwrap()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (_, claims) = parts(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["iss"], h.dev.issuer(WOG_TENANT_ID));
    // Requests refused before the redirect URI is trusted never redirect, so carry no `iss`.
    let response = h
        .get_authorize(WOG_TENANT_ID, &authorize_params(&[("client_id", "nobody")]))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
