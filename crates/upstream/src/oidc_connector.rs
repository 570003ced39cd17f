//! The OpenID Connect connector (Azure AD v2.0 and any standard provider), on `openidconnect`.
//!
//! Verification follows OpenID Connect Core §3.1.3.7 with Azure AD's specifics (../AZURE.md):
//! the tenant-specific issuer is pinned exactly, `tid` must be in the allow list, the identity
//! is keyed by (`tid`, `oid`), the algorithm is pinned to RS256 (no `none`, no HMAC keyed with
//! anything), and MFA evidence is required unless the operator trusts the upstream to enforce it.
//! Before a code is redeemed the authorization response's `iss` parameter is checked (RFC 9207
//! §2.4); every answer of the upstream is read with a size bound ([`crate::TOKEN_RESPONSE_LIMIT`],
//! [`crate::DOCUMENT_LIMIT`]), and the ID token's size and JWS shape are checked before it is
//! parsed ([`crate::ID_TOKEN_LIMIT`]). `nbf` is honoured (RFC 7519 §4.1.5), which
//! `openidconnect` does not do. Provider metadata and the key set are cached (`moka`); an unknown `kid` triggers one refetch
//! of the key set, at most every [`JWKS_REFETCH_INTERVAL`].

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::future::Cache;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGenderClaim, CoreGrantType, CoreJsonWebKey, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AuthenticationFlow, AuthorizationCode,
    ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IdToken, IdTokenVerifier,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, SignatureVerificationError, TokenResponse,
};
use serde::{Deserialize, Serialize};
use techpass_domain::Clock;
use url::Url;

use crate::bounded::{Bounded, HttpError, DOCUMENT_LIMIT, TOKEN_RESPONSE_LIMIT};
use crate::jws::{check_compact_jws, screen_token_response};
use crate::{
    AuthorizationResponse, Connector, LoginParams, MfaRule, RefreshError, Refreshed, SignedIn,
    UpstreamError, UpstreamIdentity,
};

/// How long discovery metadata and key sets are trusted before they are fetched again.
pub const METADATA_TTL: Duration = Duration::from_secs(3600);
/// An unknown `kid` refetches the key set at most this often (a flood of forged tokens must not
/// become a flood of requests to the upstream).
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// Azure AD claims beyond the standard set.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct AzureClaims {
    tid: Option<String>,
    oid: Option<String>,
    acct: Option<u8>,
    idp: Option<String>,
    /// Not before (RFC 7519 §4.1.5), a NumericDate: `openidconnect` neither reads nor checks
    /// it, so it arrives here.
    nbf: Option<f64>,
    /// Optional claim: the owner of the email's domain is verified (AZURE.md §3).
    xms_edov: Option<serde_json::Value>,
    /// Optional claim: the user's authoritative, verified primary email address(es).
    verified_primary_email: Option<serde_json::Value>,
}

impl AdditionalClaims for AzureClaims {}

/// Whether the upstream proved `email`: a standard `email_verified: true`, Azure AD's
/// `xms_edov` (true, "true" or 1), or `email` among `verified_primary_email`. Azure AD says its
/// plain `email` claim is not guaranteed, so nothing is assumed.
fn email_verified(email: Option<&str>, standard: Option<bool>, extra: &AzureClaims) -> bool {
    let Some(email) = email else {
        return false;
    };
    let truthy = |v: &serde_json::Value| {
        matches!(v, serde_json::Value::Bool(true))
            || v.as_str().is_some_and(|s| s == "true" || s == "1")
            || v.as_i64() == Some(1)
    };
    let listed = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.eq_ignore_ascii_case(email),
        serde_json::Value::Array(items) => items
            .iter()
            .any(|i| i.as_str().is_some_and(|s| s.eq_ignore_ascii_case(email))),
        _ => false,
    };
    standard == Some(true)
        || extra.xms_edov.as_ref().is_some_and(truthy)
        || extra.verified_primary_email.as_ref().is_some_and(listed)
}

/// The discovery member RFC 9207 §3 adds.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct IssuerParameterMetadata {
    /// The upstream promises an `iss` parameter in every authorization response.
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

impl AdditionalProviderMetadata for IssuerParameterMetadata {}

/// `CoreProviderMetadata` plus [`IssuerParameterMetadata`].
type UpstreamMetadata = ProviderMetadata<
    IssuerParameterMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// How much of a refused `iss` value is kept for the log.
const ISS_LOGGED_CHARS: usize = 200;

type AzureIdToken = IdToken<
    AzureClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// One configured upstream.
#[derive(Debug, Clone)]
pub struct OidcConnectorConfig {
    pub id: String,
    pub display_name: String,
    /// Tenant-specific issuer, e.g. `https://login.microsoftonline.com/{tid}/v2.0`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// TechPass's callback URL registered at the upstream.
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    /// Accepted `tid` values; empty accepts none.
    pub allowed_tenants: Vec<String>,
    pub mfa: MfaRule,
    /// Clock difference tolerated on `exp`, `nbf` and `iat`.
    pub clock_skew_secs: i64,
}

pub struct OidcConnector {
    config: OidcConnectorConfig,
    issuer: IssuerUrl,
    redirect: RedirectUrl,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    metadata: Cache<(), Arc<UpstreamMetadata>>,
    jwks: Cache<(), Arc<CoreJsonWebKeySet>>,
    last_refetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for OidcConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConnector")
            .field("id", &self.config.id)
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

impl OidcConnector {
    /// `http` must not follow redirects (openidconnect's advice against SSRF).
    pub fn new(
        config: OidcConnectorConfig,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, UpstreamError> {
        let issuer = IssuerUrl::new(config.issuer.clone())
            .map_err(|e| UpstreamError::Discovery(format!("issuer: {e}")))?;
        let redirect = RedirectUrl::new(config.redirect_uri.clone())
            .map_err(|e| UpstreamError::Discovery(format!("redirect_uri: {e}")))?;
        Ok(OidcConnector {
            config,
            issuer,
            redirect,
            http,
            clock,
            metadata: Cache::builder().time_to_live(METADATA_TTL).build(),
            jwks: Cache::builder().time_to_live(METADATA_TTL).build(),
            last_refetch: Mutex::new(None),
        })
    }

    async fn metadata(&self) -> Result<Arc<UpstreamMetadata>, UpstreamError> {
        self.metadata
            .try_get_with((), async {
                let http = Bounded::new(&self.http, DOCUMENT_LIMIT);
                // Checks that the document's issuer is exactly the configured one.
                UpstreamMetadata::discover_async(self.issuer.clone(), &http)
                    .await
                    .map(Arc::new)
                    .map_err(|e| UpstreamError::Discovery(error_chain(&e)))
            })
            .await
            .map_err(|e| (*e).clone())
    }

    async fn key_set(&self, refetch: bool) -> Result<Arc<CoreJsonWebKeySet>, UpstreamError> {
        if refetch {
            self.jwks.invalidate(&()).await;
        }
        let metadata = self.metadata().await?;
        self.jwks
            .try_get_with((), async {
                let http = Bounded::new(&self.http, DOCUMENT_LIMIT);
                CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &http)
                    .await
                    .map(Arc::new)
                    .map_err(|e| UpstreamError::Discovery(format!("key set: {}", error_chain(&e))))
            })
            .await
            .map_err(|e| (*e).clone())
    }

    /// Whether an unknown key may trigger a refetch now (and records that it does).
    fn may_refetch(&self) -> bool {
        let mut last = match self.last_refetch.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        match *last {
            Some(at) if at.elapsed() < JWKS_REFETCH_INTERVAL => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }

    fn client(
        &self,
        metadata: &UpstreamMetadata,
    ) -> openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// Verifies a raw ID token completely and turns it into an identity.
    pub fn verify(
        &self,
        raw: &str,
        nonce: &str,
        keys: &CoreJsonWebKeySet,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        check_compact_jws(raw)?;
        let token =
            AzureIdToken::from_str(raw).map_err(|e| UpstreamError::Malformed(e.to_string()))?;
        let now = self.clock.now().as_secs();
        let skew = self.config.clock_skew_secs;
        // `exp` is compared with a clock set back by the skew; `iat` and `nbf` must not be
        // ahead of now by more than the skew.
        let lenient_now = chrono::DateTime::from_timestamp(now - skew, 0).unwrap_or_default();
        let latest_iat = now + skew;
        // A public-client verifier: no client secret, so an HMAC-signed token cannot be
        // "verified" with it (algorithm confusion); RS256 only.
        let verifier: IdTokenVerifier<'_, _> = IdTokenVerifier::new_public_client(
            ClientId::new(self.config.client_id.clone()),
            self.issuer.clone(),
            keys.clone(),
        )
        .set_allowed_algs([CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256])
        .set_time_fn(move || lenient_now)
        .set_issue_time_verifier_fn(move |iat| {
            if iat.timestamp() > latest_iat {
                Err(format!("iat {} is after {latest_iat}", iat.timestamp()))
            } else {
                Ok(())
            }
        });
        let claims = token
            .claims(&verifier, &Nonce::new(nonce.to_string()))
            .map_err(map_claims_error)?;
        let extra = claims.additional_claims();
        // RFC 7519 §4.1.5: not to be accepted before `nbf`; checked once the signature holds.
        if let Some(nbf) = extra.nbf.filter(|nbf| *nbf > latest_iat as f64) {
            return Err(UpstreamError::NotYetValid(format!(
                "nbf {nbf} is after {latest_iat}"
            )));
        }
        let tid = extra.tid.clone();
        match &tid {
            Some(t) if self.config.allowed_tenants.iter().any(|a| a == t) => {}
            _ => return Err(UpstreamError::WrongTenant(tid)),
        }
        let object_id = extra
            .oid
            .clone()
            .filter(|o| !o.is_empty())
            .ok_or(UpstreamError::MissingClaim("oid"))?;
        let amr: Vec<String> = claims
            .auth_method_refs()
            .map(|v| v.iter().map(|a| a.as_str().to_string()).collect())
            .unwrap_or_default();
        let mfa = match &self.config.mfa {
            MfaRule::Amr(accepted) if amr.iter().any(|a| accepted.contains(a)) => "amr",
            MfaRule::Amr(_) => return Err(UpstreamError::NoMfa(amr)),
            MfaRule::TrustedUpstream => "trusted-upstream",
        };
        Ok(UpstreamIdentity {
            upstream: self.config.id.clone(),
            issuer: claims.issuer().as_str().to_string(),
            tenant_id: tid.unwrap_or_default(),
            object_id,
            subject: claims.subject().as_str().to_string(),
            email: claims.email().map(|e| e.as_str().to_string()),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string()),
            preferred_username: claims.preferred_username().map(|u| u.as_str().to_string()),
            given_name: claims
                .given_name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string()),
            family_name: claims
                .family_name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string()),
            email_verified: email_verified(
                claims.email().map(|e| e.as_str()),
                claims.email_verified(),
                extra,
            ),
            guest: extra.acct == Some(1),
            home_idp: extra.idp.clone(),
            amr,
            acr: claims.auth_context_ref().map(|a| a.as_str().to_string()),
            auth_time: claims
                .auth_time()
                .unwrap_or_else(|| claims.issue_time())
                .timestamp(),
            mfa: mfa.to_string(),
        })
    }
}

fn map_claims_error(e: ClaimsVerificationError) -> UpstreamError {
    match e {
        // Our issue-time check reports through the same variant; its message starts "iat ".
        ClaimsVerificationError::Expired(m) if m.starts_with("iat ") => {
            UpstreamError::IssuedInFuture(m)
        }
        ClaimsVerificationError::Expired(m) => UpstreamError::Expired(m),
        ClaimsVerificationError::InvalidAudience(m) => UpstreamError::WrongAudience(m),
        ClaimsVerificationError::InvalidIssuer(m) => UpstreamError::WrongIssuer(m),
        ClaimsVerificationError::InvalidNonce(m) => UpstreamError::WrongNonce(m),
        ClaimsVerificationError::SignatureVerification(s) => match s {
            SignatureVerificationError::NoSignature => UpstreamError::Unsigned,
            SignatureVerificationError::NoMatchingKey => UpstreamError::UnknownKey,
            SignatureVerificationError::DisallowedAlg(m)
            | SignatureVerificationError::UnsupportedAlg(m) => {
                UpstreamError::DisallowedAlgorithm(m)
            }
            _ => UpstreamError::BadSignature,
        },
        other => UpstreamError::Malformed(other.to_string()),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[async_trait]
impl Connector for OidcConnector {
    fn id(&self) -> &str {
        &self.config.id
    }

    fn display_name(&self) -> &str {
        &self.config.display_name
    }

    fn issuer(&self) -> &str {
        &self.config.issuer
    }

    async fn login_url(&self, params: &LoginParams) -> Result<Url, UpstreamError> {
        let metadata = self.metadata().await?;
        let client = self.client(&metadata);
        let state = params.state.clone();
        let nonce = params.nonce.clone();
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            params.pkce_verifier.clone(),
        ));
        let mut request = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .set_pkce_challenge(challenge);
        for scope in &self.config.scopes {
            if scope != "openid" {
                request = request.add_scope(Scope::new(scope.clone()));
            }
        }
        if let Some(hint) = &params.login_hint {
            request = request.add_extra_param("login_hint", hint.clone());
        }
        if params.force_reauthentication {
            request = request.add_prompt(CoreAuthPrompt::Login);
        }
        let (url, _, _) = request.url();
        Ok(url)
    }

    async fn check_issuer_parameter(&self, iss: Option<&str>) -> Result<(), UpstreamError> {
        match iss.filter(|iss| !iss.is_empty()) {
            // RFC 9207 §2.4: simple string comparison with the issuer the request went to.
            Some(iss) if iss == self.config.issuer => Ok(()),
            Some(iss) => Err(UpstreamError::WrongIssuerParameter(
                iss.chars().take(ISS_LOGGED_CHARS).collect(),
            )),
            // Azure AD does not send `iss`; an upstream that says it always does must.
            None if self
                .metadata()
                .await?
                .additional_metadata()
                .authorization_response_iss_parameter_supported =>
            {
                Err(UpstreamError::MissingIssuerParameter)
            }
            None => Ok(()),
        }
    }

    async fn exchange(
        &self,
        response: &AuthorizationResponse<'_>,
        params: &LoginParams,
    ) -> Result<SignedIn, UpstreamError> {
        // Before the code goes anywhere: a mixed-up response must not be redeemed.
        self.check_issuer_parameter(response.iss).await?;
        let metadata = self.metadata().await?;
        let client = self.client(&metadata);
        let http = Bounded::new(&self.http, TOKEN_RESPONSE_LIMIT).screening(screen_token_response);
        let response = client
            .exchange_code(AuthorizationCode::new(response.code.to_string()))
            .map_err(|e| UpstreamError::Discovery(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(params.pkce_verifier.clone()))
            .request_async(&http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => UpstreamError::TokenEndpoint {
                    error: r.error().as_ref().to_string(),
                    description: r.error_description().cloned().unwrap_or_default(),
                },
                RequestTokenError::Request(HttpError::TooLarge { limit }) => {
                    UpstreamError::TokenResponseTooLarge { limit }
                }
                RequestTokenError::Request(HttpError::Refused(refusal)) => refusal,
                RequestTokenError::Parse(e, _) => UpstreamError::Malformed(e.to_string()),
                other => UpstreamError::Unreachable(error_chain(&other)),
            })?;
        let raw = response
            .id_token()
            .ok_or(UpstreamError::MissingIdToken)?
            .to_string();
        let refresh_token = response.refresh_token().map(|t| t.secret().clone());
        let keys = self.key_set(false).await?;
        let identity = match self.verify(&raw, &params.nonce, &keys) {
            Err(UpstreamError::UnknownKey) if self.may_refetch() => {
                tracing::info!(upstream = %self.config.id, "unknown signing key; refetching the upstream key set");
                let keys = self.key_set(true).await?;
                self.verify(&raw, &params.nonce, &keys)
            }
            other => other,
        }?;
        Ok(SignedIn {
            identity,
            refresh_token,
        })
    }

    async fn refresh(&self, refresh_token: &str) -> Result<Refreshed, RefreshError> {
        let metadata = self
            .metadata()
            .await
            .map_err(|e| RefreshError::Unavailable(e.to_string()))?;
        let client = self.client(&metadata);
        let http = Bounded::new(&self.http, TOKEN_RESPONSE_LIMIT).screening(screen_token_response);
        let token = RefreshToken::new(refresh_token.to_string());
        let mut request = client
            .exchange_refresh_token(&token)
            .map_err(|e| RefreshError::Unavailable(e.to_string()))?;
        for scope in &self.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let response = request.request_async(&http).await.map_err(|e| match e {
            RequestTokenError::ServerResponse(r) if r.error().as_ref() == "invalid_grant" => {
                RefreshError::Refused {
                    error: r.error().as_ref().to_string(),
                    description: r.error_description().cloned().unwrap_or_default(),
                }
            }
            RequestTokenError::ServerResponse(r) => RefreshError::Unavailable(format!(
                "{}: {}",
                r.error().as_ref(),
                r.error_description().cloned().unwrap_or_default()
            )),
            other => RefreshError::Unavailable(error_chain(&other)),
        })?;
        Ok(Refreshed {
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn extra(
        xms_edov: Option<serde_json::Value>,
        verified: Option<serde_json::Value>,
    ) -> AzureClaims {
        AzureClaims {
            xms_edov,
            verified_primary_email: verified,
            ..AzureClaims::default()
        }
    }

    #[test]
    fn an_email_is_verified_only_when_the_upstream_proves_it() {
        let e = Some("Alice_Tan@tech.gov.sg");
        assert!(!email_verified(e, None, &extra(None, None)), "not assumed");
        assert!(!email_verified(e, Some(false), &extra(None, None)));
        assert!(email_verified(e, Some(true), &extra(None, None)));
        for yes in [json!(true), json!("true"), json!("1"), json!(1)] {
            assert!(
                email_verified(e, None, &extra(Some(yes.clone()), None)),
                "{yes}"
            );
        }
        for no in [json!(false), json!("false"), json!(0), json!(null)] {
            assert!(
                !email_verified(e, None, &extra(Some(no.clone()), None)),
                "{no}"
            );
        }
        let listed = json!(["other@tech.gov.sg", "alice_tan@TECH.gov.sg"]);
        assert!(email_verified(e, None, &extra(None, Some(listed))));
        let other = json!(["other@tech.gov.sg"]);
        assert!(!email_verified(e, None, &extra(None, Some(other))));
        assert!(email_verified(
            e,
            None,
            &extra(None, Some(json!("alice_tan@tech.gov.sg")))
        ));
        assert!(
            !email_verified(None, Some(true), &extra(Some(json!(true)), None)),
            "no email"
        );
    }
}
