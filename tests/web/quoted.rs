//! A mail reply's quoted part: kept beside its new text and shown on the ticket page behind a
//! toggle; messages without one render as before.

use super::*;

store_test! {
    #[tokio::test]
    async fn a_replys_quoted_part_shows_behind_a_toggle(app: WebApp) {
        let number = app
            .ticket("q1@example.org", "Printer", "My printer does not print.")
            .await;
        let reply = support::mail(
            &[
                "From: Carla Customer <carla@example.org>",
                &format!("Subject: Re: [#{number}] Printer"),
                "Message-ID: <q2@example.org>",
                "In-Reply-To: <q1@example.org>",
            ],
            "Thanks, it prints again.\r\n\r\nOn Mon, Mar 3, 2025 at 10:00, Example Support wrote:\r\n\
             > Please restart the printer.\r\n> Example Support\r\n",
        );
        app.db.intake.accept_email(reply).await.expect("taken in");
        let admin = app.admin().await;
        let page = app.get(&format!("/tickets/{number}"), Some(&admin)).await;
        assert_eq!(page.status, StatusCode::OK);
        let body = page.body;

        let toggle = body
            .find("<details class=\"quoted\"><summary>Show quoted text</summary>")
            .unwrap_or_else(|| panic!("a toggle for the quote:\n{body}"));
        let end = toggle + body[toggle..].find("</details>").expect("the toggle ends");
        let inside = &body[toggle..end];
        assert!(inside.contains("On Mon, Mar 3, 2025"), "{inside}");
        assert!(inside.contains("&#62; Please restart the printer."), "{inside}");
        // The new text is outside the toggle, the quote only inside it.
        let new_text = body.find("Thanks, it prints again.").expect("the new text");
        assert!(new_text < toggle, "{body}");
        assert_eq!(body.matches("Please restart the printer.").count(), 1, "{body}");
        // The first mail quotes nothing: no toggle for it.
        assert_eq!(body.matches("<details class=\"quoted\">").count(), 1, "{body}");
        assert!(body.contains("My printer does not print."));
    }
}
