//! `helpdesk ticket`: list, show and answer tickets.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use clap::Subcommand;
use helpdesk::config::Settings;
use helpdesk::domain::{MessageKind, Status, TicketNumber};
use helpdesk::store::tickets::TicketFilter;
use helpdesk::{app, store};

use super::output::{ListFormat, ShowFormat, print_table, truncate};

#[derive(Subcommand)]
pub enum TicketCommand {
    List {
        #[arg(long, value_enum)]
        status: Option<Status>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    Show {
        /// The ticket number, with or without '#'.
        number: String,
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Answer the customer (delivered on their channel by the job queue), or add a note.
    Reply {
        number: String,
        /// The agent who writes, by email address.
        #[arg(long)]
        agent: String,
        /// An internal note, never sent to the customer.
        #[arg(long)]
        note: bool,
        /// The text; read from stdin when missing (unless --canned gives it).
        #[arg(long)]
        text: Option<String>,
        /// A canned response, by name (the agent's own before a shared one): its text with the
        /// placeholders filled in, unless --text is given, and its actions (status, priority,
        /// tags) applied with the reply.
        #[arg(long, value_name = "NAME", conflicts_with = "note")]
        canned: Option<String>,
        /// A file to attach (repeat for more); at most `intake.max_attachment_bytes` each.
        #[arg(long = "attach", value_name = "FILE")]
        attach: Vec<PathBuf>,
    },
}

fn parse_ticket_number(text: &str) -> Result<TicketNumber> {
    text.parse()
        .with_context(|| format!("{text:?} is not a ticket number such as 1042 or #1042"))
}

pub async fn run(command: TicketCommand, settings: &Settings) -> Result<()> {
    let store = app::open_store(settings).await?;
    match command {
        TicketCommand::List {
            status,
            limit,
            format,
        } => {
            let tickets = store::tickets::list(&store, &TicketFilter { status, limit }).await?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&tickets)?),
                ListFormat::Table => {
                    let rows: Vec<Vec<String>> = tickets
                        .iter()
                        .map(|t| {
                            vec![
                                format!("#{}", t.number),
                                t.status.to_string(),
                                t.priority.to_string(),
                                truncate(&t.subject, 48),
                                truncate(&t.customer, 32),
                                t.assignee.clone().unwrap_or_else(|| "-".into()),
                                t.department.clone().unwrap_or_else(|| "-".into()),
                                t.channel.clone(),
                                t.updated_at.format("%Y-%m-%d %H:%M").to_string(),
                            ]
                        })
                        .collect();
                    print_table(
                        &[
                            "NUMBER",
                            "STATUS",
                            "PRIORITY",
                            "SUBJECT",
                            "CUSTOMER",
                            "ASSIGNEE",
                            "DEPARTMENT",
                            "CHANNEL",
                            "UPDATED",
                        ],
                        &rows,
                    );
                }
            }
        }
        TicketCommand::Reply {
            number,
            agent,
            note,
            text,
            canned,
            attach,
        } => {
            let number = parse_ticket_number(&number)?;
            let Some(agent_id) = store::agents::agent_id_by_email(&store, &agent).await? else {
                bail!("no agent with email {agent}");
            };
            let text = match text {
                Some(text) => text,
                None if canned.is_some() => String::new(),
                None => {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                        .context("cannot read the reply from stdin")?;
                    text
                }
            };
            if note && !attach.is_empty() {
                bail!("files can be attached to replies, not to notes");
            }
            let mut attached = Vec::new();
            for path in &attach {
                let content = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                if content.len() as u64 > settings.intake.max_attachment_bytes {
                    bail!(
                        "{} is {} bytes, more than intake.max_attachment_bytes ({})",
                        path.display(),
                        content.len(),
                        settings.intake.max_attachment_bytes
                    );
                }
                let filename = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "attachment".to_owned());
                attached.push(helpdesk::helpdesk_channel::Attachment {
                    content_type: store::attachments::content_type_for(&filename).to_owned(),
                    filename,
                    content,
                    inline: false,
                    content_id: None,
                });
            }
            let blobs = store::blobs::BlobStore::from_settings(settings)?;
            let files = helpdesk::ops::keep_files(&blobs, attached)
                .await
                .context("cannot store the attachment")?;
            let external_id =
                helpdesk::domain::new_mail_message_id(&settings.email.address, number);
            let channels_here = app::channels_enabled(settings);
            let reply = store::outbound::NewReply {
                number,
                agent_id,
                text: &text,
                kind: if note {
                    MessageKind::Internal
                } else {
                    MessageKind::Public
                },
                external_id: Some(&external_id),
                channels_here: &channels_here,
                now: Utc::now(),
            };
            let stored = match &canned {
                Some(name) => {
                    helpdesk::ops::canned::reply_with(
                        &store,
                        &reply,
                        store::canned::Pick::Name(name),
                        &files,
                        None,
                    )
                    .await?
                    .reply
                }
                None => helpdesk::ops::send_reply_with_files(&store, &reply, &files).await?,
            };
            if stored.to_deliver {
                println!("reply to #{number} queued for delivery");
            } else {
                println!("note added to #{number}");
            }
        }
        TicketCommand::Show { number, format } => {
            let number = parse_ticket_number(&number)?;
            let Some(ticket) = store::tickets::detail(&store, number).await? else {
                bail!("no ticket #{number}");
            };
            match format {
                ShowFormat::Json => println!("{}", serde_json::to_string_pretty(&ticket)?),
                ShowFormat::Text => {
                    let t = &ticket.summary;
                    println!("#{} {}", t.number, t.subject);
                    println!(
                        "status {} · priority {} · department {} · assignee {} · customer {} · via {}",
                        t.status,
                        t.priority,
                        t.department.as_deref().unwrap_or("-"),
                        t.assignee.as_deref().unwrap_or("-"),
                        t.customer,
                        t.channel
                    );
                    println!("created {} · updated {}", t.created_at, t.updated_at);
                    for message in &ticket.messages {
                        println!(
                            "\n--- {} {} {} from {} at {}",
                            message.direction,
                            message.kind,
                            message.channel,
                            message.author,
                            message.created_at.format("%Y-%m-%d %H:%M")
                        );
                        println!("{}", message.body_text.trim_end());
                        if let Some(quoted) = &message.quoted_text {
                            println!(
                                "[{} quoted lines; --format json shows them]",
                                quoted.lines().count()
                            );
                        }
                        if let Some(status) = &message.delivery_status {
                            match &message.delivery_error {
                                Some(error) if status == "failed" => {
                                    println!("[delivery failed: {error}]")
                                }
                                _ => println!("[delivery {status}]"),
                            }
                        }
                        for attachment in &message.attachments {
                            match &attachment.rejected_reason {
                                None => println!(
                                    "[attachment {} ({}, {} bytes)]",
                                    attachment.filename, attachment.content_type, attachment.size
                                ),
                                Some(reason) => println!(
                                    "[attachment {} ({} bytes) {reason}]",
                                    attachment.filename, attachment.size
                                ),
                            }
                        }
                    }
                    println!("\nhistory:");
                    for event in &ticket.history {
                        let by = match (event.kind.as_str(), event.actor.as_str()) {
                            ("created", _) => String::new(),
                            (_, "system") => " — automatically".to_owned(),
                            (_, actor) => format!(" — {actor}"),
                        };
                        println!(
                            "  {} {}{by}{}",
                            event.at.format("%Y-%m-%d %H:%M"),
                            event.text,
                            event
                                .note()
                                .map(|reason| format!(" ({reason})"))
                                .unwrap_or_default()
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
