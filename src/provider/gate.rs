//! The token gate's refusals as the person reads them. The gate itself (the pure rule applied to
//! stored facts, audited) is the service layer's.

use techpass_domain::gate::Denial;

pub use techpass_service::gate::{decide, enforce, enforce_app, Refusal};

/// What the person reads for each refusal: what happened and what to do.
pub fn explain(denial: Denial) -> (&'static str, &'static str, &'static str) {
    match denial {
        Denial::NotRegistered => (
            "You are not registered for TechPass",
            "Only registered officers and invited vendors can use the toolchain's apps. TechPass accounts for vendors and contractors are by invitation only.",
            "Ask your project manager to invite you, then open the link in the invitation email.",
        ),
        Denial::Suspended => (
            "Your TechPass account is suspended",
            "A TechPass administrator suspended your account.",
            "Contact the TechPass team to find out why and how to have it reinstated.",
        ),
        Denial::Disabled => (
            "Your TechPass account is disabled",
            "Your account was disabled because it was not used for a long time.",
            "Contact the TechPass team to have it enabled again.",
        ),
        Denial::Expired => (
            "Your access has ended",
            "The access end date of your invitation has passed.",
            "Ask your project manager to extend your access or invite you again.",
        ),
        Denial::Terminated => (
            "Your TechPass account was closed",
            "This account can no longer be used.",
            "Contact the TechPass team if you need access again.",
        ),
        Denial::TenantInactive => (
            "This app is not available",
            "The service this app belongs to is not active on TechPass at the moment.",
            "Contact the app's team.",
        ),
        Denial::AppDisabled => (
            "This app is not available",
            "Sign-in to this app has been switched off by its owners.",
            "Contact the app's team.",
        ),
        Denial::NotMember => (
            "You do not have access to this app",
            "This app is only for the members of the team that runs it, and you are not one of them. An invitation from one team gives access to that team's apps only.",
            "Ask the project manager of this app's team to add you (officers join one of its groups; vendors are invited).",
        ),
        Denial::MembershipEnded => (
            "Your access to this service has ended",
            "The access end date of your invitation to the service this app belongs to has passed.",
            "Ask the project manager of this app's service to extend your access or invite you again.",
        ),
        Denial::NoAccess => (
            "You do not have access to this app",
            "This app admits only the people its team has given access.",
            "Ask the app's team (your project manager) to give you access.",
        ),
    }
}
