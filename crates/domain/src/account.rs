//! Account classification from a verified email address (TechPass's domain rules, AZURE.md §7).
//!
//! An address in `gov.sg` or any subdomain belongs to a public officer, except the invite-only
//! domains (defence and procurement agencies, whose addresses are also given to contractors) and
//! local parts containing `_from` (`john_from.vendorco@agency.gov.sg`, the vendor convention);
//! everything else is a vendor.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    PublicOfficer,
    Vendor,
}

impl AccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::PublicOfficer => "public_officer",
            AccountType::Vendor => "vendor",
        }
    }
}

/// The rules, configurable; [`ClassificationRules::default`] holds TechPass's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassificationRules {
    /// Domains whose addresses (and subdomains') are public officers'.
    pub officer_domains: Vec<String>,
    /// Domains (and their subdomains) that are invite-only even though under an officer domain.
    pub invite_only_domains: Vec<String>,
    /// A local part containing this marks a vendor.
    pub vendor_local_part_marker: String,
}

impl Default for ClassificationRules {
    fn default() -> Self {
        ClassificationRules {
            officer_domains: vec!["gov.sg".into()],
            invite_only_domains: [
                "dsta.gov.sg",
                "dsta-wog.gov.sg",
                "mindef.gov.sg",
                "defence.gov.sg",
                "gebiz.gov.sg",
                "sps.gov.sg",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            vendor_local_part_marker: "_from".into(),
        }
    }
}

/// How far an upstream's `email` claim is believed (AZURE.md §3: Azure AD's plain `email` "isn't
/// guaranteed to be correct"), configured per upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailAuthority {
    /// Only an address the upstream proved (`email_verified`, `xms_edov`,
    /// `verified_primary_email`) classifies a person by domain, matches invitations and
    /// pending grants, and is passed on as verified. The default.
    #[default]
    Verified,
    /// Every address the upstream sends counts as verified: for an upstream that only issues
    /// addresses it has proven (for example a directory whose guests are added only by a B2B
    /// invitation redeemed at that address).
    Trusted,
}

impl EmailAuthority {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailAuthority::Verified => "verified",
            EmailAuthority::Trusted => "trusted",
        }
    }

    /// Whether TechPass treats an address as verified, given what the upstream proved.
    pub fn believes(self, upstream_verified: bool) -> bool {
        upstream_verified || self == EmailAuthority::Trusted
    }
}

/// Classifies a person from the address their upstream sent: only an address TechPass treats
/// as verified can make someone a public officer by its domain; anyone else is a vendor (the
/// account that needs a tenant's invitation).
pub fn classify_claimed(
    email: Option<&str>,
    verified: bool,
    rules: &ClassificationRules,
) -> AccountType {
    match email {
        Some(email) if verified => classify(email, rules),
        _ => AccountType::Vendor,
    }
}

/// Whether `domain` is `parent` or a subdomain of it (label-wise: `evilgov.sg` is not under
/// `gov.sg`).
fn within(domain: &str, parent: &str) -> bool {
    domain == parent
        || domain
            .strip_suffix(parent)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// Classifies a verified email address. Comparison is case-insensitive; an address that is not
/// of the form `local@domain` is a vendor's (never an officer's by accident).
pub fn classify(email: &str, rules: &ClassificationRules) -> AccountType {
    let email = email.trim().to_ascii_lowercase();
    let Some((local, domain)) = email.rsplit_once('@') else {
        return AccountType::Vendor;
    };
    if local.is_empty() || domain.is_empty() || local.contains('@') {
        return AccountType::Vendor;
    }
    let marker = rules.vendor_local_part_marker.to_ascii_lowercase();
    if !marker.is_empty() && local.contains(&marker) {
        return AccountType::Vendor;
    }
    let lower = |d: &String| d.to_ascii_lowercase();
    if rules
        .invite_only_domains
        .iter()
        .any(|d| within(domain, &lower(d)))
    {
        return AccountType::Vendor;
    }
    if rules
        .officer_domains
        .iter()
        .any(|d| within(domain, &lower(d)))
    {
        AccountType::PublicOfficer
    } else {
        AccountType::Vendor
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccountType::*;

    #[test]
    fn only_a_believed_address_makes_an_officer() {
        let rules = ClassificationRules::default();
        let officer = Some("erin_goh@tech.gov.sg");
        assert_eq!(classify_claimed(officer, true, &rules), PublicOfficer);
        assert_eq!(classify_claimed(officer, false, &rules), Vendor);
        assert_eq!(classify_claimed(None, true, &rules), Vendor);
        assert_eq!(
            classify_claimed(Some("dave@vendorco.example"), true, &rules),
            Vendor
        );
        assert!(!EmailAuthority::Verified.believes(false));
        assert!(EmailAuthority::Verified.believes(true));
        assert!(EmailAuthority::Trusted.believes(false));
        assert_eq!(EmailAuthority::default(), EmailAuthority::Verified);
    }

    #[test]
    fn classification_table() {
        let rules = ClassificationRules::default();
        let cases = [
            ("alice_tan@tech.gov.sg", PublicOfficer),
            ("Bob.Lim@HDB.GOV.SG", PublicOfficer),
            ("someone@gov.sg", PublicOfficer),
            ("x@deep.sub.agency.gov.sg", PublicOfficer),
            ("john_from.vendorco@hdb.gov.sg", Vendor),
            ("JOHN_FROM.ncs@tech.gov.sg", Vendor),
            ("officer@dsta.gov.sg", Vendor),
            ("officer@unit.mindef.gov.sg", Vendor),
            ("a@dsta-wog.gov.sg", Vendor),
            ("a@defence.gov.sg", Vendor),
            ("a@gebiz.gov.sg", Vendor),
            ("a@sps.gov.sg", Vendor),
            ("dave@vendorco.example", Vendor),
            ("mallory@evilgov.sg", Vendor),
            ("mallory@gov.sg.evil.example", Vendor),
            ("not-an-email", Vendor),
            ("@gov.sg", Vendor),
            ("a@b@gov.sg", Vendor),
        ];
        for (email, expected) in cases {
            assert_eq!(classify(email, &rules), expected, "{email}");
        }
    }

    #[test]
    fn rules_are_configurable() {
        let rules = ClassificationRules {
            officer_domains: vec!["gov.example".into()],
            invite_only_domains: vec![],
            vendor_local_part_marker: String::new(),
        };
        assert_eq!(classify("a_from@x.gov.example", &rules), PublicOfficer);
        assert_eq!(classify("a@tech.gov.sg", &rules), Vendor);
    }
}
