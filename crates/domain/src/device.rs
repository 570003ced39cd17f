//! Device authorization (RFC 8628): where a device code stands. Vocabulary only; the store
//! moves a code between the states with compare-and-set updates.

/// `pending` → `approved` | `denied`; `approved` → `redeemed` (once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceStatus {
    /// Waiting for the person's decision.
    Pending,
    Approved,
    Denied,
    /// Approved and exchanged for tokens (once).
    Redeemed,
}

impl DeviceStatus {
    pub const ALL: [DeviceStatus; 4] = [
        DeviceStatus::Pending,
        DeviceStatus::Approved,
        DeviceStatus::Denied,
        DeviceStatus::Redeemed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Denied => "denied",
            DeviceStatus::Redeemed => "redeemed",
        }
    }

    pub fn parse(text: &str) -> Option<DeviceStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in DeviceStatus::ALL {
            assert_eq!(DeviceStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(DeviceStatus::parse("Pending"), None);
    }
}
