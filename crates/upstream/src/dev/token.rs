//! The token endpoint (RFC 6749 §3.2, §4.1.3, §6): the authorization code and refresh token
//! grants (see [`super::refresh`]), the client authenticated by `client_secret_post` or `client_secret_basic` (§2.3.1), PKCE S256 checked
//! (RFC 7636 §4.6). Errors take Azure AD's JSON shape, `AADSTSxxxx` codes included.

use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Serialize;

use super::codes::Redemption;
use super::params::{form_decode, is_form, Params, Repeated};
use super::{known_tenant, no_store, tenant_label, DevClient, DevUpstream, Failure, Tamper};

/// Azure AD answers 3599 for a one-hour access token.
const ACCESS_TOKEN_LIFETIME: u32 = 3599;
/// Random bytes in an access token; [`Tamper::OversizedTokenResponse`] sends 60 KiB (80 KiB
/// encoded).
const ACCESS_TOKEN_BYTES: usize = 64;
const OVERSIZED_ACCESS_TOKEN_BYTES: usize = 60 * 1024;

#[derive(Serialize)]
struct TokenResponse {
    token_type: &'static str,
    scope: String,
    expires_in: u32,
    ext_expires_in: u32,
    access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    id_token: String,
}

pub(super) async fn exchange(
    State(dev): State<Arc<DevUpstream>>,
    Path(tid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match dev.exchange(&tid, &headers, &body).await {
        Ok(tokens) => {
            let mut response = Json(tokens).into_response();
            no_store(&mut response);
            response
                .headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(failure) => dev.json_error(failure),
    }
}

fn repeated(Repeated(name): Repeated) -> Failure {
    Failure::invalid_request(
        9002313,
        format!(
            "Invalid request. Request is malformed or invalid: the parameter '{name}' was sent \
             more than once."
        ),
    )
}

impl DevUpstream {
    async fn exchange(
        &self,
        tid: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<TokenResponse, Failure> {
        let tenant = known_tenant(tid).ok_or_else(|| Failure::unknown_tenant(tid))?;
        if !is_form(headers) {
            return Err(Failure::missing("grant_type"));
        }
        let params = Params::parse(body);
        let get = |name| params.get(name).map_err(repeated);

        let grant_type = get("grant_type")?.ok_or_else(|| Failure::missing("grant_type"))?;
        if grant_type == "refresh_token" {
            let client = self.authenticate(tenant, headers, &params)?;
            let token = get("refresh_token")?.ok_or_else(|| Failure::missing("refresh_token"))?;
            let now = self.now();
            let mut grant = self.redeem_refresh_token(client, tenant, token, now)?;
            if self.is_disabled(grant.person.key).await? {
                return Err(super::refresh::disabled_account());
            }
            // RFC 6749 §6: the scope may only narrow.
            if let Some(asked) = get("scope")? {
                let granted: Vec<&str> = grant.scope.split(' ').collect();
                if let Some(extra) = asked.split(' ').find(|s| !granted.contains(s)) {
                    return Err(Failure {
                        status: StatusCode::BAD_REQUEST,
                        error: "invalid_scope",
                        code: 70011,
                        message: format!(
                            "The provided value for the input parameter 'scope' is not valid: \
                             {extra} was not granted."
                        ),
                    });
                }
                grant.scope = asked.to_owned();
            }
            return self.tokens(grant, now);
        }
        if grant_type != "authorization_code" {
            return Err(Failure {
                status: StatusCode::BAD_REQUEST,
                error: "unsupported_grant_type",
                code: 70003,
                message: format!(
                    "The app requested an unsupported grant type '{grant_type}'. The development \
                     upstream serves authorization_code and refresh_token only."
                ),
            });
        }
        let client = self.authenticate(tenant, headers, &params)?;
        let code = get("code")?.ok_or_else(|| Failure::missing("code"))?;

        let now = self.now();
        // The code is spent whatever happens next (RFC 6749 §4.1.2: use it at most once).
        let grant = match self.codes.redeem(code, now) {
            Redemption::Granted(grant) => grant,
            Redemption::Expired => {
                return Err(Failure::invalid_grant(
                    70008,
                    "The provided authorization code or refresh token has expired due to \
                     inactivity. Send a new interactive authorization request for this user and \
                     resource.",
                ))
            }
            Redemption::AlreadyRedeemed => {
                return Err(Failure::invalid_grant(
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new \
                     valid code or use an existing refresh token.",
                ))
            }
            Redemption::Unknown => {
                return Err(Failure::invalid_grant(
                    70000,
                    "The provided value for the 'code' parameter is not valid.",
                ))
            }
        };
        if grant.client_id != client.client_id {
            return Err(Failure::invalid_grant(
                70000,
                "Provided grant is invalid or malformed: the code was issued to another client.",
            ));
        }
        if grant.tenant != tenant {
            return Err(Failure::invalid_grant(
                700005,
                "Provided Authorization Code is intended to use against other tenant, thus \
                 rejected.",
            ));
        }
        // RFC 6749 §4.1.3: the redirect URI must be identical to the authorization request's.
        let redirect_uri = get("redirect_uri")?.ok_or_else(|| Failure::missing("redirect_uri"))?;
        if redirect_uri != grant.redirect_uri {
            return Err(Failure::invalid_grant(
                500112,
                format!(
                    "The reply address '{redirect_uri}' does not match the reply address '{}' \
                     provided when requesting Authorization code.",
                    grant.redirect_uri
                ),
            ));
        }
        check_pkce(grant.code_challenge.as_deref(), get("code_verifier")?)?;
        // Disabled after picking: Azure AD refuses the code too.
        if self.is_disabled(grant.person.key).await? {
            return Err(super::refresh::disabled_account());
        }
        self.tokens(grant, now)
    }

    /// The token response for `grant`: an ID token, an access token and, with
    /// `offline_access`, a refresh token.
    fn tokens(&self, grant: super::codes::Grant, now: i64) -> Result<TokenResponse, Failure> {
        let id_token = self
            .mint_id_token(&grant, now)
            .map_err(|_| Failure::server_error())?;
        let access_token_bytes = if self.tamper == Tamper::OversizedTokenResponse {
            OVERSIZED_ACCESS_TOKEN_BYTES
        } else {
            ACCESS_TOKEN_BYTES
        };
        let access_token = self
            .random_token(access_token_bytes)
            .map_err(|_| Failure::server_error())?;
        let refresh_token = if grant.scope.split(' ').any(|s| s == "offline_access") {
            Some(
                self.issue_refresh_token(&grant, now)
                    .map_err(|_| Failure::server_error())?,
            )
        } else {
            None
        };
        Ok(TokenResponse {
            token_type: "Bearer",
            scope: grant.scope,
            expires_in: ACCESS_TOKEN_LIFETIME,
            ext_expires_in: ACCESS_TOKEN_LIFETIME,
            access_token,
            refresh_token,
            id_token,
        })
    }

    /// RFC 6749 §2.3.1, with exactly one method per request (§2.3).
    fn authenticate(
        &self,
        tenant: &str,
        headers: &HeaderMap,
        params: &Params,
    ) -> Result<&DevClient, Failure> {
        let get = |name| params.get(name).map_err(repeated);
        if get("client_assertion")?.is_some() {
            return Err(Failure::invalid_client(
                700027,
                "The development upstream does not verify client assertions (private_key_jwt); \
                 authenticate with the client secret."
                    .to_owned(),
            ));
        }
        let basic = match headers.get(header::AUTHORIZATION) {
            None => None,
            Some(value) => Some(parse_basic(value).ok_or_else(|| {
                Failure::invalid_client(
                    7000215,
                    "Invalid client secret provided: the Authorization header is not valid HTTP \
                     Basic credentials (RFC 6749 §2.3.1)."
                        .to_owned(),
                )
            })?),
        };
        let form_id = get("client_id")?;
        let form_secret = get("client_secret")?;
        let (client_id, secret) = match (basic, form_secret) {
            (Some(_), Some(_)) => {
                return Err(Failure::invalid_request(
                    9002313,
                    "Invalid request: the client authenticated with both HTTP Basic and \
                     client_secret; use exactly one method (RFC 6749 §2.3)."
                        .to_owned(),
                ))
            }
            (Some((id, secret)), None) => {
                if form_id.is_some_and(|form_id| form_id != id) {
                    return Err(Failure::invalid_request(
                        9002313,
                        "Invalid request: client_id in the body differs from the one in the \
                         Authorization header."
                            .to_owned(),
                    ));
                }
                (id, secret)
            }
            (None, Some(secret)) => (
                form_id
                    .ok_or_else(|| Failure::missing("client_id"))?
                    .to_owned(),
                secret.to_owned(),
            ),
            (None, None) => {
                form_id.ok_or_else(|| Failure::missing("client_id"))?;
                return Err(Failure::invalid_client(
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' \
                     or 'client_secret'."
                        .to_owned(),
                ));
            }
        };
        let client = self.client(&client_id).ok_or_else(|| {
            Failure::invalid_client(
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory \
                     '{}'. This can happen if the application has not been installed by the \
                     administrator of the tenant or consented to by any user in the tenant.",
                    tenant_label(tenant)
                ),
            )
        })?;
        verify_slices_are_equal(secret.as_bytes(), client.client_secret.as_bytes()).map_err(
            |_| {
                Failure::invalid_client(
                    7000215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the \
                         request is the client secret value, not the client secret ID, for a \
                         secret added to app '{client_id}'."
                    ),
                )
            },
        )?;
        Ok(client)
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1, RFC 7617 §2).
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let (scheme, credentials) = value.to_str().ok()?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let credentials = credentials.trim();
    let decoded = STANDARD
        .decode(credentials)
        .or_else(|_| STANDARD_NO_PAD.decode(credentials))
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

/// RFC 7636 §4.6, and RFC 9700 §2.1.1: a verifier without a challenge is refused too, or PKCE
/// could be downgraded away.
fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), Failure> {
    let mismatch = |detail: &str| {
        Failure::invalid_grant(
            501481,
            format!(
                "The Code_Verifier does not match the code_challenge supplied in the \
                 authorization request{detail}."
            ),
        )
    };
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(mismatch(": code_verifier is missing")),
        (None, Some(_)) => Err(mismatch(": no code_challenge was supplied")),
        (Some(challenge), Some(verifier)) => {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
            let computed = URL_SAFE_NO_PAD.encode(digest);
            verify_slices_are_equal(computed.as_bytes(), challenge.as_bytes())
                .map_err(|_| mismatch(""))
        }
    }
}
