//! Upgrades: a database written by an earlier schema, migrated, reads as the new one would
//! have written it. Each test migrates a fresh database up to an earlier version through
//! sqlx's own migrator (the migration files as they are, up to that version), writes rows in
//! that version's shape with plain SQL, then migrates the rest of the way as a replica does at
//! start.

use std::path::Path;
use std::str::FromStr as _;

use crate::testing::{Backend, TestDatabase};

crate::backend_tests!(
    "store::conformance_upgrades",
    codes_redeemed_before_0026_name_their_grants,
);

/// A migrator of `backend`'s migration files up to `version` (copied into a folder of their
/// own, which the migrator reads whole, and removed once read).
async fn migrations_until(backend: Backend, version: i64) -> sqlx::migrate::Migrator {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        });
    let folder = std::env::temp_dir().join(format!("techpass-migrations-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&folder).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let number: i64 = name.split('_').next().unwrap().parse().unwrap();
        if number <= version {
            std::fs::copy(&path, folder.join(&name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(folder.as_path()).await;
    std::fs::remove_dir_all(&folder).unwrap();
    migrator.unwrap()
}

/// Migrates `db` up to `version` and runs `statements` on it, in order.
async fn write_at(db: &TestDatabase, version: i64, statements: &[&str]) {
    let migrator = migrations_until(db.backend, version).await;
    match db.backend {
        Backend::Sqlite => {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url)
                .unwrap()
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            migrator.run(&pool).await.unwrap();
            for sql in statements {
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            migrator.run(&pool).await.unwrap();
            for sql in statements {
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
}

/// Before 0026 a grant kept the hash of the code it was redeemed from; since, the code names
/// its grant. A code spent before the upgrade and replayed after it still revokes its grant.
async fn codes_redeemed_before_0026_name_their_grants(db: &TestDatabase) {
    write_at(
        db,
        25,
        &[
            "INSERT INTO clients (client_id, name, confidential, redirect_uris,
               post_logout_redirect_uris, grant_types, enabled, created_at)
             VALUES ('c1', 'App', TRUE, '[]', '[]', '[]', TRUE, 1)",
            "INSERT INTO grants (id, client_id, code_hash, scope, amr, created_at, expires_at)
             VALUES ('g-code', 'c1', 'k-used', 'openid', '[]', 1, 1000),
                    ('g-device', 'c1', 'd-used', 'openid', '[]', 1, 1000),
                    ('g-other', 'c1', NULL, 'openid', '[]', 1, 1000)",
            "INSERT INTO auth_codes (code_hash, client_id, user_id, session_hash, redirect_uri,
               scope, auth_time, amr, created_at, expires_at, used_at)
             VALUES ('k-used', 'c1', 'u1', 's', 'https://app.example/cb', 'openid', 1, '[]',
                     1, 60, 5),
                    ('k-fresh', 'c1', 'u1', 's', 'https://app.example/cb', 'openid', 1, '[]',
                     1, 60, NULL),
                    ('k-purged', 'c1', 'u1', 's', 'https://app.example/cb', 'openid', 1, '[]',
                     1, 60, 5)",
            "INSERT INTO device_codes (device_code_hash, user_code_hash, client_id, scope,
               created_at, expires_at, interval_secs, status)
             VALUES ('d-used', 'u-used', 'c1', 'openid', 1, 600, 5, 'redeemed'),
                    ('d-pending', 'u-pending', 'c1', 'openid', 1, 600, 5, 'pending')",
        ],
    )
    .await;
    // The rest of the way, as a replica does at start.
    let store = db.store().await;
    let code = |hash: &'static str| {
        let store = store.clone();
        async move { store.get_code(hash).await.unwrap().unwrap().grant_id }
    };
    assert_eq!(code("k-used").await.as_deref(), Some("g-code"));
    assert_eq!(
        code("k-fresh").await,
        None,
        "an unspent code names no grant"
    );
    assert_eq!(
        code("k-purged").await,
        None,
        "its grant was gone before the upgrade"
    );
    let device = |hash: &'static str| {
        let store = store.clone();
        async move { store.get_device_code(hash).await.unwrap().unwrap().grant_id }
    };
    assert_eq!(device("d-used").await.as_deref(), Some("g-device"));
    assert_eq!(device("d-pending").await, None);
    // The grants read as before, without the column that is gone.
    let grant = store.get_grant("g-code").await.unwrap().unwrap();
    assert_eq!((grant.client_id.as_str(), grant.revoked_at), ("c1", None));
    // A replay after the upgrade revokes what the code names, and nothing else.
    assert!(store.revoke_grant("g-code", 70).await.unwrap());
    assert_eq!(
        store.get_grant("g-code").await.unwrap().unwrap().revoked_at,
        Some(70)
    );
    assert_eq!(
        store
            .get_grant("g-other")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );
}
