//! Lists and times as pages show them: 50 lines a page (`?page=N`) with next and previous
//! links, the window to ask a store for, and dates for people. Pure helpers, no IO.

use serde::Serialize;

/// Lists show this many lines per page.
pub const PER_PAGE: usize = 50;

/// Next and previous links of a list.
#[derive(Debug, Serialize)]
pub struct Pager {
    pub page: u32,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// `base` with `params` (empty ones dropped) and the page number.
    pub fn new(base: &str, params: &[(&str, &str)], page: u32, has_next: bool) -> Pager {
        let href = |n: u32| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
                q.append_pair(k, v);
            }
            q.append_pair("page", &n.to_string());
            format!("{base}?{}", q.finish())
        };
        Pager {
            page,
            prev: (page > 1).then(|| href(page - 1)),
            next: has_next.then(|| href(page + 1)),
        }
    }
}

/// (limit, offset) to ask a store for page `page`: one more than a page, to know whether there
/// is a next one.
pub fn window(page: u32) -> (i64, i64) {
    let offset = (page.saturating_sub(1) as usize).saturating_mul(PER_PAGE);
    ((PER_PAGE + 1) as i64, offset as i64)
}

/// Cuts a page of a list fetched with [`window`]: the page, and whether another follows.
pub fn trim<T>(mut items: Vec<T>) -> (Vec<T>, bool) {
    let more = items.len() > PER_PAGE;
    items.truncate(PER_PAGE);
    (items, more)
}

/// Page `page` of a whole list held in memory, and whether another follows.
pub fn slice<T>(items: Vec<T>, page: u32) -> (Vec<T>, bool) {
    let offset = (page.saturating_sub(1) as usize).saturating_mul(PER_PAGE);
    let more = items.len() > offset.saturating_add(PER_PAGE);
    (
        items.into_iter().skip(offset).take(PER_PAGE).collect(),
        more,
    )
}

pub use techpass_service::dates::{date, datetime};

/// `YYYY-MM-DD` from a date input, as the last second of that day (UTC): access "until" a
/// date includes the date.
pub fn end_of_day(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() + 86_399)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_slice_and_link() {
        let (page, more) = slice((0..120).collect::<Vec<_>>(), 2);
        assert_eq!((page.len(), page[0], more), (50, 50, true));
        let (page, more) = slice((0..120).collect::<Vec<_>>(), 3);
        assert_eq!((page.len(), more), (20, false));
        let (page, more) = trim((0..51).collect::<Vec<_>>());
        assert_eq!((page.len(), more), (50, true));
        let pager = Pager::new(
            "/portal/admin/audit",
            &[("event", "x"), ("actor", "")],
            2,
            true,
        );
        assert_eq!(
            pager.prev.as_deref(),
            Some("/portal/admin/audit?event=x&page=1")
        );
        assert_eq!(
            pager.next.as_deref(),
            Some("/portal/admin/audit?event=x&page=3")
        );
        assert_eq!(window(3), (51, 100));
    }

    #[test]
    fn dates_end_at_the_end_of_the_day() {
        assert_eq!(end_of_day("2027-01-31"), Some(1_801_439_999));
        assert_eq!(end_of_day("2027-02-30"), None);
        assert_eq!(end_of_day("soon"), None);
        assert_eq!(date(1_801_439_999), "2027-01-31");
        assert_eq!(datetime(1_801_439_999), "2027-01-31 23:59 UTC");
    }
}
