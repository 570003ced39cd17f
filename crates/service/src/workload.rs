//! CI workload identity (issue 14 item 3): a CI job's own OIDC ID token, checked against the
//! CI issuers its app trusts ([`crate::tenancy::ci_issuers`]). The token exchange grant
//! ([`crate::grants`]) calls [`identify`] and then mints.
//!
//! The issuers' keys come from [`crate::ci_keys`]; only issuers some app registered are ever
//! fetched.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use techpass_oidc::workload::{self, Expected, Rejection};
use techpass_store::{CiIssuerRecord, StoreError};

use crate::clients::Client;
use crate::ServiceContext;

/// Clock difference tolerated on the job token's `exp`, `nbf` and `iat`.
pub const SKEW_SECS: i64 = 60;

/// One condition on a claim of the job's token: its value (a string, number or boolean) must
/// match `pattern`, where `*` stands for any run of characters (including none and `/`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ClaimRule {
    /// e.g. `project_path`, `ref`, `ref_type` (GitLab) or `repository`, `ref`,
    /// `environment` (GitHub Actions), or `sub`.
    pub claim: String,
    /// e.g. `platform/deployer`, `refs/heads/*`.
    pub pattern: String,
}

impl ClaimRule {
    /// A rule written `claim = pattern` (the portal's lines, the CLI's `--rule`), trimmed;
    /// `None` without an `=`.
    pub fn parse(text: &str) -> Option<ClaimRule> {
        text.split_once('=').map(|(claim, pattern)| ClaimRule {
            claim: claim.trim().to_string(),
            pattern: pattern.trim().to_string(),
        })
    }
}

/// The rules as stored (the service wrote them; an unreadable list matches nothing).
pub fn rules_of(record: &CiIssuerRecord) -> Option<Vec<ClaimRule>> {
    serde_json::from_str(&record.rules).ok()
}

/// Whether `value` matches `pattern`, `*` matching any run of characters.
pub fn glob_matches(pattern: &str, value: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Who a CI job is, once its token passed one of its app's registrations.
#[derive(Debug, Clone)]
pub struct CiIdentity {
    pub registration: CiIssuerRecord,
    /// The job token's own `sub`.
    pub ci_subject: String,
    /// The claims the registration's rules matched, with their values.
    pub matched: Map<String, Value>,
    pub jti: String,
    pub exp: i64,
}

impl CiIdentity {
    /// The `sub` of the access tokens minted for the job: the registration and the job token's
    /// `sub`, so two CI issuers' subjects never collide with each other or with a person's id.
    pub fn subject(&self) -> String {
        format!("{}:{}", self.registration.id, self.ci_subject)
    }
}

/// Why a job token was refused: a description for the `invalid_grant` answer (it says which
/// check failed) or a storage failure.
#[derive(Debug)]
pub enum Refused {
    Invalid(String),
    Unavailable(StoreError),
}

/// A claim's value as a rule compares it: strings as they are, numbers and booleans as their
/// JSON text; anything else is no single value.
fn claim_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The first rule of `registration` the claims fail, as a description; `Ok` with the matched
/// claims when all match.
fn apply_rules(
    registration: &CiIssuerRecord,
    claims: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    let rules = rules_of(registration)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            format!(
                "CI issuer {} has no readable rules; a tenant admin must register it again",
                registration.id
            )
        })?;
    let mut matched = Map::new();
    for rule in rules {
        let value = claims
            .get(&rule.claim)
            .ok_or_else(|| format!("the subject token has no {} claim", rule.claim))?;
        let text = claim_text(value)
            .ok_or_else(|| format!("the subject token's {} is not a single value", rule.claim))?;
        if !glob_matches(&rule.pattern, &text) {
            return Err(format!(
                "rule {} = {} does not match: the subject token's {} is {text:?}",
                rule.claim, rule.pattern, rule.claim
            ));
        }
        matched.insert(rule.claim, value.clone());
    }
    Ok(matched)
}

/// Checks a CI job's token for `client`: its issuer is one the app registered, its signature
/// verifies with the issuer's published keys, `iss`, `aud`, `exp`/`nbf`/`iat` hold, and every
/// rule of one registration matches. The token is not yet spent: the grant records its `jti`
/// ([`spend`]) once everything else passed.
pub async fn identify(
    ctx: &ServiceContext,
    client: &Client,
    token: &str,
) -> Result<CiIdentity, Refused> {
    let invalid = |m: String| Refused::Invalid(m);
    let registrations = ctx
        .store
        .ci_issuers_of_client(&client.id)
        .await
        .map_err(Refused::Unavailable)?;
    if registrations.is_empty() {
        return Err(invalid("this app trusts no CI issuer".into()));
    }
    let unverified = workload::read(token).map_err(|e| invalid(e.to_string()))?;
    let issuer = unverified
        .issuer()
        .ok_or_else(|| invalid("the subject token has no iss".into()))?
        .to_string();
    let candidates: Vec<&CiIssuerRecord> = registrations
        .iter()
        .filter(|r| r.issuer == issuer)
        .collect();
    if candidates.is_empty() {
        return Err(invalid(format!(
            "the subject token's issuer {issuer} is not a CI issuer this app trusts"
        )));
    }
    let now = ctx.clock.now().as_secs();
    // The cache serves its keys, or refetches once when the token names a key it lacks.
    let keys = ctx
        .ci_keys
        .keys(&ctx.http, now, &issuer, unverified.kid())
        .await
        .map_err(invalid)?;
    let mut reason = String::new();
    for registration in candidates {
        let expected = Expected {
            issuer: &issuer,
            audience: &registration.audience,
            now,
            skew: SKEW_SECS,
        };
        let claims = match unverified.clone().verify(&keys, &expected) {
            Ok(claims) => claims,
            Err(Rejection::Claims(why)) => {
                reason = why;
                continue;
            }
            Err(other) => return Err(invalid(other.to_string())),
        };
        let matched = match apply_rules(registration, &claims) {
            Ok(m) => m,
            Err(why) => {
                reason = why;
                continue;
            }
        };
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty() && s.len() <= 255)
                .map(String::from)
        };
        let ci_subject =
            text("sub").ok_or_else(|| invalid("the subject token has no sub".into()))?;
        let jti = text("jti").ok_or_else(|| {
            invalid("the subject token has no jti, so it cannot be made single use".into())
        })?;
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(now);
        return Ok(CiIdentity {
            registration: registration.clone(),
            ci_subject,
            matched,
            jti,
            exp,
        });
    }
    Err(invalid(reason))
}

/// Makes the job token single use: its `jti` is kept, per issuer, until it can no longer be
/// accepted. False if it was spent before (a replay).
pub async fn spend(ctx: &ServiceContext, identity: &CiIdentity) -> Result<bool, StoreError> {
    ctx.store
        .record_assertion(
            &format!("ci|{}", identity.registration.issuer),
            &identity.jti,
            identity.exp.saturating_add(SKEW_SECS),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registration(rules: &str) -> CiIssuerRecord {
        CiIssuerRecord {
            id: "cii_1".into(),
            client_id: "app".into(),
            issuer: "https://gitlab.example".into(),
            audience: "https://id.example".into(),
            rules: rules.into(),
            description: String::new(),
            created_at: 0,
            created_by: "usr_1".into(),
        }
    }

    #[test]
    fn globs_match_as_documented() {
        let cases = [
            ("main", "main", true),
            ("main", "mainline", false),
            ("refs/heads/*", "refs/heads/feature/x", true),
            ("refs/heads/*", "refs/tags/v1", false),
            ("group/*", "group/", true),
            ("group/*", "group", false),
            ("*/deploy", "a/b/deploy", true),
            ("*/deploy", "a/b/deployer", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxcyyb", false),
            ("*", "", true),
            ("a*a", "a", false),
            ("", "", true),
            ("", "x", false),
        ];
        for (pattern, value, expected) in cases {
            assert_eq!(
                glob_matches(pattern, value),
                expected,
                "{pattern} ~ {value}"
            );
        }
    }

    #[test]
    fn rules_say_which_one_failed() {
        let claims = json!({"project_path": "platform/deployer", "ref": "main",
                            "ref_protected": true, "groups": ["a"], "run": 7});
        let claims = claims.as_object().unwrap();
        let r = registration(
            r#"[{"claim":"project_path","pattern":"platform/*"},{"claim":"ref","pattern":"main"}]"#,
        );
        let matched = apply_rules(&r, claims).unwrap();
        assert_eq!(matched["project_path"], "platform/deployer");
        assert_eq!(matched.len(), 2);
        let r = registration(r#"[{"claim":"ref","pattern":"release-*"}]"#);
        assert_eq!(
            apply_rules(&r, claims).unwrap_err(),
            "rule ref = release-* does not match: the subject token's ref is \"main\""
        );
        let r = registration(r#"[{"claim":"environment","pattern":"prod"}]"#);
        assert!(apply_rules(&r, claims)
            .unwrap_err()
            .contains("no environment claim"));
        let r = registration(r#"[{"claim":"groups","pattern":"a"}]"#);
        assert!(apply_rules(&r, claims)
            .unwrap_err()
            .contains("not a single value"));
        let r = registration(
            r#"[{"claim":"ref_protected","pattern":"true"},{"claim":"run","pattern":"7"}]"#,
        );
        assert!(apply_rules(&r, claims).is_ok());
        // A stored list that cannot be read (or is empty) matches nothing.
        assert!(apply_rules(&registration("[]"), claims).is_err());
        assert!(apply_rules(&registration("nonsense"), claims).is_err());
    }
}
