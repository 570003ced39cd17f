//! The cookies TechPass sets: their names (with https the `__Host-` prefix pins them to this
//! origin) and their attributes, in one place.

use axum_extra::extract::cookie::{Cookie, SameSite};

/// Cookie names; with https the `__Host-` prefix pins them to this origin, path `/`, Secure.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
}

impl CookiePolicy {
    pub fn session(&self) -> &'static str {
        if self.secure {
            "__Host-tp_session"
        } else {
            "tp_session"
        }
    }

    pub fn login(&self) -> &'static str {
        if self.secure {
            "__Host-tp_login"
        } else {
            "tp_login"
        }
    }

    /// Holds an invitation link's secret across the sign-in, so it never travels in a URL
    /// that is logged or stored.
    pub fn invitation(&self) -> &'static str {
        if self.secure {
            "__Host-tp_invite"
        } else {
            "tp_invite"
        }
    }

    /// A cookie of ours: whole site, never readable by scripts, `Secure` over https, sent on
    /// top-level navigations from other sites (the upstream's redirect back) but not on their
    /// subrequests.
    pub fn cookie(&self, name: &'static str, value: String, max_age_secs: u64) -> Cookie<'static> {
        Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .max_age(time::Duration::seconds(max_age_secs as i64))
            .build()
    }

    /// What removes cookie `name` from the browser.
    pub fn removal(&self, name: &'static str) -> Cookie<'static> {
        let mut c = self.cookie(name, String::new(), 0);
        c.make_removal();
        c
    }
}
