//! ID tokens in Azure AD v2.0's shape (Microsoft identity platform "ID token claims reference"),
//! with the instance's [`Tamper`] defect applied. Signed RS256 with the published key unless the
//! defect says otherwise.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Serialize;

use super::codes::Grant;
use super::{foreign_tenant, DevError, DevUpstream, Tamper};

const ID_TOKEN_LIFETIME: i64 = 3600;
const FOREIGN_AUDIENCE: &str = "00000000-0000-0000-0000-00000000dead";
const FOREIGN_NONCE: &str = "not-the-nonce-you-sent";
/// [`Tamper::OversizedIdToken`]: more than twice Azure AD's 200-group limit for a JWT.
const OVERSIZED_GROUP_COUNT: usize = 500;
/// [`Tamper::OversizedJwsHeader`]: three "certificates" of this many DER bytes.
const OVERSIZED_X5C_CERT_BYTES: usize = 1050;

#[derive(Serialize)]
struct Header<'a> {
    typ: &'static str,
    alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    /// Only for [`Tamper::OversizedJwsHeader`].
    #[serde(skip_serializing_if = "Option::is_none")]
    x5c: Option<Vec<String>>,
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    /// Optional claim: 0 for a member of the tenant, 1 for a guest.
    acct: u8,
    aio: String,
    amr: &'a [&'a str],
    email: &'a str,
    /// Group object ids: only for [`Tamper::OversizedIdToken`].
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<String>>,
    /// For a guest: the security token service of the home tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    idp: Option<String>,
    name: &'a str,
    given_name: &'a str,
    family_name: &'a str,
    /// Optional claim: the email's domain owner is verified. True for the directory's own
    /// members; a guest's address is the guest's company's, which the directory does not own.
    xms_edov: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    oid: &'a str,
    preferred_username: &'a str,
    rh: String,
    sub: String,
    tid: &'a str,
    uti: String,
    ver: &'static str,
}

/// Azure AD's `sub` is pairwise: stable for one user and one application, different across
/// applications. Here: base64url(SHA-256(oid ":" client_id)).
pub(super) fn pairwise_sub(oid: &str, client_id: &str) -> String {
    let input = format!("{oid}:{client_id}");
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        input.as_bytes(),
    ))
}

impl DevUpstream {
    pub(super) fn mint_id_token(&self, grant: &Grant, now: i64) -> Result<String, DevError> {
        let person = grant.person;
        let mut claims = Claims {
            aud: &grant.client_id,
            iss: self.issuer(person.tid),
            iat: now,
            nbf: now,
            exp: now + ID_TOKEN_LIFETIME,
            acct: u8::from(person.guest_home_tenant.is_some()),
            aio: self.random_token(48)?,
            amr: person.amr,
            email: person.email,
            groups: None,
            idp: person
                .guest_home_tenant
                .map(|home| format!("https://sts.windows.net/{home}/")),
            name: person.name,
            given_name: person.name.split_once(' ').map_or(person.name, |(g, _)| g),
            family_name: person.name.split_once(' ').map_or("", |(_, f)| f),
            xms_edov: person.guest_home_tenant.is_none(),
            nonce: grant.nonce.as_deref(),
            oid: person.oid,
            preferred_username: person.email,
            rh: format!("0.{}", self.random_token(32)?),
            sub: pairwise_sub(person.oid, &grant.client_id),
            tid: person.tid,
            uti: self.random_token(16)?,
            ver: "2.0",
        };
        match self.tamper {
            Tamper::WrongIssuer => claims.iss = self.issuer(foreign_tenant(person.tid)),
            Tamper::WrongAudience => claims.aud = FOREIGN_AUDIENCE,
            Tamper::WrongNonce => claims.nonce = Some(FOREIGN_NONCE),
            Tamper::MissingNonce => claims.nonce = None,
            Tamper::Expired => {
                (claims.iat, claims.nbf) = (now - 7200, now - 7200);
                claims.exp = now - 3600;
            }
            Tamper::IssuedInFuture => {
                (claims.iat, claims.nbf) = (now + 3600, now + 3600);
                claims.exp = now + 7200;
            }
            Tamper::WrongTenant => claims.tid = foreign_tenant(person.tid),
            Tamper::NotYetValid => {
                claims.nbf = now + 3600;
                claims.exp = now + 7200;
            }
            Tamper::OversizedIdToken => {
                claims.groups = Some(
                    (0..OVERSIZED_GROUP_COUNT)
                        .map(|i| format!("6b1c0de0-0000-4000-8000-{i:012x}"))
                        .collect(),
                );
            }
            Tamper::None
            | Tamper::Unsigned
            | Tamper::AlgConfusion
            | Tamper::UnknownKey
            | Tamper::WrongIssParameter
            | Tamper::MissingIssParameter
            | Tamper::OversizedTokenResponse
            | Tamper::ExtraJwsSegments
            | Tamper::OversizedJwsHeader => {}
        }
        self.encode(&claims)
    }

    /// JWS compact serialisation (RFC 7515 §7.1), signed as the defect in force says.
    fn encode(&self, claims: &Claims<'_>) -> Result<String, DevError> {
        let (alg, kid) = match (self.tamper, &self.rogue_key) {
            (Tamper::Unsigned, _) => ("none", None),
            (Tamper::AlgConfusion, _) => ("HS256", Some(self.key.kid())),
            (Tamper::UnknownKey, Some(rogue)) => ("RS256", Some(rogue.kid())),
            _ => ("RS256", Some(self.key.kid())),
        };
        let x5c = (self.tamper == Tamper::OversizedJwsHeader)
            .then(|| vec![STANDARD.encode([0x30; OVERSIZED_X5C_CERT_BYTES]); 3]);
        let header = Header {
            typ: "JWT",
            alg,
            kid,
            x5c,
        };
        let signing_input = format!("{}.{}", b64_json(&header)?, b64_json(claims)?);
        let signature = match (self.tamper, &self.rogue_key) {
            // RFC 7519 §6.1: an unsecured JWT has an empty signature part.
            (Tamper::Unsigned, _) => Vec::new(),
            (Tamper::AlgConfusion, _) => {
                let key = aws_lc_rs::hmac::Key::new(
                    aws_lc_rs::hmac::HMAC_SHA256,
                    self.key.public_pem().as_bytes(),
                );
                aws_lc_rs::hmac::sign(&key, signing_input.as_bytes())
                    .as_ref()
                    .to_vec()
            }
            (Tamper::UnknownKey, Some(rogue)) => rogue.sign(signing_input.as_bytes())?,
            _ => self.key.sign(signing_input.as_bytes())?,
        };
        let signature = URL_SAFE_NO_PAD.encode(signature);
        Ok(if self.tamper == Tamper::ExtraJwsSegments {
            format!("{signing_input}.{signature}.{signature}")
        } else {
            format!("{signing_input}.{signature}")
        })
    }
}

fn b64_json(value: &impl Serialize) -> Result<String, DevError> {
    let json = serde_json::to_vec(value).map_err(|_| DevError::Encoding("ID token JSON"))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}
