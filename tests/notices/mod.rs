//! Agents told of what concerns them, each the way they chose: by a direct message in the
//! Telegram fake of testkit and by mail through the real SMTP harness, on every backend.

use std::sync::Arc;
use std::time::Duration;

use crate::support::{TestStore, mail};
use chrono::Utc;
use helpdesk::config::Settings;
use helpdesk::domain::notice::{NoticeEvent, NoticeWay};
use helpdesk::domain::{AssignmentStrategy, MessageKind, Role};
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::intake::Outcome;
use helpdesk::jobs::deliver::Deliverers;
use helpdesk::jobs::notices::{self, Sent};
use helpdesk::store::agents::NewAgent;
use helpdesk::store::outbound::NewReply;
use helpdesk::store::outbox::{self, OutboxKind};
use helpdesk::store::{self, Store};
use helpdesk_email::smtp::{SmtpSender, SmtpSettings, SmtpTls};
use helpdesk_testkit::smtp::{self as smtp_kit, SmtpServer};
use helpdesk_testkit::telegram::FakeTelegram;

mod account;
mod workers;

const TOKEN: &str = "123456:TEST-token";
const AGENTS_CHAT: i64 = -1_001_234_567_890;
const PUBLIC_URL: &str = "https://help.example.org";
const WAIT: Duration = Duration::from_secs(20);

/// Settings with the Telegram channel on the fake and the public address of the links.
fn settings(fake: &FakeTelegram) -> Settings {
    Settings::load_from(
        None,
        [
            ("HELPDESK_TELEGRAM__ENABLED", "true".to_owned()),
            ("HELPDESK_TELEGRAM__TOKEN", TOKEN.to_owned()),
            ("HELPDESK_TELEGRAM__API_URL", fake.url()),
            ("HELPDESK_TELEGRAM__AGENTS_CHAT_ID", AGENTS_CHAT.to_string()),
            ("HELPDESK_WEB__PUBLIC_URL", PUBLIC_URL.to_owned()),
        ]
        .map(|(key, value)| (key.to_owned(), value)),
    )
    .expect("settings")
}

/// The Telegram fake, the SMTP harness, and the deliverers that reach them.
struct Places {
    telegram: FakeTelegram,
    smtp: SmtpServer,
    settings: Settings,
    deliverers: Deliverers,
}

impl Places {
    async fn start() -> Places {
        let telegram = FakeTelegram::start(TOKEN).await;
        let smtp = SmtpServer::start(smtp_kit::Config::default()).await;
        let settings = settings(&telegram);
        let client = helpdesk::channels::telegram::client(&settings).expect("telegram client");
        let sender = SmtpSender::new(&SmtpSettings {
            host: "127.0.0.1".into(),
            port: smtp.addr.port(),
            tls: SmtpTls::None,
            username: String::new(),
            password: String::new(),
            from_address: "support@helpdesk.example".into(),
            from_name: None,
        })
        .expect("sender");
        let deliverers = Deliverers::default()
            .with(ChannelKind::Telegram, Arc::new(client))
            .with_notice_mail(Arc::new(sender));
        Places {
            telegram,
            smtp,
            settings,
            deliverers,
        }
    }

    /// The texts sent to Telegram chat `chat`.
    fn chat(&self, chat: i64) -> Vec<String> {
        self.telegram
            .sent()
            .into_iter()
            .filter(|sent| sent.chat_id == chat)
            .filter_map(|sent| sent.text)
            .collect()
    }

    /// The mails received for `address`, as text.
    fn mails(&self, address: &str) -> Vec<String> {
        self.smtp
            .received()
            .into_iter()
            .filter(|mail| mail.rcpt_to.iter().any(|to| to == address))
            .map(|mail| String::from_utf8_lossy(&mail.data).into_owned())
            .collect()
    }
}

async fn department(store: &Store, name: &str) -> i64 {
    store::agents::create_department(store, name, AssignmentStrategy::RoundRobin, Utc::now())
        .await
        .expect("department")
        .id
}

/// An agent (or admin) in `departments`, with a Telegram account when `telegram` is given.
async fn person(
    store: &Store,
    email: &str,
    name: &str,
    role: Role,
    departments: &[i64],
    telegram: Option<i64>,
) -> i64 {
    let telegram = telegram.map(|id| id.to_string());
    let identities: Vec<(ChannelKind, &str)> = telegram
        .as_deref()
        .map(|id| (ChannelKind::Telegram, id))
        .into_iter()
        .collect();
    store::agents::create_agent(
        store,
        &NewAgent {
            email,
            name,
            role,
            password_hash: Some(crate::support::web::password_hash()),
            department_ids: departments,
            identities: &identities,
            max_open_tickets: None,
        },
        Utc::now(),
    )
    .await
    .expect("agent")
}

/// A new ticket from Ada by mail, in `department`; its number.
async fn ticket(db: &TestStore, id: &str, department: i64, by: i64) -> i64 {
    let raw = mail(
        &[
            "From: Ada Lovelace <ada@example.org>",
            "Subject: Printer on fire",
            &format!("Message-ID: <{id}>"),
        ],
        "It smokes.",
    );
    let Outcome::Created { number, .. } = db.intake.accept_email(raw).await.expect("taken in")
    else {
        panic!("a new ticket");
    };
    change(db, number.get(), by, |change| {
        change.department = Some(Some(department));
    })
    .await;
    number.get()
}

async fn change(
    db: &TestStore,
    number: i64,
    by: i64,
    edit: impl FnOnce(&mut helpdesk::ops::TicketChange),
) {
    let mut change = helpdesk::ops::TicketChange::default();
    edit(&mut change);
    helpdesk::ops::apply(
        &db.store,
        number.into(),
        helpdesk::ops::ChangedBy {
            agent_id: by,
            now: Utc::now(),
        },
        &change,
    )
    .await
    .expect("changed");
}

/// A note (or, with `public`, a reply) by `agent_id` on ticket `number`.
async fn write(db: &TestStore, number: i64, agent_id: i64, text: &str, public: bool) {
    helpdesk::ops::send_reply(
        &db.store,
        &NewReply {
            number: number.into(),
            agent_id,
            text,
            kind: if public {
                MessageKind::Public
            } else {
                MessageKind::Internal
            },
            external_id: Some(&format!("{:x}@helpdesk.example", fastrand::u64(..))),
            channels_here: &[ChannelKind::Email],
            now: Utc::now(),
        },
    )
    .await
    .expect("written");
}

/// Runs the notices of every outbox entry after `after` (the relay's job, run here at once);
/// returns what was sent and the last entry's id.
async fn tell_since(db: &TestStore, places: &Places, after: i64) -> (Vec<Sent>, i64) {
    let pending = outbox::pending(&db.store, 1000).await.expect("outbox");
    let mut sent = Vec::new();
    let mut last = after;
    for entry in pending.iter().filter(|entry| entry.id > after) {
        sent.extend(
            notices::tell(
                &db.store,
                &places.deliverers,
                PUBLIC_URL,
                entry.id,
                Utc::now(),
            )
            .await
            .expect("notices sent"),
        );
        last = last.max(entry.id);
    }
    (sent, last)
}

/// The last outbox entry's id (0 without any).
async fn last_entry(db: &TestStore) -> i64 {
    outbox::pending(&db.store, 1000)
        .await
        .expect("outbox")
        .last()
        .map_or(0, |entry| entry.id)
}

fn media(sent: &[Sent], agent_id: i64) -> Vec<String> {
    let mut media: Vec<String> = sent
        .iter()
        .filter(|sent| sent.agent_id == agent_id)
        .map(|sent| sent.medium.clone())
        .collect();
    media.sort();
    media
}

store_test! {
    #[tokio::test]
    async fn mentions_reach_the_named_agents_and_never_their_author(db: TestStore) {
        let places = Places::start().await;
        let support = department(&db.store, "Support").await;
        let kim = person(&db.store, "kim@helpdesk.example", "Kim Park", Role::Agent, &[support], Some(501)).await;
        let sam = person(&db.store, "sam@helpdesk.example", "Sam Jones", Role::Agent, &[support], Some(502)).await;
        let outsider = person(&db.store, "olga@helpdesk.example", "Olga", Role::Agent, &[], Some(503)).await;
        store::notices::choose(&db.store, sam, &[(NoticeEvent::Mentioned, Some(NoticeWay::Both))])
            .await
            .expect("chosen");
        let number = ticket(&db, "mention-1@example.org", support, kim).await;
        let before = last_entry(&db).await;

        // A public reply naming Sam mentions nobody.
        write(&db, number, kim, "@sam will call you", true).await;
        assert_eq!(last_entry(&db).await, before, "a public reply records no mention");

        // Kim names Sam (by the name without spaces), herself and Olga, who cannot see the ticket.
        write(&db, number, kim, "@SamJones please call her. @kim @olga", false).await;
        let (sent, _) = tell_since(&db, &places, before).await;
        assert_eq!(media(&sent, sam), ["mail", "telegram"], "{sent:?}");
        assert!(media(&sent, kim).is_empty(), "the author is not told: {sent:?}");
        assert!(media(&sent, outsider).is_empty(), "{sent:?}");

        let chat = places.chat(502);
        assert_eq!(chat.len(), 1, "{chat:?}");
        assert!(chat[0].starts_with(&format!("Kim Park mentioned you on ticket #{number}")), "{}", chat[0]);
        assert!(chat[0].contains("Printer on fire"), "{}", chat[0]);
        assert!(chat[0].contains(&format!("{PUBLIC_URL}/tickets/{number}")), "{}", chat[0]);
        assert!(places.chat(501).is_empty() && places.chat(503).is_empty());

        let mails = places.mails("sam@helpdesk.example");
        assert_eq!(mails.len(), 1);
        let mail = &mails[0];
        let parsed = helpdesk_email::parse_message(mail.as_bytes()).expect("a mail");
        assert!(parsed.text.contains(&format!("{PUBLIC_URL}/tickets/{number}")), "{mail}");
        assert!(parsed.text.contains("please call her"), "{mail}");
        // Its own conversation: no thread headers, no ticket tag intake would thread by.
        let headers = mail.split("\r\n\r\n").next().unwrap_or_default().to_lowercase();
        assert!(!headers.contains("\nin-reply-to:"), "{mail}");
        assert!(!headers.contains("\nreferences:"), "{mail}");
        assert!(headers.contains("\nmessage-id:"), "{mail}");
        assert!(headers.contains("from: support@helpdesk.example"), "{mail}");
        assert!(!mail.contains("[#"), "{mail}");
        assert!(places.mails("kim@helpdesk.example").is_empty());

        // Run again (a retried job): nothing goes out twice.
        let (again, _) = tell_since(&db, &places, before).await;
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(places.chat(502).len(), 1);
        assert_eq!(places.mails("sam@helpdesk.example").len(), 1);

        // A note naming only its author records nothing.
        let last = last_entry(&db).await;
        write(&db, number, kim, "@kim.park? no: @kim reminder", false).await;
        assert_eq!(last_entry(&db).await, last);
    }
}

store_test! {
    #[tokio::test]
    async fn each_person_is_told_the_way_they_chose(db: TestStore) {
        let places = Places::start().await;
        let support = department(&db.store, "Support").await;
        let kim = person(&db.store, "kim@helpdesk.example", "Kim", Role::Agent, &[support], Some(501)).await;
        let sam = person(&db.store, "sam@helpdesk.example", "Sam", Role::Agent, &[support], Some(502)).await;
        store::notices::choose(
            &db.store,
            sam,
            &[
                (NoticeEvent::Mentioned, Some(NoticeWay::None)),
                (NoticeEvent::Assigned, Some(NoticeWay::Mail)),
            ],
        )
        .await
        .expect("chosen");
        let number = ticket(&db, "ways-1@example.org", support, kim).await;
        let before = last_entry(&db).await;

        write(&db, number, kim, "@sam have a look", false).await;
        let (sent, last) = tell_since(&db, &places, before).await;
        assert!(sent.is_empty(), "none: nothing at all: {sent:?}");

        change(&db, number, kim, |change| change.assignee = Some(Some(sam))).await;
        let (sent, _) = tell_since(&db, &places, last).await;
        assert_eq!(media(&sent, sam), ["mail"], "mail only: {sent:?}");
        assert!(places.chat(502).is_empty(), "mail only: no chat");
        let mails = places.mails("sam@helpdesk.example");
        assert_eq!(mails.len(), 1);
        assert!(mails[0].contains(&format!("Ticket #{number} is assigned to you by Kim")), "{}", mails[0]);

        // Back to the default: chat, as Sam has a linked Telegram account.
        store::notices::choose(&db.store, sam, &[(NoticeEvent::Mentioned, None)])
            .await
            .expect("chosen");
        let preferences = store::notices::preferences(&db.store, sam).await.expect("read");
        let mentioned = preferences
            .iter()
            .find(|p| p.event == NoticeEvent::Mentioned)
            .expect("mentioned");
        assert!(mentioned.is_default && mentioned.way == NoticeWay::Chat);
        let last = last_entry(&db).await;
        write(&db, number, kim, "thanks @sam", false).await;
        let (sent, _) = tell_since(&db, &places, last).await;
        assert_eq!(media(&sent, sam), ["telegram"], "{sent:?}");
    }
}

store_test! {
    #[tokio::test]
    async fn the_assignee_hears_of_assignments_and_customer_replies(db: TestStore) {
        let places = Places::start().await;
        let support = department(&db.store, "Support").await;
        let kim = person(&db.store, "kim@helpdesk.example", "Kim", Role::Agent, &[support], Some(501)).await;
        // Without a chat account the default is mail.
        let sam = person(&db.store, "sam@helpdesk.example", "Sam", Role::Agent, &[support], None).await;
        let number = ticket(&db, "assignee-1@example.org", support, kim).await;
        let before = last_entry(&db).await;

        change(&db, number, kim, |change| change.assignee = Some(Some(sam))).await;
        let (sent, last) = tell_since(&db, &places, before).await;
        assert_eq!(media(&sent, sam), ["mail"], "{sent:?}");

        // Taking a ticket yourself tells nobody.
        change(&db, number, kim, |change| change.assignee = Some(Some(kim))).await;
        let (sent, last) = tell_since(&db, &places, last).await;
        assert!(sent.is_empty(), "{sent:?}");
        assert!(places.chat(501).is_empty());

        // The customer writes again: the assignee (Kim now) is told, with her words.
        let raw = mail(
            &[
                "From: Ada Lovelace <ada@example.org>",
                &format!("Subject: Re: [#{number}] Printer on fire"),
                "Message-ID: <assignee-2@example.org>",
                "In-Reply-To: <assignee-1@example.org>",
            ],
            "Now it is out, but it beeps.",
        );
        let outcome = db.intake.accept_email(raw).await.expect("taken in");
        assert!(matches!(outcome, Outcome::Threaded { .. }), "{outcome:?}");
        let (sent, _) = tell_since(&db, &places, last).await;
        assert_eq!(media(&sent, kim), ["telegram"], "{sent:?}");
        assert!(media(&sent, sam).is_empty(), "{sent:?}");
        let chat = places.chat(501);
        assert_eq!(chat.len(), 1, "{chat:?}");
        assert!(chat[0].starts_with(&format!("Ada Lovelace wrote on your ticket #{number}")), "{}", chat[0]);
        assert!(chat[0].contains("it beeps"), "{}", chat[0]);
    }
}

store_test! {
    #[tokio::test]
    async fn sla_warnings_go_to_the_assignee_and_breaches_to_the_department_and_admins(db: TestStore) {
        let places = Places::start().await;
        let support = department(&db.store, "Support").await;
        let sales = department(&db.store, "Sales").await;
        let kim = person(&db.store, "kim@helpdesk.example", "Kim", Role::Agent, &[support], Some(501)).await;
        let sam = person(&db.store, "sam@helpdesk.example", "Sam", Role::Agent, &[support], None).await;
        let boss = person(&db.store, "boss@helpdesk.example", "Boss", Role::Admin, &[], Some(509)).await;
        let seller = person(&db.store, "sel@helpdesk.example", "Sel", Role::Agent, &[sales], Some(510)).await;
        let number = ticket(&db, "sla-1@example.org", support, boss).await;
        change(&db, number, boss, |change| change.assignee = Some(Some(sam))).await;
        let before = last_entry(&db).await;
        let ticket_id = store::views::ticket_facts(&db.store, number.into())
            .await
            .expect("read")
            .expect("ticket")
            .id;

        let mut tx = db.store.begin_write().await.expect("tx");
        outbox::record(&mut tx, OutboxKind::SlaWarning, ticket_id, None, Utc::now())
            .await
            .expect("recorded");
        tx.commit().await.expect("commit");
        let (sent, last) = tell_since(&db, &places, before).await;
        assert_eq!(media(&sent, sam), ["mail"], "{sent:?}");
        assert_eq!(sent.len(), 1, "only the assignee: {sent:?}");
        let mails = places.mails("sam@helpdesk.example");
        assert!(mails.iter().any(|m| m.contains(&format!("Ticket #{number} nears its SLA target"))), "{mails:?}");

        let mut tx = db.store.begin_write().await.expect("tx");
        outbox::record(&mut tx, OutboxKind::SlaBreached, ticket_id, None, Utc::now())
            .await
            .expect("recorded");
        tx.commit().await.expect("commit");
        let (sent, _) = tell_since(&db, &places, last).await;
        assert_eq!(media(&sent, kim), ["telegram"], "{sent:?}");
        assert_eq!(media(&sent, sam), ["mail"], "{sent:?}");
        assert_eq!(media(&sent, boss), ["telegram"], "{sent:?}");
        assert!(media(&sent, seller).is_empty(), "{sent:?}");
        assert!(places.chat(509).iter().any(|t| t.starts_with(&format!("Ticket #{number} missed its SLA target"))));
    }
}

store_test! {
    #[tokio::test]
    async fn an_sla_warning_waits_while_pending_then_reaches_the_assignee_before_the_breach(
        db: TestStore,
    ) {
        use chrono::{Duration as Span, DurationRound};
        use helpdesk::domain::sla::{PolicyOverrides, Target};
        use helpdesk::domain::{Priority, Status};
        use helpdesk::jobs::sla::{self, SlaCheck, SlaOutcome};

        let places = Places::start().await;
        let targets = helpdesk::jobs::JobSettings::from_settings(&places.settings).sla;
        let support = department(&db.store, "Support").await;
        // Resolution within an hour at normal priority: the warning at 80 %, after 48 minutes.
        let policy: PolicyOverrides =
            [((Target::Resolution, Priority::Normal), 60)].into_iter().collect();
        store::calendars::set_policy(&db.store, support, &policy).await.expect("policy");
        let kim = person(&db.store, "kim@helpdesk.example", "Kim", Role::Agent, &[support], Some(501)).await;
        let sam = person(&db.store, "sam@helpdesk.example", "Sam", Role::Agent, &[support], None).await;
        let boss = person(&db.store, "boss@helpdesk.example", "Boss", Role::Admin, &[], Some(509)).await;
        let number = ticket(&db, "sla-pending-1@example.org", support, boss).await;
        change(&db, number, boss, |change| change.assignee = Some(Some(sam))).await;
        let ticket_id = store::views::ticket_facts(&db.store, number.into())
            .await
            .expect("read")
            .expect("ticket")
            .id
            .get();
        // Created 70 minutes ago, answered after 5, waiting for the customer after 10.
        let t0 = (Utc::now() - Span::minutes(70))
            .duration_trunc(Span::seconds(1))
            .expect("whole seconds");
        crate::sla::clock::created_at(&db, ticket_id, t0).await;
        crate::sla::clock::answer(&db, number, sam, t0 + Span::minutes(5)).await;
        crate::sla::status(&db, number, Status::Pending, t0 + Span::minutes(10)).await;
        let before = last_entry(&db).await;

        // Past the warning mark, but the clock stands still: no warning.
        let resolution = SlaCheck { ticket_id: ticket_id.into(), target: Target::Resolution };
        let at = t0 + Span::minutes(50);
        assert_eq!(
            sla::check(&db.store, &targets, resolution, at).await.expect("check"),
            SlaOutcome::Paused(at + Span::minutes(50))
        );
        let (sent, last) = tell_since(&db, &places, before).await;
        assert!(sent.is_empty(), "{sent:?}");

        // The customer writes: the ticket opens and its clock runs again.
        let raw = mail(
            &[
                "From: Ada Lovelace <ada@example.org>",
                &format!("Subject: Re: [#{number}] Printer on fire"),
                "Message-ID: <sla-pending-2@example.org>",
                "In-Reply-To: <sla-pending-1@example.org>",
            ],
            "Here are the photos.",
        );
        let outcome = db.intake.accept_email(raw).await.expect("taken in");
        assert!(
            matches!(outcome, Outcome::Threaded { reopened: true, .. }),
            "{outcome:?}"
        );
        let (sent, last) = tell_since(&db, &places, last).await;
        assert_eq!(media(&sent, sam), ["mail"], "the customer's reply: {sent:?}");
        let detail = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("ticket");
        let resumed = detail
            .history
            .iter()
            .rev()
            .find(|e| e.kind == "status" && e.new_value.as_deref() == Some("open"))
            .expect("reopened")
            .at;
        // Ten minutes ran before the pause: 38 more to the warning, 50 to the due time.
        let (warn_at, due) = (resumed + Span::minutes(38), resumed + Span::minutes(50));
        assert_eq!(
            sla::check(&db.store, &targets, resolution, warn_at - Span::seconds(1))
                .await
                .expect("check"),
            SlaOutcome::CheckAgainAt(due)
        );
        let (sent, last) = tell_since(&db, &places, last).await;
        assert!(sent.is_empty(), "not yet: {sent:?}");

        assert_eq!(
            sla::check(&db.store, &targets, resolution, warn_at).await.expect("check"),
            SlaOutcome::CheckAgainAt(due)
        );
        let (sent, last) = tell_since(&db, &places, last).await;
        assert_eq!(media(&sent, sam), ["mail"], "{sent:?}");
        assert_eq!(sent.len(), 1, "only the assignee is warned: {sent:?}");
        let warned: Vec<String> = places
            .mails("sam@helpdesk.example")
            .into_iter()
            .filter(|m| m.contains(&format!("Ticket #{number} nears its SLA target")))
            .collect();
        assert_eq!(warned.len(), 1, "{warned:?}");

        // At the due time: the breach, told to the department's agents and the admins.
        assert_eq!(
            sla::check(&db.store, &targets, resolution, due).await.expect("check"),
            SlaOutcome::Escalated { from: Priority::Normal, to: Priority::High }
        );
        let (sent, _) = tell_since(&db, &places, last).await;
        assert_eq!(media(&sent, kim), ["telegram"], "{sent:?}");
        assert_eq!(media(&sent, sam), ["mail"], "{sent:?}");
        assert_eq!(media(&sent, boss), ["telegram"], "{sent:?}");
        assert!(
            places
                .chat(509)
                .iter()
                .any(|t| t.starts_with(&format!("Ticket #{number} missed its SLA target"))),
            "{:?}",
            places.chat(509)
        );
        let detail = store::tickets::detail(&db.store, number.into())
            .await
            .expect("read")
            .expect("ticket");
        let kinds: Vec<&str> = detail
            .history
            .iter()
            .map(|e| e.kind.as_str())
            .filter(|kind| kind.starts_with("sla_"))
            .collect();
        assert_eq!(kinds, ["sla_warning", "sla_breached"]);
    }
}
