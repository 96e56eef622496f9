use super::*;
use crate::domain::Priority;
use crate::domain::rules::{Action, Condition};
use chrono::{FixedOffset, NaiveTime, Weekday};
use helpdesk_channel::ChannelKind;

const BILLING: i64 = 2;
const GENERAL: i64 = 1;

fn hours() -> BusinessHours {
    BusinessHours {
        days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed],
        start: NaiveTime::from_hms_opt(9, 0, 0).expect("valid"),
        end: NaiveTime::from_hms_opt(17, 0, 0).expect("valid"),
        offset: FixedOffset::east_opt(0).expect("valid"),
    }
}

fn directory() -> Directory {
    Directory {
        departments: vec![(GENERAL, "General".into()), (BILLING, "Billing".into())],
        agents: vec![
            KnownAgent {
                id: 5,
                name: "Ada".into(),
                active: true,
            },
            KnownAgent {
                id: 6,
                name: "Bob".into(),
                active: false,
            },
        ],
    }
}

fn rule(name: &str, conditions: Vec<Condition>, actions: Vec<Action>, stop: bool) -> Rule {
    Rule {
        id: 0,
        name: name.into(),
        enabled: true,
        conditions,
        actions,
        stop,
    }
}

fn words(any: &[&str]) -> Vec<String> {
    any.iter().map(|w| (*w).to_owned()).collect()
}

fn invoices_to_billing(stop: bool) -> Rule {
    rule(
        "Invoices to Billing",
        vec![Condition::TextContains {
            any: words(&["invoice"]),
        }],
        vec![
            Action::SetDepartment {
                department: BILLING,
            },
            Action::AddTags {
                tags: words(&["billing"]),
            },
        ],
        stop,
    )
}

fn to_general() -> Rule {
    rule(
        "To General",
        vec![],
        vec![Action::SetDepartment {
            department: GENERAL,
        }],
        false,
    )
}

fn sample(number: i64, subject: &str) -> Sample {
    Sample {
        number: TicketNumber(number),
        facts: TicketFacts {
            channel: ChannelKind::Email,
            sender_address: "pia@customer.example".into(),
            subject: subject.into(),
            text: String::new(),
            department: None,
            priority: Priority::Normal,
            tags: Vec::new(),
            assignee: None,
            received_at: "2026-11-25T10:30:00Z".parse().expect("date"),
        },
    }
}

#[test]
fn a_catch_all_after_a_rule_without_stop_overrides_it() {
    let rules = vec![invoices_to_billing(false), to_general()];
    let samples = vec![sample(1001, "Invoice 7"), sample(1002, "Hello")];
    let report = check(&rules, &directory(), &samples, &hours());
    assert_eq!(
        report.findings[0],
        vec![Finding::Overridden {
            by: 1,
            field: Field::Department,
            always: true,
            tickets: vec![TicketNumber(1001)],
        }]
    );
    assert!(report.findings[1].is_empty());
    assert_eq!(report.matched, vec![1, 2]);
    let message = report.findings[0][0].message(&rules, &directory());
    assert!(message.contains("“To General”"), "{message}");
    assert!(message.contains("#1001"), "{message}");

    let fixed = vec![invoices_to_billing(true), to_general()];
    let report = check(&fixed, &directory(), &samples, &hours());
    assert!(report.findings.iter().all(Vec::is_empty), "{report:?}");
}

#[test]
fn a_later_rule_with_a_superset_of_conditions_overrides_only_where_it_matches() {
    let narrower = rule(
        "Urgent invoices",
        vec![Condition::SubjectContains {
            any: words(&["invoice overdue"]),
        }],
        vec![Action::SetPriority {
            priority: Priority::Urgent,
        }],
        false,
    );
    let wider = rule(
        "Invoices are low",
        vec![Condition::TextContains {
            any: words(&["invoice"]),
        }],
        vec![Action::SetPriority {
            priority: Priority::Low,
        }],
        false,
    );
    let report = check(
        &[narrower.clone(), wider.clone()],
        &directory(),
        &[],
        &hours(),
    );
    assert!(matches!(
        report.findings[0][..],
        [Finding::Overridden { always: true, .. }]
    ));
    // The other way round the later rule does not match every ticket of the earlier one;
    // a recent ticket shows where it did.
    let samples = vec![sample(7, "invoice overdue")];
    let report = check(&[wider, narrower], &directory(), &samples, &hours());
    assert_eq!(
        report.findings[0],
        vec![Finding::Overridden {
            by: 1,
            field: Field::Priority,
            always: false,
            tickets: vec![TicketNumber(7)],
        }]
    );
}

#[test]
fn setting_the_same_value_again_or_a_department_condition_on_the_new_one_is_no_override() {
    let same = rule(
        "Billing again",
        vec![],
        vec![Action::SetDepartment {
            department: BILLING,
        }],
        false,
    );
    let report = check(
        &[invoices_to_billing(false), same],
        &directory(),
        &[sample(1, "invoice")],
        &hours(),
    );
    assert!(report.findings[0].is_empty(), "{report:?}");
    // A later rule on Billing tickets setting the priority does not touch the department.
    let billing_high = rule(
        "Billing is high",
        vec![Condition::Department { any: vec![BILLING] }],
        vec![Action::SetPriority {
            priority: Priority::High,
        }],
        false,
    );
    let report = check(
        &[invoices_to_billing(false), billing_high],
        &directory(),
        &[sample(1, "invoice")],
        &hours(),
    );
    assert!(report.findings.iter().all(Vec::is_empty), "{report:?}");
    assert_eq!(report.matched, vec![1, 1]);
}

#[test]
fn rules_that_can_never_fire_say_why() {
    let contradictory = rule(
        "Mail on chat",
        vec![
            Condition::Channel {
                any: vec![ChannelKind::Email],
            },
            Condition::Channel {
                any: vec![ChannelKind::Telegram],
            },
        ],
        vec![Action::SetPriority {
            priority: Priority::High,
        }],
        false,
    );
    let gone = rule(
        "Old department",
        vec![Condition::Department { any: vec![99] }],
        vec![Action::AssignTo { agent: 5 }],
        false,
    );
    let empty = rule(
        "Empty",
        vec![Condition::Priority { any: vec![] }],
        vec![Action::AssignTo { agent: 5 }],
        false,
    );
    let stopper = rule(
        "Everything to General",
        vec![],
        vec![Action::SetDepartment {
            department: GENERAL,
        }],
        true,
    );
    let after_stop = invoices_to_billing(false);
    let rules = vec![contradictory, gone, empty, stopper, after_stop];
    let report = check(&rules, &directory(), &[], &hours());
    assert_eq!(
        report.findings[0],
        vec![Finding::NeverFires(NeverFires::Contradiction {
            first: 1,
            second: 2
        })]
    );
    assert_eq!(
        report.findings[1],
        vec![Finding::NeverFires(NeverFires::DepartmentsGone {
            position: 1
        })]
    );
    assert_eq!(
        report.findings[2],
        vec![Finding::NeverFires(NeverFires::EmptyList { position: 1 })]
    );
    assert!(report.findings[3].is_empty());
    assert_eq!(
        report.findings[4],
        vec![Finding::NeverFires(NeverFires::StoppedBy { rule: 3 })]
    );
    assert!(
        report.findings[4][0]
            .message(&rules, &directory())
            .contains("“Everything to General”")
    );
}

#[test]
fn an_earlier_stop_only_hides_rules_whose_tickets_it_always_takes() {
    let mail_stops = rule(
        "Mail to General",
        vec![Condition::Channel {
            any: vec![ChannelKind::Email],
        }],
        vec![Action::SetDepartment {
            department: GENERAL,
        }],
        true,
    );
    let mail_invoices = rule(
        "Mail invoices",
        vec![
            Condition::Channel {
                any: vec![ChannelKind::Email],
            },
            Condition::SubjectContains {
                any: words(&["invoice"]),
            },
        ],
        vec![Action::AssignTo { agent: 5 }],
        false,
    );
    let report = check(
        &[mail_stops.clone(), mail_invoices],
        &directory(),
        &[],
        &hours(),
    );
    assert_eq!(
        report.findings[1],
        vec![Finding::NeverFires(NeverFires::StoppedBy { rule: 0 })]
    );
    let any_invoice = invoices_to_billing(false);
    let report = check(&[mail_stops, any_invoice], &directory(), &[], &hours());
    assert!(
        report.findings[1].is_empty(),
        "chat invoices still reach it"
    );
}

#[test]
fn actions_on_gone_departments_and_disabled_or_deleted_agents_are_named() {
    let rules = vec![rule(
        "Dead ends",
        vec![Condition::Department {
            any: vec![BILLING, 42],
        }],
        vec![
            Action::SetDepartment { department: 77 },
            Action::AssignTo { agent: 6 },
            Action::AssignTo { agent: 8 },
        ],
        false,
    )];
    let report = check(&rules, &directory(), &[], &hours());
    assert_eq!(
        report.findings[0],
        vec![
            Finding::DeletedInCondition {
                position: 1,
                department: 42
            },
            Finding::DepartmentGone {
                position: 1,
                department: 77
            },
            Finding::AgentUnavailable {
                position: 2,
                agent: 6
            },
            Finding::AgentUnavailable {
                position: 3,
                agent: 8
            },
        ]
    );
    let dir = directory();
    assert!(report.findings[0][2].message(&rules, &dir).contains("Bob"));
    assert_eq!(dir.agent_name(6), "Bob (disabled)");
    assert_eq!(dir.department_name(77), "deleted department (#77)");
    assert_eq!(
        describe_condition(&rules[0].conditions[0], &dir),
        "department is Billing or deleted department (#42)"
    );
    assert_eq!(
        describe_action(&rules[0].actions[1], &dir),
        "assign to Bob (disabled)"
    );
}

#[test]
fn disabled_rules_neither_warn_nor_override() {
    let mut general = to_general();
    general.enabled = false;
    let report = check(
        &[invoices_to_billing(false), general],
        &directory(),
        &[sample(1, "invoice")],
        &hours(),
    );
    assert!(report.findings.iter().all(Vec::is_empty), "{report:?}");
}

#[test]
fn implication_and_contradiction_of_conditions() {
    let address = Condition::SenderAddress {
        any: words(&["Pia@Sub.Customer.example"]),
    };
    let domain = Condition::SenderDomain {
        any: words(&["customer.example"]),
    };
    let other_domain = Condition::SenderDomain {
        any: words(&["elsewhere.example"]),
    };
    assert!(implies(&address, &domain));
    assert!(!implies(&domain, &address));
    assert!(contradict(&address, &other_domain));
    assert!(!contradict(&address, &domain));
    assert!(contradict(
        &Condition::BusinessHours { inside: true },
        &Condition::BusinessHours { inside: false }
    ));
    assert!(contradict(
        &Condition::Department { any: vec![] },
        &Condition::Department { any: vec![BILLING] }
    ));
    assert!(implies(
        &Condition::SubjectContains {
            any: words(&["Refund please"])
        },
        &Condition::TextContains {
            any: words(&["refund"])
        }
    ));
    assert!(!implies(
        &Condition::TextContains {
            any: words(&["refund"])
        },
        &Condition::SubjectContains {
            any: words(&["refund"])
        }
    ));
}

#[test]
fn the_preview_lists_tickets_the_rule_changes_and_those_an_earlier_stop_takes() {
    let mut stopper = to_general();
    stopper.conditions = vec![Condition::SubjectContains {
        any: words(&["urgent"]),
    }];
    stopper.stop = true;
    let rules = vec![stopper, invoices_to_billing(false), to_general()];
    let samples = vec![
        sample(1, "Invoice"),
        sample(2, "Urgent invoice"),
        sample(3, "Hello"),
    ];
    let rows = preview(&rules, 1, &samples, &hours());
    assert_eq!(
        rows,
        vec![
            (
                TicketNumber(1),
                Outcome::Applies {
                    overridden: vec![(Field::Department, 2)]
                }
            ),
            (TicketNumber(2), Outcome::StoppedBefore { rule: 0 }),
        ]
    );
}
