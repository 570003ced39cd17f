//! Forms and their outcomes: posted fields (repeated names kept, for checkbox lists), the
//! [`Posted`] extractor that refuses a form without the session's CSRF token before any handler
//! runs, the [`Flash`] a page shows above its content (a result message chosen from a fixed list
//! by `?done=<key>`, or the refusal of the form just sent with what was typed), and the
//! confirmation page of destructive actions. It must not interpret what a form asks for: the
//! handlers and their services do.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::{problem, refused, render, Me};
use crate::signin::csrf_valid;
use crate::state::AppState;

/// Form fields or query parameters, in order, repeated names kept (checkbox lists).
#[derive(Debug, Clone, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(bytes: &[u8]) -> Fields {
        Fields(url::form_urlencoded::parse(bytes).into_owned().collect())
    }

    /// The query string of a GET (`RawQuery`).
    pub fn query(raw: Option<String>) -> Fields {
        Fields::parse(raw.unwrap_or_default().as_bytes())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The trimmed value, or "" when absent.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_string()
    }

    /// The trimmed value, `None` when absent or empty.
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.text(name)).filter(|v| !v.is_empty())
    }

    /// Every value of a repeated field (checkboxes), trimmed, empty ones dropped.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// A ticked checkbox.
    pub fn checked(&self, name: &str) -> bool {
        matches!(self.get(name), Some("yes" | "on" | "true" | "1"))
    }

    /// The person said yes on the confirmation page.
    pub fn confirmed(&self) -> bool {
        self.checked("confirm")
    }

    /// A textarea with one value per line.
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.get(name)
            .unwrap_or("")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// `?page=N` (1 when absent or not a positive number).
    pub fn page(&self) -> u32 {
        self.get("page")
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }

    /// The submitted values to fill a form shown again (a repeated name's values joined by
    /// newlines, so a template can ask `'x' in form.name`).
    pub fn values(&self) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in self.hidden() {
            map.entry(k)
                .and_modify(|e| {
                    e.push('\n');
                    e.push_str(&v);
                })
                .or_insert(v);
        }
        map
    }

    /// Every field but the CSRF token and the confirmation, to carry through a confirmation.
    pub fn hidden(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| k != "csrf_token" && k != "confirm")
            .cloned()
            .collect()
    }
}

/// A posted form of the signed-in person whose CSRF token was checked: a form without the
/// session's token is refused with a 403 page before any handler code runs.
#[derive(Debug)]
pub struct Posted {
    pub me: Me,
    pub fields: Fields,
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Posted, Response> {
        let (mut parts, body) = req.into_parts();
        let me = Me::from_request_parts(&mut parts, state).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| {
                problem(
                    state,
                    rejection.status(),
                    "The form could not be read",
                    "The form was too large or could not be read. Go back and try again.",
                )
            })?;
        let fields = Fields::parse(&bytes);
        if !csrf_valid(
            &state.secrets,
            &me.session,
            fields.get("csrf_token").unwrap_or(""),
        ) {
            return Err(refused(state));
        }
        Ok(Posted { me, fields })
    }
}

/// What a page shows above its content: the result of the last change, or why the form
/// submitted was refused (with what was typed, to fill it again).
#[derive(Debug, Clone)]
pub struct Flash {
    pub status: StatusCode,
    pub done: Option<&'static str>,
    pub error: Option<String>,
    pub form: BTreeMap<String, String>,
}

impl Default for Flash {
    fn default() -> Self {
        Flash {
            status: StatusCode::OK,
            done: None,
            error: None,
            form: BTreeMap::new(),
        }
    }
}

impl Flash {
    /// `?done=<key>`: only the known messages, never text from the URL.
    pub fn from_query(query: &Fields) -> Flash {
        Flash {
            done: query.get("done").and_then(done_message),
            ..Flash::default()
        }
    }

    pub fn error(status: StatusCode, message: impl Into<String>, fields: &Fields) -> Flash {
        Flash {
            status,
            error: Some(message.into()),
            form: fields.values(),
            ..Flash::default()
        }
    }
}

/// The result messages a redirect may name.
const DONE: &[(&str, &str)] = &[
    ("tenant-requested", "Your request was sent. A platform admin will review it; you will get an email with the decision."),
    ("admin-added", "The co-admin was added."),
    ("admin-removed", "The co-admin was removed."),
    ("app-updated", "The app was saved."),
    ("app-enabled", "Sign-in to the app is enabled."),
    ("app-deleted", "The app was deleted with its secrets, grants, assignments and roles: its tokens no longer work. The audit log keeps its history."),
    ("app-disabled", "Sign-in to the app is disabled: nobody can sign in to it until it is enabled again."),
    ("secret-revoked", "The secret was revoked: it no longer authenticates the app."),
    ("keys-saved", "The app's public keys were saved."),
    ("ci-issuer-added", "The CI issuer is trusted: jobs whose tokens meet its rules can now exchange them for this app's tokens."),
    ("ci-issuer-removed", "The CI issuer is no longer trusted: its jobs' next exchanges are refused."),
    ("assigned", "Access was given."),
    ("unassigned", "Access was removed."),
    ("email-granted", "Access was granted by email: the person has it from their next sign-in to TechPass (their first, if they are new)."),
    ("email-grant-revoked", "The pending access was withdrawn."),
    ("role-defined", "The role was added to the app."),
    ("role-granted", "The role was granted."),
    ("role-revoked", "The role was taken away."),
    ("access-removed", "The selected people no longer have direct access to the app."),
    ("group-created", "The group was created."),
    ("group-deleted", "The group was deleted, with its memberships and assignments."),
    ("member-added", "The person was added to the group."),
    ("member-removed", "The person was removed from the group."),
    ("invited", "The invitation was sent by email."),
    ("invitation-resent", "The invitation was sent again with a new link; the old link no longer works."),
    ("invitation-revoked", "The invitation was revoked: its link no longer works."),
    ("nothing-to-withdraw", "There was no consent to withdraw: it was already withdrawn, or the app is gone."),
    ("platform-admin-granted", "They are a platform admin now."),
    ("platform-admin-revoked", "They are no longer a platform admin."),
    ("review-completed", "The review was recorded as completed, with the people who have access now."),
    ("app-access-revoked", "The app's access was revoked: its tokens for you no longer work."),
    ("webhook-events-saved", "The webhook's events were saved."),
    ("webhook-test-delivered", "The test event was delivered: the endpoint answered 2xx."),
    ("webhook-test-failed", "The test event was not delivered; the delivery log below says why, and it is retried like any event."),
    ("webhook-redelivery-delivered", "The event was delivered again."),
    ("webhook-redelivery-failed", "The event could not be delivered again; the delivery log below says why, and it is retried."),
    ("session-ended", "The session was ended: that browser is signed out, and the apps it signed in to were told."),
    ("consent-withdrawn", "Your consent was withdrawn: the app no longer receives your details, and its access for you stopped."),
    ("membership-ended", "The membership was ended: the person's access to this tenant's apps stopped at once."),
    ("webhook-verified", "The endpoint answered the challenge: the webhook receives events."),
    ("webhook-unverified", "The endpoint did not answer the challenge; it receives no events until it does."),
    ("webhook-deleted", "The webhook was deleted with its delivery log."),
    ("tenant-approved", "The tenant was approved; its requester is now its admin and was told by email."),
    ("tenant-rejected", "The tenant request was rejected; the requester was told why."),
    ("tenant-suspended", "The tenant was suspended; its apps sign nobody in until it is reinstated."),
    ("tenant-reinstated", "The tenant was reinstated."),
    ("user-suspended", "The person was suspended: their sessions were ended and their grants revoked."),
    ("user-reinstated", "The person was reinstated."),
    ("user-enabled", "The account was re-enabled."),
    ("user-exempted", "The account is now exempt from the lifecycle jobs."),
    ("user-unexempted", "The account is subject to the lifecycle jobs again."),
    ("device-approved", "The device is signed in: it receives its tokens at its next check, within seconds."),
    ("device-denied", "The request was denied: the device gets no access."),
    ("key-rotated", "A new signing key was created: published now, signing after the pre-publication delay."),
    ("key-retired", "The key was retired at once: it is no longer published and nothing it signed verifies. Where it was signing, a new key signs now."),
];

pub fn done_message(key: &str) -> Option<&'static str> {
    DONE.iter().find(|(k, _)| *k == key).map(|(_, m)| *m)
}

/// 303 to `path` (which may carry a query) with a result message.
pub fn done(path: &str, key: &str) -> Response {
    debug_assert!(done_message(key).is_some(), "unknown result message {key}");
    let join = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{join}done={key}")).into_response()
}

/// The confirmation asked before a destructive action: the same form posted again with
/// `confirm=yes`.
#[derive(Debug)]
pub struct Confirm {
    pub title: String,
    pub text: String,
    /// What will be affected, one line each.
    pub items: Vec<String>,
    pub action: String,
    pub button: &'static str,
    pub cancel: String,
}

pub fn confirm(state: &AppState, me: &Me, fields: &Fields, c: Confirm) -> Response {
    let hidden: Vec<_> = fields
        .hidden()
        .into_iter()
        .map(|(name, value)| minijinja::context! { name => name, value => value })
        .collect();
    render(
        state,
        me,
        &Flash::default(),
        "portal/confirm.html",
        minijinja::context! {
            title => c.title, text => c.text, items => c.items, action => c.action,
            button => c.button, cancel => c.cancel, hidden => hidden,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_repeats_and_drop_the_token() {
        let f = Fields::parse(b"csrf_token=x&events=a&events=b&name=+Wiki+&confirm=yes");
        assert_eq!(f.all("events"), vec!["a", "b"]);
        assert_eq!(f.values()["events"], "a\nb");
        assert_eq!(f.text("name"), "Wiki");
        assert!(f.confirmed());
        assert!(f
            .hidden()
            .iter()
            .all(|(k, _)| k != "csrf_token" && k != "confirm"));
        assert_eq!(Fields::parse(b"page=0").page(), 1);
        assert_eq!(Fields::parse(b"page=x").page(), 1);
        assert_eq!(Fields::parse(b"page=3").page(), 3);
    }

    #[test]
    fn only_known_result_messages_show() {
        assert!(done_message("invited").is_some());
        assert!(done_message("<script>").is_none());
        let flash = Flash::from_query(&Fields::parse(b"done=%3Cb%3Ehi"));
        assert!(flash.done.is_none());
    }
}
