//! Conformance of the audit log's search ([`crate::AuditStore::list_audit`]) on every backend:
//! filters combined, keyset paging over the whole log in `(at, id)` order, tenant isolation.

use crate::testing::TestDatabase;
use crate::{AuditFilter, AuditRecord};

crate::backend_tests!(
    "store::conformance_audit",
    filters_combine,
    keyset_paging_covers_the_whole_log_once,
    a_tenant_filter_never_shows_another_tenants_events,
    the_reference_and_email_are_kept_and_searchable,
);

fn event(
    at: i64,
    event: &str,
    outcome: &str,
    actor: Option<&str>,
    subject_email: Option<&str>,
    tenant: Option<&str>,
) -> AuditRecord {
    AuditRecord {
        at,
        event: event.into(),
        outcome: outcome.into(),
        actor: actor.map(Into::into),
        subject_email: subject_email.map(Into::into),
        tenant: tenant.map(Into::into),
        details: "{}".into(),
        ..AuditRecord::default()
    }
}

async fn filters_combine(db: &TestDatabase) {
    let store = db.store().await;
    let rows = [
        event(100, "signin", "success", None, Some("a@gov.sg"), Some("t1")),
        event(200, "signin", "denied", None, Some("a@gov.sg"), Some("t1")),
        event(300, "signin", "denied", None, Some("b@gov.sg"), Some("t2")),
        event(
            400,
            "app.created",
            "success",
            Some("admin"),
            None,
            Some("t1"),
        ),
        event(500, "signin", "denied", None, Some("a@gov.sg"), Some("t1")),
    ];
    let mut ids = Vec::new();
    for r in &rows {
        ids.push(store.append_audit(r).await.unwrap());
    }
    let ats = |f: AuditFilter| {
        let store = &store;
        async move {
            store
                .list_audit(&AuditFilter { limit: 100, ..f })
                .await
                .unwrap()
                .iter()
                .map(|e| e.at)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ats(AuditFilter {
            event: Some("signin".into()),
            outcome: Some("denied".into()),
            tenant: Some("t1".into()),
            ..Default::default()
        })
        .await,
        vec![500, 200]
    );
    assert_eq!(
        ats(AuditFilter {
            outcome: Some("denied".into()),
            since: Some(200),
            until: Some(500),
            ..Default::default()
        })
        .await,
        vec![300, 200],
        "since is inclusive, until exclusive"
    );
    assert_eq!(
        ats(AuditFilter {
            actor: Some("admin".into()),
            ..Default::default()
        })
        .await,
        vec![400]
    );
    assert_eq!(
        ats(AuditFilter {
            subject_email: Some("a@gov.sg".into()),
            outcome: Some("success".into()),
            ..Default::default()
        })
        .await,
        vec![100]
    );
    assert!(ats(AuditFilter {
        actor: Some("admin".into()),
        outcome: Some("denied".into()),
        ..Default::default()
    })
    .await
    .is_empty());
}

async fn keyset_paging_covers_the_whole_log_once(db: &TestDatabase) {
    let store = db.store().await;
    // More than one 1,000 cap, with many events sharing a second and one appended out of time
    // order (a late writer): the log's order is (at, id), not the insertion order.
    let mut expected = Vec::new();
    for i in 0..1_205_i64 {
        let at = 1_000 + i / 7;
        let id = store
            .append_audit(&event(at, "signin", "success", None, None, Some("t1")))
            .await
            .unwrap();
        expected.push((at, id));
    }
    let late = store
        .append_audit(&event(1_001, "signin", "success", None, None, Some("t1")))
        .await
        .unwrap();
    expected.push((1_001, late));
    expected.sort_by(|a, b| b.cmp(a));

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_audit(&AuditFilter {
                tenant: Some("t1".into()),
                after,
                limit: 250,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.len() <= 250);
        let Some(last) = page.last() else { break };
        after = Some((last.at, last.id));
        seen.extend(page.iter().map(|e| (e.at, e.id)));
    }
    assert_eq!(seen.len(), expected.len(), "no duplicates, no gaps");
    assert_eq!(seen, expected);

    let capped = store
        .list_audit(&AuditFilter {
            limit: 5_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(capped.len(), 1_000, "one page is capped at 1,000");
}

async fn a_tenant_filter_never_shows_another_tenants_events(db: &TestDatabase) {
    let store = db.store().await;
    // The same person in two tenants: each tenant's view holds only its own events.
    for (at, tenant) in [(1, "t1"), (2, "t2"), (3, "t1"), (4, "t2")] {
        store
            .append_audit(&event(
                at,
                "signin",
                "denied",
                None,
                Some("both@gov.sg"),
                Some(tenant),
            ))
            .await
            .unwrap();
    }
    store
        .append_audit(&event(5, "key.rotated", "success", None, None, None))
        .await
        .unwrap();
    let t1 = store
        .list_audit(&AuditFilter {
            tenant: Some("t1".into()),
            subject_email: Some("both@gov.sg".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(t1.iter().map(|e| e.at).collect::<Vec<_>>(), vec![3, 1]);
    assert!(t1.iter().all(|e| e.tenant.as_deref() == Some("t1")));
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_audit(&AuditFilter {
                tenant: Some("t2".into()),
                after,
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        assert_eq!(
            last.tenant.as_deref(),
            Some("t2"),
            "paging stays in the tenant"
        );
        after = Some((last.at, last.id));
        pages += 1;
    }
    assert_eq!(pages, 2);
}

async fn the_reference_and_email_are_kept_and_searchable(db: &TestDatabase) {
    let store = db.store().await;
    let refused = AuditRecord {
        reference: Some("REF-7Q2K".into()),
        reason: Some("not_registered".into()),
        ..event(10, "signin", "denied", None, Some("x@example.com"), None)
    };
    let id = store.append_audit(&refused).await.unwrap();
    store
        .append_audit(&AuditRecord {
            reference: Some("REF-OTHER".into()),
            ..event(11, "signin", "denied", None, None, None)
        })
        .await
        .unwrap();
    let found = store
        .list_audit(&AuditFilter {
            reference: Some("REF-7Q2K".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id);
    assert_eq!(found[0].reference.as_deref(), Some("REF-7Q2K"));
    assert_eq!(found[0].subject_email.as_deref(), Some("x@example.com"));
    assert_eq!(found[0].reason.as_deref(), Some("not_registered"));
    assert!(store
        .list_audit(&AuditFilter {
            reference: Some("REF-NONE".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty());
}
