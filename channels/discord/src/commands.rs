//! The agents' slash commands: registered for the agents' guild, and an invocation turned into
//! an agent's message ("/claim #12").

use helpdesk_channel::{AgentMessage, ChannelKind, ChatEvent, Suggest, SuggestionRequest};
use serenity::all::{
    AutocompleteChoice, Channel, ChannelId, CommandDataOptionValue, CommandInteraction,
    CommandOptionType, CreateAutocompleteResponse, CreateCommand, CreateCommandOption,
    CreateInteractionResponse, CreateInteractionResponseMessage,
};

use crate::{Discord, identity, interaction_external_id};

/// A slash command agents get in their guild.
#[derive(Debug, Clone, Copy)]
pub struct AgentCommand {
    pub name: &'static str,
    pub about: &'static str,
    /// The text argument it takes, if any.
    pub argument: Option<CommandArgument>,
}

#[derive(Debug, Clone, Copy)]
pub struct CommandArgument {
    pub name: &'static str,
    pub about: &'static str,
    /// Whether Discord asks for choices while it is typed (answered by the
    /// [`Suggest`](helpdesk_channel::Suggest) the bot runs with).
    pub autocomplete: bool,
}

const fn command(name: &'static str, about: &'static str) -> AgentCommand {
    AgentCommand {
        name,
        about,
        argument: None,
    }
}

const fn command_with(
    name: &'static str,
    about: &'static str,
    argument: &'static str,
    argument_about: &'static str,
) -> AgentCommand {
    AgentCommand {
        name,
        about,
        argument: Some(CommandArgument {
            name: argument,
            about: argument_about,
            autocomplete: false,
        }),
    }
}

const fn command_suggesting(
    name: &'static str,
    about: &'static str,
    argument: &'static str,
    argument_about: &'static str,
) -> AgentCommand {
    AgentCommand {
        name,
        about,
        argument: Some(CommandArgument {
            name: argument,
            about: argument_about,
            autocomplete: true,
        }),
    }
}

/// The agents' slash commands, the same as their text commands.
pub const AGENT_COMMANDS: [AgentCommand; 11] = [
    command("claim", "Take the ticket yourself"),
    command_with(
        "assign",
        "Give the ticket to an agent",
        "agent",
        "Email, name or Discord id of the agent",
    ),
    command_with(
        "note",
        "Add an internal note, never sent to the customer",
        "text",
        "The note",
    ),
    command_with(
        "status",
        "Set the status",
        "status",
        "open, pending or resolved",
    ),
    command_with(
        "priority",
        "Set the priority",
        "priority",
        "low, normal, high or urgent",
    ),
    command_with("tag", "Add tags to the ticket", "tags", "One or more tags"),
    command_with(
        "untag",
        "Remove tags from the ticket",
        "tags",
        "One or more tags",
    ),
    command_suggesting(
        "canned",
        "Send a canned response and apply its actions",
        "name",
        "The canned response's name",
    ),
    command("close", "Close the ticket"),
    command("reopen", "Reopen a resolved ticket"),
    command("help", "What the bot understands"),
];

impl Discord {
    /// Registers the agents' slash commands for the guild of the agents' channel (so they are
    /// not offered to customers in DMs), once per run.
    pub(crate) async fn register_commands(&self) {
        if self.settings.agents_channel_id == 0 || self.known().commands_registered {
            return;
        }
        let result = async {
            let channel = self
                .http
                .get_channel(ChannelId::new(self.settings.agents_channel_id))
                .await?;
            let Channel::Guild(channel) = channel else {
                return Ok::<_, serenity::Error>(None);
            };
            let commands = AGENT_COMMANDS
                .iter()
                .map(|agent_command| {
                    let mut command =
                        CreateCommand::new(agent_command.name).description(agent_command.about);
                    // Required options come first, as Discord demands.
                    if let Some(argument) = agent_command.argument {
                        command = command.add_option(
                            CreateCommandOption::new(
                                CommandOptionType::String,
                                argument.name,
                                argument.about,
                            )
                            .required(true)
                            .set_autocomplete(argument.autocomplete),
                        );
                    }
                    if agent_command.name != "help" {
                        command = command.add_option(
                            CreateCommandOption::new(
                                CommandOptionType::Integer,
                                "ticket",
                                "The ticket's number; in a ticket's thread it is that ticket",
                            )
                            .required(false),
                        );
                    }
                    command
                })
                .collect::<Vec<_>>();
            channel.guild_id.set_commands(&self.http, commands).await?;
            Ok(Some(channel.guild_id))
        }
        .await;
        match result {
            Ok(Some(guild)) => {
                self.known().commands_registered = true;
                tracing::info!(guild = guild.get(), "Discord slash commands registered");
            }
            Ok(None) => {
                tracing::warn!(
                    channel = self.settings.agents_channel_id,
                    "discord.agents_channel_id is not a guild channel; no slash commands"
                );
            }
            Err(error) => {
                tracing::warn!(%error, "Discord slash commands not registered");
                self.health.failed(&error.to_string());
            }
        }
    }

    /// A slash command from the agents' place becomes an agent's message ("/claim #12");
    /// anywhere else it is refused on the spot.
    pub(crate) async fn event_of_command(&self, command: &CommandInteraction) -> Option<ChatEvent> {
        let channel = command.channel_id.get();
        if command.guild_id.is_none() || !self.in_agents_place(channel).await {
            let refusal = CreateInteractionResponse::Message(
                CreateInteractionResponseMessage::new()
                    .content(
                        "These commands are for the support team. Just write your message \
                         here and it goes to your ticket.",
                    )
                    .ephemeral(true),
            );
            if let Err(error) = self
                .http
                .create_interaction_response(command.id, &command.token, &refusal, Vec::new())
                .await
            {
                tracing::warn!(%error, "Discord interaction not answered");
            }
            return None;
        }
        self.known()
            .interactions
            .insert(command.id.get(), command.token.clone());
        let mut text = format!("/{}", command.data.name);
        let mut argument = None;
        for option in &command.data.options {
            match (&option.value, option.name.as_str()) {
                (CommandDataOptionValue::Integer(number), "ticket") => {
                    text.push_str(&format!(" #{number}"));
                }
                (CommandDataOptionValue::String(value), _) => argument = Some(value.clone()),
                (CommandDataOptionValue::Integer(value), _) => argument = Some(value.to_string()),
                _ => {}
            }
        }
        if let Some(argument) = argument {
            text.push(' ');
            text.push_str(&argument);
        }
        Some(ChatEvent::Agent(AgentMessage {
            channel: ChannelKind::Discord,
            sender: identity(&command.user),
            place: channel.to_string(),
            external_id: interaction_external_id(command.id.get()),
            reply_to: None,
            reply_to_own_text: None,
            text,
            attachments: Vec::new(),
        }))
    }
}

/// Discord's limits on autocomplete choices: how many, and the characters of a name or value.
const MAX_CHOICES: usize = 25;
const MAX_CHOICE_CHARS: usize = 100;

impl Discord {
    /// Answers Discord's request for choices while an agent types an argument with the values
    /// `suggest` offers; outside the agents' place nothing is offered.
    pub(crate) async fn answer_autocomplete<S: Suggest>(
        &self,
        interaction: &CommandInteraction,
        suggest: &S,
    ) {
        let channel = interaction.channel_id.get();
        let in_place = interaction.guild_id.is_some() && self.in_agents_place(channel).await;
        let choices = match interaction.data.autocomplete() {
            Some(focused) if in_place => {
                suggest
                    .suggest(SuggestionRequest {
                        sender: identity(&interaction.user),
                        command: interaction.data.name.clone(),
                        argument: focused.name.to_owned(),
                        typed: focused.value.to_owned(),
                    })
                    .await
            }
            _ => Vec::new(),
        };
        let choices = choices
            .into_iter()
            .filter(|value| !value.is_empty() && value.chars().count() <= MAX_CHOICE_CHARS)
            .take(MAX_CHOICES)
            .map(|value| AutocompleteChoice::new(value.clone(), value))
            .collect();
        let response = CreateInteractionResponse::Autocomplete(
            CreateAutocompleteResponse::new().set_choices(choices),
        );
        if let Err(error) = self
            .http
            .create_interaction_response(interaction.id, &interaction.token, &response, Vec::new())
            .await
        {
            tracing::warn!(%error, "Discord autocomplete not answered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_fit_discords_rules() {
        for command in AGENT_COMMANDS {
            let name = command.name;
            assert!(name.len() <= 32 && name.chars().all(|c| c.is_ascii_lowercase()));
            assert!(!command.about.is_empty() && command.about.chars().count() <= 100);
            if let Some(argument) = command.argument {
                assert!(argument.name.chars().all(|c| c.is_ascii_lowercase()));
                assert!(argument.about.chars().count() <= 100);
            }
        }
    }
}
