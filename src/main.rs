//! `techpass`: the command line. `serve` runs the provider; `migrate` and `keys` are operator
//! commands against the same configuration and database. `login`, `token` and `git-credential`
//! are the developer's client of any RFC 8628 issuer ([`techpass::login`]): they read no
//! server configuration.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use techpass_service::dates::rfc3339;

use clap::{Parser, Subcommand};
use techpass::accounts;
use techpass::config::Config;
use techpass::provider::clients::{create_app, NewApp};
use techpass::server::{self, StartupError};
use techpass_domain::client::AccessPolicy;
use techpass_domain::{Clock, SystemClock};
use techpass_oidc::keys::SigningAlg;
use techpass_oidc::KeyError;
use techpass_service::outbound::OutboundPolicy;

#[derive(Parser)]
#[command(
    name = "techpass",
    version,
    about = "OpenID Connect provider and federation broker"
)]
struct Cli {
    /// A TOML file overriding config/default.toml (environment variables TECHPASS_* override it).
    #[arg(long, global = true, env = "TECHPASS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the provider (migrates the database and creates the first signing key if needed).
    Serve,
    /// Bring the database schema up to date (safe to run repeatedly and concurrently).
    Migrate,
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Relying parties (apps).
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Tenants (the services onboarded to the toolchain).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Platform administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The development upstream's test people (development only): disable one as an Azure AD
    /// administrator would, so TechPass's re-verification refuses them.
    #[command(name = "dev-upstream")]
    DevUpstream {
        #[command(subcommand)]
        command: DevUpstreamCommand,
    },
    /// Sign in from a terminal with the device flow (RFC 8628) and cache the tokens.
    Login {
        /// The issuer URL (its /.well-known/openid-configuration is read).
        #[arg(long, env = "TECHPASS_ISSUER")]
        issuer: String,
        /// The app's client id (an app that registered the device_code grant).
        #[arg(long = "client-id", env = "TECHPASS_CLIENT_ID")]
        client_id: String,
        /// Space-separated scopes.
        #[arg(long, default_value = "openid profile email offline_access")]
        scope: String,
        /// Open the verification page in the default browser.
        #[arg(long)]
        open: bool,
        /// Ask for bearer tokens instead of tokens bound to a DPoP key (RFC 9449), which
        /// `techpass login` uses whenever the issuer supports them.
        #[arg(long = "no-dpop")]
        no_dpop: bool,
    },
    /// Print a fresh access token of the last (or the named) login, refreshing it if needed.
    Token {
        #[command(flatten)]
        target: TargetArgs,
        /// Print a Kubernetes ExecCredential (client.authentication.k8s.io/v1) instead.
        #[arg(long = "exec-credential")]
        exec_credential: bool,
        /// Hand out the ID token instead of the access token (Kubernetes OIDC authentication).
        #[arg(long = "id-token")]
        id_token: bool,
        /// Print the request headers that present the access token for METHOD URL instead:
        /// `Authorization: DPoP …` and a fresh `DPoP` proof for a bound token (`Bearer`
        /// otherwise), one per line, for `curl -H @-`.
        #[arg(long, num_args = 2, value_names = ["METHOD", "URL"], conflicts_with_all = ["exec_credential", "id_token"])]
        dpop: Option<Vec<String>>,
    },
    /// A git credential helper: `get` answers with the access token as the password.
    GitCredential {
        #[command(flatten)]
        target: TargetArgs,
        /// The username to answer with when git does not name one.
        #[arg(long, default_value = "oauth2")]
        username: String,
        /// What git asks: get, store or erase (store and erase are ignored).
        operation: String,
    },
}

/// Which login's tokens: both given, or neither (the last `techpass login`).
#[derive(clap::Args)]
struct TargetArgs {
    #[arg(long, env = "TECHPASS_ISSUER", requires = "client_id")]
    issuer: Option<String>,
    #[arg(long = "client-id", env = "TECHPASS_CLIENT_ID", requires = "issuer")]
    client_id: Option<String>,
}

impl TargetArgs {
    fn target(&self) -> Result<techpass::login::Target, techpass::login::CliError> {
        match (&self.issuer, &self.client_id) {
            (Some(issuer), Some(client_id)) => Ok(techpass::login::Target::new(issuer, client_id)),
            _ => techpass::login::current_target(),
        }
    }
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Register a tenant directly, active at once (no request and approval), with its first
    /// admin; audited as an approval.
    Create {
        /// What people and admins see.
        #[arg(long)]
        name: String,
        /// Short name ([a-z][a-z0-9-], 2 to 40); proposed from the name when absent.
        #[arg(long)]
        slug: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long, default_value = "")]
        purpose: String,
        /// The first tenant admin: a public officer's email address (someone who has not
        /// signed in yet becomes admin at their first sign-in) or a registered officer's id.
        #[arg(long)]
        admin: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// End a member's access to a tenant now: the membership's end date becomes now (kept),
    /// their grants and refresh tokens at the tenant's apps are revoked and their
    /// assignments, roles and groups in the tenant removed; audited with the reason. Their
    /// access through other tenants is untouched.
    EndMembership {
        /// The tenant's slug or id.
        #[arg(long)]
        tenant: String,
        /// The member's email address or TechPass user id.
        #[arg(long)]
        user: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Suspend a person: no token from now on, sessions ended (apps told), grants revoked.
    Suspend {
        /// The person's email address or TechPass user id.
        user: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Lift a suspension.
    Reinstate {
        /// The person's email address or TechPass user id.
        user: String,
    },
    /// Re-enable a disabled account (officers become registered again, vendors active, or
    /// expired if their access end date has passed).
    Enable {
        /// The person's email address or TechPass user id.
        user: String,
    },
    /// Make a person a platform admin (the first one is made this way). Someone who has not
    /// signed in yet, named by email, becomes one at their first sign-in.
    GrantPlatformAdmin {
        /// The person's email address or TechPass user id.
        user: String,
        /// Withdraw a grant still waiting for that email's first sign-in instead.
        #[arg(long)]
        cancel: bool,
    },
    /// Keep an account out of the lifecycle jobs (product and test accounts), or with --off
    /// put it back.
    Exempt {
        /// The person's email address or TechPass user id.
        user: String,
        #[arg(long)]
        off: bool,
    },
    /// Run the scheduled jobs once now (lifecycle, invitation expiry, reminders, outbox,
    /// webhooks); `serve` runs them every jobs.interval_secs.
    RunJobs,
}

#[derive(Subcommand)]
enum AppCommand {
    /// Register an app; prints its client id and, for a confidential app, its secret (once).
    Create {
        /// What people and admins see.
        #[arg(long)]
        name: String,
        /// An exact redirect URI (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A public client (native or single-page app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// Grant types (repeatable): authorization_code, refresh_token, client_credentials,
        /// urn:ietf:params:oauth:grant-type:device_code (command-line tools),
        /// urn:ietf:params:oauth:grant-type:token-exchange (CI pipelines; see `app ci-issuer`).
        #[arg(long = "grant-type", default_values_t = ["authorization_code".to_string(), "refresh_token".to_string()])]
        grant_types: Vec<String>,
        /// A post-logout redirect URI (repeatable).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Where to POST back-channel logout tokens.
        #[arg(long = "backchannel-logout-uri")]
        backchannel_logout_uri: Option<String>,
        /// A JWK set file of public keys: the app authenticates with private_key_jwt (no secret).
        #[arg(long = "jwks-file")]
        jwks_file: Option<PathBuf>,
        /// The tenant (slug) the app belongs to; its admins then manage it. Without it, a
        /// platform app that any registered user may sign in to.
        #[arg(long)]
        tenant: Option<String>,
        /// With --tenant: let every registered officer sign in (with their consent), not only
        /// assigned people (the same as --access-policy officers).
        #[arg(long, conflicts_with = "access_policy")]
        open: bool,
        /// Who may sign in: assigned (the default for a tenant's app), members (the tenant's
        /// admins, people in its groups and vendors it invited; a tenant's app only) or officers
        /// (the default for a platform app).
        #[arg(long = "access-policy", value_parser = ["assigned", "members", "officers"])]
        access_policy: Option<String>,
        /// The JWS algorithm of its ID tokens: RS256 (the default), ES256 or EdDSA.
        #[arg(long = "id-token-alg")]
        id_token_alg: Option<SigningAlg>,
        /// The JWS algorithm of its JWT access tokens: RS256 (the default), ES256 or EdDSA.
        #[arg(long = "access-token-alg")]
        access_token_alg: Option<SigningAlg>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change the token signing algorithms of an app, or whether it must use DPoP (any app:
    /// platform or tenant).
    Update {
        /// The app's client id.
        client_id: String,
        /// The JWS algorithm of its ID tokens: RS256, ES256 or EdDSA.
        #[arg(long = "id-token-alg")]
        id_token_alg: Option<SigningAlg>,
        /// The JWS algorithm of its JWT access tokens: RS256, ES256 or EdDSA.
        #[arg(long = "access-token-alg")]
        access_token_alg: Option<SigningAlg>,
        /// `true`: every token request of the app must carry a DPoP proof (RFC 9449
        /// `dpop_bound_access_tokens`: no bearer tokens); `false`: proofs are optional.
        #[arg(long = "require-dpop")]
        require_dpop: Option<bool>,
    },
    /// Delete an app (a tenant's or a platform app) with its secrets, grants (its tokens stop
    /// working), assignments, roles and consents; the audit log keeps its history.
    Delete {
        /// The app's client id.
        client_id: String,
    },
    /// The CI issuers a tenant's app trusts (CI workload identity: a pipeline exchanges its own
    /// OIDC ID token for the app's access token, RFC 8693).
    CiIssuer {
        #[command(subcommand)]
        command: CiIssuerCommand,
    },
}

#[derive(Subcommand)]
enum CiIssuerCommand {
    /// Trust a CI issuer for an app (the app may then use the token-exchange grant).
    Add {
        /// The app's client id.
        client_id: String,
        /// The issuer exactly as the jobs' tokens say in `iss` (https://gitlab.com,
        /// https://token.actions.githubusercontent.com, …).
        #[arg(long)]
        issuer: String,
        /// The `aud` the jobs' tokens must carry.
        #[arg(long)]
        audience: String,
        /// A claim rule, `claim=pattern` (repeatable; every rule must match; `*` matches any
        /// run of characters), e.g. --rule project_path=platform/deployer --rule ref=main.
        #[arg(long = "rule", required = true)]
        rules: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the CI issuers an app trusts.
    List {
        client_id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting a CI issuer.
    Remove {
        client_id: String,
        issuer_id: String,
    },
}

#[derive(Subcommand)]
enum DevUpstreamCommand {
    /// Disable a test person (alice, bob, …): no sign-in, refresh tokens refused.
    Disable { person: String },
    /// Enable a disabled test person again.
    Enable { person: String },
    /// List the test people and who is disabled.
    List,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List the signing keys and their state (pending, active, retired).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a new signing key: published now, signing after keys.prepublication_delay_secs.
    Rotate {
        /// Rotate even though a previous rotation is still pending.
        #[arg(long)]
        force: bool,
    },
    /// Retire a compromised key at once: it stops being published and nothing it signed
    /// verifies; if it was signing, a new key of its algorithm signs at once (no
    /// pre-publication). Other replicas follow within keys.reload_interval_secs.
    Retire {
        /// The key id (`kid`), as `techpass keys list` shows it. A kid is a base64url
        /// thumbprint and may begin with `-`: it is taken as the kid, not as an option.
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Confirm: without it, nothing changes and what would happen is printed.
        #[arg(long)]
        yes: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(code) = client_command(&cli.command) {
        return code;
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("techpass: {e}");
            return ExitCode::from(2);
        }
    };
    techpass::telemetry::init(&config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("techpass: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("techpass: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs the developer's client commands, which need neither configuration nor telemetry
/// (stdout carries only their answer); `None` for the server's commands.
fn client_command(command: &Command) -> Option<ExitCode> {
    if !matches!(
        command,
        Command::Login { .. } | Command::Token { .. } | Command::GitCredential { .. }
    ) {
        return None;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("techpass: cannot start the async runtime: {e}");
            return Some(ExitCode::from(1));
        }
    };
    Some(match runtime.block_on(run_client(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("techpass: {e}");
            ExitCode::from(1)
        }
    })
}

async fn run_client(command: &Command) -> Result<(), techpass::login::CliError> {
    use std::io::{Read, Write};
    use techpass::login;
    match command {
        Command::Login {
            issuer,
            client_id,
            scope,
            open,
            no_dpop,
        } => {
            let request = login::Login {
                target: login::Target::new(issuer, client_id),
                scope: scope.clone(),
                open: *open,
                dpop: !*no_dpop,
            };
            login::login(&request, &mut std::io::stderr()).await?;
            Ok(())
        }
        Command::Token {
            target,
            exec_credential,
            id_token,
            dpop,
        } => {
            let cached = login::fresh(&target.target()?).await?;
            if let Some([method, url]) = dpop.as_deref() {
                print!("{}", login::request_headers(&cached, method, url)?);
                return Ok(());
            }
            let (token, expires_at) = login::chosen(&cached, *id_token)?;
            if *exec_credential {
                println!("{}", login::exec_credential(&token, expires_at));
            } else {
                println!("{token}");
            }
            Ok(())
        }
        Command::GitCredential {
            target,
            username,
            operation,
        } => {
            let mut input = String::new();
            let _ = std::io::stdin().read_to_string(&mut input);
            if operation != "get" {
                // git tells helpers what it stored or rejected; the cache is ours to keep.
                return Ok(());
            }
            let request = login::read_git_request(&input);
            let cached = login::fresh(&target.target()?).await?;
            let answer = login::git_answer(&request, username, &cached.access_token);
            let mut out = std::io::stdout();
            let _ = out.write_all(answer.as_bytes());
            let _ = out.flush();
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn run(command: Command, config: Config) -> Result<(), StartupError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match command {
        Command::Serve => server::serve(config, clock).await,
        // Run by `client_command` before any configuration is read.
        Command::Login { .. } | Command::Token { .. } | Command::GitCredential { .. } => Ok(()),
        Command::Migrate => {
            server::open_store(&config).await?;
            println!("database schema is up to date");
            Ok(())
        }
        Command::App {
            command:
                AppCommand::Update {
                    client_id,
                    id_token_alg,
                    access_token_alg,
                    require_dpop,
                },
        } => {
            if id_token_alg.is_none() && access_token_alg.is_none() && require_dpop.is_none() {
                return Err(StartupError::Failed(
                    "nothing to change: give --id-token-alg, --access-token-alg or --require-dpop"
                        .into(),
                ));
            }
            let store = server::open_store(&config).await?;
            if let Some(bound) = require_dpop {
                techpass::provider::clients::set_dpop_bound(store.as_ref(), &client_id, bound)
                    .await
                    .map_err(|e| StartupError::Failed(format!("app not changed: {e}")))?;
                println!(
                    "{client_id}: {}",
                    if bound {
                        "DPoP required on every token request"
                    } else {
                        "DPoP optional"
                    }
                );
            }
            let (id_token, access_token) = techpass::provider::clients::set_signing_algs(
                store.as_ref(),
                &client_id,
                id_token_alg,
                access_token_alg,
            )
            .await
            .map_err(|e| StartupError::Failed(format!("app not changed: {e}")))?;
            println!("{client_id}: ID tokens {id_token}, access tokens {access_token}");
            Ok(())
        }
        Command::App {
            command:
                AppCommand::Create {
                    name,
                    redirect_uris,
                    public,
                    grant_types,
                    post_logout_redirect_uris,
                    backchannel_logout_uri,
                    jwks_file,
                    tenant,
                    open,
                    access_policy,
                    id_token_alg,
                    access_token_alg,
                    json,
                },
        } => {
            let access_policy = match (access_policy.as_deref(), open, tenant.is_some()) {
                (Some(p), _, _) => AccessPolicy::parse(p).unwrap_or(AccessPolicy::Assigned),
                (None, true, _) | (None, false, false) => AccessPolicy::Officers,
                (None, false, true) => AccessPolicy::Assigned,
            };
            if access_policy == AccessPolicy::Members && tenant.is_none() {
                return Err(StartupError::Failed(
                    "--access-policy members needs --tenant: a platform app has no members".into(),
                ));
            }
            let jwks = match jwks_file {
                Some(path) => Some(std::fs::read_to_string(&path).map_err(|e| {
                    StartupError::Failed(format!("cannot read {}: {e}", path.display()))
                })?),
                None => None,
            };
            let store = server::open_store(&config).await?;
            let tenant_id = match &tenant {
                None => None,
                Some(slug) => Some(
                    store
                        .get_tenant_by_slug(slug)
                        .await
                        .map_err(|e| StartupError::Failed(e.to_string()))?
                        .ok_or_else(|| StartupError::Failed(format!("no tenant {slug}")))?
                        .id,
                ),
            };
            let (master, _) = server::master_key(&config)?;
            let secrets = techpass_oidc::Secrets::derive(&master)
                .map_err(|e| StartupError::Failed(e.to_string()))?;
            let app = NewApp {
                name,
                confidential: !public,
                redirect_uris,
                post_logout_redirect_uris,
                backchannel_logout_uri,
                grant_types,
                jwks,
                access_policy,
                tenant_id,
                homepage: None,
                secret_lifetime_secs: None,
                id_token_signed_response_alg: id_token_alg,
                access_token_signed_response_alg: access_token_alg,
            };
            let outbound = OutboundPolicy::for_mode(config.mode);
            let created = create_app(
                store.as_ref(),
                &secrets,
                clock.now().as_secs(),
                &outbound,
                app,
            )
            .await
            .map_err(|e| StartupError::Failed(format!("app not created: {e}")))?;
            if json {
                let out = serde_json::json!({
                    "client_id": created.client_id,
                    "client_secret": created.client_secret,
                });
                println!("{out}");
            } else {
                println!("client_id: {}", created.client_id);
                if let Some(secret) = created.client_secret {
                    println!("client_secret: {secret}");
                    println!("(the secret is shown only now; TechPass keeps only a hash of it)");
                }
            }
            Ok(())
        }
        Command::App {
            command: AppCommand::Delete { client_id },
        } => {
            let issuer = config.resolve_issuer(config.listen)?;
            let state = server::build_state(config, issuer, clock).await?;
            techpass::tenancy::apps::delete_any(
                &state,
                &techpass::tenancy::Actor::Operator,
                &client_id,
            )
            .await
            .map_err(|e| StartupError::Failed(format!("app not deleted: {e}")))?;
            println!("deleted app {client_id}");
            Ok(())
        }
        Command::App {
            command: AppCommand::CiIssuer { command },
        } => {
            let issuer = config.resolve_issuer(config.listen)?;
            let state = server::build_state(config, issuer, clock).await?;
            ci_issuer_command(&state, command).await
        }
        Command::Admin { command } => {
            let issuer = config.resolve_issuer(config.listen)?;
            let state = server::build_state(config, issuer, clock).await?;
            let failed = |e: techpass::accounts::AccountError| StartupError::Failed(e.to_string());
            match command {
                AdminCommand::Suspend { user, reason } => {
                    let user = accounts::find_user(&state, &user).await.map_err(failed)?;
                    let done = accounts::suspend(&state, &user, &reason, "cli")
                        .await
                        .map_err(failed)?;
                    println!(
                        "suspended {} ({}): {} session(s) ended, {} grant(s) revoked",
                        user.id,
                        user.email.as_deref().unwrap_or("-"),
                        done.sessions_ended,
                        done.grants_revoked
                    );
                    // Let the apps hear of it before this process ends (bounded by the retries).
                    for delivery in done.deliveries {
                        let _ = delivery.await;
                    }
                    Ok(())
                }
                AdminCommand::GrantPlatformAdmin { user, cancel } => {
                    use techpass::tenancy::{pending, tenants, Actor, TenancyError};
                    let op = &Actor::Operator;
                    let refused = |e: TenancyError| StartupError::Failed(e.to_string());
                    if cancel {
                        let withdrawn = pending::revoke_platform_admin(&state, op, &user)
                            .await
                            .map_err(refused)?;
                        println!(
                            "{user}: {}",
                            if withdrawn {
                                "pending platform admin grant withdrawn"
                            } else {
                                "no platform admin grant was pending"
                            }
                        );
                        return Ok(());
                    }
                    let found = match techpass::tenancy::find_user(&state, &user).await {
                        Ok(found) => Some(found),
                        Err(TenancyError::NotFound(_)) => None,
                        Err(e) => return Err(refused(e)),
                    };
                    let Some(found) = found else {
                        let new = pending::grant_platform_admin(&state, op, &user)
                            .await
                            .map_err(refused)?;
                        println!(
                            "{} has not signed in yet: {}",
                            user.trim().to_ascii_lowercase(),
                            if new {
                                "they become a platform admin at their first sign-in"
                            } else {
                                "that was already pending; they become a platform admin at \
                                 their first sign-in"
                            }
                        );
                        return Ok(());
                    };
                    let granted = tenants::grant_platform_admin(&state, op, &found)
                        .await
                        .map_err(refused)?;
                    println!(
                        "{} ({}) {}",
                        found.id,
                        found.email.as_deref().unwrap_or("-"),
                        if granted {
                            "is now a platform admin"
                        } else {
                            "was already a platform admin"
                        }
                    );
                    Ok(())
                }
                AdminCommand::Exempt { user, off } => {
                    let user = accounts::find_user(&state, &user).await.map_err(failed)?;
                    accounts::set_exempt(&state, &user, !off, "cli")
                        .await
                        .map_err(failed)?;
                    println!(
                        "{} is {} the lifecycle jobs",
                        user.id,
                        if off { "subject to" } else { "exempt from" }
                    );
                    Ok(())
                }
                AdminCommand::RunJobs => {
                    let report = techpass::jobs::run_once(&state).await;
                    println!("{report:?}");
                    Ok(())
                }
                AdminCommand::Enable { user } => {
                    let op = &techpass::tenancy::Actor::Operator;
                    let (user, status) =
                        accounts::enable(&state, op, &user).await.map_err(failed)?;
                    println!(
                        "re-enabled {} ({}) as {}",
                        user.id,
                        user.email.as_deref().unwrap_or("-"),
                        status.as_str()
                    );
                    Ok(())
                }
                AdminCommand::Reinstate { user } => {
                    let user = accounts::find_user(&state, &user).await.map_err(failed)?;
                    let status = accounts::reinstate(&state, &user, "cli")
                        .await
                        .map_err(failed)?;
                    println!("reinstated {} as {}", user.id, status.as_str());
                    Ok(())
                }
            }
        }
        Command::Tenant {
            command:
                TenantCommand::Create {
                    name,
                    slug,
                    description,
                    purpose,
                    admin,
                    json,
                },
        } => {
            use techpass::tenancy::tenants::{self, DirectTenant, FirstAdmin};
            let issuer = config.resolve_issuer(config.listen)?;
            let state = server::build_state(config, issuer, clock).await?;
            let new = DirectTenant {
                slug,
                name,
                description,
                purpose,
                admin,
            };
            let (tenant, first) = tenants::create(&state, &techpass::tenancy::Actor::Operator, new)
                .await
                .map_err(|e| StartupError::Failed(format!("tenant not created: {e}")))?;
            let (admin_email, admin_id, pending) = match &first {
                FirstAdmin::Now(user) => (user.email.clone(), Some(user.id.clone()), false),
                FirstAdmin::Pending(grant) => (Some(grant.email.clone()), None, true),
            };
            if json {
                let out = serde_json::json!({
                    "id": tenant.id,
                    "slug": tenant.slug,
                    "name": tenant.name,
                    "status": tenant.status.as_str(),
                    "admin": {
                        "email": admin_email,
                        "user_id": admin_id,
                        "pending": pending,
                    },
                });
                println!("{out}");
            } else {
                println!(
                    "tenant {} ({}) is {}",
                    tenant.slug,
                    tenant.id,
                    tenant.status.as_str()
                );
                let email = admin_email.as_deref().unwrap_or("-");
                if pending {
                    println!("admin: {email} (from their next sign-in)");
                } else {
                    println!("admin: {email} ({})", admin_id.as_deref().unwrap_or("-"));
                }
            }
            Ok(())
        }
        Command::Tenant {
            command:
                TenantCommand::EndMembership {
                    tenant,
                    user,
                    reason,
                },
        } => {
            let failed = |e: String| StartupError::Failed(format!("membership not ended: {e}"));
            let issuer = config.resolve_issuer(config.listen)?;
            let state = server::build_state(config, issuer, clock).await?;
            let by_id = state
                .store
                .get_tenant(&tenant)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let found = match by_id {
                Some(t) => Some(t),
                None => state
                    .store
                    .get_tenant_by_slug(&tenant)
                    .await
                    .map_err(|e| failed(e.to_string()))?,
            };
            let tenant = found.ok_or_else(|| failed(format!("no tenant {tenant}")))?;
            let member = techpass::tenancy::find_user(&state, &user)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let ended = techpass::tenancy::invitations::end_membership(
                &state,
                &techpass::tenancy::Actor::Operator,
                &tenant.id,
                &member.id,
                &reason,
            )
            .await
            .map_err(|e| failed(e.to_string()))?;
            println!(
                "membership of {} in {} ended at {}; {} grant(s) revoked, {} assignment(s), {} role(s) and {} group membership(s) removed",
                member.email.as_deref().unwrap_or(&member.id),
                tenant.slug,
                rfc3339(ended.access_ends_at.unwrap_or_default()),
                ended.grants_revoked,
                ended.assignments_removed,
                ended.roles_removed,
                ended.groups_left,
            );
            Ok(())
        }
        Command::DevUpstream { command } => {
            use techpass_service::dev_people::{self, StoredDisabledPeople};
            if config.mode == techpass::config::Mode::Production {
                return Err(StartupError::Failed(
                    "there is no development upstream in production mode".into(),
                ));
            }
            let people = StoredDisabledPeople {
                store: server::open_store(&config).await?,
                clock,
            };
            let failed = |e: dev_people::DevPeopleError| StartupError::Failed(e.to_string());
            match command {
                DevUpstreamCommand::Disable { person } => {
                    let p = dev_people::set_disabled(&people, &person, true)
                        .await
                        .map_err(failed)?;
                    println!(
                        "disabled {} ({}) at the development upstream",
                        p.key, p.email
                    );
                }
                DevUpstreamCommand::Enable { person } => {
                    let p = dev_people::set_disabled(&people, &person, false)
                        .await
                        .map_err(failed)?;
                    println!(
                        "enabled {} ({}) at the development upstream",
                        p.key, p.email
                    );
                }
                DevUpstreamCommand::List => {
                    let disabled = people
                        .store
                        .dev_people_disabled()
                        .await
                        .map_err(|e| StartupError::Failed(e.to_string()))?;
                    for p in techpass_upstream::dev::people() {
                        let status = if disabled.iter().any(|d| d == p.key) {
                            "disabled"
                        } else {
                            "enabled"
                        };
                        println!("{:<8} {:<32} {status}", p.key, p.email);
                    }
                }
            }
            Ok(())
        }
        Command::Keys { command } => {
            let store = server::open_store(&config).await?;
            let keys = server::open_keys(&config, store, clock).await?;
            match command {
                KeysCommand::List { json } => print_keys(&keys, json),
                KeysCommand::Rotate { force } => match keys.rotate(force).await {
                    Ok(rotations) => {
                        for rotation in rotations {
                            println!(
                                "created {} key {} (generation {}); published now, signs from {}",
                                rotation.alg,
                                rotation.kid,
                                rotation.generation,
                                rfc3339(rotation.activates_at.as_secs())
                            );
                        }
                        Ok(())
                    }
                    Err(e @ (KeyError::Refused(_) | KeyError::ConcurrentRotation { .. })) => {
                        Err(StartupError::Failed(format!("rotation not started: {e}")))
                    }
                    Err(e) => Err(StartupError::Failed(format!("rotation failed: {e}"))),
                },
                KeysCommand::Retire { kid, yes } => retire_key(&keys, &kid, yes).await,
            }
        }
    }
}

async fn retire_key(
    keys: &techpass_oidc::KeyManager,
    kid: &str,
    yes: bool,
) -> Result<(), StartupError> {
    let Some(key) = keys.statuses().into_iter().find(|k| k.kid == kid) else {
        return Err(StartupError::Failed(format!(
            "no published signing key has the id {kid} (techpass keys list shows them)"
        )));
    };
    if !yes {
        return Err(StartupError::Failed(format!(
            "not retired: {} key {kid} is {}. Retiring it deletes it at once: it leaves the JWKS and every token it signed stops verifying{}. Run again with --yes to retire it.",
            key.algorithm,
            key.state,
            if key.state == "active" {
                "; a new key of its algorithm signs at once, without pre-publication"
            } else {
                ""
            }
        )));
    }
    match keys.retire_now(kid).await {
        Ok(retirement) => {
            println!(
                "retired {} key {} ({}); it is no longer published",
                retirement.alg, retirement.kid, retirement.was
            );
            if let Some(new) = retirement.replacement {
                println!(
                    "created {} key {} (generation {}); it signs now",
                    new.alg, new.kid, new.generation
                );
            }
            for withdrawn in retirement.withdrawn {
                println!("withdrew pending key {withdrawn}");
            }
            Ok(())
        }
        Err(e) => Err(StartupError::Failed(format!("not retired: {e}"))),
    }
}

fn print_keys(keys: &techpass_oidc::KeyManager, json: bool) -> Result<(), StartupError> {
    let statuses = keys.statuses();
    if json {
        let text = serde_json::to_string_pretty(&statuses)
            .map_err(|e| StartupError::Failed(e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    println!(
        "{:<5} {:<12} {:<44} {:>4} {:<8} {:<21} PUBLISHED UNTIL",
        "ALG", "KEY", "KID", "GEN", "STATE", "SIGNS FROM"
    );
    for s in statuses {
        println!(
            "{:<5} {:<12} {:<44} {:>4} {:<8} {:<21} {}",
            s.algorithm.as_str(),
            s.key_type,
            s.kid,
            s.generation,
            s.state,
            rfc3339(s.activates_at),
            s.published_until.map(rfc3339).unwrap_or_else(|| "-".into())
        );
    }
    Ok(())
}

/// `techpass app ci-issuer …`, as the operator, on the app's own tenant.
async fn ci_issuer_command(
    state: &techpass::state::AppState,
    command: CiIssuerCommand,
) -> Result<(), StartupError> {
    use techpass::tenancy::Actor;
    use techpass_service::tenancy::ci_issuers::{self, ClaimRule, NewCiIssuer};
    let failed = |e: techpass::tenancy::TenancyError| StartupError::Failed(e.to_string());
    let client_id = match &command {
        CiIssuerCommand::Add { client_id, .. }
        | CiIssuerCommand::List { client_id, .. }
        | CiIssuerCommand::Remove { client_id, .. } => client_id.clone(),
    };
    let tenant_id = state
        .store
        .get_client(&client_id)
        .await
        .map_err(|e| StartupError::Failed(e.to_string()))?
        .ok_or_else(|| StartupError::Failed(format!("no app {client_id}")))?
        .tenant_id
        .ok_or_else(|| {
            StartupError::Failed(format!(
                "{client_id} is a platform app; CI issuers are for a tenant's apps"
            ))
        })?;
    let op = &Actor::Operator;
    let line = |r: &techpass_store::CiIssuerRecord| {
        let rules: Vec<String> = ci_issuers::rules_of(r)
            .unwrap_or_default()
            .into_iter()
            .map(|rule| format!("{}={}", rule.claim, rule.pattern))
            .collect();
        format!(
            "{}  {}  aud={}  {}",
            r.id,
            r.issuer,
            r.audience,
            rules.join(" ")
        )
    };
    let json = |r: &techpass_store::CiIssuerRecord| {
        serde_json::json!({
            "id": r.id, "client_id": r.client_id, "issuer": r.issuer, "audience": r.audience,
            "rules": ci_issuers::rules_of(r).unwrap_or_default(), "description": r.description,
            "created_at": r.created_at,
        })
    };
    match command {
        CiIssuerCommand::Add {
            issuer,
            audience,
            rules,
            description,
            json: as_json,
            ..
        } => {
            let rules = rules
                .iter()
                .map(|r| {
                    ClaimRule::parse(r).ok_or_else(|| {
                        StartupError::Failed(format!("rule {r:?}: write it as claim=pattern"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let spec = NewCiIssuer {
                issuer,
                audience,
                rules,
                description,
            };
            let made = ci_issuers::create(state, op, &tenant_id, &client_id, spec)
                .await
                .map_err(failed)?;
            if as_json {
                println!("{}", json(&made));
            } else {
                println!("trusted: {}", line(&made));
            }
        }
        CiIssuerCommand::List { json: as_json, .. } => {
            let listed = ci_issuers::list(state, op, &tenant_id, &client_id)
                .await
                .map_err(failed)?;
            if as_json {
                let all: Vec<_> = listed.iter().map(json).collect();
                println!("{}", serde_json::Value::Array(all));
            } else if listed.is_empty() {
                println!("{client_id} trusts no CI issuer");
            } else {
                for r in &listed {
                    println!("{}", line(r));
                }
            }
        }
        CiIssuerCommand::Remove { issuer_id, .. } => {
            ci_issuers::delete(state, op, &tenant_id, &client_id, &issuer_id)
                .await
                .map_err(failed)?;
            println!("removed {issuer_id} from {client_id}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One key in 64 has a kid beginning with `-` (base64url): retiring it must not need `--`.
    #[test]
    fn a_kid_beginning_with_a_hyphen_is_a_kid() {
        for args in [
            ["techpass", "keys", "retire", "-3bX_k", "--yes"],
            ["techpass", "keys", "retire", "--yes", "-3bX_k"],
        ] {
            let cli = Cli::try_parse_from(args).expect("parses");
            match cli.command {
                Command::Keys {
                    command: KeysCommand::Retire { kid, yes },
                } => assert_eq!((kid.as_str(), yes), ("-3bX_k", true), "{args:?}"),
                _ => panic!("not keys retire: {args:?}"),
            }
        }
        let cli = Cli::try_parse_from(["techpass", "keys", "retire", "-3bX_k"]).expect("parses");
        assert!(matches!(
            cli.command,
            Command::Keys {
                command: KeysCommand::Retire { yes: false, .. }
            }
        ));
    }
}
