use std::sync::LazyLock;

/// Built once: an ammonia builder is a handful of hash sets, no need to rebuild per mail.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(builder);

fn builder() -> ammonia::Builder<'static> {
    let mut builder = ammonia::Builder::default();
    // The defaults already drop scripts, styles, event handlers, forms and javascript:
    // URLs, and put rel="noopener noreferrer" on links. Inline images point at their
    // MIME part with `cid:`, which must survive so they can be resolved later.
    builder
        .add_url_schemes(["cid"])
        // Mail HTML usually carries a <head><title>; its text is not part of the body.
        .add_clean_content_tags(["title"])
        .link_rel(Some("noopener noreferrer"));
    builder
}

/// Sanitizes HTML for display in the admin page.
///
/// Scripts, styles, event handlers, forms and `javascript:` URLs are removed; links get
/// `rel="noopener noreferrer"`; `cid:` image sources are kept so inline images can be
/// resolved against the message's attachments.
pub fn sanitize_html(html: &str) -> String {
    SANITIZER.clean(html).to_string()
}

/// [`sanitize_html`] for showing a mail beside its attachments: an image `src="cid:…"` becomes
/// the URL that `inline` gives for that Content-ID (compared without angle brackets and
/// percent-encoding, ignoring case), and every other image source is dropped. A mail then shows
/// only images from its own attachments, served by us, and never a remote one that would tell
/// its sender when it was read.
pub fn sanitize_html_with_images(html: &str, inline: &[(String, String)]) -> String {
    let inline: Vec<(String, String)> = inline
        .iter()
        .map(|(content_id, url)| (content_id_key(content_id), url.clone()))
        .collect();
    let mut builder = builder();
    builder.attribute_filter(move |element, attribute, value| {
        if element != "img" || attribute != "src" {
            return Some(value.into());
        }
        let content_id = value
            .get(..4)
            .filter(|scheme| scheme.eq_ignore_ascii_case("cid:"))
            .map(|_| content_id_key(&percent_decoded(&value[4..])))?;
        inline
            .iter()
            .find(|(known, _)| *known == content_id)
            .map(|(_, url)| url.clone().into())
    });
    builder.clean(html).to_string()
}

fn content_id_key(id: &str) -> String {
    let id = id.trim();
    id.strip_prefix('<')
        .and_then(|id| id.strip_suffix('>'))
        .unwrap_or(id)
        .to_ascii_lowercase()
}

/// `%40` and the like decoded (RFC 2392 `cid:` URLs are percent-encoded); a broken escape stays.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = (bytes[at] == b'%')
            .then(|| text.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                at += 3;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_active_content() {
        let dirty = r#"<p onclick="steal()">Hi<script>alert(1)</script></p><style>p{}</style><form action="x"><input name="a">Go</form><a href="javascript:alert(1)">x</a>"#;
        assert_eq!(
            sanitize_html(dirty),
            r#"<p>Hi</p>Go<a rel="noopener noreferrer">x</a>"#
        );
    }

    #[test]
    fn keeps_links_and_cid_images() {
        assert_eq!(
            sanitize_html(r#"<a href="https://example.com/">x</a><img src="cid:logo@x">"#),
            r#"<a href="https://example.com/" rel="noopener noreferrer">x</a><img src="cid:logo@x">"#
        );
    }

    #[test]
    fn drops_head_title() {
        assert_eq!(
            sanitize_html(
                "<html><head><title>Newsletter</title></head><body><p>Body</p></body></html>"
            ),
            "<p>Body</p>"
        );
    }

    #[test]
    fn cid_images_point_at_our_urls_and_other_images_go() {
        let inline = [(
            "<Logo@Example.org>".to_owned(),
            "/tickets/7/attachments/3/preview".to_owned(),
        )];
        assert_eq!(
            sanitize_html_with_images(
                r#"<img src="cid:logo%40example.org" alt="logo"><img src="cid:other@x"><img src="https://tracker.example/p.gif"><img src="/admin/agents"><a href="https://example.com/">x</a>"#,
                &inline
            ),
            r#"<img src="/tickets/7/attachments/3/preview" alt="logo"><img><img><img><a href="https://example.com/" rel="noopener noreferrer">x</a>"#
        );
    }
}
