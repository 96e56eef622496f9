//! Two agents on one ticket see each other, and who is writing; the keyboard shortcuts.

use super::*;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};

/// Presses one key on whatever has the focus.
async fn press(client: &Client, key: char) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    client.perform_actions(keys).await.expect("key pressed");
}

async fn script(client: &Client, code: &str) -> serde_json::Value {
    client.execute(code, vec![]).await.expect("script ran")
}

/// Waits until `code` returns `expected` (a page that just loaded runs its script a moment
/// after its content shows).
async fn eventually(client: &Client, code: &str, expected: serde_json::Value) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let got = script(client, code).await;
        if got == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{code}: {got} instead of {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn agents_on_one_ticket_see_each_other_and_who_writes() {
    let Some(chromedriver) = require_chromedriver() else {
        return;
    };
    let session = Session::start(&chromedriver, support::sqlite().await).await;
    let number = session
        .app
        .ticket("presence@example.org", "Two agents", "Who answers?")
        .await;
    session.app.route(number, Some(session.app.billing)).await;
    session
        .open(
            &format!("/tickets/{number}"),
            &format!("#{number} Two agents"),
        )
        .await;

    // Abe signs in in another browser and opens the same ticket.
    let abe = browser(&session._driver).await;
    abe.goto(&format!("{}/login", session.base))
        .await
        .expect("page");
    wait_for(&abe, "//h1[.='Sign in']").await;
    fill(&abe, "input[name=email]", "agent@helpdesk.example").await;
    fill(&abe, "input[name=password]", PASSWORD).await;
    click(&abe, "form button[type=submit]").await;
    wait_for(&abe, "//h1[.='Dashboard']").await;
    abe.goto(&format!("{}/tickets/{number}", session.base))
        .await
        .expect("page");
    wait_for(&abe, &format!("//h1[contains(., '#{number}')]")).await;
    wait_on_page(
        &abe,
        "//p[@id='presence' and contains(., 'Also here: Ada Admin')]",
    )
    .await;

    // Ada's page names Abe, then shows him writing.
    wait_on_page(
        &session.client,
        "//p[@id='presence' and @aria-live='polite' and contains(., 'Also here: Abe Agent')]",
    )
    .await;
    fill(&abe, "#reply-form textarea[name=text]", "I take this one").await;
    wait_on_page(
        &session.client,
        "//p[@id='presence' and contains(., 'Abe Agent (writing a reply')]",
    )
    .await;
    screenshot(&session.client, "ticket-presence").await;

    // Abe leaves the ticket: he is gone from Ada's page.
    abe.goto(&format!("{}/tickets", session.base))
        .await
        .expect("page");
    wait_for(&abe, "//h1[.='Tickets']").await;
    wait_on_page(&session.client, "//p[@id='presence' and .='']").await;
    abe.close().await.expect("closed");
    session.finish().await;
}

#[tokio::test]
async fn keyboard_shortcuts_move_open_reply_and_are_listed_under_a_question_mark() {
    let Some(chromedriver) = require_chromedriver() else {
        return;
    };
    let session = Session::start(&chromedriver, support::sqlite().await).await;
    for (id, subject) in [("k1@example.org", "First"), ("k2@example.org", "Second")] {
        session.app.ticket(id, subject, "Hello").await;
    }
    session.open("/tickets", "Tickets").await;
    let client = &session.client;

    // j highlights the first row and focuses its link; o opens it.
    press(client, 'j').await;
    wait_for(
        client,
        "//tbody[@id='ticket-rows']/tr[1][contains(@class, 'selected')]",
    )
    .await;
    press(client, 'j').await;
    wait_for(
        client,
        "//tbody[@id='ticket-rows']/tr[2][contains(@class, 'selected')]",
    )
    .await;
    press(client, 'k').await;
    wait_for(
        client,
        "//tbody[@id='ticket-rows']/tr[1][contains(@class, 'selected')]",
    )
    .await;
    let first = script(
        client,
        "return document.activeElement.closest('tr') === document.querySelector('#ticket-rows tr');",
    )
    .await;
    assert_eq!(first, serde_json::Value::Bool(true));

    // A ticket arriving refreshes the list live: the highlight and the focus stay on "Second",
    // now the second row.
    session.app.ticket("k3@example.org", "Third", "Hello").await;
    wait_for(
        client,
        "//tbody[@id='ticket-rows']/tr[2][contains(@class, 'selected')][.//a[.='Second']]",
    )
    .await;
    eventually(
        client,
        "return document.activeElement.closest('tr') === document.querySelectorAll('#ticket-rows tr')[1];",
        serde_json::Value::Bool(true),
    )
    .await;
    press(client, 'o').await;
    wait_on_page(client, "//h1[contains(., 'Second')]").await;
    wait_on_page(client, "//div[@data-ticket]").await;
    eventually(
        client,
        "return document.readyState;",
        serde_json::json!("complete"),
    )
    .await;

    // ? opens the list of shortcuts; Escape closes it.
    press(client, '?').await;
    wait_on_page(
        client,
        "//dialog[@id='shortcuts' and @open]//dt[contains(., 'r')]",
    )
    .await;
    screenshot(client, "shortcuts").await;
    press(client, '\u{E00C}').await;
    wait_for(client, "//dialog[@id='shortcuts' and not(@open)]").await;

    // r focuses the reply; keys typed there are text, not shortcuts.
    press(client, 'r').await;
    let focused = script(client, "return document.activeElement.name;").await;
    assert_eq!(focused, serde_json::json!("text"));
    press(client, '?').await;
    let state = script(
        client,
        "return [document.activeElement.value, document.getElementById('shortcuts').open];",
    )
    .await;
    assert_eq!(state, serde_json::json!(["?", false]));

    // n: the reply box again, as an internal note.
    script(client, "document.activeElement.blur();").await;
    press(client, 'n').await;
    let note = script(
        client,
        "return [document.activeElement.name, document.querySelector('#reply-form input[name=note]').checked];",
    )
    .await;
    assert_eq!(note, serde_json::json!(["text", true]));

    // / goes to the search field of the list.
    script(client, "document.activeElement.blur();").await;
    press(client, '/').await;
    wait_for(client, "//h1[.='Tickets']").await;
    eventually(
        client,
        "return document.activeElement.name;",
        serde_json::json!("q"),
    )
    .await;

    // Without the keyboard: the footer's link opens the same list.
    click(client, "#shortcuts-link").await;
    wait_for(client, "//dialog[@id='shortcuts' and @open]").await;
    session.finish().await;
}
