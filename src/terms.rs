//! The terms of use and privacy policy: one versioned document, Markdown from the file that
//! `accounts.terms_document` names (or the built-in `config/terms.md`), rendered once at
//! start-up. `accounts.terms_version` names the version; people who accepted an earlier one
//! accept the current one at their next sign-in (`/terms/accept`).
//!
//! The document is the operator's, but it is still shown inside TechPass's pages: raw HTML in
//! it is shown as text, images are dropped (the pages load nothing from elsewhere), and links
//! keep only `https:`, `http:`, `mailto:` and same-site targets.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

use crate::config::ConfigError;
use techpass_service::settings::AccountsConfig;

const BUILT_IN: &str = include_str!("../config/terms.md");
/// A terms document larger than this is refused at start-up (a wrong file, not a policy).
const MAX_BYTES: u64 = 512 * 1024;

#[derive(Debug, Clone)]
pub struct Terms {
    pub version: String,
    /// The document as HTML, safe to embed in a page.
    pub html: String,
}

impl Terms {
    /// The configured document, read and rendered; an unreadable, oversized or non-UTF-8 file
    /// stops start-up naming `accounts.terms_document`.
    pub fn load(accounts: &AccountsConfig) -> Result<Terms, ConfigError> {
        let path = accounts.terms_document.trim();
        let text = if path.is_empty() {
            BUILT_IN.to_string()
        } else {
            let key = "accounts.terms_document";
            let size = std::fs::metadata(path)
                .map_err(|e| ConfigError::for_key(key, format!("cannot be read ({path}: {e})")))?
                .len();
            if size > MAX_BYTES {
                return Err(ConfigError::for_key(
                    key,
                    format!("is {size} bytes; at most {MAX_BYTES} are allowed ({path})"),
                ));
            }
            std::fs::read_to_string(path)
                .map_err(|e| ConfigError::for_key(key, format!("cannot be read ({path}: {e})")))?
        };
        Ok(Terms {
            version: accounts.terms_version.clone(),
            html: render(&text),
        })
    }
}

/// Markdown to HTML, with raw HTML escaped, images dropped and links limited to safe schemes.
fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let events = Parser::new_ext(markdown, options).filter_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        // An image's tags go; its description stays, as text.
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Some(Event::Start(Tag::Link {
            link_type,
            dest_url: if safe_link(&dest_url) {
                dest_url
            } else {
                CowStr::Borrowed("#")
            },
            title,
            id,
        })),
        other => Some(other),
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

fn safe_link(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    ["https:", "http:", "mailto:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
        || (lower.starts_with('/') && !lower.starts_with("//"))
        || lower.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_rendered_without_anything_active() {
        let html = render(
            "# Terms\n\nRead <script>alert(1)</script> this.\n\n<img src=x onerror=alert(1)>\n\n\
             [ok](https://gov.sg/terms) [mail](mailto:desk@gov.sg) [here](/portal) \
             [bad](javascript:alert(1)) [data](data:text/html,x) [proto](//evil.example)\n\n\
             ![a tracker](https://evil.example/pixel.png)\n",
        );
        assert!(html.contains("<h1>Terms</h1>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("a tracker"),
            "the image's description stays: {html}"
        );
        assert!(html.contains(r#"href="https://gov.sg/terms""#), "{html}");
        assert!(html.contains(r#"href="mailto:desk@gov.sg""#), "{html}");
        assert!(html.contains(r#"href="/portal""#), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("data:text"), "{html}");
        assert!(!html.contains("//evil.example"), "{html}");
    }

    fn accounts(document: &str) -> AccountsConfig {
        AccountsConfig {
            terms_version: "2027-01".into(),
            terms_document: document.into(),
            officer_domains: vec![],
            invite_only_domains: vec![],
            vendor_local_part_marker: String::new(),
        }
    }

    #[test]
    fn the_document_comes_from_configuration() {
        let built_in = Terms::load(&accounts("")).unwrap();
        assert_eq!(built_in.version, "2027-01");
        assert!(built_in
            .html
            .contains("<h1>Terms of use and privacy policy</h1>"));

        let dir = std::env::temp_dir().join(format!("techpass-terms-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("terms.md");
        std::fs::write(&file, "# Agency terms\n\nVersion two.\n").unwrap();
        let configured = Terms::load(&accounts(file.to_str().unwrap())).unwrap();
        assert!(configured.html.contains("<h1>Agency terms</h1>"));

        let missing = Terms::load(&accounts("/nonexistent/terms.md")).unwrap_err();
        assert!(
            missing.message.contains("`accounts.terms_document`"),
            "{}",
            missing.message
        );
        let big = dir.join("big.md");
        std::fs::write(&big, vec![b'a'; (MAX_BYTES + 1) as usize]).unwrap();
        let refused = Terms::load(&accounts(big.to_str().unwrap())).unwrap_err();
        assert!(refused.message.contains("at most"), "{}", refused.message);
        let binary = dir.join("binary.md");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        assert!(Terms::load(&accounts(binary.to_str().unwrap())).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
