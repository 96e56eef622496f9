//! The reply form with files (multipart, CSRF checked like every form), its size limit, the
//! stop when new messages arrived since the page was loaded, inline mail images and previews.

use super::*;
use crate::support::web::{Answer, Browser, multipart, post_body};

/// Posts the reply form of ticket `number` as a browser does: multipart, with `fields` after
/// the CSRF token (when `with_token`), and `files`.
async fn post_reply(
    app: &WebApp,
    browser: &Browser,
    number: i64,
    with_token: bool,
    fields: &[(&str, &str)],
    files: &[(&str, &str, &[u8])],
) -> Answer {
    let mut all = Vec::new();
    if with_token {
        all.push(("csrf", browser.csrf.as_str()));
    }
    all.extend_from_slice(fields);
    post_body(
        app,
        &format!("/tickets/{number}/reply"),
        &[("cookie", browser.cookie.as_str())],
        multipart(&all, files),
    )
    .await
}

/// The `last_seen_message_id` the page's reply form carries.
fn last_seen_of(page: &str) -> String {
    let at = page
        .find("name=\"last_seen_message_id\" value=\"")
        .map(|at| at + "name=\"last_seen_message_id\" value=\"".len())
        .unwrap_or_else(|| panic!("no last seen id in {page}"));
    page[at..at + page[at..].find('"').expect("closed")].to_owned()
}

store_test! {
    #[tokio::test]
    async fn a_reply_with_files_goes_through_the_page_and_needs_the_token(app: WebApp) {
        let number = app.ticket("form-1@example.org", "Contract", "Please send it").await;
        let admin = app.admin().await;
        let page = app.get(&format!("/tickets/{number}"), Some(&admin)).await;
        let form = section(&page.body, "reply-form");
        assert!(form.contains("enctype=\"multipart/form-data\""), "{form}");
        assert!(form.contains("type=\"file\" name=\"files\" multiple"), "{form}");
        let seen = last_seen_of(&page.body);

        // Without the token nothing is stored.
        let forged = post_reply(&app, &admin, number, false,
            &[("text", "Forged"), ("last_seen_message_id", &seen)],
            &[("x.pdf", "application/pdf", b"%PDF-1.4 forged")]).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
        let wrong = post_body(&app, &format!("/tickets/{number}/reply"),
            &[("cookie", admin.cookie.as_str())],
            multipart(&[("csrf", "0000"), ("text", "Forged")], &[])).await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN);
        assert_eq!(app.detail(number).await.messages.len(), 1);

        let contract = b"%PDF-1.4 the contract".to_vec();
        let sent = post_reply(&app, &admin, number, true,
            &[("text", "Here is the contract and the plan."), ("last_seen_message_id", &seen)],
            &[("contract.pdf", "application/pdf", &contract), ("plan.txt", "text/plain", b"step 1"),
              // A file input left empty, as browsers send it.
              ("", "application/octet-stream", b"")]).await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
        let detail = app.detail(number).await;
        let reply = detail.messages.last().expect("the reply");
        assert_eq!(reply.body_text, "Here is the contract and the plan.");
        assert_eq!(reply.delivery_status.as_deref(), Some("pending"));
        let names: Vec<&str> = reply.attachments.iter().map(|a| a.filename.as_str()).collect();
        assert_eq!(names, ["contract.pdf", "plan.txt"]);
        let sha = reply.attachments[0].sha256.clone().expect("kept");
        assert_eq!(app.db.blobs().get(&sha).await.expect("stored"), contract);

        // The urlencoded form still works, as a note.
        let note = app.post(&format!("/tickets/{number}/reply"), &admin,
            &[("text", "Sent the contract."), ("note", "1")]).await;
        assert_eq!(note.status, StatusCode::SEE_OTHER, "{}", note.body);
    }
}

store_test! {
    #[tokio::test]
    async fn a_file_over_the_limit_brings_the_page_back_with_the_text(app: WebApp) {
        let mut config = support::web::config(&app.db);
        config.email_enabled = true;
        config.intake_limits.max_attachment_bytes = 100;
        let state = helpdesk::web::AppState::new(app.db.store.clone(), config);
        let router = helpdesk::web::router(state.clone());
        let app = WebApp { state, router, ..app };
        let number = app.ticket("form-2@example.org", "Contract", "Please send it").await;
        let admin = app.admin().await;
        let refused = post_reply(&app, &admin, number, true,
            &[("text", "Here is the scan.")],
            &[("scan.png", "image/png", &[0u8; 101])]).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        let error = section(&refused.body, "reply-error");
        assert!(error.contains("scan.png") && error.contains("intake.max_attachment_bytes"), "{error}");
        assert!(section(&refused.body, "reply-form").contains("Here is the scan.</textarea>"));
        assert_eq!(app.detail(number).await.messages.len(), 1, "nothing sent");
    }
}

store_test! {
    #[tokio::test]
    async fn a_reply_on_an_old_page_is_stopped_and_shows_what_is_new(app: WebApp) {
        let number = app.ticket("form-3@example.org", "Contract", "Please send it").await;
        let admin = app.admin().await;
        let page = app.get(&format!("/tickets/{number}"), Some(&admin)).await;
        let seen = last_seen_of(&page.body);
        let answer = app.db.intake.accept_email(support::mail(
            &[
                "From: Carla Customer <carla@example.org>",
                &format!("Subject: Re: [#{number}] Contract"),
                "Message-ID: <form-3b@example.org>",
                "In-Reply-To: <form-3@example.org>",
            ],
            "Never mind, I found it.\nThanks anyway.",
        )).await.expect("taken in");
        assert!(matches!(answer, helpdesk::intake::Outcome::Threaded { .. }), "{answer:?}");
        let newest = app.detail(number).await.messages.last().expect("new").id;

        let stopped = post_reply(&app, &admin, number, true,
            &[("text", "Here is the contract."), ("last_seen_message_id", &seen)],
            &[("contract.pdf", "application/pdf", b"%PDF-1.4")]).await;
        assert_eq!(stopped.status, StatusCode::CONFLICT, "{}", stopped.body);
        assert_eq!(app.detail(number).await.messages.len(), 2, "nothing sent");
        let notice = &stopped.body[stopped.body.find("id=\"reply-unseen\"").expect("notice")..];
        assert!(notice.contains(&format!("href=\"#message-{newest}\"")), "{notice}");
        assert!(notice.contains("Never mind, I found it."), "{notice}");
        assert!(stopped.body.contains(&format!("class=\"message inbound kind-public unseen\" id=\"message-{newest}\"")));
        assert!(stopped.body.contains("id=\"reply-files-dropped\""));
        let form = section(&stopped.body, "reply-form");
        assert!(form.contains("Here is the contract.</textarea>"), "{form}");
        assert!(form.contains(">Send anyway</button>"), "{form}");
        assert_eq!(last_seen_of(&stopped.body), newest.to_string());

        // Send anyway: the form as it came back.
        let sent = post_reply(&app, &admin, number, true,
            &[("text", "Here is the contract."), ("last_seen_message_id", &newest.to_string())],
            &[]).await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
        assert_eq!(app.detail(number).await.messages.len(), 3);
    }
}

fn mail_with_inline_image(id: &str) -> Vec<u8> {
    format!(
        "From: Carla Customer <carla@example.org>\r\nSubject: Screenshot\r\nMessage-ID: <{id}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
         --outer\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
         --rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <p>The error:</p><img src=\"cid:shot@example.org\" alt=\"screenshot\"><img src=\"https://tracker.example/p.gif\">\r\n\
         --rel\r\nContent-Type: image/png\r\nContent-ID: <shot@example.org>\r\n\
         Content-Disposition: inline; filename=\"shot.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         iVBORw0KGgpzaG90\r\n--rel--\r\n\
         --outer\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"report.pdf\"\r\n\r\n%PDF-1.4 report\r\n\
         --outer\r\nContent-Type: text/html; name=\"page.html\"\r\n\
         Content-Disposition: attachment; filename=\"page.html\"\r\n\r\n<script>alert(1)</script>\r\n\
         --outer--\r\n"
    )
    .into_bytes()
}

store_test! {
    #[tokio::test]
    async fn inline_images_show_from_our_previews_and_previews_are_sandboxed(app: WebApp) {
        let number = match app.db.intake.accept_email(mail_with_inline_image("cid-1@example.org"))
            .await.expect("taken in")
        {
            helpdesk::intake::Outcome::Created { number, .. } => number,
            other => panic!("{other:?}"),
        };
        let admin = app.admin().await;
        let detail = app.detail(number.get()).await;
        let file = |name: &str| {
            detail.messages[0].attachments.iter().find(|a| a.filename == name)
                .unwrap_or_else(|| panic!("{name} in {:?}", detail.messages[0].attachments)).id
        };
        let (shot, report, html) = (file("shot.png"), file("report.pdf"), file("page.html"));
        let page = app.get(&format!("/tickets/{number}"), Some(&admin)).await;
        assert_eq!(page.status, StatusCode::OK);
        let shot_url = format!("/tickets/{number}/attachments/{shot}/preview");
        assert!(
            page.body.contains(&format!("<img src=\"{shot_url}\" alt=\"screenshot\">")),
            "{}",
            page.body
        );
        assert!(!page.body.contains("tracker.example") && !page.body.contains("cid:"));
        // Preview links for the image and the PDF, not for the HTML file.
        assert!(page.body.contains(&format!("/tickets/{number}/attachments/{report}/preview")));
        assert!(!page.body.contains(&format!("/tickets/{number}/attachments/{html}/preview")));

        let image = app.get(&shot_url, Some(&admin)).await;
        assert_eq!(image.status, StatusCode::OK);
        assert_eq!(image.headers[header::CONTENT_TYPE], "image/png");
        assert!(image.headers[header::CONTENT_DISPOSITION].to_str().expect("ascii")
            .starts_with("inline; filename=\"shot.png\""));
        assert_eq!(image.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let policy = image.headers[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii");
        assert!(policy.starts_with("sandbox"), "{policy}");
        let pdf = app.get(&format!("/tickets/{number}/attachments/{report}/preview"), Some(&admin)).await;
        assert_eq!(pdf.headers[header::CONTENT_TYPE], "application/pdf");
        assert!(pdf.headers[header::CONTENT_DISPOSITION].to_str().expect("ascii").starts_with("inline;"));
        // Anything else is a download even at the preview address.
        let other = app.get(&format!("/tickets/{number}/attachments/{html}/preview"), Some(&admin)).await;
        assert_eq!(other.headers[header::CONTENT_TYPE], "application/octet-stream");
        assert!(other.headers[header::CONTENT_DISPOSITION].to_str().expect("ascii").starts_with("attachment;"));
        assert!(other.headers[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii").starts_with("sandbox"));
        // Not for agents who cannot see the ticket.
        let agent = app.agent().await;
        assert_eq!(app.get(&shot_url, Some(&agent)).await.status, StatusCode::NOT_FOUND);
    }
}
