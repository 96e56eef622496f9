//! What connects agents and programs to the helpdesk, set on the admin pages: agents' chat
//! identities, API tokens and webhooks.

use super::*;
use helpdesk::domain::TicketId;

/// A form only admins may post: anonymous visitors are sent to sign in, agents get 403, and an
/// admin's post without the CSRF token or with a wrong one is refused.
async fn only_admins_may_post(
    app: &WebApp,
    path: &str,
    form: &[(&str, &str)],
    agent: &support::web::Browser,
    admin: &support::web::Browser,
) {
    let backend = app.db.backend();
    let anonymous = app.request(Method::POST, path, None, Some(form)).await;
    assert_eq!(
        anonymous.status,
        StatusCode::SEE_OTHER,
        "{backend:?} anonymous {path}"
    );
    assert!(anonymous.location().starts_with("/login"));
    let as_agent = app.post(path, agent, form).await;
    assert_eq!(
        as_agent.status,
        StatusCode::FORBIDDEN,
        "{backend:?} agent {path}"
    );
    let forged = app
        .request(Method::POST, path, Some(&admin.cookie), Some(form))
        .await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "{backend:?} admin without CSRF token {path}"
    );
    assert!(forged.body.contains("CSRF"));
    let mut wrong_token = vec![("csrf", "0000")];
    wrong_token.extend_from_slice(form);
    let forged = app
        .request(Method::POST, path, Some(&admin.cookie), Some(&wrong_token))
        .await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "{backend:?} admin with a wrong token {path}"
    );
}

async fn identities_of(app: &WebApp, agent_id: i64) -> String {
    helpdesk::store::agents::list_agents(&app.db.store)
        .await
        .expect("agents")
        .into_iter()
        .find(|agent| agent.id == agent_id)
        .expect("agent")
        .identities
}

store_test! {
    #[tokio::test]
    async fn agents_chat_ids_are_set_checked_and_cleared_on_the_agents_page(app: WebApp) {
        use helpdesk_channel::ChannelKind;
        let backend = app.db.backend();
        let admin = app.admin().await;
        let agent = app.agent().await;
        let path = format!("/admin/agents/{}/chat", app.agent_id);
        only_admins_may_post(
            &app,
            &path,
            &[("telegram", "4242"), ("discord", "")],
            &agent,
            &admin,
        )
        .await;
        assert_eq!(identities_of(&app, app.agent_id).await, "", "{backend:?}");

        let saved = app
            .post(
                &path,
                &admin,
                &[
                    ("telegram", " 123456789 "),
                    ("discord", "80351110224678912"),
                ],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        assert_eq!(
            identities_of(&app, app.agent_id).await,
            "discord:80351110224678912, telegram:123456789"
        );
        // The chat channels now know the agent by these ids.
        for (channel, id) in [
            (ChannelKind::Telegram, "123456789"),
            (ChannelKind::Discord, "80351110224678912"),
        ] {
            let found = helpdesk::store::chat::agent_by_identity(&app.db.store, channel, id)
                .await
                .expect("read");
            assert_eq!(found.map(|(id, _)| id), Some(app.agent_id), "{channel:?}");
        }
        let page = app.get("/admin/agents", Some(&admin)).await.body;
        assert!(
            page.contains("value=\"123456789\"") && page.contains("value=\"80351110224678912\"")
        );

        // A mistake is explained, what was typed stays in the form, nothing is stored.
        let bad = app
            .post(&path, &admin, &[("telegram", "12a4"), ("discord", "777")])
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            bad.body.contains("the Telegram user id must be a number"),
            "{}",
            bad.body
        );
        assert!(bad.body.contains("value=\"12a4\"") && bad.body.contains("value=\"777\""));
        let too_long = app
            .post(
                &path,
                &admin,
                &[("telegram", ""), ("discord", "99999999999999999999999")],
            )
            .await;
        assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(too_long.body.contains("too long"));
        assert_eq!(
            identities_of(&app, app.agent_id).await,
            "discord:80351110224678912, telegram:123456789"
        );

        // Ids are unique across agents; a refused form changes neither id.
        let other = support::plain_agent(&app.db.store, "bo@helpdesk.example", "Bo Other").await;
        let taken = app
            .post(
                &format!("/admin/agents/{other}/chat"),
                &admin,
                &[("telegram", "555"), ("discord", "80351110224678912")],
            )
            .await;
        assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            taken
                .body
                .contains("the Discord user id 80351110224678912 already belongs to Abe Agent"),
            "{}",
            taken.body
        );
        assert_eq!(identities_of(&app, other).await, "");

        // Clearing both unlinks the agent from the chats.
        let cleared = app
            .post(&path, &admin, &[("telegram", ""), ("discord", "")])
            .await;
        assert_eq!(cleared.status, StatusCode::SEE_OTHER);
        assert_eq!(identities_of(&app, app.agent_id).await, "");
        let moved = app
            .post(
                &format!("/admin/agents/{other}/chat"),
                &admin,
                &[("telegram", "123456789"), ("discord", "")],
            )
            .await;
        assert_eq!(
            moved.status,
            StatusCode::SEE_OTHER,
            "a freed id can be reused"
        );
        assert_eq!(identities_of(&app, other).await, "telegram:123456789");
        assert_eq!(
            app.post("/admin/agents/999999/chat", &admin, &[("telegram", "1")])
                .await
                .status,
            StatusCode::NOT_FOUND
        );

        // The new-agent form takes chat ids too, and keeps what was typed when refused.
        let refused = app
            .post(
                "/admin/agents",
                &admin,
                &[
                    ("email", "cy@helpdesk.example"),
                    ("name", "Cy Chat"),
                    ("role", "agent"),
                    ("telegram", "123456789"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            refused.body.contains("already belongs to another agent"),
            "{}",
            refused.body
        );
        assert!(refused.body.contains("value=\"cy@helpdesk.example\""));
        let refused = app
            .post(
                "/admin/agents",
                &admin,
                &[
                    ("email", "cy@helpdesk.example"),
                    ("name", "Cy Chat"),
                    ("role", "agent"),
                    ("discord", "@cy"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            refused
                .body
                .contains("the Discord user id must be a number")
        );
        let created = app
            .post(
                "/admin/agents",
                &admin,
                &[
                    ("email", "cy@helpdesk.example"),
                    ("name", "Cy Chat"),
                    ("role", "agent"),
                    ("telegram", "31337"),
                    ("discord", "4004"),
                ],
            )
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let cy = helpdesk::store::agents::agent_id_by_email(&app.db.store, "cy@helpdesk.example")
            .await
            .expect("read")
            .expect("created");
        assert_eq!(
            identities_of(&app, cy).await,
            "discord:4004, telegram:31337"
        );
    }
}

/// The secret a page shows once.
fn shown_secret(body: &str) -> String {
    let marker = "<code id=\"secret-value\">";
    let at = body.find(marker).expect("a secret on the page") + marker.len();
    body[at..].split('<').next().unwrap_or_default().to_owned()
}

store_test! {
    #[tokio::test]
    async fn admins_make_and_revoke_api_tokens_on_the_web(app: WebApp) {
        use helpdesk::store::api_tokens;
        let backend = app.db.backend();
        let admin = app.admin().await;
        let agent = app.agent().await;
        let admin_id = app.admin_id.to_string();
        let agent_id = app.agent_id.to_string();
        only_admins_may_post(
            &app,
            "/admin/tokens",
            &[("name", "x"), ("owner", &admin_id), ("role", "admin")],
            &agent,
            &admin,
        )
        .await;
        assert!(
            api_tokens::list(&app.db.store)
                .await
                .expect("list")
                .is_empty()
        );

        let made = app
            .post(
                "/admin/tokens",
                &admin,
                &[
                    ("name", "CRM sync"),
                    ("owner", &admin_id),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(made.status, StatusCode::OK, "{backend:?}: {}", made.body);
        assert_eq!(made.headers[header::CACHE_CONTROL], "no-store");
        let token = shown_secret(&made.body);
        assert!(token.starts_with("hd_"), "{token}");
        // The token works on the API, and the list shows its use, never the token.
        let request = axum::http::Request::builder()
            .uri("/api/v1/tickets")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .expect("request");
        let answer = app.router.clone().oneshot(request).await.expect("answer");
        assert_eq!(answer.status(), StatusCode::OK);
        let list = app.get("/admin/tokens", Some(&admin)).await;
        assert!(list.body.contains("CRM sync") && list.body.contains("admin@helpdesk.example"));
        assert!(!list.body.contains(&token), "the secret is shown once only");
        assert!(!list.body.contains("never"), "last use is shown");
        assert!(list.headers.get(header::CACHE_CONTROL).is_none());

        // Mistakes are explained and the typed name kept.
        let too_much = app
            .post(
                "/admin/tokens",
                &admin,
                &[
                    ("name", "Agent script"),
                    ("owner", &agent_id),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(too_much.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            too_much
                .body
                .contains("an admin token needs an admin as its owner")
        );
        assert!(too_much.body.contains("value=\"Agent script\""));
        assert!(!too_much.body.contains("secret-value"));
        let unnamed = app
            .post(
                "/admin/tokens",
                &admin,
                &[("name", " "), ("owner", &agent_id), ("role", "agent")],
            )
            .await;
        assert_eq!(unnamed.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(unnamed.body.contains("needs a name"));
        let no_role = app
            .post(
                "/admin/tokens",
                &admin,
                &[("name", "x"), ("owner", &agent_id), ("role", "root")],
            )
            .await;
        assert_eq!(no_role.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            api_tokens::list(&app.db.store).await.expect("list").len(),
            1
        );

        let id = api_tokens::list(&app.db.store).await.expect("list")[0].id;
        let path = format!("/admin/tokens/{id}/revoke");
        only_admins_may_post(&app, &path, &[], &agent, &admin).await;
        assert!(
            api_tokens::authenticate(&app.db.store, &token)
                .await
                .expect("read")
                .is_some(),
            "refused revocations revoke nothing"
        );
        let revoked = app.post(&path, &admin, &[]).await;
        assert_eq!(revoked.status, StatusCode::SEE_OTHER);
        assert!(
            api_tokens::authenticate(&app.db.store, &token)
                .await
                .expect("read")
                .is_none()
        );
        assert!(
            app.get("/admin/tokens", Some(&admin))
                .await
                .body
                .contains("revoked")
        );
        assert_eq!(
            app.post("/admin/tokens/999999/revoke", &admin, &[])
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }
}

store_test! {
    #[tokio::test]
    async fn admins_add_turn_off_and_delete_webhooks_and_see_their_deliveries(app: WebApp) {
        use helpdesk::store::webhooks::{self, AttemptResult};
        let backend = app.db.backend();
        let admin = app.admin().await;
        let agent = app.agent().await;
        let wrong_scheme = app
            .post(
                "/admin/webhooks",
                &admin,
                &[
                    ("url", "ftp://crm.example.com/hook"),
                    ("description", "CRM"),
                    ("event", "ticket.created"),
                ],
            )
            .await;
        assert_eq!(wrong_scheme.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            wrong_scheme
                .body
                .contains("must start with http:// or https://")
        );
        assert!(
            wrong_scheme
                .body
                .contains("value=\"ftp://crm.example.com/hook\"")
        );
        assert!(
            wrong_scheme
                .body
                .contains("value=\"ticket.created\" checked")
        );
        let no_events = app
            .post(
                "/admin/webhooks",
                &admin,
                &[("url", "https://crm.example.com/hook")],
            )
            .await;
        assert_eq!(no_events.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(no_events.body.contains("events must name at least one"));
        assert!(
            webhooks::list(&app.db.store)
                .await
                .expect("list")
                .is_empty()
        );

        let added = app
            .post(
                "/admin/webhooks",
                &admin,
                &[
                    ("url", "https://crm.example.com/hook"),
                    ("description", "CRM"),
                    ("event", "ticket.created"),
                    ("event", "message.added"),
                ],
            )
            .await;
        assert_eq!(added.status, StatusCode::OK, "{backend:?}: {}", added.body);
        assert_eq!(added.headers[header::CACHE_CONTROL], "no-store");
        let secret = shown_secret(&added.body);
        let hooks = webhooks::list(&app.db.store).await.expect("list");
        assert_eq!(hooks.len(), 1);
        let hook = &hooks[0];
        assert_eq!(
            (hook.events.as_str(), hook.secret.as_str(), hook.active),
            ("ticket.created,message.added", secret.as_str(), true)
        );
        let list = app.get("/admin/webhooks", Some(&admin)).await.body;
        assert!(list.contains("https://crm.example.com/hook") && !list.contains(&secret));

        // A delivery that failed shows with its answer and error.
        let mut tx = app.db.store.begin_write().await.expect("tx");
        let delivery =
            webhooks::insert_delivery(&mut tx, hook.id, "ticket.created", TicketId(1), "{}", Utc::now())
                .await
                .expect("delivery");
        webhooks::record_attempt(
            &mut tx,
            delivery,
            3,
            &AttemptResult::Failed {
                status_code: Some(502),
                error: "the CRM answered 502 Bad Gateway".into(),
            },
            Utc::now(),
        )
        .await
        .expect("attempt");
        tx.commit().await.expect("commit");
        let page = app
            .get(&format!("/admin/webhooks/{}", hook.id), Some(&admin))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains(&format!(
                "id=\"delivery-{delivery}\" class=\"delivery-failed\""
            )) && page.body.contains("HTTP 502")
                && page.body.contains("the CRM answered 502 Bad Gateway"),
            "{}",
            page.body
        );
        assert!(!page.body.contains(&secret));
        assert_eq!(
            app.get(&format!("/admin/webhooks/{}", hook.id), Some(&agent))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        let list = app.get("/admin/webhooks", Some(&admin)).await.body;
        assert!(list.contains("delivery-failed"));

        let active_path = format!("/admin/webhooks/{}/active", hook.id);
        only_admins_may_post(&app, &active_path, &[("active", "off")], &agent, &admin).await;
        let off = app.post(&active_path, &admin, &[("active", "off")]).await;
        assert_eq!(off.status, StatusCode::SEE_OTHER);
        let stored = webhooks::find(&app.db.store, hook.id)
            .await
            .expect("read")
            .expect("kept");
        assert!(!stored.active);
        assert!(
            app.get("/admin/webhooks", Some(&admin))
                .await
                .body
                .contains("Turn on")
        );
        let on = app.post(&active_path, &admin, &[("active", "on")]).await;
        assert_eq!(on.status, StatusCode::SEE_OTHER);
        assert!(
            webhooks::find(&app.db.store, hook.id)
                .await
                .expect("read")
                .expect("kept")
                .active
        );
        let nonsense = app.post(&active_path, &admin, &[("active", "maybe")]).await;
        assert_eq!(nonsense.status, StatusCode::BAD_REQUEST);

        let delete_path = format!("/admin/webhooks/{}/delete", hook.id);
        only_admins_may_post(&app, &delete_path, &[], &agent, &admin).await;
        assert_eq!(webhooks::list(&app.db.store).await.expect("list").len(), 1);
        let deleted = app.post(&delete_path, &admin, &[]).await;
        assert_eq!(deleted.status, StatusCode::SEE_OTHER);
        assert!(
            webhooks::list(&app.db.store)
                .await
                .expect("list")
                .is_empty()
        );
        assert_eq!(
            app.get(&format!("/admin/webhooks/{}", hook.id), Some(&admin))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }
}
