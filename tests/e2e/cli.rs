//! The `techpass` binary as an operator meets it: no-configuration start, configuration errors,
//! the master key, `migrate`, `keys list` and `keys rotate`, and shutdown on SIGTERM.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::Value;
use techpass_oidc::MasterKey;
use techpass_store::testing::{Backend, TestDatabase};

use crate::support::{client, run_techpass, spawn_serve, TempDir};

async fn jwks_kids(base: &str) -> Vec<String> {
    let jwks: Value = client()
        .get(format!("{base}/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

async fn terminate(mut process: crate::support::ServeProcess) -> (i32, String) {
    let pid = process.child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let status = tokio::time::timeout(Duration::from_secs(30), process.child.wait())
        .await
        .expect("techpass did not exit after SIGTERM")
        .unwrap();
    let mut stderr = String::new();
    if let Some(mut err) = process.child.stderr.take() {
        use tokio::io::AsyncReadExt;
        err.read_to_string(&mut stderr).await.unwrap();
    }
    (status.code().unwrap_or(-1), stderr)
}

#[tokio::test]
async fn serve_with_no_configuration_then_restart_and_wrong_master_key() {
    let cwd = TempDir::new();
    // Only the port is chosen, so tests do not collide on 8080.
    let listen = [("TECHPASS_LISTEN", "127.0.0.1:0")];
    let serving = spawn_serve(&cwd.0, &listen).await;
    assert!(
        serving.base.starts_with("http://127.0.0.1:"),
        "{}",
        serving.base
    );
    let discovery: Value = client()
        .get(format!("{}/.well-known/openid-configuration", serving.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], serving.base);
    let kids = jwks_kids(&serving.base).await;
    assert_eq!(kids.len(), 3, "one key per algorithm: RS256, ES256, EdDSA");

    // Metrics on their own listener, named on the serving line; never on the public one.
    let metrics = serving
        .metrics
        .clone()
        .expect("a metrics listener by default");
    assert!(metrics.starts_with("http://127.0.0.1:"), "{metrics}");
    assert_ne!(format!("{}/metrics", serving.base), metrics);
    let scraped = client().get(&metrics).send().await.unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    assert!(
        text.contains(r#"techpass_http_requests_total{method="GET",route="/jwks",status="200"} 1"#),
        "{text}"
    );
    let public = client()
        .get(format!("{}/metrics", serving.base))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    let elsewhere = client()
        .get(metrics.replace("/metrics", "/jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        elsewhere.status(),
        404,
        "the metrics listener serves metrics only"
    );

    let data = cwd.0.join("data");
    assert!(
        data.join("techpass.db").is_file(),
        "embedded SQLite database created"
    );
    let key_mode = std::fs::metadata(data.join("master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600, "development master key is private");

    let (code, stderr) = terminate(serving).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");

    // A restart reuses the stored key. A TECHPASS_* variable that is not configuration (the
    // browser tests' screenshot folder, the tests' own TECHPASS_TEST_*) does not stop it.
    let again = spawn_serve(
        &cwd.0,
        &[
            listen[0],
            ("TECHPASS_ARTIFACTS", "/tmp/techpass-screenshots"),
            ("TECHPASS_TEST_SOMETHING", "x"),
        ],
    )
    .await;
    assert_eq!(jwks_kids(&again.base).await, kids);
    terminate(again).await;

    // Another master key must not silently replace the keys.
    let other = MasterKey::generate_base64().unwrap();
    let (code, _, stderr) = run_techpass(
        &cwd.0,
        &["serve"],
        &[
            ("TECHPASS_LISTEN", "127.0.0.1:0"),
            ("TECHPASS_MASTER_KEY", &other),
        ],
    )
    .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("does not decrypt signing key"), "{stderr}");
    assert!(stderr.contains("TECHPASS_MASTER_KEY"), "{stderr}");

    // A master key file others can read is refused.
    std::fs::set_permissions(
        data.join("master.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (code, _, stderr) = run_techpass(&cwd.0, &["serve"], &listen).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("readable by other users"), "{stderr}");
}

#[tokio::test]
async fn configuration_errors_exit_2_naming_the_key() {
    let cwd = TempDir::new();
    let file = cwd.0.join("techpass.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\n[keys]\nrotation_period = 5\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();

    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["--config", config, "serve"],
            vec![],
            "unknown key `keys.rotation_period`",
        ),
        (
            vec!["serve"],
            vec![("TECHPASS_LISTEN", "not-an-address")],
            "`listen`",
        ),
        (
            vec!["serve"],
            vec![("TECHPASS_METRICS_LISTEN", "everywhere")],
            "`metrics_listen`",
        ),
        (
            vec!["serve"],
            vec![
                ("TECHPASS_LISTEN", "127.0.0.1:8099"),
                ("TECHPASS_METRICS_LISTEN", "127.0.0.1:8099"),
            ],
            "must differ from `listen`",
        ),
        (
            vec!["serve"],
            vec![("TECHPASS_LOG__FORMAT", "xml")],
            "`log.format`",
        ),
        (
            vec!["serve"],
            vec![("TECHPASS_DATABSE_URL", "sqlite://x.db")],
            "unknown key `databse_url`",
        ),
        (
            vec!["serve"],
            vec![("TECHPASS_LOG__FROMAT", "json")],
            "unknown key `log.fromat`",
        ),
        (
            vec!["--config", "/nonexistent/techpass.toml", "serve"],
            vec![],
            "does not exist",
        ),
        (
            vec!["serve"],
            vec![("TECHPASS_MODE", "production")],
            "`issuer`",
        ),
        (
            vec!["serve"],
            vec![
                ("TECHPASS_MODE", "production"),
                ("TECHPASS_ISSUER", "https://id.example.gov.sg"),
            ],
            "TECHPASS_MASTER_KEY",
        ),
    ];
    for (args, env, expected) in cases {
        let (code, stdout, stderr) = run_techpass(&cwd.0, &args, &env).await;
        assert_eq!(code, 2, "{args:?} {env:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?} {env:?}: expected {expected:?} in {stderr}"
        );
        assert!(stdout.is_empty(), "nothing served: {stdout}");
    }
    assert!(
        !cwd.0.join("data").exists(),
        "a refused start writes nothing"
    );
}

async fn keys_commands_rotate_and_list(backend: Backend) {
    let Some(db) = TestDatabase::new(backend, "e2e::keys_commands_rotate_and_list").await else {
        return;
    };
    let cwd = TempDir::new();
    let master = MasterKey::generate_base64().unwrap();
    let env = [
        ("TECHPASS_DATABASE_URL", db.url.as_str()),
        ("TECHPASS_MASTER_KEY", master.as_str()),
    ];

    for _ in 0..2 {
        let (code, stdout, stderr) = run_techpass(&cwd.0, &["migrate"], &env).await;
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("up to date"));
    }

    let (code, stdout, stderr) = run_techpass(&cwd.0, &["keys", "rotate"], &env).await;
    assert_eq!(code, 0, "{stderr}");
    for alg in ["RS256", "ES256", "EdDSA"] {
        assert!(stdout.contains(&format!("created {alg} key")), "{stdout}");
    }

    // A second rotation while the new key is still pending is refused.
    let (code, _, stderr) = run_techpass(&cwd.0, &["keys", "rotate"], &env).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("rotation not started"), "{stderr}");

    let (code, stdout, stderr) = run_techpass(&cwd.0, &["keys", "list", "--json"], &env).await;
    assert_eq!(code, 0, "{stderr}");
    let keys: Value = serde_json::from_str(&stdout).unwrap();
    let states: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    let algorithms: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["algorithm"].as_str().unwrap())
        .collect();
    assert_eq!(
        (states, algorithms),
        (
            ["active", "pending"].repeat(3),
            vec!["RS256", "RS256", "ES256", "ES256", "EdDSA", "EdDSA"]
        )
    );
    let pending_from = keys[1]["activates_at"].as_i64().unwrap();
    let created = keys[1]["created_at"].as_i64().unwrap();
    assert_eq!(
        pending_from - created,
        3600,
        "default pre-publication delay"
    );

    let (code, stdout, _) = run_techpass(&cwd.0, &["keys", "list"], &env).await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains("pending") && stdout.contains("active"),
        "{stdout}"
    );

    assert!(
        stdout.contains("RSA 2048-bit") && stdout.contains("EC P-256"),
        "{stdout}"
    );

    // --force starts another rotation despite the pending one.
    let (code, _, stderr) = run_techpass(&cwd.0, &["keys", "rotate", "--force"], &env).await;
    assert_eq!(code, 0, "{stderr}");

    // Emergency retirement of the signing RS256 key: asked to confirm first, then done.
    let active_rs = keys[0]["kid"].as_str().unwrap();
    assert_eq!(keys[0]["key_type"], "RSA 2048-bit");
    let (code, _, stderr) = run_techpass(&cwd.0, &["keys", "retire", active_rs], &env).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("--yes") && stderr.contains("is active"),
        "{stderr}"
    );
    let (code, stdout, stderr) =
        run_techpass(&cwd.0, &["keys", "retire", active_rs, "--yes"], &env).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("retired RS256 key {active_rs} (active)")),
        "{stdout}"
    );
    assert!(stdout.contains("it signs now"), "{stdout}");
    assert_eq!(
        stdout.matches("withdrew pending key").count(),
        2,
        "{stdout}"
    );
    let (_, stdout, _) = run_techpass(&cwd.0, &["keys", "list", "--json"], &env).await;
    let after: Value = serde_json::from_str(&stdout).unwrap();
    let rs: Vec<(&str, &str)> = after
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["algorithm"] == "RS256")
        .map(|k| (k["kid"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert_eq!(rs.len(), 1, "only the new RS256 key: {rs:?}");
    assert_eq!(rs[0].1, "active");
    assert_ne!(rs[0].0, active_rs);
    let (code, _, stderr) =
        run_techpass(&cwd.0, &["keys", "retire", active_rs, "--yes"], &env).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("no published signing key"), "{stderr}");
    assert!(
        !cwd.0.join("data").exists(),
        "no development files with an explicit database and key"
    );
}

crate::both_backends!(keys_commands_rotate_and_list);

#[tokio::test]
async fn app_create_prints_the_secret_once_and_refuses_bad_redirects() {
    let cwd = TempDir::new();
    let (code, stdout, stderr) = run_techpass(
        &cwd.0,
        &[
            "app",
            "create",
            "--name",
            "Wiki",
            "--redirect-uri",
            "https://wiki.example.gov.sg/cb",
            "--json",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let created: Value = serde_json::from_str(&stdout).unwrap();
    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    assert!(id.starts_with("app_"));
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    let db = std::fs::read(cwd.0.join("data/techpass.db")).unwrap();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret is not stored in the clear"
    );

    for (args, expected) in [
        (
            vec![
                "app",
                "create",
                "--name",
                "Members",
                "--redirect-uri",
                "https://wiki.example.gov.sg/cb",
                "--access-policy",
                "members",
            ],
            "a platform app has no members",
        ),
        (
            vec![
                "app",
                "create",
                "--name",
                "Bad",
                "--redirect-uri",
                "http://wiki.example.gov.sg/cb",
            ],
            "https",
        ),
        (
            vec![
                "app",
                "create",
                "--name",
                "Bad",
                "--redirect-uri",
                "https://wiki.example.gov.sg/cb#x",
            ],
            "fragment",
        ),
        (
            vec![
                "app",
                "create",
                "--name",
                "Bad",
                "--redirect-uri",
                "https://*.example.gov.sg/cb",
            ],
            "wildcard",
        ),
        (
            vec![
                "app",
                "create",
                "--name",
                "Bad",
                "--public",
                "--grant-type",
                "client_credentials",
            ],
            "public",
        ),
    ] {
        let (code, _, stderr) = run_techpass(&cwd.0, &args, &[]).await;
        assert_eq!(code, 1, "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }

    // Token signing algorithms (issue 17 item 3): chosen at creation, changed with `app update`;
    // a value TechPass does not sign with is refused by the argument parser (exit 2), naming
    // the supported values, and an unknown app is an error.
    let (code, stdout, stderr) = run_techpass(
        &cwd.0,
        &[
            "app",
            "create",
            "--name",
            "Fast",
            "--redirect-uri",
            "https://fast.example.gov.sg/cb",
            "--id-token-alg",
            "ES256",
            "--access-token-alg",
            "EdDSA",
            "--json",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let fast: Value = serde_json::from_str(&stdout).unwrap();
    let fast = fast["client_id"].as_str().unwrap();
    let (code, stdout, stderr) = run_techpass(
        &cwd.0,
        &["app", "update", fast, "--access-token-alg", "RS256"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("ID tokens ES256, access tokens RS256"),
        "{stdout}"
    );
    for args in [
        vec!["app", "update", fast, "--id-token-alg", "HS256"],
        vec![
            "app",
            "create",
            "--name",
            "Bad",
            "--redirect-uri",
            "https://bad.example.gov.sg/cb",
            "--access-token-alg",
            "none",
        ],
    ] {
        let (code, _, stderr) = run_techpass(&cwd.0, &args, &[]).await;
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains("RS256, ES256, EdDSA"), "{args:?}: {stderr}");
    }
    let (code, _, stderr) = run_techpass(
        &cwd.0,
        &["app", "update", "app_nope", "--id-token-alg", "ES256"],
        &[],
    )
    .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("no app app_nope"), "{stderr}");
    let (code, _, stderr) = run_techpass(&cwd.0, &["app", "update", fast], &[]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("nothing to change"), "{stderr}");
    // RFC 9449 §5.2: the operator makes an app require DPoP, and turns it off again.
    for (value, says) in [("true", "DPoP required"), ("false", "DPoP optional")] {
        let (code, stdout, stderr) = run_techpass(
            &cwd.0,
            &["app", "update", fast, "--require-dpop", value],
            &[],
        )
        .await;
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains(says), "{stdout}");
    }
    let (code, _, stderr) = run_techpass(
        &cwd.0,
        &["app", "update", fast, "--require-dpop", "maybe"],
        &[],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
}

#[tokio::test]
async fn operators_register_a_tenant_and_name_admins_before_their_first_sign_in() {
    let cwd = TempDir::new();
    let run = |args: &'static [&'static str]| {
        let dir = cwd.0.clone();
        async move { run_techpass(&dir, args, &[]).await }
    };

    // The first platform admin, before anyone has signed in: pending, once, withdrawable.
    let (code, stdout, stderr) =
        run(&["admin", "grant-platform-admin", "Alice_Tan@Tech.gov.sg"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("alice_tan@tech.gov.sg has not signed in yet")
            && stdout.contains("first sign-in"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&["admin", "grant-platform-admin", "alice_tan@tech.gov.sg"]).await;
    assert_eq!(code, 0);
    assert!(stdout.contains("already pending"), "{stdout}");
    let (code, stdout, _) = run(&[
        "admin",
        "grant-platform-admin",
        "alice_tan@tech.gov.sg",
        "--cancel",
    ])
    .await;
    assert_eq!(code, 0);
    assert!(stdout.contains("withdrawn"), "{stdout}");
    let (code, _, stderr) = run(&["admin", "grant-platform-admin", "not-an-email"]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("not an email address"), "{stderr}");

    // A tenant registered directly, its admin named by email.
    let (code, stdout, stderr) = run(&[
        "tenant",
        "create",
        "--name",
        "Code Wiki",
        "--admin",
        "bob_lim@hdb.gov.sg",
        "--json",
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    let created: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(created["slug"], "code-wiki");
    assert_eq!(created["status"], "active");
    assert_eq!(created["admin"]["email"], "bob_lim@hdb.gov.sg");
    assert_eq!(created["admin"]["pending"], true);
    let (code, stdout, stderr) = run(&[
        "tenant",
        "create",
        "--slug",
        "ci",
        "--name",
        "CI",
        "--admin",
        "bob_lim@hdb.gov.sg",
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("tenant ci") && stdout.contains("next sign-in"),
        "{stdout}"
    );

    for (args, expected) in [
        (
            &[
                "tenant",
                "create",
                "--name",
                "Code Wiki",
                "--admin",
                "bob_lim@hdb.gov.sg",
            ][..],
            "taken",
        ),
        (
            &[
                "tenant",
                "create",
                "--name",
                "Vendor",
                "--admin",
                "dave@vendorco.example",
            ][..],
            "public officer",
        ),
        (
            &["tenant", "create", "--name", "Bad", "--admin", "bob"][..],
            "not an email address",
        ),
        (
            &[
                "tenant",
                "create",
                "--name",
                "42",
                "--admin",
                "bob_lim@hdb.gov.sg",
            ][..],
            "slug",
        ),
    ] {
        let (code, _, stderr) = run_techpass(&cwd.0, args, &[]).await;
        assert_eq!(code, 1, "{args:?}");
        assert!(
            stderr.contains("tenant not created") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }

    // Re-enabling names a person who exists: a clear error and a non-zero exit otherwise.
    let (code, _, stderr) = run(&["admin", "enable", "nobody@tech.gov.sg"]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("no user has the email or id nobody@tech.gov.sg"),
        "{stderr}"
    );

    // Ending a membership: an unknown tenant, an unknown person, no reason are refused clearly.
    for (args, expected) in [
        (
            &[
                "tenant",
                "end-membership",
                "--tenant",
                "nope",
                "--user",
                "dave@vendorco.example",
                "--reason",
                "r",
            ][..],
            "no tenant nope",
        ),
        (
            &[
                "tenant",
                "end-membership",
                "--tenant",
                "ci",
                "--user",
                "dave@vendorco.example",
                "--reason",
                "r",
            ][..],
            "not found",
        ),
    ] {
        let (code, _, stderr) = run_techpass(&cwd.0, args, &[]).await;
        assert_eq!(code, 1, "{args:?}");
        assert!(
            stderr.contains("membership not ended") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test]
async fn dev_upstream_commands_disable_enable_list_and_refuse_an_unknown_person() {
    let cwd = TempDir::new();
    let run = |args: &'static [&'static str]| {
        let dir = cwd.0.clone();
        async move { run_techpass(&dir, args, &[]).await }
    };
    let (code, stdout, stderr) = run(&["dev-upstream", "disable", "alice"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("disabled alice (alice_tan@tech.gov.sg)"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&["dev-upstream", "list"]).await;
    assert_eq!(code, 0);
    let line = |who: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(who))
            .unwrap_or_else(|| panic!("{who} not listed: {stdout}"))
            .to_string()
    };
    assert!(line("alice").ends_with("disabled"), "{stdout}");
    assert!(line("bob").ends_with("enabled"), "{stdout}");

    let (code, _, stderr) = run(&["dev-upstream", "enable", "alice"]).await;
    assert_eq!(code, 0, "{stderr}");
    let (_, stdout, _) = run(&["dev-upstream", "list"]).await;
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("alice") && l.ends_with("enabled")),
        "{stdout}"
    );

    let (code, stdout, stderr) = run(&["dev-upstream", "disable", "zed"]).await;
    assert_ne!(code, 0, "{stdout}");
    assert!(stderr.contains("no test person \"zed\""), "{stderr}");
    let (code, _, _) = run(&["dev-upstream", "disable"]).await;
    assert_ne!(code, 0, "a person must be named");
}
