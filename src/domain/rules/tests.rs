use super::*;

fn hours() -> BusinessHours {
    BusinessHours {
        days: vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ],
        start: NaiveTime::from_hms_opt(9, 0, 0).expect("valid"),
        end: NaiveTime::from_hms_opt(17, 0, 0).expect("valid"),
        offset: FixedOffset::east_opt(3600).expect("valid"),
    }
}

fn facts() -> TicketFacts {
    TicketFacts {
        channel: ChannelKind::Email,
        sender_address: "ada@billing.example.org".into(),
        subject: "Invoice charged TWICE".into(),
        text: "Please refund order 4711.".into(),
        department: None,
        priority: Priority::Normal,
        tags: Vec::new(),
        assignee: None,
        // Wednesday 2026-11-25 10:30 UTC = 11:30 at +01:00.
        received_at: "2026-11-25T10:30:00Z".parse().expect("date"),
    }
}

fn rule(id: i64, conditions: Vec<Condition>, actions: Vec<Action>, stop: bool) -> Rule {
    Rule {
        id,
        name: format!("rule {id}"),
        enabled: true,
        conditions,
        actions,
        stop,
    }
}

#[test]
fn conditions_compare_without_regard_to_case() {
    let f = facts();
    let h = hours();
    let holds = |c: Condition| c.holds(&f, &h);
    assert!(holds(Condition::SubjectContains {
        any: vec!["twice".into()]
    }));
    assert!(holds(Condition::TextContains {
        any: vec!["REFUND".into()]
    }));
    assert!(!holds(Condition::SubjectContains {
        any: vec!["refund".into()]
    }));
    assert!(holds(Condition::SenderDomain {
        any: vec!["example.org".into()]
    }));
    assert!(!holds(Condition::SenderDomain {
        any: vec!["ample.org".into()]
    }));
    assert!(holds(Condition::SenderAddress {
        any: vec!["Ada@Billing.Example.org".into()]
    }));
    assert!(holds(Condition::TextMatches {
        regex: r"order \d{4}".into()
    }));
    assert!(holds(Condition::Channel {
        any: vec![ChannelKind::Email]
    }));
    assert!(holds(Condition::Department { any: vec![] }));
    assert!(!holds(Condition::Department { any: vec![3] }));
    assert!(holds(Condition::Priority {
        any: vec![Priority::Normal]
    }));
    assert!(holds(Condition::BusinessHours { inside: true }));
}

#[test]
fn business_hours_follow_the_offset_and_the_days() {
    let h = hours();
    assert!(
        !h.contains("2026-11-25T16:30:00Z".parse().expect("date")),
        "17:30 local"
    );
    assert!(
        h.contains("2026-11-25T08:00:00Z".parse().expect("date")),
        "09:00 local"
    );
    assert!(
        !h.contains("2026-11-28T10:00:00Z".parse().expect("date")),
        "Saturday"
    );
}

#[test]
fn rules_apply_in_order_see_earlier_changes_and_stop() {
    let billing = 2;
    let rules = vec![
        rule(
            1,
            vec![Condition::TextContains {
                any: vec!["invoice".into(), "refund".into()],
            }],
            vec![
                Action::SetDepartment {
                    department: billing,
                },
                Action::AddTags {
                    tags: vec!["Billing".into()],
                },
            ],
            false,
        ),
        Rule {
            enabled: false,
            ..rule(
                2,
                vec![],
                vec![Action::SetPriority {
                    priority: Priority::Low,
                }],
                false,
            )
        },
        rule(
            3,
            vec![Condition::Department { any: vec![billing] }],
            vec![Action::SetPriority {
                priority: Priority::High,
            }],
            true,
        ),
        rule(4, vec![], vec![Action::AssignTo { agent: 9 }], false),
    ];
    let mut f = facts();
    let applied = apply(&rules, &mut f, &hours());
    let ids: Vec<i64> = applied.iter().map(|a| a.rule_id).collect();
    assert_eq!(ids, vec![1, 3], "disabled rule skipped, rule 4 stopped");
    assert_eq!(f.department, Some(billing));
    assert_eq!(f.priority, Priority::High);
    assert_eq!(f.tags, vec!["billing".to_owned()]);
    assert_eq!(f.assignee, None);
}

#[test]
fn validation_names_the_rule_and_the_place() {
    let bad_regex = rule(
        1,
        vec![
            Condition::Channel {
                any: vec![ChannelKind::Email],
            },
            Condition::TextMatches {
                regex: "(unclosed".into(),
            },
        ],
        vec![Action::AssignTo { agent: 1 }],
        false,
    );
    let error = bad_regex.validate().unwrap_err();
    assert!(
        matches!(error, RuleError::Regex { position: 2, .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("rule \"rule 1\", condition 2:"),
        "{error}"
    );

    let no_actions = rule(2, vec![], vec![], false);
    assert_eq!(
        no_actions.validate(),
        Err(RuleError::NoActions {
            rule: "rule 2".into()
        })
    );
    let domain = rule(
        3,
        vec![Condition::SenderDomain {
            any: vec!["ada@example.org".into()],
        }],
        vec![Action::AssignTo { agent: 1 }],
        false,
    );
    assert!(matches!(
        domain.validate(),
        Err(RuleError::AddressAsDomain { .. })
    ));
    let tag = rule(
        4,
        vec![],
        vec![Action::AddTags {
            tags: vec!["two words".into()],
        }],
        false,
    );
    assert!(matches!(tag.validate(), Err(RuleError::BadTag { .. })));
    let empty = rule(
        5,
        vec![Condition::TextContains {
            any: vec![" ".into()],
        }],
        vec![Action::AssignTo { agent: 1 }],
        false,
    );
    assert!(matches!(
        empty.validate(),
        Err(RuleError::EmptyList { position: 1, .. })
    ));
}

#[test]
fn rules_round_trip_through_their_stored_json() {
    let stored = r#"{"id":7,"name":"VIP","enabled":true,"stop":true,
        "conditions":[{"if":"sender_domain","any":["bigcustomer.example"]}],
        "actions":[{"then":"set_priority","priority":"urgent"},{"then":"assign_to","agent":3}]}"#;
    let rule: Rule = serde_json::from_str(stored).expect("valid JSON");
    assert_eq!(
        rule.actions[0],
        Action::SetPriority {
            priority: Priority::Urgent
        }
    );
    assert!(rule.validate().is_ok());
    let again: Rule =
        serde_json::from_str(&serde_json::to_string(&rule).expect("json")).expect("json");
    assert_eq!(again, rule);
    let unknown = r#"{"if":"sender_domian","any":["x"]}"#;
    assert!(serde_json::from_str::<Condition>(unknown).is_err());
}
