//! Several mailboxes: `[[email.mailboxes]]` entries, each with its address, department, IMAP
//! and SMTP settings (keys left out come from `[email.imap]` and `[email.smtp]`), display name
//! and signature. Without entries, `[email]` itself is the one mailbox, named
//! [`DEFAULT_MAILBOX`].

use serde::Deserialize;

use super::{EmailSettings, ImapSettings, SmtpSettings, Tls};

/// The name of the mailbox `[email]` describes when there are no `[[email.mailboxes]]`. A
/// listed mailbox of this name keeps that mailbox's IMAP position and health row, so moving
/// from the single block to a list reads nothing again.
pub const DEFAULT_MAILBOX: &str = "default";

/// One `[[email.mailboxes]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxEntry {
    pub name: String,
    pub address: String,
    /// The department (by name) new tickets from this mailbox start in; "" for none.
    #[serde(default)]
    pub department: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub signature: String,
    #[serde(default)]
    pub imap: ImapOverride,
    /// Absent: the shared `[email.smtp]`.
    #[serde(default)]
    pub smtp: Option<SmtpOverride>,
}

/// The IMAP keys a mailbox sets; the others come from `[email.imap]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapOverride {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<Tls>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub mailbox: Option<String>,
    pub idle: Option<bool>,
    pub poll_seconds: Option<u64>,
}

/// The SMTP keys a mailbox sets; the others come from `[email.smtp]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpOverride {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<Tls>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// One mailbox as the application uses it, every setting resolved.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub name: String,
    pub address: String,
    pub department: Option<String>,
    pub display_name: Option<String>,
    pub signature: Option<String>,
    pub imap: ImapSettings,
    pub smtp: SmtpSettings,
}

impl Mailbox {
    /// What its IMAP position is kept under in `channel_cursors`: nothing for the default
    /// mailbox (the names of the single mailbox of old), its name for the others.
    pub fn cursor_scope(&self) -> Option<&str> {
        (self.name != DEFAULT_MAILBOX).then_some(self.name.as_str())
    }

    /// Its IMAP connection's row name in `channel_health`.
    pub fn health_name(&self) -> String {
        match self.cursor_scope() {
            None => format!("imap:{}", self.imap.mailbox),
            Some(name) => format!("imap:{name}/{}", self.imap.mailbox),
        }
    }

    /// How it names itself to customers: "Display Name <address>", or the address.
    pub fn named(&self) -> String {
        match &self.display_name {
            Some(name) => format!("{name} <{}>", self.address),
            None => self.address.clone(),
        }
    }
}

fn given(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

impl EmailSettings {
    /// Every mailbox, in the order configured; the first is where mail without a mailbox of
    /// its own goes out from.
    pub fn mailboxes(&self) -> Vec<Mailbox> {
        if self.mailboxes.is_empty() {
            return vec![Mailbox {
                name: DEFAULT_MAILBOX.to_owned(),
                address: self.address.trim().to_owned(),
                department: None,
                display_name: given(&self.display_name),
                signature: given(&self.signature),
                imap: self.imap.clone(),
                smtp: self.smtp.clone(),
            }];
        }
        self.mailboxes
            .iter()
            .map(|entry| Mailbox {
                name: entry.name.trim().to_owned(),
                address: entry.address.trim().to_owned(),
                department: given(&entry.department),
                display_name: given(&entry.display_name),
                signature: given(&entry.signature),
                imap: entry.imap.over(&self.imap),
                smtp: entry
                    .smtp
                    .as_ref()
                    .map_or_else(|| self.smtp.clone(), |smtp| smtp.over(&self.smtp)),
            })
            .collect()
    }

    /// Every address mail comes in at, lower-cased: mail from them is never answered.
    pub fn own_addresses(&self) -> Vec<String> {
        let mut addresses: Vec<String> = self
            .mailboxes()
            .into_iter()
            .map(|mailbox| mailbox.address.to_lowercase())
            .collect();
        addresses.sort();
        addresses.dedup();
        addresses
    }
}

impl ImapOverride {
    fn over(&self, shared: &ImapSettings) -> ImapSettings {
        ImapSettings {
            host: self.host.clone().unwrap_or_else(|| shared.host.clone()),
            port: self.port.unwrap_or(shared.port),
            tls: self.tls.unwrap_or(shared.tls),
            username: self
                .username
                .clone()
                .unwrap_or_else(|| shared.username.clone()),
            password: self
                .password
                .clone()
                .unwrap_or_else(|| shared.password.clone()),
            mailbox: self
                .mailbox
                .clone()
                .unwrap_or_else(|| shared.mailbox.clone()),
            idle: self.idle.unwrap_or(shared.idle),
            poll_seconds: self.poll_seconds.unwrap_or(shared.poll_seconds),
        }
    }
}

impl SmtpOverride {
    fn over(&self, shared: &SmtpSettings) -> SmtpSettings {
        SmtpSettings {
            host: self.host.clone().unwrap_or_else(|| shared.host.clone()),
            port: self.port.unwrap_or(shared.port),
            tls: self.tls.unwrap_or(shared.tls),
            username: self
                .username
                .clone()
                .unwrap_or_else(|| shared.username.clone()),
            password: self
                .password
                .clone()
                .unwrap_or_else(|| shared.password.clone()),
        }
    }
}

/// What is wrong with the mailboxes of enabled mail: the key (`email.mailboxes[1].address`)
/// and why.
pub(super) fn check(email: &EmailSettings) -> Result<(), (String, String)> {
    let listed = !email.mailboxes.is_empty();
    let key = |index: usize, field: &str| {
        if listed {
            format!("email.mailboxes[{index}].{field}")
        } else {
            format!("email.{field}")
        }
    };
    let mut names: Vec<String> = Vec::new();
    let mut addresses: Vec<String> = Vec::new();
    for (index, mailbox) in email.mailboxes().iter().enumerate() {
        let name = &mailbox.name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err((
                key(index, "name"),
                format!("{name:?} must be letters, digits, - and _ (it names the mailbox)"),
            ));
        }
        if names.contains(&name.to_lowercase()) {
            return Err((
                key(index, "name"),
                format!("{name:?} names two mailboxes; each needs its own name"),
            ));
        }
        names.push(name.to_lowercase());
        let address = &mailbox.address;
        let well_formed = address
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
        if !well_formed || address.chars().any(|c| c.is_whitespace() || c == '<') {
            return Err((
                key(index, "address"),
                format!("{address:?} is not an email address"),
            ));
        }
        if addresses.contains(&address.to_lowercase()) {
            return Err((
                key(index, "address"),
                format!("{address:?} is the address of two mailboxes"),
            ));
        }
        addresses.push(address.to_lowercase());
        for (field, text) in [
            ("department", mailbox.department.as_deref()),
            ("display_name", mailbox.display_name.as_deref()),
        ] {
            if text.is_some_and(|text| text.chars().any(char::is_control)) {
                return Err((
                    key(index, field),
                    "must be one line without control characters".into(),
                ));
            }
        }
        if mailbox.imap.host.trim().is_empty() {
            return Err((
                key(index, "imap.host"),
                "is empty but email is enabled".into(),
            ));
        }
        if mailbox.imap.poll_seconds == 0 {
            return Err((key(index, "imap.poll_seconds"), "must be at least 1".into()));
        }
        if mailbox.smtp.host.trim().is_empty() {
            // A mailbox without SMTP settings of its own uses the shared server.
            let key = if mailbox_has_own_smtp(email, index) {
                key(index, "smtp.host")
            } else {
                "email.smtp.host".to_owned()
            };
            return Err((key, "is empty but email is enabled".into()));
        }
    }
    Ok(())
}

fn mailbox_has_own_smtp(email: &EmailSettings, index: usize) -> bool {
    email
        .mailboxes
        .get(index)
        .is_some_and(|entry| entry.smtp.is_some())
}
