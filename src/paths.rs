//! The paths of the pages TechPass serves itself (sign-in, invitation, development tools and
//! the portal's route templates in axum's `{name}` syntax), shared by the routers and the links
//! of every page, and [`fill`], which builds a link from a template. Only path strings live
//! here: no handler, no knowledge of who may open what, so every module may name them.

pub const HOME: &str = "/";
pub const LOGIN: &str = "/login";
pub const CALLBACK: &str = "/callback";
pub const LOGOUT: &str = "/logout";
pub const REGISTER: &str = "/register";
pub const INVITE: &str = "/invite";
/// The device verification page (RFC 8628 §3.3), named by the device authorization response.
pub const DEVICE: &str = techpass_oidc::paths::DEVICE_VERIFICATION;
/// Where a person consents to an app receiving their identity (OpenID Connect Core §3.1.2.4).
pub const CONSENT: &str = "/consent";

/// Where a person goes to register, then back to `return_to`.
pub fn register_url(return_to: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("return_to", return_to);
    format!("{REGISTER}?{}", q.finish())
}

/// The terms of use and privacy policy (public), and where a person accepts a new version.
pub const TERMS: &str = "/terms";
pub const TERMS_ACCEPT: &str = "/terms/accept";

/// Where a person who accepted an earlier version of the terms accepts the current one, then
/// goes back to `return_to`.
pub fn terms_accept_url(return_to: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("return_to", return_to);
    format!("{TERMS_ACCEPT}?{}", q.finish())
}

pub const OUTBOX: &str = "/dev/outbox";
pub const DEMO: &str = "/dev/demo";
pub const DEMO_START: &str = "/dev/demo/start";
pub const DEMO_CALLBACK: &str = "/dev/demo/callback";
/// Makes the signed-in, registered person a platform admin, so a newcomer can approve their own
/// tenant request on a laptop. Development only.
pub const MAKE_PLATFORM_ADMIN: &str = "/dev/platform-admin";
/// Signs in again, back at the development upstream's person picker.
pub const SWITCH_PERSON: &str = "/login?prompt=login&return_to=%2Fportal";

pub const PORTAL: &str = "/portal";
/// What a form's action shows once (a new secret), read by the redirect that answers the form.
pub const SHOWN: &str = "/portal/shown/{id}";
pub const SIGN_OUT_EVERYWHERE: &str = "/portal/sign-out-everywhere";
/// The signed-in person takes an app's access (its grants, refresh tokens) away.
pub const APP_ACCESS_REVOKE: &str = "/portal/apps/{client_id}/revoke";
/// Ends one of the signed-in person's sessions (named by its reference, never its id).
pub const SESSION_END: &str = "/portal/sessions/{reference}/end";
/// Withdraws the signed-in person's consent to an app.
pub const CONSENT_WITHDRAW: &str = "/portal/consents/{client_id}/withdraw";

pub const TENANTS: &str = "/portal/tenants";
pub const TENANT: &str = "/portal/tenants/{tenant_id}";
pub const ADMINS: &str = "/portal/tenants/{tenant_id}/admins";
pub const ADMIN_REMOVE: &str = "/portal/tenants/{tenant_id}/admins/{user_id}/remove";

pub const APPS: &str = "/portal/tenants/{tenant_id}/apps";
pub const APP: &str = "/portal/tenants/{tenant_id}/apps/{client_id}";
pub const APP_ENABLED: &str = "/portal/tenants/{tenant_id}/apps/{client_id}/enabled";
pub const APP_DELETE: &str = "/portal/tenants/{tenant_id}/apps/{client_id}/delete";
pub const CREDENTIALS: &str = "/portal/tenants/{tenant_id}/apps/{client_id}/credentials";
pub const SECRETS: &str = "/portal/tenants/{tenant_id}/apps/{client_id}/credentials/secrets";
pub const SECRET_REVOKE: &str =
    "/portal/tenants/{tenant_id}/apps/{client_id}/credentials/secrets/{secret_id}/revoke";
pub const KEYS: &str = "/portal/tenants/{tenant_id}/apps/{client_id}/credentials/keys";
pub const CI_ISSUERS: &str = "/portal/tenants/{tenant_id}/apps/{client_id}/ci";
pub const CI_ISSUER_REMOVE: &str =
    "/portal/tenants/{tenant_id}/apps/{client_id}/ci/{issuer_id}/remove";

pub const ACCESS: &str = "/portal/tenants/{tenant_id}/apps/{client_id}/access";
pub const ASSIGN: &str = "/portal/tenants/{tenant_id}/apps/{client_id}/access/assign";
pub const UNASSIGN: &str = "/portal/tenants/{tenant_id}/apps/{client_id}/access/unassign";
pub const ROLES: &str = "/portal/tenants/{tenant_id}/apps/{client_id}/access/roles";
pub const ROLE_GRANT: &str = "/portal/tenants/{tenant_id}/apps/{client_id}/access/grant";
pub const EMAIL_GRANT: &str = "/portal/tenants/{tenant_id}/apps/{client_id}/access/by-email";
pub const EMAIL_GRANT_REVOKE: &str =
    "/portal/tenants/{tenant_id}/apps/{client_id}/access/by-email/revoke";
pub const REVIEW: &str = "/portal/tenants/{tenant_id}/apps/{client_id}/review";
/// Records that the access review was completed (by whom, when, who had access).
pub const REVIEW_COMPLETE: &str = "/portal/tenants/{tenant_id}/apps/{client_id}/review/complete";

pub const GROUPS: &str = "/portal/tenants/{tenant_id}/groups";
pub const GROUP: &str = "/portal/tenants/{tenant_id}/groups/{group_id}";
pub const GROUP_DELETE: &str = "/portal/tenants/{tenant_id}/groups/{group_id}/delete";
pub const GROUP_MEMBER_REMOVE: &str =
    "/portal/tenants/{tenant_id}/groups/{group_id}/members/{user_id}/remove";

pub const INVITATIONS: &str = "/portal/tenants/{tenant_id}/invitations";
pub const INVITATION_RESEND: &str =
    "/portal/tenants/{tenant_id}/invitations/{invitation_id}/resend";
pub const INVITATION_REVOKE: &str =
    "/portal/tenants/{tenant_id}/invitations/{invitation_id}/revoke";
pub const MEMBER_END: &str = "/portal/tenants/{tenant_id}/members/{user_id}/end";

pub const WEBHOOKS: &str = "/portal/tenants/{tenant_id}/webhooks";
pub const WEBHOOK: &str = "/portal/tenants/{tenant_id}/webhooks/{webhook_id}";
pub const WEBHOOK_VERIFY: &str = "/portal/tenants/{tenant_id}/webhooks/{webhook_id}/verify";
pub const WEBHOOK_DELETE: &str = "/portal/tenants/{tenant_id}/webhooks/{webhook_id}/delete";
pub const WEBHOOK_EVENTS: &str = "/portal/tenants/{tenant_id}/webhooks/{webhook_id}/events";
pub const WEBHOOK_TEST: &str = "/portal/tenants/{tenant_id}/webhooks/{webhook_id}/test";
pub const WEBHOOK_ROTATE: &str = "/portal/tenants/{tenant_id}/webhooks/{webhook_id}/secret";
pub const WEBHOOK_REDELIVER: &str =
    "/portal/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver";

pub const TENANT_AUDIT: &str = "/portal/tenants/{tenant_id}/audit";
/// The tenant's events matching the page's filters as a file (`format=csv` or `jsonl`).
pub const TENANT_AUDIT_EXPORT: &str = "/portal/tenants/{tenant_id}/audit/export";

pub const ADMIN: &str = "/portal/admin";
pub const ADMIN_QUEUE: &str = "/portal/admin/queue";
pub const ADMIN_TENANTS: &str = "/portal/admin/tenants";
pub const ADMIN_DECISION: &str = "/portal/admin/tenants/{tenant_id}/decision";
pub const ADMIN_USERS: &str = "/portal/admin/users";
/// One person as a platform admin sees them: status, tenants, groups, sessions, events.
pub const ADMIN_USER: &str = "/portal/admin/users/{user_id}";
pub const ADMIN_USER_SESSION_END: &str = "/portal/admin/users/{user_id}/sessions/{reference}/end";
/// Grants (`grant=yes`) or takes away (`grant=no`) the platform admin role.
pub const ADMIN_USER_PLATFORM_ADMIN: &str = "/portal/admin/users/{user_id}/platform-admin";
pub const ADMIN_USER_SUSPEND: &str = "/portal/admin/users/{user_id}/suspend";
pub const ADMIN_USER_REINSTATE: &str = "/portal/admin/users/{user_id}/reinstate";
pub const ADMIN_USER_ENABLE: &str = "/portal/admin/users/{user_id}/enable";
pub const ADMIN_USER_EXEMPT: &str = "/portal/admin/users/{user_id}/exempt";
pub const ADMIN_KEYS: &str = "/portal/admin/keys";
pub const ADMIN_KEYS_ROTATE: &str = "/portal/admin/keys/rotate";
/// Emergency retirement of a compromised key (a confirmation first).
pub const ADMIN_KEYS_RETIRE: &str = "/portal/admin/keys/retire";
pub const ADMIN_AUDIT: &str = "/portal/admin/audit";
pub const ADMIN_AUDIT_EXPORT: &str = "/portal/admin/audit/export";

/// A path template with its `{name}` parameters replaced, each value percent-encoded as one
/// path segment.
pub fn fill(template: &str, params: &[(&str, &str)]) -> String {
    let mut path = template.to_string();
    for (name, value) in params {
        let encoded: String =
            url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
        path = path.replace(&format!("{{{name}}}"), &encoded.replace('+', "%20"));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_filled_segment_by_segment() {
        assert_eq!(
            fill(APP, &[("tenant_id", "tnt_1"), ("client_id", "app_2")]),
            "/portal/tenants/tnt_1/apps/app_2"
        );
        assert_eq!(
            fill(TENANT, &[("tenant_id", "a/b c")]),
            "/portal/tenants/a%2Fb%20c"
        );
    }
}
