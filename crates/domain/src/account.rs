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
