//! Narrow windows and accessibility. At 390 px (a phone) and 800 px no page scrolls sideways,
//! the list keeps subject, status, customer and assignee, the reply box follows the
//! conversation, the header stays compact and admin tables scroll in their own box; axe-core
//! finds nothing serious or critical on the main pages. Screenshots at both widths go to
//! target/screenshots/ (`390px-…`, `800px-…`).

use super::*;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use serde_json::Value;

const AXE: &str = "tests/fixtures/axe-core/axe.min.js";

/// axe-core's script, kept in the repository with its licence header (MPL-2.0).
fn axe_source() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(AXE);
    std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}. axe-core comes from npm: in a scratch directory run \
             `npm pack axe-core@4.14.1 && tar xzf axe-core-4.14.1.tgz`, then copy \
             package/axe.min.js and package/LICENSE to tests/fixtures/axe-core/",
            path.display()
        )
    })
}

/// axe-core's findings of serious or critical impact on the open page, one line each.
async fn serious_violations(client: &Client, axe: &str) -> Vec<String> {
    client
        .execute(&format!("{axe}\n;return typeof window.axe;"), vec![])
        .await
        .expect("axe-core loaded");
    let found = client
        .execute_async(
            r#"var done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ["violations"] }).then(function (results) {
              done(results.violations.map(function (v) {
                return { impact: v.impact, line: v.id + " (" + v.impact + "): " + v.help + " at " +
                  v.nodes.slice(0, 5).map(function (n) { return n.target.join(" "); }).join(", ") };
              }));
            }, function (error) { done([{ impact: "critical", line: "axe failed: " + error }]); });"#,
            vec![],
        )
        .await
        .expect("axe-core ran");
    let mut serious = Vec::new();
    for violation in found.as_array().into_iter().flatten() {
        let line = violation["line"].as_str().unwrap_or_default().to_owned();
        match violation["impact"].as_str() {
            Some("serious" | "critical") => serious.push(line),
            _ => eprintln!("axe-core, minor: {line}"),
        }
    }
    serious
}

async fn visit(session: &Session, path: &str) {
    session
        .client
        .goto(&format!("{}{path}", session.base))
        .await
        .expect("page");
    wait_on_page(&session.client, "//main//h1").await;
}

async fn script(client: &Client, source: &str) -> Value {
    client
        .execute(source, vec![])
        .await
        .unwrap_or_else(|error| panic!("{source}: {error}"))
}

fn px(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{value} is not a number"))
}

/// A ticket with an internal note (so the conversation has two messages), and a rule.
async fn some_data(app: &WebApp) -> i64 {
    let number = app
        .ticket_by(
            "Maximiliane Verylongname-Customer <maximiliane.verylongname@customers.example.org>",
            "narrow-1@example.org",
            "The invoice for the third quarter arrived twice and the second one has the wrong VAT number",
            "Hello,\n\nthe invoice https://billing.example.org/invoices/2026/Q3/0000012345?download=pdf&copy=2 \
             came twice. Which one is right?\n\nThanks",
        )
        .await;
    app.ticket(
        "narrow-2@example.org",
        "Password reset",
        "It does not arrive.",
    )
    .await;
    let admin = app.admin().await;
    let noted = app
        .post(
            &format!("/tickets/{number}/reply"),
            &admin,
            &[("text", "Checking with billing."), ("note", "1")],
        )
        .await;
    assert_eq!(
        noted.status,
        axum::http::StatusCode::SEE_OTHER,
        "{}",
        noted.body
    );
    let rule = helpdesk::store::rules::create(
        &app.db.store,
        helpdesk::store::rules::NewRule {
            name: "Invoices to Billing".into(),
            enabled: true,
            conditions: vec![helpdesk::domain::rules::Condition::SubjectContains {
                any: vec!["invoice".into()],
            }],
            actions: vec![helpdesk::domain::rules::Action::SetDepartment {
                department: app.billing,
            }],
            stop: false,
        },
        Utc::now(),
    )
    .await;
    assert!(rule.is_ok(), "{rule:?}");
    number
}

/// The page does not scroll sideways.
async fn assert_no_overflow(client: &Client, what: &str) {
    // The width inside the window's scroll bar (where a phone has none), so less than innerWidth.
    let sizes = script(
        client,
        "var width = document.documentElement.clientWidth;
         var wide = Array.from(document.querySelectorAll('body *'))
           .filter(function (e) { return (e.getBoundingClientRect().right > width + 0.5
               || e.scrollWidth > e.clientWidth + 1)
             && !e.closest('header.top nav, .table-scroll'); })
           .slice(0, 8).map(function (e) { return e.tagName + '#' + e.id + '.' + e.className + ' ' + e.scrollWidth + '/' + e.clientWidth; });
         return [document.documentElement.scrollWidth, width, window.innerWidth, wide];",
    )
    .await;
    let (scroll, width, inner) = (px(&sizes[0]), px(&sizes[1]), px(&sizes[2]));
    assert!(width <= inner);
    if scroll > width {
        screenshot(client, "failed-overflow").await;
        panic!(
            "{what}: the page is {scroll} px wide in {width} px: {}",
            sizes[3]
        );
    }
}

store_test! {
    #[tokio::test]
    async fn at_390_and_800_px_pages_fit_the_window_and_keep_what_matters(db: TestStore) {
        let Some(chromedriver) = require_chromedriver() else {
            return;
        };
        let suffix = format!("{:?}", db.backend()).to_lowercase();
        let session = Session::start(&chromedriver, db).await;
        let client = &session.client;
        let number = some_data(&session.app).await;
        let axe = axe_source();
        let pages = [
            ("/tickets".to_owned(), "tickets"),
            (format!("/tickets/{number}"), "ticket"),
            ("/admin/agents".to_owned(), "admin-agents"),
            ("/admin/rules".to_owned(), "admin-rules"),
        ];

        for (width, height) in [(390u32, 844u32), (800, 1000)] {
            client.set_window_size(width, height).await.expect("window size");
            let inner = px(&script(client, "return window.innerWidth;").await);
            assert_eq!(inner, f64::from(width), "the page sees the window's width");
            for (path, name) in &pages {
                visit(&session, path).await;
                assert_no_overflow(client, &format!("{path} at {width} px")).await;
                screenshot(client, &format!("{width}px-{name}-{suffix}")).await;
                if width == 390 {
                    let serious = serious_violations(client, &axe).await;
                    assert!(serious.is_empty(), "{path} at {width} px:\n{}", serious.join("\n"));
                }
            }

            // The list keeps subject, status, customer and assignee; minor columns go first.
            visit(&session, "/tickets").await;
            let shown = script(
                client,
                "return Array.from(document.querySelectorAll('table.tickets thead th'))
                   .filter(function (th) { return getComputedStyle(th).display !== 'none'; })
                   .map(function (th) { return th.textContent.trim(); });",
            )
            .await;
            let shown: Vec<&str> = shown
                .as_array()
                .expect("headings")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            for kept in ["Subject", "Status", "Customer", "Assignee"] {
                assert!(shown.contains(&kept), "{kept} at {width} px: {shown:?}");
            }
            for dropped in ["Department", "Channel", "Updated"] {
                assert!(!shown.contains(&dropped), "{dropped} at {width} px: {shown:?}");
            }
            assert_eq!(shown.contains(&"Priority"), width > 640, "{shown:?}");

            // The reply box comes right under the conversation, before the side cards.
            visit(&session, &format!("/tickets/{number}")).await;
            let boxes = script(
                client,
                "function box(css) { var r = document.querySelector(css).getBoundingClientRect();
                   return [r.top, r.bottom, r.left, r.right]; }
                 return [box('#conversation'), box('#reply-form'), box('#customer-panel')];",
            )
            .await;
            let (conversation, reply, panel) = (&boxes[0], &boxes[1], &boxes[2]);
            assert!(
                px(&reply[0]) >= px(&conversation[1]),
                "at {width} px the reply box {reply} is not below the conversation {conversation}"
            );
            assert!(
                px(&reply[1]) <= px(&panel[0]),
                "at {width} px the reply box {reply} is not before the customer panel {panel}"
            );
            assert!(px(&reply[3]) <= f64::from(width), "reply box {reply}");
        }

        // At phone width the header is two short rows, its sections scrolling sideways.
        client.set_window_size(390, 844).await.expect("window size");
        visit(&session, "/admin/agents").await;
        let header = script(
            client,
            "var nav = document.querySelector('header.top nav');
             return [document.querySelector('header.top').getBoundingClientRect().height,
                     nav.scrollWidth, nav.clientWidth];",
        )
        .await;
        assert!(px(&header[0]) <= 100.0, "header {header}");
        assert!(px(&header[1]) > px(&header[2]), "the sections scroll: {header}");
        // The agents' table is wider than a phone: it scrolls in its box, the page does not.
        let table = script(
            client,
            "var box = document.querySelector('.table-scroll');
             return [box.scrollWidth, box.clientWidth];",
        )
        .await;
        assert!(px(&table[0]) > px(&table[1]), "agents table {table}");
        assert_no_overflow(client, "/admin/agents at 390 px").await;

        session.finish().await;
    }
}

store_test! {
    #[tokio::test]
    async fn axe_core_finds_nothing_serious_on_the_main_pages(db: TestStore) {
        let Some(chromedriver) = require_chromedriver() else {
            return;
        };
        let axe = axe_source();
        let session = Session::start(&chromedriver, db).await;
        let client = &session.client;
        let app = &session.app;
        let number = some_data(app).await;
        // A tag (for /tags) and a canned response (so the ticket page shows its picker).
        let admin = app.admin().await;
        for (path, fields) in [
            (
                format!("/tickets/{number}/update"),
                vec![("add_tags", "billing vat")],
            ),
            (
                "/canned".to_owned(),
                vec![
                    ("name", "Invoice resent"),
                    ("body", "Dear {{customer_name}}, the right invoice is attached."),
                    ("shared", "1"),
                ],
            ),
        ] {
            let posted = app.post(&path, &admin, &fields).await;
            assert_eq!(
                posted.status,
                axum::http::StatusCode::SEE_OTHER,
                "{path}: {}",
                posted.body
            );
        }
        visit(&session, &format!("/tickets/{number}")).await;
        assert!(
            script(client, "return document.getElementById('canned-picker') !== null;").await
                == Value::Bool(true),
            "the ticket page shows the canned response picker"
        );
        let customer = script(
            client,
            "return document.querySelector('#customer-panel .customer-name a').getAttribute('href');",
        )
        .await;
        let customer = customer.as_str().expect("the customer's page").to_owned();
        let mut failures = Vec::new();
        for path in [
            "/".to_owned(),
            "/tickets".to_owned(),
            format!("/tickets/{number}"),
            "/customers".to_owned(),
            customer,
            "/canned".to_owned(),
            "/tags".to_owned(),
            "/account".to_owned(),
            "/admin/rules".to_owned(),
            "/admin/rules/new".to_owned(),
            "/admin/departments".to_owned(),
            "/admin/agents".to_owned(),
            "/admin/channels".to_owned(),
            "/admin/jobs".to_owned(),
            "/admin/tokens".to_owned(),
            "/admin/webhooks".to_owned(),
        ] {
            visit(&session, &path).await;
            for line in serious_violations(client, &axe).await {
                failures.push(format!("{path}: {line}"));
            }
        }

        // The first key press reaches the skip link, which leads past the header.
        visit(&session, "/tickets").await;
        let tab = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: '\u{E004}' })
            .then(KeyAction::Up { value: '\u{E004}' });
        client.perform_actions(tab).await.expect("tab");
        let focused = script(client, "return document.activeElement.className;").await;
        assert_eq!(focused, "skip");
        let enter = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: '\u{E007}' })
            .then(KeyAction::Up { value: '\u{E007}' });
        client.perform_actions(enter).await.expect("enter");
        let focused = script(client, "return document.activeElement.id;").await;
        assert_eq!(focused, "main");

        click(client, "form.signout button[type=submit]").await;
        wait_on_page(client, "//h1[.='Sign in']").await;
        for line in serious_violations(client, &axe).await {
            failures.push(format!("/login: {line}"));
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        session.finish().await;
    }
}
