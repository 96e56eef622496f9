//! A person changes their password at /account in the browser; their other sessions end.

use super::*;

store_test! {
    #[tokio::test]
    async fn a_person_changes_their_password_at_account_and_other_sessions_end(db: TestStore) {
        let Some(chromedriver) = require_chromedriver() else {
            return;
        };
        let session = Session::start(&chromedriver, db).await;
        let client = &session.client;
        let app = &session.app;
        let elsewhere = app.admin().await;

        // The name in the top bar leads to the account page.
        click(client, "header.top a.who").await;
        wait_on_page(client, "//h1[.='Your account']").await;
        wait_on_page(client, "//dd[.='admin@helpdesk.example']").await;

        // A wrong current password is refused and explained.
        fill(client, "input[name=current]", "not the password").await;
        fill(client, "input[name=password]", "a brand new secret").await;
        fill(client, "input[name=again]", "a brand new secret").await;
        click(client, "#password button[type=submit]").await;
        wait_on_page(
            client,
            "//p[@class='error' and contains(., 'current password is not right')]",
        )
        .await;
        screenshot(client, "account-error").await;

        fill(client, "input[name=current]", PASSWORD).await;
        fill(client, "input[name=password]", "a brand new secret").await;
        fill(client, "input[name=again]", "a brand new secret").await;
        click(client, "#password button[type=submit]").await;
        wait_on_page(client, "//p[@id='password-changed']").await;
        screenshot(client, "account").await;
        // This browser stays signed in; the other session has ended.
        session.open("/tickets", "Tickets").await;
        assert_eq!(
            app.get("/", Some(&elsewhere)).await.status,
            axum::http::StatusCode::SEE_OTHER
        );

        // Signing out and in again takes the new password.
        click(client, "form.signout button[type=submit]").await;
        wait_on_page(client, "//h1[.='Sign in']").await;
        fill(client, "input[name=email]", "admin@helpdesk.example").await;
        fill(client, "input[name=password]", "a brand new secret").await;
        click(client, "form button[type=submit]").await;
        wait_on_page(client, "//h1[.='Dashboard']").await;

        session.finish().await;
    }
}
