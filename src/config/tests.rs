use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_text(text: &str, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("helpdesk.toml");
    std::fs::write(&path, text).expect("write settings");
    Settings::load_from(Some(&path), env(vars))
}

#[test]
fn defaults_load_and_use_embedded_sqlite() {
    let settings = Settings::load_from(None, env(&[])).expect("defaults are valid");
    assert_eq!(settings.database.url, "sqlite://data/helpdesk.db");
    assert_eq!(settings.web.listen.port(), 8080);
    assert_eq!(settings.email.imap.tls, Tls::Tls);
    assert!(!settings.email.enabled);
}

#[test]
fn file_then_environment_override_defaults() {
    let settings = load_text(
        "[database]\nurl = \"postgres://db/helpdesk\"\n[email.imap]\nport = 143\n",
        &[
            ("HELPDESK_EMAIL__IMAP__PORT", "1143"),
            ("HELPDESK_EMAIL__IMAP__PASSWORD", "12345"),
            ("HELPDESK_TELEGRAM__ENABLED", "no"),
            ("OTHER_VARIABLE", "ignored"),
        ],
    )
    .expect("valid settings");
    assert_eq!(settings.database.url, "postgres://db/helpdesk");
    assert_eq!(settings.email.imap.port, 1143);
    assert_eq!(settings.email.imap.password, "12345");
    assert!(!settings.telegram.enabled);
}

#[test]
fn telegram_webhook_mode_needs_a_url_and_a_secret_telegram_accepts() {
    let webhook = |url: &str, secret: &str| {
        load_text(
            "[telegram]\nenabled = true\ntoken = \"1:x\"\nmode = \"webhook\"\n",
            &[
                ("HELPDESK_TELEGRAM__WEBHOOK_URL", url),
                ("HELPDESK_TELEGRAM__WEBHOOK_SECRET", secret),
            ],
        )
    };
    let settings = webhook("https://help.example.org/telegram/webhook", "s3cret_-X")
        .expect("valid webhook settings");
    assert_eq!(settings.telegram.mode, TelegramMode::Webhook);
    assert_eq!(settings.telegram.webhook_listen.port(), 8088);
    let error = webhook("", "s3cret").unwrap_err().to_string();
    assert!(error.contains("`telegram.webhook_url`"), "{error}");
    let error = webhook("https://help.example.org/hook", "not secret!")
        .unwrap_err()
        .to_string();
    assert!(error.contains("`telegram.webhook_secret`"), "{error}");
    let error = load_text("[telegram]\nmode = \"push\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("`telegram.mode`"), "{error}");
}

#[test]
fn a_wrong_type_names_the_key_and_its_origin() {
    let error = load_text("[email.imap]\nport = \"imap\"\n", &[]).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("`email.imap.port`"), "{message}");
    assert!(message.contains("helpdesk.toml"), "{message}");

    let error = Settings::load_from(None, env(&[("HELPDESK_WEB__LISTEN", "localhost")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("`web.listen`"), "{error}");
    assert!(error.contains("HELPDESK_WEB__LISTEN"), "{error}");
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    let error = load_text("[email]\nadress = \"x@y\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`email.adress`") && error.contains("unknown"),
        "{error}"
    );

    let error = Settings::load_from(None, env(&[("HELPDESK_NOPE", "1")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("`nope`"), "{error}");

    let error = load_text("[database]\nurl = \"mysql://x\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("`database.url`"), "{error}");

    let error = load_text("[email.imap]\ntls = \"ssl\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`email.imap.tls`") && error.contains("starttls"),
        "{error}"
    );

    let error = Settings::load_from(None, env(&[("HELPDESK_EMAIL__ENABLED", "true")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("`email.imap.host`"), "{error}");
}

#[test]
fn sla_targets_and_business_hours_are_read_and_checked() {
    let settings = Settings::load_from(
        None,
        env(&[("HELPDESK_SLA__FIRST_RESPONSE_MINUTES__URGENT", "15")]),
    )
    .expect("valid");
    assert_eq!(settings.sla.first_response_minutes.urgent, 15);
    let hours = settings.workflow.business_hours().expect("valid hours");
    assert_eq!(hours.days.len(), 5);
    let error = load_text("[workflow]\nbusiness_hours = \"17:00-09:00\"\n", &[]).unwrap_err();
    assert!(
        error.to_string().contains("`workflow.business_hours`"),
        "{error}"
    );
    let error = load_text(
        "[workflow]\nbusiness_days = [\"monday\", \"funday\"]\n",
        &[],
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("`workflow.business_days`"),
        "{error}"
    );
    let error = Settings::load_from(None, env(&[("HELPDESK_SLA__RESOLUTION_MINUTES__LOW", "0")]))
        .unwrap_err();
    assert!(
        error.to_string().contains("`sla.resolution_minutes`"),
        "{error}"
    );
}

#[test]
fn the_warning_share_is_read_and_must_lie_strictly_between_0_and_1() {
    let settings = load_text("[sla]\nwarning_share = 0.5\n", &[]).expect("valid");
    assert_eq!(settings.sla.targets().warning_permille, 500);
    let defaults = Settings::load_from(None, Vec::new()).expect("defaults");
    assert_eq!(defaults.sla.targets().warning_permille, 800);
    for share in ["0", "1", "1.5", "-0.2"] {
        let error = Settings::load_from(None, env(&[("HELPDESK_SLA__WARNING_SHARE", share)]))
            .expect_err("refused");
        assert!(
            error.to_string().contains("`sla.warning_share`"),
            "{share}: {error}"
        );
    }
}

#[test]
fn the_default_department_is_a_name_or_empty() {
    let settings = Settings::load_from(None, env(&[])).expect("defaults");
    assert_eq!(settings.workflow.default_department(), Some("General"));
    let off = Settings::load_from(None, env(&[("HELPDESK_WORKFLOW__DEFAULT_DEPARTMENT", "")]))
        .expect("empty turns it off");
    assert_eq!(off.workflow.default_department(), None);
    let error = load_text("[workflow]\ndefault_department = \" Support\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("`workflow.default_department`"), "{error}");
}

#[test]
fn a_stranger_naming_a_ticket_opens_a_new_one_unless_set_to_join() {
    use crate::intake::UnknownSenderTag;
    let settings = Settings::load_from(None, env(&[])).expect("defaults");
    assert_eq!(
        settings.intake.unknown_sender_tag,
        UnknownSenderTag::NewTicket
    );
    let join = Settings::load_from(
        None,
        env(&[("HELPDESK_INTAKE__UNKNOWN_SENDER_TAG", "join")]),
    )
    .expect("join");
    assert_eq!(join.intake.unknown_sender_tag, UnknownSenderTag::Join);
    let error = load_text("[intake]\nunknown_sender_tag = \"hold\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("`intake.unknown_sender_tag`"), "{error}");
}

#[test]
fn syntax_errors_and_missing_files_are_clear() {
    let error = load_text("[database\n", &[]).unwrap_err().to_string();
    assert!(error.contains("not valid TOML"), "{error}");
    let error = Settings::load_from(Some(Path::new("/nonexistent/helpdesk.toml")), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("/nonexistent/helpdesk.toml"), "{error}");
}

const TWO_MAILBOXES: &str = r#"
[email]
enabled = true
[email.imap]
host = "imap.example.org"
port = 143
tls = "starttls"
[email.smtp]
host = "smtp.example.org"
[[email.mailboxes]]
name = "support"
address = "support@example.org"
department = "General"
display_name = "Example Support"
signature = "Example Support\nhttps://example.org"
[email.mailboxes.imap]
username = "support"
password = "s3cret"
[[email.mailboxes]]
name = "billing"
address = "billing@example.org"
department = "Billing"
[email.mailboxes.imap]
host = "imap.billing.example"
username = "billing"
mailbox = "Billing"
[email.mailboxes.smtp]
host = "smtp.billing.example"
port = 465
tls = "tls"
"#;

#[test]
fn several_mailboxes_take_what_they_leave_out_from_the_shared_settings() {
    let settings = load_text(TWO_MAILBOXES, &[]).expect("valid mailboxes");
    let mailboxes = settings.email.mailboxes();
    assert_eq!(mailboxes.len(), 2);
    let (support, billing) = (&mailboxes[0], &mailboxes[1]);
    assert_eq!(support.name, "support");
    assert_eq!(support.department.as_deref(), Some("General"));
    assert_eq!(support.display_name.as_deref(), Some("Example Support"));
    assert_eq!(
        support.signature.as_deref(),
        Some("Example Support\nhttps://example.org")
    );
    assert_eq!(
        (
            support.imap.host.as_str(),
            support.imap.port,
            support.imap.tls
        ),
        ("imap.example.org", 143, Tls::Starttls)
    );
    assert_eq!(support.imap.username, "support");
    assert_eq!(support.imap.mailbox, "INBOX");
    assert_eq!(support.smtp.host, "smtp.example.org", "the shared SMTP");
    assert_eq!(billing.imap.host, "imap.billing.example");
    assert_eq!(billing.imap.port, 143, "left out: from [email.imap]");
    assert_eq!(billing.imap.mailbox, "Billing");
    assert_eq!(
        (
            billing.smtp.host.as_str(),
            billing.smtp.port,
            billing.smtp.tls
        ),
        ("smtp.billing.example", 465, Tls::Tls)
    );
    assert_eq!(billing.display_name, None);
    assert_eq!(billing.signature, None);
    // Positions and health rows of their own; "default" would keep the old names.
    assert_eq!(support.cursor_scope(), Some("support"));
    assert_eq!(billing.health_name(), "imap:billing/Billing");
    assert_eq!(
        settings.email.own_addresses(),
        ["billing@example.org", "support@example.org"]
    );
}

#[test]
fn the_single_email_block_is_one_mailbox_named_default() {
    let settings = load_text(
        "[email]\nenabled = true\naddress = \"help@example.org\"\ndisplay_name = \"Help\"\n\
         [email.imap]\nhost = \"imap.example.org\"\n[email.smtp]\nhost = \"smtp.example.org\"\n",
        &[],
    )
    .expect("valid single mailbox");
    let mailboxes = settings.email.mailboxes();
    assert_eq!(mailboxes.len(), 1);
    let only = &mailboxes[0];
    assert_eq!(only.name, DEFAULT_MAILBOX);
    assert_eq!(only.address, "help@example.org");
    assert_eq!(only.department, None);
    assert_eq!(only.display_name.as_deref(), Some("Help"));
    assert_eq!(only.named(), "Help <help@example.org>");
    // The position and health row it always had.
    assert_eq!(only.cursor_scope(), None);
    assert_eq!(only.health_name(), "imap:INBOX");
}

#[test]
fn mailboxes_are_refused_with_the_key_that_is_wrong() {
    let error = |text: &str| load_text(text, &[]).expect_err("refused").to_string();
    let twice_named = TWO_MAILBOXES.replace("name = \"billing\"", "name = \"Support\"");
    let message = error(&twice_named);
    assert!(message.contains("`email.mailboxes[1].name`"), "{message}");
    assert!(message.contains("two mailboxes"), "{message}");

    let twice_addressed =
        TWO_MAILBOXES.replace("billing@example.org\"\ndep", "SUPPORT@example.org\"\ndep");
    let message = error(&twice_addressed);
    assert!(
        message.contains("`email.mailboxes[1].address`"),
        "{message}"
    );

    let not_an_address = TWO_MAILBOXES.replace("billing@example.org\"\ndep", "billing\"\ndep");
    let message = error(&not_an_address);
    assert!(message.contains("is not an email address"), "{message}");

    let no_host = TWO_MAILBOXES.replace("host = \"imap.example.org\"\n", "");
    let message = error(&no_host);
    assert!(
        message.contains("`email.mailboxes[0].imap.host`"),
        "{message}"
    );
    assert!(
        message.contains("helpdesk.toml"),
        "names the file: {message}"
    );

    let odd_name = TWO_MAILBOXES.replace("name = \"billing\"", "name = \"bill ing\"");
    assert!(error(&odd_name).contains("letters, digits"));

    let unknown_key = TWO_MAILBOXES.replace("department = \"Billing\"", "departement = \"x\"");
    assert!(error(&unknown_key).contains("departement"));

    // Mail off: entries are not checked.
    let off = twice_named.replace("enabled = true", "enabled = false");
    assert!(load_text(&off, &[]).is_ok());
}

#[test]
fn an_otlp_endpoint_is_off_by_default_and_must_be_a_base_url() {
    let settings = Settings::load_from(None, env(&[])).expect("defaults");
    assert_eq!(settings.telemetry.otlp_endpoint, "");
    let settings = Settings::load_from(
        None,
        env(&[(
            "HELPDESK_TELEMETRY__OTLP_ENDPOINT",
            "http://otel-collector:4318",
        )]),
    )
    .expect("a collector's URL");
    assert_eq!(
        settings.telemetry.otlp_endpoint,
        "http://otel-collector:4318"
    );
    for wrong in ["otel-collector:4318", "grpc://collector:4317", "http://"] {
        let error = Settings::load_from(None, env(&[("HELPDESK_TELEMETRY__OTLP_ENDPOINT", wrong)]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`telemetry.otlp_endpoint`") && error.contains("/v1/traces"),
            "{wrong}: {error}"
        );
    }
}
