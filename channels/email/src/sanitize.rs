use std::sync::LazyLock;

/// Built once: an ammonia builder is a handful of hash sets, no need to rebuild per mail.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
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
});

/// Sanitizes HTML for display in the admin page.
///
/// Scripts, styles, event handlers, forms and `javascript:` URLs are removed; links get
/// `rel="noopener noreferrer"`; `cid:` image sources are kept so inline images can be
/// resolved against the message's attachments.
pub fn sanitize_html(html: &str) -> String {
    SANITIZER.clean(html).to_string()
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
}
