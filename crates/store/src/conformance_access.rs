//! Conformance of the app access contract ([`crate::AccessStore`]: assignments, groups, app
//! roles), on every backend.

use std::sync::Arc;

use crate::conformance::{client, grant, tenant, user};
use crate::testing::TestDatabase;
use crate::{
    AssignmentRecord, ConsentRecord, GroupRecord, RoleAssignmentRecord, Store, StoreError,
    TenantAdminRecord, PRINCIPAL_GROUP, PRINCIPAL_USER,
};

crate::backend_tests!(
    "store::conformance_access",
    direct_assignment_gives_access,
    group_assignment_gives_access_within_the_tenant,
    a_person_s_assigned_apps_come_directly_and_through_groups,
    access_holders_list_direct_and_group_access,
    unassign_removes_the_role_assignments,
    roles_are_held_directly_and_through_groups,
    undefined_role_cannot_be_assigned,
    roles_are_defined_and_deleted,
    group_names_are_unique_per_tenant,
    group_members_are_added_and_removed,
    deleting_a_group_removes_what_hangs_on_it,
    admins_and_group_members_belong_to_their_tenant_only,
    consents_are_renewed_listed_and_revoked_with_the_grants,
);

/// Tenants t1 and t2, app c1 of t1, users u1..u3.
async fn setup(db: &TestDatabase) -> Arc<dyn Store> {
    let store = db.store().await;
    for t in ["t1", "t2"] {
        store.insert_tenant(&tenant(t, 1)).await.unwrap();
    }
    let mut app = client("c1");
    app.tenant_id = Some("t1".into());
    store.insert_client(&app, &[]).await.unwrap();
    for u in ["u1", "u2", "u3"] {
        store.upsert_user(&user(u)).await.unwrap();
    }
    store
}

fn assignment(principal_type: &str, principal_id: &str, at: i64) -> AssignmentRecord {
    AssignmentRecord {
        client_id: "c1".into(),
        principal_type: principal_type.into(),
        principal_id: principal_id.into(),
        assigned_at: at,
        assigned_by: "admin".into(),
    }
}

fn group(id: &str, tenant_id: &str, name: &str) -> GroupRecord {
    GroupRecord {
        id: id.into(),
        tenant_id: tenant_id.into(),
        name: name.into(),
        created_at: 1,
    }
}

fn role(role: &str, principal_type: &str, principal_id: &str) -> RoleAssignmentRecord {
    RoleAssignmentRecord {
        client_id: "c1".into(),
        role: role.into(),
        principal_type: principal_type.into(),
        principal_id: principal_id.into(),
    }
}

async fn direct_assignment_gives_access(db: &TestDatabase) {
    let store = setup(db).await;
    assert!(!store.has_access("c1", "u1").await.unwrap());
    assert!(store
        .assign(&assignment(PRINCIPAL_USER, "u2", 20))
        .await
        .unwrap());
    assert!(store
        .assign(&assignment(PRINCIPAL_USER, "u1", 10))
        .await
        .unwrap());
    assert!(!store
        .assign(&assignment(PRINCIPAL_USER, "u1", 30))
        .await
        .unwrap());
    assert!(store.has_access("c1", "u1").await.unwrap());
    assert!(!store.has_access("c1", "u3").await.unwrap());
    assert!(!store.has_access("c9", "u1").await.unwrap());
    assert_eq!(
        store.assignments_of_app("c1").await.unwrap(),
        vec![
            assignment(PRINCIPAL_USER, "u1", 10),
            assignment(PRINCIPAL_USER, "u2", 20)
        ]
    );
    assert!(store.unassign("c1", PRINCIPAL_USER, "u1").await.unwrap());
    assert!(!store.unassign("c1", PRINCIPAL_USER, "u1").await.unwrap());
    assert!(!store.has_access("c1", "u1").await.unwrap());
}

async fn group_assignment_gives_access_within_the_tenant(db: &TestDatabase) {
    let store = setup(db).await;
    store.insert_group(&group("g1", "t1", "eng")).await.unwrap();
    store.insert_group(&group("g2", "t2", "ops")).await.unwrap();
    store.add_group_member("g1", "u1").await.unwrap();
    store.add_group_member("g2", "u2").await.unwrap();
    assert!(store
        .assign(&assignment(PRINCIPAL_GROUP, "g1", 10))
        .await
        .unwrap());
    // Another tenant's group gives no access to this tenant's app.
    assert!(store
        .assign(&assignment(PRINCIPAL_GROUP, "g2", 10))
        .await
        .unwrap());
    assert!(store.has_access("c1", "u1").await.unwrap());
    assert!(!store.has_access("c1", "u2").await.unwrap());
    assert!(!store.has_access("c1", "u3").await.unwrap());
    // A user id that happens to equal a group id is not that group.
    assert!(!store.has_access("c1", "g1").await.unwrap());
    store.remove_group_member("g1", "u1").await.unwrap();
    assert!(!store.has_access("c1", "u1").await.unwrap());
}

async fn a_person_s_assigned_apps_come_directly_and_through_groups(db: &TestDatabase) {
    let store = setup(db).await;
    let mut other = client("c2");
    other.name = "Another app".into();
    other.tenant_id = Some("t2".into());
    store.insert_client(&other, &[]).await.unwrap();
    store.insert_group(&group("g1", "t1", "eng")).await.unwrap();
    store.insert_group(&group("g2", "t1", "ops")).await.unwrap();
    store.add_group_member("g1", "u1").await.unwrap();
    store.add_group_member("g2", "u1").await.unwrap();
    // Directly and through two groups: listed once.
    store
        .assign(&assignment(PRINCIPAL_USER, "u1", 1))
        .await
        .unwrap();
    store
        .assign(&assignment(PRINCIPAL_GROUP, "g1", 2))
        .await
        .unwrap();
    store
        .assign(&assignment(PRINCIPAL_GROUP, "g2", 3))
        .await
        .unwrap();
    // A t1 group assigned to t2's app gives no access.
    let mut foreign = assignment(PRINCIPAL_GROUP, "g1", 4);
    foreign.client_id = "c2".into();
    store.assign(&foreign).await.unwrap();
    let apps: Vec<_> = store
        .apps_assigned_to("u1")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(apps, vec!["c1"]);
    assert!(store.apps_assigned_to("u2").await.unwrap().is_empty());
}

async fn access_holders_list_direct_and_group_access(db: &TestDatabase) {
    let store = setup(db).await;
    store.insert_group(&group("g1", "t1", "eng")).await.unwrap();
    store.insert_group(&group("g2", "t1", "dev")).await.unwrap();
    store.insert_group(&group("g3", "t2", "ops")).await.unwrap();
    for (g, u) in [("g1", "u1"), ("g1", "u3"), ("g2", "u3"), ("g3", "u2")] {
        store.add_group_member(g, u).await.unwrap();
    }
    for (kind, id) in [
        (PRINCIPAL_USER, "u3"),
        (PRINCIPAL_USER, "u2"),
        (PRINCIPAL_GROUP, "g1"),
        (PRINCIPAL_GROUP, "g2"),
        (PRINCIPAL_GROUP, "g3"),
    ] {
        store.assign(&assignment(kind, id, 10)).await.unwrap();
    }
    let holders: Vec<_> = store
        .access_holders("c1")
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.user.id, h.direct, h.via_groups))
        .collect();
    assert_eq!(
        holders,
        vec![
            ("u1".into(), false, vec!["eng".to_string()]),
            ("u2".into(), true, vec![]),
            (
                "u3".into(),
                true,
                vec!["dev".to_string(), "eng".to_string()]
            ),
        ]
    );
    let first = &store.access_holders("c1").await.unwrap()[0];
    assert_eq!(first.user, store.get_user("u1").await.unwrap().unwrap());
    assert!(store.access_holders("c9").await.unwrap().is_empty());
}

async fn unassign_removes_the_role_assignments(db: &TestDatabase) {
    let store = setup(db).await;
    store.define_role("c1", "admin").await.unwrap();
    store
        .assign(&assignment(PRINCIPAL_USER, "u1", 10))
        .await
        .unwrap();
    store
        .assign(&assignment(PRINCIPAL_USER, "u2", 10))
        .await
        .unwrap();
    assert!(store
        .assign_role(&role("admin", PRINCIPAL_USER, "u1"))
        .await
        .unwrap());
    assert!(store
        .assign_role(&role("admin", PRINCIPAL_USER, "u2"))
        .await
        .unwrap());
    assert!(store.unassign("c1", PRINCIPAL_USER, "u1").await.unwrap());
    assert!(store.roles_of_user("c1", "u1").await.unwrap().is_empty());
    assert!(
        !store
            .unassign_role(&role("admin", PRINCIPAL_USER, "u1"))
            .await
            .unwrap(),
        "already gone with the assignment"
    );
    assert_eq!(
        store.roles_of_user("c1", "u2").await.unwrap(),
        vec!["admin"]
    );
}

async fn roles_are_held_directly_and_through_groups(db: &TestDatabase) {
    let store = setup(db).await;
    for r in ["viewer", "admin", "editor"] {
        assert!(store.define_role("c1", r).await.unwrap());
    }
    store.insert_group(&group("g1", "t1", "eng")).await.unwrap();
    store.insert_group(&group("g2", "t1", "dev")).await.unwrap();
    store.insert_group(&group("g3", "t2", "ops")).await.unwrap();
    for g in ["g1", "g2", "g3"] {
        store.add_group_member(g, "u1").await.unwrap();
    }
    assert!(store
        .assign_role(&role("admin", PRINCIPAL_USER, "u1"))
        .await
        .unwrap());
    assert!(!store
        .assign_role(&role("admin", PRINCIPAL_USER, "u1"))
        .await
        .unwrap());
    assert!(store
        .assign_role(&role("viewer", PRINCIPAL_GROUP, "g1"))
        .await
        .unwrap());
    assert!(store
        .assign_role(&role("admin", PRINCIPAL_GROUP, "g2"))
        .await
        .unwrap());
    // Another tenant's group confers nothing in this tenant's app.
    assert!(store
        .assign_role(&role("editor", PRINCIPAL_GROUP, "g3"))
        .await
        .unwrap());
    assert_eq!(
        store.roles_of_user("c1", "u1").await.unwrap(),
        vec!["admin", "viewer"],
        "sorted, unique"
    );
    assert!(store.roles_of_user("c1", "u2").await.unwrap().is_empty());
    assert_eq!(
        store.role_assignments_of_app("c1").await.unwrap(),
        vec![
            role("admin", PRINCIPAL_GROUP, "g2"),
            role("admin", PRINCIPAL_USER, "u1"),
            role("editor", PRINCIPAL_GROUP, "g3"),
            role("viewer", PRINCIPAL_GROUP, "g1"),
        ],
        "every holder, by role then principal"
    );
    assert!(store
        .role_assignments_of_app("c9")
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .unassign_role(&role("viewer", PRINCIPAL_GROUP, "g1"))
        .await
        .unwrap());
    assert!(!store
        .unassign_role(&role("viewer", PRINCIPAL_GROUP, "g1"))
        .await
        .unwrap());
    assert_eq!(
        store.roles_of_user("c1", "u1").await.unwrap(),
        vec!["admin"]
    );
}

async fn undefined_role_cannot_be_assigned(db: &TestDatabase) {
    let store = setup(db).await;
    let err = store
        .assign_role(&role("ghost", PRINCIPAL_USER, "u1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert!(store.roles_of_user("c1", "u1").await.unwrap().is_empty());
}

async fn roles_are_defined_and_deleted(db: &TestDatabase) {
    let store = setup(db).await;
    assert!(store.define_role("c1", "b").await.unwrap());
    assert!(store.define_role("c1", "a").await.unwrap());
    assert!(!store.define_role("c1", "a").await.unwrap());
    assert_eq!(store.roles_of_app("c1").await.unwrap(), vec!["a", "b"]);
    store
        .assign_role(&role("a", PRINCIPAL_USER, "u1"))
        .await
        .unwrap();
    assert!(store.delete_role("c1", "a").await.unwrap());
    assert!(!store.delete_role("c1", "a").await.unwrap());
    assert_eq!(store.roles_of_app("c1").await.unwrap(), vec!["b"]);
    assert!(store.roles_of_user("c1", "u1").await.unwrap().is_empty());
    // Defined again, the role starts with no holders.
    store.define_role("c1", "a").await.unwrap();
    assert!(store.roles_of_user("c1", "u1").await.unwrap().is_empty());
    assert!(store.roles_of_app("c9").await.unwrap().is_empty());
}

async fn group_names_are_unique_per_tenant(db: &TestDatabase) {
    let store = setup(db).await;
    store.insert_group(&group("g1", "t1", "eng")).await.unwrap();
    let err = store
        .insert_group(&group("g2", "t1", "eng"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    store.insert_group(&group("g3", "t2", "eng")).await.unwrap();
    store.insert_group(&group("g4", "t1", "dev")).await.unwrap();
    assert_eq!(
        store.get_group("g1").await.unwrap(),
        Some(group("g1", "t1", "eng"))
    );
    assert_eq!(store.get_group("g2").await.unwrap(), None);
    assert_eq!(
        store.groups_of_tenant("t1").await.unwrap(),
        vec![group("g4", "t1", "dev"), group("g1", "t1", "eng")]
    );
}

async fn group_members_are_added_and_removed(db: &TestDatabase) {
    let store = setup(db).await;
    store.insert_group(&group("g1", "t1", "eng")).await.unwrap();
    store.insert_group(&group("g2", "t1", "dev")).await.unwrap();
    store.insert_group(&group("g3", "t2", "ops")).await.unwrap();
    assert!(store.add_group_member("g1", "u2").await.unwrap());
    assert!(store.add_group_member("g1", "u1").await.unwrap());
    assert!(!store.add_group_member("g1", "u1").await.unwrap());
    for g in ["g2", "g3"] {
        store.add_group_member(g, "u1").await.unwrap();
    }
    assert_eq!(store.group_members("g1").await.unwrap(), vec!["u1", "u2"]);
    let names = |gs: Vec<GroupRecord>| gs.into_iter().map(|g| g.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.groups_of_user("t1", "u1").await.unwrap()),
        vec!["dev", "eng"]
    );
    assert_eq!(
        names(store.groups_of_user("t2", "u1").await.unwrap()),
        vec!["ops"]
    );
    assert!(store.remove_group_member("g1", "u1").await.unwrap());
    assert!(!store.remove_group_member("g1", "u1").await.unwrap());
    assert_eq!(store.group_members("g1").await.unwrap(), vec!["u2"]);
}

async fn deleting_a_group_removes_what_hangs_on_it(db: &TestDatabase) {
    let store = setup(db).await;
    store.insert_group(&group("g1", "t1", "eng")).await.unwrap();
    store.add_group_member("g1", "u1").await.unwrap();
    store.define_role("c1", "admin").await.unwrap();
    store
        .assign(&assignment(PRINCIPAL_GROUP, "g1", 10))
        .await
        .unwrap();
    store
        .assign_role(&role("admin", PRINCIPAL_GROUP, "g1"))
        .await
        .unwrap();
    assert!(store.has_access("c1", "u1").await.unwrap());
    assert!(store.delete_group("g1").await.unwrap());
    assert!(!store.delete_group("g1").await.unwrap());
    assert_eq!(store.get_group("g1").await.unwrap(), None);
    assert!(store.group_members("g1").await.unwrap().is_empty());
    assert!(store.assignments_of_app("c1").await.unwrap().is_empty());
    assert!(store.roles_of_user("c1", "u1").await.unwrap().is_empty());
    // A new group with the same name does not inherit anything.
    store.insert_group(&group("g1", "t1", "eng")).await.unwrap();
    store.add_group_member("g1", "u1").await.unwrap();
    assert!(!store.has_access("c1", "u1").await.unwrap());
    assert!(store.roles_of_user("c1", "u1").await.unwrap().is_empty());
}

async fn admins_and_group_members_belong_to_their_tenant_only(db: &TestDatabase) {
    let store = setup(db).await;
    assert!(!store.belongs_to_tenant("t1", "u1", 10).await.unwrap());
    store
        .add_tenant_admin(&TenantAdminRecord {
            tenant_id: "t1".into(),
            user_id: "u1".into(),
            added_at: 1,
            added_by: "op".into(),
        })
        .await
        .unwrap();
    store
        .insert_group(&group("g1", "t1", "devs"))
        .await
        .unwrap();
    store.insert_group(&group("g2", "t2", "ops")).await.unwrap();
    assert!(store.add_group_member("g1", "u2").await.unwrap());
    assert!(store.add_group_member("g2", "u3").await.unwrap());
    assert!(store.belongs_to_tenant("t1", "u1", 10).await.unwrap());
    assert!(store.belongs_to_tenant("t1", "u2", 10).await.unwrap());
    assert!(
        !store.belongs_to_tenant("t1", "u3", 10).await.unwrap(),
        "a group of another tenant makes no member"
    );
    assert!(!store.belongs_to_tenant("t2", "u1", 10).await.unwrap());
    assert!(store.belongs_to_tenant("t2", "u3", 10).await.unwrap());
}

async fn consents_are_renewed_listed_and_revoked_with_the_grants(db: &TestDatabase) {
    let store = setup(db).await;
    let consent = |scopes: &str, at: i64| ConsentRecord {
        user_id: "u1".into(),
        client_id: "c1".into(),
        scopes: scopes.into(),
        granted_at: at,
    };
    assert_eq!(store.consent("u1", "c1").await.unwrap(), None);
    store.grant_consent(&consent("openid", 10)).await.unwrap();
    store
        .grant_consent(&consent("openid email", 20))
        .await
        .unwrap();
    assert_eq!(
        store.consent("u1", "c1").await.unwrap(),
        Some(consent("openid email", 20)),
        "a second consent renews the first"
    );
    assert_eq!(
        store.consents_of_user("u1").await.unwrap(),
        vec![consent("openid email", 20)]
    );
    assert!(store.consents_of_user("u2").await.unwrap().is_empty());

    store.insert_grant(&grant("gr1", None)).await.unwrap();
    assert!(store.revoke_consent("u1", "c1", 30).await.unwrap());
    assert_eq!(store.consent("u1", "c1").await.unwrap(), None);
    assert_eq!(
        store.get_grant("gr1").await.unwrap().unwrap().revoked_at,
        Some(30),
        "the app's grants for the person end with the consent"
    );
    assert!(!store.revoke_consent("u1", "c1", 40).await.unwrap());
}
