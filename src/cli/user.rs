//! `helpdesk user`: agents and admins, their passwords and whether they may work.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use clap::{Args, Subcommand};
use helpdesk::config::Settings;
use helpdesk::domain::Role;
use helpdesk::helpdesk_channel::ChannelKind;
use helpdesk::store::agents::NewAgent;
use helpdesk::store::tickets::Actor;
use helpdesk::{accounts, app, auth, store};

use super::output::{ListFormat, print_table};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add an agent or admin; the password is read from stdin or --password-file (on a
    /// terminal: asked twice, not shown).
    Add(UserAddArgs),
    /// Set a new password, read like `user add`'s; ends the person's web sessions.
    Password {
        email: String,
        /// Read the password from this file's first line instead of stdin.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Disable a person: no sign-in, no working API token, no new tickets; their open
    /// tickets go back to their department's assignment.
    Disable { email: String },
    /// Enable a disabled person again (sign-in and tokens work again).
    Enable { email: String },
    /// List agents and admins.
    List {
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
}

#[derive(Args)]
pub struct UserAddArgs {
    #[arg(long)]
    email: String,
    #[arg(long)]
    name: String,
    #[arg(long, value_enum)]
    role: Role,
    /// A department the agent works in (repeat for several) [default: the default department,
    /// workflow.default_department].
    #[arg(long = "department", value_name = "NAME")]
    departments: Vec<String>,
    /// The agent's Telegram user id, so they can act from the agents' group.
    #[arg(long)]
    telegram_id: Option<String>,
    /// The agent's Discord user id, so they can act from the agents' channel.
    #[arg(long)]
    discord_id: Option<String>,
    /// Most open tickets assigned to the agent at once.
    #[arg(long)]
    max_open_tickets: Option<i64>,
    /// Read the password from this file's first line instead of stdin.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
}

pub async fn run(command: UserCommand, settings: &Settings) -> Result<()> {
    let store = app::open_store(settings).await?;
    match command {
        UserCommand::Add(args) => {
            let password = read_password(args.password_file.as_deref())?;
            let password_hash = auth::hash_password(&password)?;
            let mut department_ids = Vec::new();
            for name in &args.departments {
                match store::agents::department_by_name(&store, name).await? {
                    Some(department) => department_ids.push(department.id),
                    None => bail!(
                        "no department named {name:?}; add it with `helpdesk department add {name:?}`"
                    ),
                }
            }
            let department_ids = accounts::departments_or_default(
                &store,
                department_ids,
                settings.workflow.default_department(),
            )
            .await?;
            let mut identities = Vec::new();
            if let Some(id) = &args.telegram_id {
                identities.push((ChannelKind::Telegram, id.as_str()));
            }
            if let Some(id) = &args.discord_id {
                identities.push((ChannelKind::Discord, id.as_str()));
            }
            let id = store::agents::create_agent(
                &store,
                &NewAgent {
                    email: &args.email,
                    name: &args.name,
                    role: args.role,
                    password_hash: Some(&password_hash),
                    department_ids: &department_ids,
                    identities: &identities,
                    max_open_tickets: args.max_open_tickets,
                },
                Utc::now(),
            )
            .await?;
            println!(
                "added {} {} <{}> (id {id})",
                args.role, args.name, args.email
            );
        }
        UserCommand::Password {
            email,
            password_file,
        } => {
            let id = agent_by_email(&store, &email).await?;
            let password = read_password(password_file.as_deref())?;
            let account = accounts::set_password(&store, id, &password, None).await?;
            println!(
                "new password set for {} <{}>; their web sessions have ended",
                account.name, account.email
            );
        }
        UserCommand::Disable { email } => {
            let id = agent_by_email(&store, &email).await?;
            let handed_back =
                accounts::set_active(&store, id, false, Actor::System, Utc::now()).await?;
            println!(
                "disabled {email}: signed out, API tokens refused, no new tickets; {handed_back} \
                 open tickets go back to assignment (a running `serve` assigns them)"
            );
        }
        UserCommand::Enable { email } => {
            let id = agent_by_email(&store, &email).await?;
            accounts::set_active(&store, id, true, Actor::System, Utc::now()).await?;
            println!("enabled {email}: sign-in and API tokens work again");
        }
        UserCommand::List { format } => {
            let agents = store::agents::list_agents(&store).await?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&agents)?),
                ListFormat::Table => {
                    let rows: Vec<Vec<String>> = agents
                        .iter()
                        .map(|agent| {
                            vec![
                                agent.email.clone(),
                                agent.name.clone(),
                                agent.role.clone(),
                                agent.departments.clone(),
                                agent.identities.clone(),
                                if agent.available { "yes" } else { "no" }.to_owned(),
                                if agent.active { "yes" } else { "no" }.to_owned(),
                            ]
                        })
                        .collect();
                    print_table(
                        &[
                            "EMAIL",
                            "NAME",
                            "ROLE",
                            "DEPARTMENTS",
                            "CHAT",
                            "AVAILABLE",
                            "ACTIVE",
                        ],
                        &rows,
                    );
                }
            }
        }
    }
    Ok(())
}

/// The agent with this address, or an error that says how to find them.
async fn agent_by_email(store: &store::Store, email: &str) -> Result<i64> {
    match store::agents::agent_id_by_email(store, email).await? {
        Some(id) => Ok(id),
        None => bail!("no agent with email {email}; `helpdesk user list` shows them all"),
    }
}

/// The first line of `file`, or of stdin; on a terminal it is asked twice without being shown.
fn read_password(file: Option<&Path>) -> Result<String> {
    let line = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read password file {}", path.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .to_owned(),
        None if std::io::stdin().is_terminal() => {
            let first = rpassword::prompt_password("Password: ")
                .context("cannot read the password from the terminal")?;
            let second = rpassword::prompt_password("The same password again: ")
                .context("cannot read the password from the terminal")?;
            return typed_twice(&first, &second);
        }
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from stdin")?;
            line
        }
    };
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password given: pipe it to stdin or use --password-file FILE");
    }
    Ok(password)
}

/// The password typed at the prompt, from its two readings: refused when they differ (a typo
/// no one saw) or when nothing was typed.
fn typed_twice(first: &str, second: &str) -> Result<String> {
    if first != second {
        bail!("the two passwords differ; nothing was changed");
    }
    if first.is_empty() {
        bail!("no password typed; nothing was changed");
    }
    Ok(first.to_owned())
}

#[cfg(test)]
mod tests {
    use super::typed_twice;

    #[test]
    fn a_typed_password_counts_when_typed_the_same_twice() {
        assert_eq!(
            typed_twice("correct horse", "correct horse").expect("the same twice"),
            "correct horse"
        );
        let differ = typed_twice("correct horse", "correct hoarse").expect_err("a typo");
        assert_eq!(
            differ.to_string(),
            "the two passwords differ; nothing was changed"
        );
        let empty = typed_twice("", "").expect_err("nothing typed");
        assert_eq!(empty.to_string(), "no password typed; nothing was changed");
    }
}
