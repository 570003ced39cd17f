//! The audit log downloaded (issue 16 item 2): a tenant's admins export its events, platform
//! admins the whole log, with the page's filters, as CSV or JSON lines; an unknown format is
//! a 400 page, another tenant's admin and a person who is no platform admin are refused.

use techpass::tenancy::{self, Actor};
use techpass_store::testing::Backend;

use crate::support::{browser, TestServer};
use crate::tenancy::{approved_tenant, signed_in, start_with_clock};

async fn download(b: &reqwest::Client, server: &TestServer, path: &str) -> (u16, String, String) {
    let r = b.get(server.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, r.text().await.unwrap())
}

async fn the_audit_log_is_exported_with_its_filters(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(backend, "e2e::audit_export").await else {
        return;
    };
    let a = browser();
    let alice = signed_in(&server, &a, "alice", "alice_tan@tech.gov.sg").await;
    let wiki = approved_tenant(&server, &alice, "wiki").await;
    let bob_browser = browser();
    let bob = signed_in(&server, &bob_browser, "bob", "bob_lim@hdb.gov.sg").await;
    let ci = approved_tenant(&server, &bob, "ci").await;

    // Alice's tenant, as CSV and as JSON lines: its events only.
    let path = format!("/portal/tenants/{wiki}/audit/export?format=csv");
    let (status, kind, csv) = download(&a, &server, &path).await;
    assert_eq!(status, 200, "{csv}");
    assert!(kind.starts_with("text/csv"), "{kind}");
    let mut rows = csv.split("\r\n");
    assert_eq!(
        rows.next(),
        Some("id,time,event,outcome,reason,actor,subject,tenant,upstream,request_id,details")
    );
    let rows: Vec<&str> = rows.filter(|r| !r.is_empty()).collect();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.contains(&wiki)), "{csv}");
    assert!(!csv.contains(&ci), "another tenant's events: {csv}");
    let (status, kind, jsonl) = download(
        &a,
        &server,
        &format!("/portal/tenants/{wiki}/audit/export?format=jsonl"),
    )
    .await;
    assert_eq!((status, kind.as_str()), (200, "application/x-ndjson"));
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), rows.len(), "the same events");
    assert!(lines.iter().all(|l| l["tenant"] == wiki.as_str()));
    // A filter narrows it.
    let (_, _, only) = download(
        &a,
        &server,
        &format!("/portal/tenants/{wiki}/audit/export?format=jsonl&event=tenant.requested"),
    )
    .await;
    assert_eq!(only.lines().count(), 1, "{only}");

    // Refused: an unknown format, another tenant's admin, the whole log for a non-admin.
    let (status, _, _) = download(
        &a,
        &server,
        &format!("/portal/tenants/{wiki}/audit/export?format=xlsx"),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, _) = download(
        &bob_browser,
        &server,
        &format!("/portal/tenants/{wiki}/audit/export?format=csv"),
    )
    .await;
    assert!([403, 404].contains(&status), "{status}");
    let (status, _, _) = download(&a, &server, "/portal/admin/audit/export?format=csv").await;
    assert_eq!(status, 403);

    // A platform admin exports the whole log, filtered by actor (an email names the person).
    let alice_user = server.state.store.get_user(&alice).await.unwrap().unwrap();
    tenancy::tenants::grant_platform_admin(&server.state, &Actor::Operator, &alice_user)
        .await
        .unwrap();
    let (status, _, all) = download(&a, &server, "/portal/admin/audit/export?format=jsonl").await;
    assert_eq!(status, 200);
    assert!(all.contains(&ci) && all.contains(&wiki), "both tenants");
    let (_, _, by_bob) = download(
        &a,
        &server,
        "/portal/admin/audit/export?format=jsonl&actor=bob_lim%40hdb.gov.sg",
    )
    .await;
    let by_bob: Vec<serde_json::Value> = by_bob
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!by_bob.is_empty());
    assert!(
        by_bob.iter().all(|l| l["actor"] == bob.as_str()),
        "{by_bob:?}"
    );
    // The page links both downloads.
    let page = crate::support::unescape_html(
        &a.get(server.url("/portal/admin/audit?event=tenant.requested"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    // Tenants by name, details as text rather than JSON.
    assert!(page.contains("<td>Tenant wiki</td>"), "{page}");
    assert!(!page.contains("{\""), "no raw JSON: {page}");
    assert!(
        page.contains("/portal/admin/audit/export?event=tenant.requested&format=csv"),
        "{page}"
    );
    server.stop().await;
}

/// The same log over the JSON API: pages follow the cursor with no duplicate, filters narrow
/// it, bad parameters are 400s naming them, and only those who may read a log get it.
async fn the_audit_log_is_read_over_the_api(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(backend, "e2e::audit_api").await else {
        return;
    };
    let a = browser();
    let alice = signed_in(&server, &a, "alice", "alice_tan@tech.gov.sg").await;
    let wiki = approved_tenant(&server, &alice, "wiki").await;
    let bob_browser = browser();
    let bob = signed_in(&server, &bob_browser, "bob", "bob_lim@hdb.gov.sg").await;
    approved_tenant(&server, &bob, "ci").await;
    let admin = crate::tenancy::user(&alice);
    for name in ["editors", "readers", "owners"] {
        tenancy::access::create_group(&server.state, &admin, &wiki, name)
            .await
            .unwrap();
    }
    let get = |b: &reqwest::Client, path: String| {
        let request = b.get(server.url(&path));
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };

    // Page by page, two at a time, to the end: every event of the tenant once, newest first.
    let base = format!("/api/v1/tenants/{wiki}/audit");
    let mut seen: Vec<i64> = Vec::new();
    let mut path = format!("{base}?limit=2");
    for _ in 0..50 {
        let (status, page) = get(&a, path.clone()).await;
        assert_eq!(status, 200, "{page}");
        for e in page["events"].as_array().unwrap() {
            assert_eq!(e["tenant"], wiki.as_str());
            assert!(e["details"].is_object(), "{e}");
            assert!(e["time"].as_str().unwrap().ends_with('Z'));
            seen.push(e["id"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{base}?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let stored = server
        .state
        .store
        .list_audit(&techpass_store::AuditFilter {
            tenant: Some(wiki.clone()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no duplicates: {seen:?}");
    assert_eq!(seen, stored.iter().map(|r| r.id).collect::<Vec<_>>());
    assert!(seen.len() >= 4, "the approval and three groups: {seen:?}");

    let (status, page) = get(&a, format!("{base}?event=group.created&outcome=success")).await;
    assert_eq!(status, 200);
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e["event"] == "group.created"));
    assert!(page["next_cursor"].is_null());

    let later = server.state.clock.now().as_secs() + 3600;
    let (status, page) = get(&a, format!("{base}?since={later}")).await;
    assert_eq!((status, page["events"].as_array().unwrap().len()), (200, 0));
    let (status, page) = get(&a, format!("{base}?until={later}&limit=200")).await;
    assert_eq!(
        (status, page["events"].as_array().unwrap().len()),
        (200, seen.len())
    );
    for (query, says) in [
        ("outcome=maybe", "outcome"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("since=yesterday", "since"),
        ("cursor=abc", "cursor"),
        ("tenant=other", "unknown parameter"),
        ("colour=red", "unknown parameter"),
    ] {
        let (status, body) = get(&a, format!("{base}?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.to_string().contains(says), "{query}: {body}");
    }
    // Bob administers another tenant; Alice is no platform admin.
    assert_eq!(get(&bob_browser, base.clone()).await.0, 403);
    assert_eq!(get(&a, "/api/v1/admin/audit".into()).await.0, 403);
    server.stop().await;
}

crate::both_backends!(
    the_audit_log_is_exported_with_its_filters,
    the_audit_log_is_read_over_the_api,
);
