//! `helpdesk token`: bearer tokens for the JSON API.

use anyhow::{Result, bail};
use chrono::Utc;
use clap::Subcommand;
use helpdesk::config::Settings;
use helpdesk::domain::Role;
use helpdesk::{app, store};

use super::output::{ListFormat, print_table};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token for an agent; it is printed once and only its hash is stored.
    Create {
        /// The agent the token acts as, by email address.
        #[arg(long)]
        agent: String,
        /// What uses the token, e.g. "CRM sync".
        #[arg(long)]
        name: String,
        /// admin or agent; at most the agent's own role [default: the agent's role].
        #[arg(long, value_enum)]
        role: Option<Role>,
    },
    /// Every token, revoked ones included (never the tokens themselves).
    List {
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Revoke a token by its id; it stops working at once.
    Revoke { id: i64 },
}

pub async fn run(command: TokenCommand, settings: &Settings) -> Result<()> {
    let store = app::open_store(settings).await?;
    match command {
        TokenCommand::Create { agent, name, role } => {
            let agents = store::agents::list_agents(&store).await?;
            let wanted = agent.trim().to_lowercase();
            let Some(owner) = agents.iter().find(|a| a.email == wanted) else {
                bail!("no agent with email {agent}; add one with `helpdesk user add`");
            };
            let role = match role {
                Some(role) => role,
                None => owner.role.parse().unwrap_or(Role::Agent),
            };
            let made = store::api_tokens::create(&store, owner.id, &name, role, Utc::now()).await?;
            eprintln!(
                "token #{} for {} ({} rights); it is shown only now:",
                made.info.id, made.info.agent_email, made.info.role
            );
            println!("{}", made.token);
        }
        TokenCommand::List { format } => {
            let tokens = store::api_tokens::list(&store).await?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&tokens)?),
                ListFormat::Table => print_table(
                    &[
                        "ID",
                        "NAME",
                        "PREFIX",
                        "AGENT",
                        "ROLE",
                        "CREATED",
                        "LAST USED",
                        "REVOKED",
                    ],
                    &tokens
                        .iter()
                        .map(|t| {
                            let when = |at: Option<chrono::DateTime<Utc>>| {
                                at.map_or("-".to_owned(), |at| {
                                    at.format("%Y-%m-%d %H:%M").to_string()
                                })
                            };
                            vec![
                                t.id.to_string(),
                                t.name.clone(),
                                format!("{}…", t.prefix),
                                t.agent_email.clone(),
                                t.role.clone(),
                                when(Some(t.created_at)),
                                when(t.last_used_at),
                                when(t.revoked_at),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
        TokenCommand::Revoke { id } => {
            store::api_tokens::revoke(&store, id, Utc::now()).await?;
            println!("token #{id} revoked");
        }
    }
    Ok(())
}
