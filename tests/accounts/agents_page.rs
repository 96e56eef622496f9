//! Admins reset passwords, disable people and add them on the agents page.

use super::*;

store_test! {
    #[tokio::test]
    async fn admins_reset_passwords_and_disable_people_on_the_agents_page(app: WebApp) {
        let s = &app.db.store;
        let admin = app.admin().await;
        let agent = app.agent().await;
        // Only admins.
        let path = format!("/admin/agents/{}/password", app.agent_id);
        let form = [("password", "reset by admin"), ("again", "reset by admin")];
        assert_eq!(
            app.post(&path, &agent, &form).await.status,
            StatusCode::FORBIDDEN
        );
        let differ = app
            .post(
                &path,
                &admin,
                &[("password", "reset by admin"), ("again", "other")],
            )
            .await;
        assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(signed_in(&app, &agent).await);

        let reset = app.post(&path, &admin, &form).await;
        assert_eq!(reset.status, StatusCode::SEE_OTHER, "{}", reset.body);
        assert!(!signed_in(&app, &agent).await, "a reset ends every session");
        assert!(signed_in(&app, &admin).await);
        let page = app.get(reset.location(), Some(&admin)).await;
        assert!(
            page.body.contains("Abe Agent has a new password"),
            "{}",
            page.body
        );
        assert!(
            app.sign_in_with("agent@helpdesk.example", PASSWORD)
                .await
                .is_err()
        );
        let agent = app
            .sign_in_with("agent@helpdesk.example", "reset by admin")
            .await
            .unwrap_or_else(|refused| panic!("the new password works: {refused:?}"));

        // A colleague in Billing, and two open tickets of Abe's there.
        agent_with_password(
            s,
            "cleo@helpdesk.example",
            "Cleo",
            Role::Agent,
            &[app.billing],
        )
        .await;
        let mut numbers = Vec::new();
        for n in 0..2 {
            let number = app
                .ticket(&format!("dis{n}@x"), &format!("Case {n}"), "x")
                .await;
            app.route(number, Some(app.billing)).await;
            helpdesk::ops::apply(
                s,
                number.into(),
                helpdesk::ops::ChangedBy {
                    agent_id: app.admin_id,
                    now: Utc::now(),
                },
                &helpdesk::ops::TicketChange {
                    assignee: Some(Some(app.agent_id)),
                    ..Default::default()
                },
            )
            .await
            .expect("assigned");
            numbers.push(number);
        }
        let token = api_tokens::create(s, app.agent_id, "abe's script", Role::Agent, Utc::now())
            .await
            .expect("token")
            .token;

        let active = format!("/admin/agents/{}/active", app.agent_id);
        assert_eq!(
            app.post(&active, &agent, &[("active", "off")]).await.status,
            StatusCode::FORBIDDEN
        );
        let myself = format!("/admin/agents/{}/active", app.admin_id);
        assert_eq!(
            app.post(&myself, &admin, &[("active", "off")]).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let off = app.post(&active, &admin, &[("active", "off")]).await;
        assert_eq!(off.status, StatusCode::SEE_OTHER, "{}", off.body);
        let page = app.get(off.location(), Some(&admin)).await;
        assert!(page.body.contains("Abe Agent is disabled"), "{}", page.body);
        assert!(page.body.contains("2 open"), "{}", page.body);
        assert!(page.body.contains(">Enable<"), "{}", page.body);

        assert!(!signed_in(&app, &agent).await, "signed out at once");
        assert!(
            app.sign_in_with("agent@helpdesk.example", "reset by admin")
                .await
                .is_err()
        );
        let refused = api(&app, Method::GET, "/api/v1/tickets", &token, None).await;
        assert_eq!(refused.0, StatusCode::UNAUTHORIZED);
        // Assignment by hand to a disabled person is refused too.
        let given = helpdesk::ops::apply(
            s,
            numbers[0].into(),
            helpdesk::ops::ChangedBy {
                agent_id: app.admin_id,
                now: Utc::now(),
            },
            &helpdesk::ops::TicketChange {
                assignee: Some(Some(app.agent_id)),
                ..Default::default()
            },
        )
        .await;
        assert!(given.is_err(), "{given:?}");

        run_jobs_until(&app.db, || async {
            let mut all = true;
            for number in &numbers {
                all &= app.detail(*number).await.summary.assignee.as_deref() == Some("Cleo");
            }
            all
        })
        .await;
        let history = app.detail(numbers[0]).await.history;
        assert!(
            history.iter().any(|e| e.kind == "assignee"
                && e.old_value.as_deref() == Some("Abe Agent")
                && e.reason
                    .as_deref()
                    .is_some_and(|r| r.contains("was disabled"))),
            "{history:?}"
        );

        let on = app.post(&active, &admin, &[("active", "on")]).await;
        assert_eq!(on.status, StatusCode::SEE_OTHER);
        assert!(
            app.sign_in_with("agent@helpdesk.example", "reset by admin")
                .await
                .is_ok()
        );
        assert_eq!(
            app.detail(numbers[0]).await.summary.assignee.as_deref(),
            Some("Cleo"),
            "enabling does not take tickets back"
        );
    }
}

store_test! {
    #[tokio::test]
    async fn people_added_on_the_agents_page_without_a_department_join_the_default_one(
        app: WebApp,
    ) {
        let admin = app.admin().await;
        let page = app.get("/admin/agents", Some(&admin)).await;
        assert!(page.body.contains("None ticked: General"), "{}", page.body);
        let created = app
            .post(
                "/admin/agents",
                &admin,
                &[
                    ("email", "fay@helpdesk.example"),
                    ("name", "Fay"),
                    ("role", "agent"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let fay = store::agents::list_agents(&app.db.store)
            .await
            .expect("read")
            .into_iter()
            .find(|a| a.email == "fay@helpdesk.example")
            .expect("added");
        assert_eq!(fay.departments, "General");
    }
}
