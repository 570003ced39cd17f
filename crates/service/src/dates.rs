//! Times for people and for machines, written one way everywhere (pages, emails, the CLI).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn at(unix: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(unix).ok()
}

/// A calendar date (UTC) for people: `2026-12-02`.
pub fn date(unix: i64) -> String {
    at(unix)
        .and_then(|t| {
            t.format(time::macros::format_description!("[year]-[month]-[day]"))
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A time for people, to the minute (UTC): `2026-12-02 14:03 UTC`.
pub fn datetime(unix: i64) -> String {
    at(unix)
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// RFC 3339 for machines and precise displays: `2026-12-02T14:03:05Z`.
pub fn rfc3339(unix: i64) -> String {
    at(unix)
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_instant_three_ways() {
        let t = 1_764_684_185; // 2025-12-02T14:03:05Z
        assert_eq!(date(t), "2025-12-02");
        assert_eq!(datetime(t), "2025-12-02 14:03 UTC");
        assert_eq!(rfc3339(t), "2025-12-02T14:03:05Z");
        assert_eq!(
            date(i64::MAX),
            i64::MAX.to_string(),
            "out of range: the number"
        );
    }
}
