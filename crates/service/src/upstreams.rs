//! The upstream identity providers people sign in through, in configured order, and which
//! account types each admits.

use std::sync::Arc;

use techpass_domain::account::{classify, AccountType, ClassificationRules, EmailAuthority};
use techpass_upstream::Connector;

/// One configured upstream and who may sign in through it.
#[derive(Debug)]
pub struct Upstream {
    pub connector: Arc<dyn Connector>,
    pub account_types: Vec<AccountType>,
    /// Whether its unproven `email` claims are believed (AZURE.md §3).
    pub email_authority: EmailAuthority,
}

/// The upstreams in configured order.
#[derive(Debug, Default)]
pub struct Upstreams(pub Vec<Upstream>);

impl Upstreams {
    pub fn get(&self, id: &str) -> Option<&Upstream> {
        self.0.iter().find(|u| u.connector.id() == id)
    }

    /// The upstream to use without asking: the only one, or the only one whose account types
    /// admit the account a `login_hint` email would be.
    pub fn implied(
        &self,
        login_hint: Option<&str>,
        rules: &ClassificationRules,
    ) -> Option<&Upstream> {
        if self.0.len() == 1 {
            return self.0.first();
        }
        let kind = classify(login_hint?, rules);
        let mut admitting = self.0.iter().filter(|u| u.account_types.contains(&kind));
        match (admitting.next(), admitting.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }
}
