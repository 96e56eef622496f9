//! The rules editor: a form that previews, warns and reorders.

use super::*;

/// The department called `name`, made if the database has none yet.
async fn department_named(app: &WebApp, name: &str) -> i64 {
    let known = helpdesk::store::agents::departments(&app.db.store)
        .await
        .expect("departments");
    match known.iter().find(|d| d.name == name) {
        Some(department) => department.id,
        None => {
            helpdesk::store::agents::create_department(
                &app.db.store,
                name,
                helpdesk::domain::AssignmentStrategy::LeastOpen,
                Utc::now(),
            )
            .await
            .expect("department")
            .id
        }
    }
}

async fn rule_names(app: &WebApp) -> Vec<String> {
    helpdesk::store::rules::list(&app.db.store)
        .await
        .expect("rules")
        .into_iter()
        .map(|rule| rule.name)
        .collect()
}

/// The rows of a rule's warnings on the list page, after the rule's own row.
fn warnings_of(page: &str, rule_id: i64) -> String {
    let row = page
        .find(&format!("id=\"rule-{rule_id}\""))
        .expect("the rule's row");
    let rest = &page[row..];
    let next_rule = rest[1..].find("id=\"rule-").map_or(rest.len(), |at| at + 1);
    rest[..next_rule].to_owned()
}

store_test! {
    #[tokio::test]
    async fn the_rules_editor_is_a_form_that_previews_warns_and_reorders(app: WebApp) {
        let backend = app.db.backend();
        let admin = app.admin().await;
        let general = department_named(&app, "General").await;
        let billing = app.billing.to_string();
        let invoice = app
            .ticket(
                "inv@example.org",
                "Invoice 2031 charged twice",
                "Please refund.",
            )
            .await;
        let hello = app
            .ticket("hi@example.org", "Hello", "Just saying hi")
            .await;

        // "Add" comes back with the row, nothing saved, what was typed kept.
        let with_condition = app
            .post(
                "/admin/rules",
                &admin,
                &[
                    ("name", "Invoices to Billing"),
                    ("enabled", "1"),
                    ("do", "add_condition"),
                    ("new_condition", "text_contains"),
                ],
            )
            .await;
        assert_eq!(with_condition.status, StatusCode::OK, "{backend:?}");
        assert!(
            with_condition
                .body
                .contains(r#"name="c1_if" value="text_contains""#)
        );
        assert!(
            with_condition
                .body
                .contains(r#"value="Invoices to Billing""#)
        );
        let with_action = app
            .post(
                "/admin/rules",
                &admin,
                &[
                    ("name", "Invoices to Billing"),
                    ("enabled", "1"),
                    ("c1_if", "text_contains"),
                    ("c1_value", "invoice"),
                    ("do", "add_action"),
                    ("new_action", "set_department"),
                ],
            )
            .await;
        assert!(
            with_action
                .body
                .contains(&format!(r#"<option value="{billing}" >Billing</option>"#))
                && with_action.body.contains(">Technical</option>"),
            "departments are offered by name: {}",
            with_action.body
        );
        assert!(with_action.body.contains(r#"value="invoice""#));
        assert!(rule_names(&app).await.is_empty(), "nothing saved yet");

        // A mistake is explained where it is.
        let missing = app
            .post(
                "/admin/rules",
                &admin,
                &[
                    ("name", "Invoices to Billing"),
                    ("c1_if", "text_contains"),
                    ("c1_value", "invoice"),
                    ("a1_then", "set_department"),
                    ("a1_value", ""),
                    ("do", "save"),
                ],
            )
            .await;
        assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            missing.body.contains("Action 1: choose a department"),
            "{}",
            missing.body
        );

        // The trap: invoices to Billing without "stop", then a catch-all to General.
        let saved = app
            .post(
                "/admin/rules",
                &admin,
                &[
                    ("name", "Invoices to Billing"),
                    ("enabled", "1"),
                    ("c1_if", "text_contains"),
                    ("c1_value", "invoice, refund"),
                    ("a1_then", "set_department"),
                    ("a1_value", &billing),
                    ("a2_then", "add_tags"),
                    ("a2_value", "billing"),
                ],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let rules = helpdesk::store::rules::list(&app.db.store)
            .await
            .expect("rules");
        let invoices = rules[0].id;
        assert_eq!(saved.location(), format!("/admin/rules#rule-{invoices}"));
        assert_eq!(
            serde_json::to_value(&rules[0].conditions).expect("json"),
            serde_json::json!([{"if": "text_contains", "any": ["invoice", "refund"]}])
        );
        let general_text = general.to_string();
        app.post(
            "/admin/rules",
            &admin,
            &[
                ("name", "To General"),
                ("enabled", "1"),
                ("a1_then", "set_department"),
                ("a1_value", &general_text),
            ],
        )
        .await;
        let to_general = helpdesk::store::rules::list(&app.db.store)
            .await
            .expect("rules")[1]
            .id;

        // The list names departments and warns on the rule that gets overridden.
        let list = app.get("/admin/rules", Some(&admin)).await.body;
        assert!(list.contains("department → Billing") && list.contains("department → General"));
        assert!(
            !list.contains("→ #") && !list.contains("deleted"),
            "no ids: {list}"
        );
        let warned = warnings_of(&list, invoices);
        assert!(
            warned.contains("Overridden") && warned.contains("“To General”"),
            "{backend:?}: {warned}"
        );
        assert!(
            warned.contains(&format!("#{invoice}")),
            "seen on the ticket: {warned}"
        );
        assert!(!warnings_of(&list, to_general).contains("Overridden"));

        // The edit page previews the tickets the rule changes, linked, and says what follows.
        let edit = app
            .get(&format!("/admin/rules/{invoices}"), Some(&admin))
            .await;
        assert_eq!(edit.status, StatusCode::OK);
        assert!(
            edit.body.contains(&format!(r#"href="/tickets/{invoice}""#)),
            "{}",
            edit.body
        );
        assert!(!edit.body.contains(&format!(r#"href="/tickets/{hello}""#)));
        assert!(
            edit.body
                .contains("then changed again: department by “To General”")
        );
        assert!(edit.body.contains("Overridden"));
        assert!(edit.body.contains(&format!(
            r#"<option value="{billing}" selected>Billing</option>"#
        )));

        // Ticking "stop" on the form ends the warning.
        let stopped = app
            .post(
                &format!("/admin/rules/{invoices}"),
                &admin,
                &[
                    ("name", "Invoices to Billing"),
                    ("enabled", "1"),
                    ("stop", "1"),
                    ("c1_if", "text_contains"),
                    ("c1_value", "invoice, refund"),
                    ("a1_then", "set_department"),
                    ("a1_value", &billing),
                    ("a2_then", "add_tags"),
                    ("a2_value", "billing"),
                ],
            )
            .await;
        assert_eq!(stopped.status, StatusCode::SEE_OTHER, "{}", stopped.body);
        let list = app.get("/admin/rules", Some(&admin)).await.body;
        assert!(!list.contains("Overridden"), "{list}");

        // Order changes in place: by position, then one step.
        app.post(
            &format!("/admin/rules/{to_general}/move"),
            &admin,
            &[("position", "1")],
        )
        .await;
        assert_eq!(
            rule_names(&app).await,
            ["To General", "Invoices to Billing"]
        );
        let list = app.get("/admin/rules", Some(&admin)).await.body;
        assert!(
            warnings_of(&list, to_general).contains("Overridden"),
            "now the catch-all is the one overridden"
        );
        app.post(
            &format!("/admin/rules/{to_general}/move"),
            &admin,
            &[("direction", "down")],
        )
        .await;
        assert_eq!(
            rule_names(&app).await,
            ["Invoices to Billing", "To General"]
        );

        // A preview of a rule not saved; removing a row comes back without it.
        let preview = app
            .post(
                "/admin/rules",
                &admin,
                &[
                    ("name", "Greetings"),
                    ("c1_if", "subject_contains"),
                    ("c1_value", "hello"),
                    ("c2_if", "channel"),
                    ("c2_value", "email"),
                    ("a1_then", "set_priority"),
                    ("a1_value", "low"),
                    ("do", "preview"),
                ],
            )
            .await;
        assert!(
            preview
                .body
                .contains(&format!(r#"href="/tickets/{hello}""#))
        );
        assert!(
            !preview
                .body
                .contains(&format!(r#"href="/tickets/{invoice}""#))
        );
        let removed = app
            .post(
                "/admin/rules",
                &admin,
                &[
                    ("name", "Greetings"),
                    ("c1_if", "subject_contains"),
                    ("c1_value", "hello"),
                    ("c2_if", "channel"),
                    ("c2_value", "email"),
                    ("do", "remove_c1"),
                ],
            )
            .await;
        assert!(!removed.body.contains(r#"_if" value="subject_contains""#));
        assert!(removed.body.contains(r#"name="c1_if" value="channel""#));
        assert_eq!(rule_names(&app).await.len(), 2);

        // A rule that can never fire says why.
        app.post(
            "/admin/rules",
            &admin,
            &[
                ("name", "Mail on chat"),
                ("enabled", "1"),
                ("c1_if", "channel"),
                ("c1_value", "email"),
                ("c2_if", "channel"),
                ("c2_value", "telegram"),
                ("a1_then", "assign_to"),
                ("a1_value", &app.agent_id.to_string()),
            ],
        )
        .await;
        let list = app.get("/admin/rules", Some(&admin)).await.body;
        assert!(
            list.contains("Never fires: conditions 1 and 2 contradict"),
            "{list}"
        );
        assert!(list.contains("assign to Abe Agent"));

        app.post(&format!("/admin/rules/{to_general}/delete"), &admin, &[])
            .await;
        assert_eq!(
            rule_names(&app).await,
            ["Invoices to Billing", "Mail on chat"]
        );
    }
}
