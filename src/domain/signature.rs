//! Signatures under mail: the agent's own, then the mailbox's, below one "-- " line (the
//! separator mail clients and our quote splitter know), in the text and the HTML body alike.

/// `text` and `html` with `signatures` (blank ones skipped) appended, in that order.
pub fn append(text: &str, html: Option<&str>, signatures: &[&str]) -> (String, Option<String>) {
    let signatures: Vec<&str> = signatures
        .iter()
        .map(|signature| signature.trim_matches(|c| c == '\n' || c == '\r'))
        .filter(|signature| !signature.trim().is_empty())
        .collect();
    if signatures.is_empty() {
        return (text.to_owned(), html.map(str::to_owned));
    }
    let signed_text = format!("{}\n\n-- \n{}\n", text.trim_end(), signatures.join("\n\n"));
    let signed_html = html.map(|html| {
        let block = format!(
            "<div class=\"signature\" style=\"color: #656d76;\"><p>-- <br>{}</p></div>",
            signatures
                .iter()
                .map(|signature| escape_lines(signature))
                .collect::<Vec<_>>()
                .join("</p><p>")
        );
        // A whole document (automatic mail) gets it inside its body.
        match html.rfind("</body>") {
            Some(end) => format!("{}{block}\n{}", &html[..end], &html[end..]),
            None => format!("{html}\n{block}"),
        }
    });
    (signed_text, signed_html)
}

/// Text as HTML: special characters escaped, line breaks kept.
fn escape_lines(text: &str) -> String {
    text.lines()
        .map(|line| {
            line.chars()
                .map(|c| match c {
                    '&' => "&amp;".to_owned(),
                    '<' => "&lt;".to_owned(),
                    '>' => "&gt;".to_owned(),
                    '"' => "&quot;".to_owned(),
                    '\'' => "&#39;".to_owned(),
                    c => c.to_string(),
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

#[cfg(test)]
mod tests {
    use super::append;

    #[test]
    fn the_agents_signature_comes_before_the_mailboxs_below_one_separator() {
        let (text, html) = append(
            "Try turning it off.\n\n",
            None,
            &["Ada Lovelace\nSecond level", "", "Example Billing"],
        );
        assert_eq!(
            text,
            "Try turning it off.\n\n-- \nAda Lovelace\nSecond level\n\nExample Billing\n"
        );
        assert_eq!(html, None);
        assert_eq!(text.matches("\n-- \n").count(), 1);
    }

    #[test]
    fn without_signatures_nothing_changes() {
        let (text, html) = append("Hello", Some("<p>Hello</p>"), &["", "  "]);
        assert_eq!(
            (text.as_str(), html.as_deref()),
            ("Hello", Some("<p>Hello</p>"))
        );
    }

    #[test]
    fn html_signatures_are_escaped_and_go_inside_the_body() {
        let (_, html) = append(
            "Hello",
            Some("<html><body><p>Hello</p></body></html>"),
            &["<b>Ada</b> & Co"],
        );
        let html = html.expect("html kept");
        assert!(html.contains("&lt;b&gt;Ada&lt;/b&gt; &amp; Co"), "{html}");
        assert!(!html.contains("<b>Ada"), "{html}");
        let signature = html.find("signature").expect("signature block");
        assert!(
            signature < html.find("</body>").expect("body end"),
            "{html}"
        );
    }
}
