//! People change their own password at /account; wrong current passwords count as failed
//! sign-ins.

use super::*;

store_test! {
    #[tokio::test]
    async fn people_change_their_own_password_at_account_and_other_sessions_end(app: WebApp) {
        let here = app.agent().await;
        let elsewhere = app.agent().await;
        let page = app.get("/account", Some(&here)).await;
        assert!(
            page.body.contains("agent@helpdesk.example"),
            "{}",
            page.body
        );
        assert!(page.body.contains("Billing"), "{}", page.body);
        assert!(
            page.body.contains("href=\"/account\""),
            "the nav links to the account page"
        );

        let wrong = app
            .post(
                "/account",
                &here,
                &[
                    ("current", "not my password"),
                    ("password", "brand new secret"),
                    ("again", "brand new secret"),
                ],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            wrong.body.contains("current password is not right"),
            "{}",
            wrong.body
        );
        let differ = app
            .post(
                "/account",
                &here,
                &[
                    ("current", PASSWORD),
                    ("password", "brand new secret"),
                    ("again", "brand new secreT"),
                ],
            )
            .await;
        assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
        let short = app
            .post(
                "/account",
                &here,
                &[
                    ("current", PASSWORD),
                    ("password", "short"),
                    ("again", "short"),
                ],
            )
            .await;
        assert!(
            short.body.contains("at least 8 characters"),
            "{}",
            short.body
        );
        assert!(
            signed_in(&app, &elsewhere).await,
            "refused changes end nothing"
        );

        let changed = app
            .post(
                "/account",
                &here,
                &[
                    ("current", PASSWORD),
                    ("password", "brand new secret"),
                    ("again", "brand new secret"),
                ],
            )
            .await;
        assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
        assert!(
            signed_in(&app, &here).await,
            "the session that changed it stays"
        );
        assert!(!signed_in(&app, &elsewhere).await, "other sessions end");
        let page = app.get(changed.location(), Some(&here)).await;
        assert!(
            page.body.contains("Your password is changed"),
            "{}",
            page.body
        );
        assert!(
            app.sign_in_with("agent@helpdesk.example", PASSWORD)
                .await
                .is_err()
        );
        assert!(
            app.sign_in_with("agent@helpdesk.example", "brand new secret")
                .await
                .is_ok()
        );
    }
}

store_test! {
    #[tokio::test]
    async fn wrong_current_passwords_count_like_failed_sign_ins(app: WebApp) {
        let agent = app.agent().await;
        for _ in 0..helpdesk::sign_in::MAX_FAILURES {
            let wrong = app
                .post(
                    "/account",
                    &agent,
                    &[
                        ("current", "guess"),
                        ("password", "whatever123"),
                        ("again", "whatever123"),
                    ],
                )
                .await;
            assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        }
        let limited = app
            .post(
                "/account",
                &agent,
                &[
                    ("current", PASSWORD),
                    ("password", "whatever123"),
                    ("again", "whatever123"),
                ],
            )
            .await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.body
        );
    }
}
