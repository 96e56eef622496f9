//! Separates what a customer newly wrote from the mail they quote and their signature.
//!
//! Mail clients quote in a few recognisable ways: a trailing block of `>` lines under an
//! attribution ("On …, Ada wrote:", "Am … schrieb …:", "Le … a écrit :"), or Outlook's
//! unquoted original under "-----Original Message-----" or a "From: / Sent: / To:" header
//! block. A signature follows the line "-- ". Everything from the first of these on is the
//! quoted part; an inline reply (quotes interleaved with answers) is kept whole, as is a text
//! that would otherwise leave nothing new.

/// A reply split into its new text and what it quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// What the sender wrote themselves.
    pub new: String,
    /// The quoted mail and the signature below the new text, if there were any.
    pub quoted: Option<String>,
}

/// Splits a plain-text reply into its new text and the quoted part (quote and signature).
pub fn split_reply(text: &str) -> Reply {
    let whole = || Reply {
        new: text.to_owned(),
        quoted: None,
    };
    let normalized = text.replace("\r\n", "\n");
    let lines: Vec<&str> = normalized.split('\n').collect();

    let quote_start = [outlook_start(&lines), trailing_quote_start(&lines)]
        .into_iter()
        .flatten()
        .min();
    let before_quote = &lines[..quote_start.unwrap_or(lines.len())];
    // Quoted lines above the cut mean answers were written between the quotes: an inline
    // reply, whose new text cannot be told from its quotes line by line. Keep all of it.
    if before_quote.iter().any(|line| is_quoted(line)) {
        return whole();
    }
    let cut = signature_start(before_quote).or(quote_start);
    let Some(cut) = cut else {
        return whole();
    };

    let new = lines[..cut].join("\n");
    let new = new.trim_end().trim_start_matches('\n');
    if new.trim().is_empty() {
        return whole();
    }
    let quoted = lines[cut..].join("\n");
    let quoted = quoted.trim_end().trim_start_matches('\n');
    Reply {
        new: new.to_owned(),
        quoted: (!quoted.trim().is_empty()).then(|| quoted.to_owned()),
    }
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// The start of the block of `>` lines (and blank lines) that ends the text, with the
/// attribution line(s) right above it.
fn trailing_quote_start(lines: &[&str]) -> Option<usize> {
    let mut start = lines.len();
    while start > 0 && (is_quoted(lines[start - 1]) || is_blank(lines[start - 1])) {
        start -= 1;
    }
    if !lines[start..].iter().any(|line| is_quoted(line)) {
        return None;
    }
    // Blank lines between the attribution and the quote belong to the quote.
    let mut above = start;
    while above > 0 && is_blank(lines[above - 1]) {
        above -= 1;
    }
    if above == 0 || !is_attribution(lines[above - 1]) {
        return Some(start);
    }
    // Gmail wraps a long attribution: "On …, Example Support <" / "support@example.org> wrote:".
    if above > 1 && starts_attribution(lines[above - 2]) && !is_attribution(lines[above - 2]) {
        return Some(above - 2);
    }
    Some(above - 1)
}

/// "On … wrote:", "Am … schrieb …:", "… schrieb am …:", "Le … a écrit :", and their
/// Spanish, Dutch, Italian, Portuguese and Scandinavian cousins.
fn is_attribution(line: &str) -> bool {
    let line = line.trim().to_lowercase();
    if line.is_empty() || line.len() > 400 || !line.ends_with(':') {
        return false;
    }
    let body = line.trim_end_matches(':').trim_end();
    const VERBS: [&str; 9] = [
        "wrote",
        "a écrit",
        "escribió",
        "schreef",
        "ha scritto",
        "escreveu",
        "skrev",
        "kirjoitti",
        "napisał",
    ];
    VERBS.iter().any(|verb| body.ends_with(verb)) || line.contains("schrieb")
}

/// The opening words of an attribution in the languages of [`is_attribution`].
fn starts_attribution(line: &str) -> bool {
    const OPENERS: [&str; 9] = [
        "On ", "Am ", "Le ", "El ", "Op ", "Il ", "Em ", "Den ", "W dniu ",
    ];
    OPENERS
        .iter()
        .any(|opener| line.trim_start().starts_with(opener))
}

/// Outlook's original-message separators, or its header block of the quoted mail.
fn outlook_start(lines: &[&str]) -> Option<usize> {
    (0..lines.len()).find(|&i| {
        let line = lines[i].trim();
        is_original_message_separator(line)
            || (is_underscore_rule(line)
                && next_non_blank(lines, i + 1).is_some_and(|j| header_block_at(lines, j)))
            || (header_block_at(lines, i) && !forwarded_above(lines, i))
    })
}

/// A forwarded mail ("---------- Forwarded message ---------" above its header block) is
/// what the customer wants us to read, not a quote of our own mail.
fn forwarded_above(lines: &[&str], i: usize) -> bool {
    const MARKERS: [&str; 5] = [
        "forwarded message",
        "weitergeleitete nachricht",
        "message transféré",
        "mensaje reenviado",
        "messaggio inoltrato",
    ];
    let Some(above) = (0..i).rev().find(|&j| !is_blank(lines[j])) else {
        return false;
    };
    let lower = lines[above].to_lowercase();
    MARKERS.iter().any(|marker| lower.contains(marker))
}

fn next_non_blank(lines: &[&str], from: usize) -> Option<usize> {
    (from..lines.len()).find(|&i| !is_blank(lines[i]))
}

fn is_original_message_separator(line: &str) -> bool {
    const NAMES: [&str; 8] = [
        "original message",
        "ursprüngliche nachricht",
        "original-nachricht",
        "message d'origine",
        "oorspronkelijk bericht",
        "messaggio originale",
        "mensaje original",
        "mensagem original",
    ];
    let lower = line.to_lowercase();
    lower.starts_with("---") && NAMES.iter().any(|name| lower.contains(name))
}

/// Outlook's "________________________________" above the header block of the original.
fn is_underscore_rule(line: &str) -> bool {
    line.len() >= 10 && line.chars().all(|c| c == '_')
}

/// A "From:" line followed by at least two more header fields (Sent, To, Subject…), in the
/// languages Outlook writes them; text generated from HTML may mark the names "*From:*".
fn header_block_at(lines: &[&str], i: usize) -> bool {
    const FROM: [&str; 8] = [
        "from:", "von:", "de:", "van:", "da:", "från:", "fra:", "od:",
    ];
    const FIELDS: [&str; 27] = [
        "sent:",
        "date:",
        "to:",
        "cc:",
        "subject:",
        "gesendet:",
        "datum:",
        "an:",
        "betreff:",
        "envoyé:",
        "à:",
        "objet:",
        "verzonden:",
        "aan:",
        "onderwerp:",
        "inviato:",
        "a:",
        "oggetto:",
        "enviado:",
        "para:",
        "asunto:",
        "fecha:",
        "skickat:",
        "till:",
        "ämne:",
        "sendt:",
        "emne:",
    ];
    if !header_field(lines[i]).is_some_and(|name| FROM.contains(&name.as_str())) {
        return false;
    }
    lines[i + 1..]
        .iter()
        .take(4)
        .filter_map(|line| header_field(line))
        .filter(|name| FIELDS.contains(&name.as_str()))
        .count()
        >= 2
}

/// The lower-cased field name of a header-like line with its colon ("envoyé :" → "envoyé:").
fn header_field(line: &str) -> Option<String> {
    let line = line.trim().replace('*', "");
    let (name, _) = line.split_once(':')?;
    let name = name.trim_end();
    if name.is_empty() || name.len() > 20 || name.contains(char::is_whitespace) {
        return None;
    }
    Some(format!("{}:", name.to_lowercase()))
}

/// Where the signature of the new text starts: the line "-- " (RFC 3676), or a mobile
/// client's "Sent from my iPhone" as the last line.
fn signature_start(lines: &[&str]) -> Option<usize> {
    if let Some(i) = lines.iter().position(|line| *line == "-- ") {
        return Some(i);
    }
    let last = (0..lines.len()).rev().find(|&i| !is_blank(lines[i]))?;
    is_mobile_signature(lines[last]).then_some(last)
}

fn is_mobile_signature(line: &str) -> bool {
    let lower = line.trim().to_lowercase();
    lower.len() < 80
        && ([
            "sent from my ",
            "sent from mail for ",
            "get outlook for ",
            "envoyé de mon ",
        ]
        .iter()
        .any(|start| lower.starts_with(start))
            || (lower.starts_with("von meinem ") && lower.ends_with(" gesendet"))
            || lower.starts_with("gesendet von meinem "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> (String, Option<String>) {
        let reply = split_reply(text);
        (reply.new, reply.quoted)
    }

    #[test]
    fn gmail_top_posting() {
        let text = "Thanks, that fixed it!\n\n\
            On Mon, Mar 3, 2025 at 10:15 AM Example Support <support@example.org> wrote:\n\n\
            > Hello Ada,\n>\n> please restart the printer.\n>\n> --\n> Example Support\n";
        let (new, quoted) = split(text);
        assert_eq!(new, "Thanks, that fixed it!");
        let quoted = quoted.expect("quoted part");
        assert!(quoted.starts_with("On Mon, Mar 3, 2025"), "{quoted}");
        assert!(quoted.ends_with("> Example Support"), "{quoted}");
    }

    #[test]
    fn gmail_wrapped_attribution() {
        let text = "Still broken.\n\n\
            On Mon, Mar 3, 2025 at 10:15 AM Example Support Team of Example Incorporated <\n\
            support@example.org> wrote:\n\n> Please restart.\n";
        let (new, quoted) = split(text);
        assert_eq!(new, "Still broken.");
        assert!(quoted.unwrap().starts_with("On Mon"));
    }

    #[test]
    fn outlook_with_underscore_rule_and_header_block() {
        let text = "Hi,\r\n\r\nit works now.\r\n\r\nBest regards\r\nBob\r\n\r\n\
            ________________________________\r\n\
            From: Example Support <support@example.org>\r\n\
            Sent: Monday, March 3, 2025 10:15 AM\r\n\
            To: Bob <bob@example.com>\r\n\
            Subject: [#1042] Printer\r\n\r\n\
            Hello Bob,\r\nplease restart the printer.\r\n";
        let (new, quoted) = split(text);
        assert_eq!(new, "Hi,\n\nit works now.\n\nBest regards\nBob");
        let quoted = quoted.unwrap();
        assert!(quoted.starts_with("_____"));
        assert!(quoted.contains("please restart the printer."));
    }

    #[test]
    fn outlook_original_message_separator() {
        let text = "Please close the ticket.\n\n-----Original Message-----\n\
            From: Example Support [mailto:support@example.org]\nSent: Monday, March 03, 2025 10:15\n\
            To: Bob\nSubject: RE: [#1042] Printer\n\nIs it fixed?\n";
        let (new, quoted) = split(text);
        assert_eq!(new, "Please close the ticket.");
        assert!(quoted.unwrap().starts_with("-----Original Message-----"));
    }

    #[test]
    fn german_outlook_header_block_from_html() {
        let text = "Danke, erledigt.\n\n*Von:* Example Support <support@example.org>\n\
            *Gesendet:* Montag, 3. März 2025 10:15\n*An:* Jörg Müller\n\
            *Betreff:* [#1042] Drucker\n\nHallo Jörg,\n";
        let (new, quoted) = split(text);
        assert_eq!(new, "Danke, erledigt.");
        assert!(quoted.unwrap().starts_with("*Von:*"));
    }

    #[test]
    fn apple_mail_quoted_attribution_and_mobile_signature() {
        let text = "Yes, that is right.\n\nSent from my iPhone\n\n\
            > On 3 Mar 2025, at 10:15, Example Support <support@example.org> wrote:\n\
            > \n> Is the printer switched on?\n";
        let (new, quoted) = split(text);
        assert_eq!(new, "Yes, that is right.");
        let quoted = quoted.unwrap();
        assert!(quoted.starts_with("Sent from my iPhone"));
        assert!(quoted.contains("> Is the printer switched on?"));
    }

    #[test]
    fn apple_mail_plain_attribution() {
        let text = "It is on.\n\n\
            On 3. Mar 2025, at 10:15, Example Support <support@example.org> wrote:\n\n\
            > Is the printer switched on?\n";
        assert_eq!(split(text).0, "It is on.");
    }

    #[test]
    fn german_thunderbird_with_signature() {
        let text = "Hallo,\n\nder Drucker geht wieder.\n\nViele Grüße\nJörg\n\n-- \n\
            Jörg Müller\nMuster GmbH\n\n\
            Am 03.03.25 um 10:15 schrieb Example Support:\n> Hallo Jörg,\n>\n\
            > bitte starten Sie den Drucker neu.\n";
        let (new, quoted) = split(text);
        assert_eq!(
            new,
            "Hallo,\n\nder Drucker geht wieder.\n\nViele Grüße\nJörg"
        );
        let quoted = quoted.unwrap();
        assert!(quoted.starts_with("-- \nJörg Müller"), "{quoted}");
        assert!(quoted.contains("schrieb Example Support:"));
    }

    #[test]
    fn german_name_first_attribution() {
        let text = "Passt.\n\nExample Support <support@example.org> schrieb am Mo., 3. März 2025, 10:15:\n\
            > Passt das so?\n";
        assert_eq!(split(text).0, "Passt.");
    }

    #[test]
    fn french_attribution() {
        let text = "Merci !\n\nLe lun. 3 mars 2025 à 10:15, Example Support \
            <support@example.org> a écrit :\n> Bonjour,\n";
        let (new, quoted) = split(text);
        assert_eq!(new, "Merci !");
        assert!(quoted.unwrap().starts_with("Le lun."));
    }

    #[test]
    fn forwarded_mail_is_new() {
        let text = "Please look at the mail below.\n\n\
            ---------- Forwarded message ---------\n\
            From: Printer Vendor <noreply@vendor.example>\nDate: Mon, Mar 3, 2025 at 9:00 AM\n\
            Subject: Your warranty\nTo: <ada@example.com>\n\nYour warranty has expired.\n";
        assert_eq!(split(text), (text.to_owned(), None));
    }

    #[test]
    fn signature_without_quote() {
        let (new, quoted) = split("Thanks\n-- \nBob Smith\nACME Corp\n");
        assert_eq!(new, "Thanks");
        assert_eq!(quoted.as_deref(), Some("-- \nBob Smith\nACME Corp"));
    }

    #[test]
    fn inline_reply_is_kept_whole() {
        let text = "On Mon, Mar 3, 2025 at 10:15 AM Example Support <support@example.org> wrote:\n\
            > Which model is it?\n\nHP LaserJet 4000.\n\n> Is it switched on?\n\nYes.\n";
        assert_eq!(split(text), (text.to_owned(), None));
    }

    #[test]
    fn inline_reply_ending_in_a_quote_is_kept_whole() {
        let text = "> Which model?\nHP LaserJet.\n> Thanks, we will look into it.\n";
        assert_eq!(split(text), (text.to_owned(), None));
    }

    #[test]
    fn only_quoted_text_stays_new() {
        let text = "> Is the printer switched on?\n> \n> Example Support\n";
        assert_eq!(split(text), (text.to_owned(), None));
        let attribution_only = "On Mon, Mar 3, 2025, Example Support wrote:\n> Hello\n";
        assert_eq!(split(attribution_only).0, attribution_only);
        let signature_only = "-- \nBob\n";
        assert_eq!(split(signature_only).0, signature_only);
    }

    #[test]
    fn plain_text_is_untouched() {
        let text = "My printer prints blank pages.\nOn Monday it still worked.\n\n-- not a sig\n";
        assert_eq!(split(text), (text.to_owned(), None));
        assert_eq!(split(""), (String::new(), None));
    }

    #[test]
    fn a_mention_of_wrote_without_quote_is_new() {
        let text = "My colleague wrote:\nthe printer is fine.\n";
        assert_eq!(split(text), (text.to_owned(), None));
    }
}
