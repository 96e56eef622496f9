//! People added, given passwords and disabled over the JSON API.

use super::*;

store_test! {
    #[tokio::test]
    async fn the_api_adds_people_sets_passwords_and_disables_them(app: WebApp) {
        let s = &app.db.store;
        let admin = api_tokens::create(s, app.admin_id, "admin", Role::Admin, Utc::now())
            .await
            .expect("token")
            .token;
        let agent = api_tokens::create(s, app.agent_id, "agent", Role::Agent, Utc::now())
            .await
            .expect("token")
            .token;

        // New people without departments go to the default department.
        let (status, dee) = api(
            &app,
            Method::POST,
            "/api/v1/agents",
            &admin,
            Some(json!({"email": "dee@helpdesk.example", "name": "Dee", "role": "agent", "password": "dee's secret"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{dee}");
        assert_eq!(dee["departments"], "General");
        let dee_id = dee["id"].as_i64().expect("id");
        let (status, _) = api(
            &app,
            Method::POST,
            "/api/v1/agents",
            &agent,
            Some(json!({"email": "x@helpdesk.example", "name": "X", "role": "agent"})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, short) = api(
            &app,
            Method::POST,
            "/api/v1/agents",
            &admin,
            Some(json!({"email": "y@helpdesk.example", "name": "Y", "role": "agent", "password": "short"})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{short}");

        // An admin sets a password; the person changes it again with the current one.
        let path = format!("/api/v1/agents/{dee_id}/password");
        let (status, _) = api(
            &app,
            Method::PUT,
            &path,
            &agent,
            Some(json!({"password": "by the admin"})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = api(
            &app,
            Method::PUT,
            &path,
            &admin,
            Some(json!({"password": "by the admin"})),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(
            app.sign_in_with("dee@helpdesk.example", "dee's secret")
                .await
                .is_err()
        );
        let browser = app
            .sign_in_with("dee@helpdesk.example", "by the admin")
            .await
            .unwrap_or_else(|refused| panic!("signed in: {refused:?}"));
        let dee_token = api_tokens::create(s, dee_id, "dee", Role::Agent, Utc::now())
            .await
            .expect("token")
            .token;
        let own = "/api/v1/account/password";
        let (status, wrong) = api(
            &app,
            Method::PUT,
            own,
            &dee_token,
            Some(json!({"current_password": "nope", "password": "dee's own again"})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{wrong}");
        assert!(signed_in(&app, &browser).await);
        let (status, _) = api(
            &app,
            Method::PUT,
            own,
            &dee_token,
            Some(json!({"current_password": "by the admin", "password": "dee's own again"})),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(!signed_in(&app, &browser).await, "web sessions end");
        assert!(
            app.sign_in_with("dee@helpdesk.example", "dee's own again")
                .await
                .is_ok()
        );

        // Disabling: the token stops working; tickets go to the department's other agent.
        let general = store::agents::department_by_name(s, "General")
            .await
            .expect("read")
            .expect("exists")
            .id;
        agent_with_password(s, "eli@helpdesk.example", "Eli", Role::Agent, &[general]).await;
        let number = app.ticket("api-dis@x", "Help", "x").await;
        helpdesk::ops::apply(
            s,
            number.into(),
            helpdesk::ops::ChangedBy {
                agent_id: app.admin_id,
                now: Utc::now(),
            },
            &helpdesk::ops::TicketChange {
                assignee: Some(Some(dee_id)),
                ..Default::default()
            },
        )
        .await
        .expect("assigned");
        app.route(number, Some(general)).await;
        let active = format!("/api/v1/agents/{dee_id}/active");
        let (status, _) = api(
            &app,
            Method::PUT,
            &active,
            &agent,
            Some(json!({"active": false})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = api(
            &app,
            Method::PUT,
            &format!("/api/v1/agents/{}/active", app.admin_id),
            &admin,
            Some(json!({"active": false})),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, change) = api(
            &app,
            Method::PUT,
            &active,
            &admin,
            Some(json!({"active": false})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{change}");
        assert_eq!(change["agent"]["active"], false);
        assert_eq!(change["reassigned_tickets"], 1);
        let (status, _) = api(&app, Method::GET, "/api/v1/tickets", &dee_token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        run_jobs_until(&app.db, || async {
            app.detail(number).await.summary.assignee.as_deref() == Some("Eli")
        })
        .await;
        let (status, change) = api(
            &app,
            Method::PUT,
            &active,
            &admin,
            Some(json!({"active": true})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(change["reassigned_tickets"], 0);
        let (status, _) = api(&app, Method::GET, "/api/v1/tickets", &dee_token, None).await;
        assert_eq!(status, StatusCode::OK);

        let (_, openapi) = api(&app, Method::GET, "/api/openapi.json", &admin, None).await;
        for path in [
            "/api/v1/agents/{id}/password",
            "/api/v1/agents/{id}/active",
            "/api/v1/account/password",
        ] {
            assert!(openapi["paths"][path].is_object(), "{path} is described");
        }
        assert!(openapi["paths"]["/api/v1/agents"]["post"].is_object());
    }
}
