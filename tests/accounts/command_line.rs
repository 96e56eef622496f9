//! People added and changed from the command line, and the real binary serving them mail.

use super::*;

// ---- the real binary ----

/// The tickets a token sees, through the API's list (one page of up to 200).
async fn visible_tickets(base: &str, token: &str) -> Vec<Value> {
    let answer = reqwest::Client::new()
        .get(format!("{base}/api/v1/tickets?limit=200"))
        .bearer_auth(token)
        .send()
        .await
        .expect("API answers");
    assert_eq!(answer.status(), 200);
    let page: Value = answer.json().await.expect("json");
    page["items"].as_array().expect("items").clone()
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_agents_added_without_a_department_get_forty_mails_fairly_at_once(env: Env) {
        for (email, name) in [("ana@team.example", "Ana"), ("ben@team.example", "Ben")] {
            env.ok_with(
                &[
                    "user", "add", "--email", email, "--name", name, "--role", "agent",
                ],
                "a long secret\n",
            );
        }
        let users: Value =
            serde_json::from_str(&env.ok(&["user", "list", "--format", "json"])).expect("json");
        for user in users.as_array().expect("users") {
            assert_eq!(user["departments"], "General", "{user}");
        }
        let tokens: Vec<String> = ["ana@team.example", "ben@team.example"]
            .iter()
            .map(|email| {
                env.ok(&["token", "create", "--agent", email, "--name", "day one"])
                    .trim()
                    .to_owned()
            })
            .collect();

        let serve = Serve::start(&env).await;
        let mail = env.dir.path().join("mail");
        std::fs::create_dir_all(&mail).expect("mail dir");
        for n in 0..40 {
            let raw = support::mail(
                &[
                    &format!("From: Customer {n} <customer{n}@example.org>"),
                    &format!("Subject: Question {n}"),
                    &format!("Message-ID: <day-one-{n}@example.org>"),
                ],
                "Hello, can you help?",
            );
            std::fs::write(mail.join(format!("{n}.eml")), raw).expect("mail written");
        }
        let ingested = env.ok(&["ingest", mail.to_str().expect("path")]);
        assert!(
            ingested.starts_with("40 messages: 40 new tickets"),
            "{ingested}"
        );

        let deadline = Instant::now() + Duration::from_secs(15);
        let seen = loop {
            let seen = [
                visible_tickets(&serve.base, &tokens[0]).await,
                visible_tickets(&serve.base, &tokens[1]).await,
            ];
            let all_assigned = seen.iter().all(|tickets| {
                tickets.len() == 40 && tickets.iter().all(|t| t["assignee"].is_string())
            });
            if all_assigned {
                break seen;
            }
            assert!(
                Instant::now() < deadline,
                "not every ticket assigned and seen within 15 s: {:?}",
                seen.iter().map(Vec::len).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let count = |name: &str| seen[0].iter().filter(|t| t["assignee"] == name).count();
        assert_eq!(count("Ana") + count("Ben"), 40);
        assert!(
            count("Ana").abs_diff(count("Ben")) <= 2,
            "least open tickets shares them fairly: Ana {}, Ben {}",
            count("Ana"),
            count("Ben")
        );
        assert!(seen[0].iter().all(|t| t["department"] == "General"));
    }
}

store_test! {
    #[tokio::test]
    async fn user_password_disable_and_enable_from_the_command_line(env: Env) {
        env.ok_with(
            &[
                "user",
                "add",
                "--email",
                "cy@team.example",
                "--name",
                "Cy",
                "--role",
                "agent",
            ],
            "first secret\n",
        );
        let set = env.ok_with(&["user", "password", "cy@team.example"], "second secret\n");
        assert!(set.contains("new password set for Cy"), "{set}");
        let file = env.dir.path().join("password");
        std::fs::write(&file, "short\n").expect("write");
        let refused = env.run(&[
            "user",
            "password",
            "cy@team.example",
            "--password-file",
            file.to_str().expect("path"),
        ]);
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("at least 8 characters"));
        let unknown = env.run_with(
            &["user", "password", "nobody@team.example"],
            "a long secret\n",
        );
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("no agent with email"));

        // Signing in over the real server: the new password works, the old one does not.
        let serve = Serve::start(&env).await;
        assert_eq!(serve.sign_in("cy@team.example", "first secret").await, 401);
        assert_eq!(serve.sign_in("cy@team.example", "second secret").await, 303);

        let token = env
            .ok(&[
                "token",
                "create",
                "--agent",
                "cy@team.example",
                "--name",
                "cli",
            ])
            .trim()
            .to_owned();
        let disabled = env.ok(&["user", "disable", "cy@team.example"]);
        assert!(disabled.contains("disabled cy@team.example"), "{disabled}");
        assert_eq!(serve.sign_in("cy@team.example", "second secret").await, 401);
        let refused = reqwest::Client::new()
            .get(format!("{}/api/v1/tickets", serve.base))
            .bearer_auth(&token)
            .send()
            .await
            .expect("answer");
        assert_eq!(refused.status(), 401);
        let list = env.ok(&["user", "list"]);
        assert!(list.contains("ACTIVE"), "{list}");

        env.ok(&["user", "enable", "cy@team.example"]);
        assert_eq!(serve.sign_in("cy@team.example", "second secret").await, 303);
    }
}

store_test! {
    #[tokio::test]
    async fn seed_routes_assigns_and_prints_how_to_sign_in(env: Env) {
        let out = env.ok(&["seed", "--tickets", "30"]);
        assert!(out.contains("/login"), "{out}");
        let demo_line = out
            .lines()
            .find(|line| line.contains("demo.agent1@helpdesk.example"))
            .unwrap_or_else(|| panic!("a sign-in line for the first demo agent: {out}"));
        let password = demo_line
            .split_whitespace()
            .nth(1)
            .expect("the password follows the address");
        let tickets: Value = serde_json::from_str(
            &env.ok(&["ticket", "list", "--limit", "100", "--format", "json"]),
        )
        .expect("json");
        let tickets = tickets.as_array().expect("tickets");
        assert!(!tickets.is_empty());
        // Every demo ticket went to a department and to someone who can sign in.
        let users: Value =
            serde_json::from_str(&env.ok(&["user", "list", "--format", "json"])).expect("json");
        let users = users.as_array().expect("users");
        assert!(users.iter().all(|u| u["has_password"] == true), "{users:?}");
        for ticket in tickets {
            assert!(ticket["department"].is_string(), "{ticket}");
            assert!(ticket["assignee"].is_string(), "{ticket}");
        }
        let priorities: std::collections::BTreeSet<&str> = tickets
            .iter()
            .filter_map(|t| t["priority"].as_str())
            .collect();
        assert!(priorities.len() >= 2, "{priorities:?}");

        let serve = Serve::start(&env).await;
        assert_eq!(
            serve
                .sign_in("demo.agent1@helpdesk.example", password)
                .await,
            303
        );
        // A second seed gives nobody a new password: none is printed.
        drop(serve);
        let again = env.ok(&["seed", "--tickets", "5"]);
        assert!(!again.contains("demo.agent1@helpdesk.example"), "{again}");
    }
}
