//! The gateway: serenity's client (which reconnects and resumes by itself), its events passed
//! on in the order they arrived, and each event handed to the sink until stored.

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use helpdesk_channel::{ChannelKind, ChatEvent, Choose, Cursor, Sink, Suggest};
use serenity::all::{
    ChannelId, ClientBuilder, CollectorCallback, CommandInteraction, ComponentInteraction, Context,
    Event, EventHandler, GatewayIntents, GuildChannel, GuildId, Interaction, Message, MessageId,
    MessageUpdateEvent, Ready, ShardStageUpdateEvent,
};
use serenity::gateway::ConnectionStage;
use tokio::sync::{mpsc, watch};

use crate::{ChannelFacts, Discord, RETRY_PAUSE, http_client};

/// What the gateway handler passes on, in arrival order.
pub(crate) enum Incoming {
    /// A new session; the receiver completes once the session's collector is in place.
    Ready(Box<Ready>, tokio::sync::oneshot::Receiver<()>),
    Resumed,
    Stage(bool),
    Message(Box<Message>),
    Update(Box<MessageUpdateEvent>),
    Deleted {
        channel: ChannelId,
        message: MessageId,
        guild: Option<GuildId>,
    },
    Command(Box<CommandInteraction>),
    /// An agent typing a command's argument, asking for choices.
    Autocomplete(Box<CommandInteraction>),
    /// A button pressed under one of the bot's messages.
    Component(Box<ComponentInteraction>),
    Thread(Box<GuildChannel>),
}

/// Passes gateway events on in the order they arrived. serenity runs each event handler call
/// as a task of its own, and tokio may run a burst of them in any order (a resumed session
/// replays many at once), so only READY and stage changes come through the handler: from READY
/// on, a collector, which the shard runner calls in sequence, passes on the rest.
pub(crate) struct Handler {
    events: mpsc::UnboundedSender<Incoming>,
    /// The newest collector's number; older ones (of a replaced session) retire.
    collector: Arc<AtomicU64>,
}

impl Handler {
    fn pass(&self, event: Incoming) {
        // Closed only when the bot stops.
        let _ = self.events.send(event);
    }
}

/// What the helpdesk wants of a gateway event.
fn incoming_of(event: &Event) -> Option<Incoming> {
    match event {
        Event::MessageCreate(created) => Some(Incoming::Message(Box::new(created.message.clone()))),
        Event::MessageUpdate(update) => Some(Incoming::Update(Box::new(update.clone()))),
        Event::MessageDelete(deleted) => Some(Incoming::Deleted {
            channel: deleted.channel_id,
            message: deleted.message_id,
            guild: deleted.guild_id,
        }),
        Event::InteractionCreate(created) => match &created.interaction {
            Interaction::Command(command) => Some(Incoming::Command(Box::new(command.clone()))),
            Interaction::Autocomplete(typing) => {
                Some(Incoming::Autocomplete(Box::new(typing.clone())))
            }
            Interaction::Component(press) => Some(Incoming::Component(Box::new(press.clone()))),
            _ => None,
        },
        Event::ThreadCreate(created) => Some(Incoming::Thread(Box::new(created.thread.clone()))),
        Event::Resumed(_) => Some(Incoming::Resumed),
        _ => None,
    }
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, context: Context, ready: Ready) {
        // READY goes first, so live events queue behind it (and behind what it catches up on);
        // the catch-up waits for the collector, so a DM sent before the collector was in place
        // is in the history it fetches.
        let (collecting, collector_in_place) = tokio::sync::oneshot::channel();
        self.pass(Incoming::Ready(Box::new(ready), collector_in_place));
        let number = self.collector.fetch_add(1, Ordering::SeqCst) + 1;
        let newest = self.collector.clone();
        let events = self.events.clone();
        context
            .shard
            .add_collector(CollectorCallback(Box::new(move |event| {
                if newest.load(Ordering::SeqCst) != number {
                    return false;
                }
                if let Some(incoming) = incoming_of(event) {
                    let _ = events.send(incoming);
                }
                true
            })));
        let _ = collecting.send(());
    }

    async fn shard_stage_update(&self, _: Context, event: ShardStageUpdateEvent) {
        self.pass(Incoming::Stage(event.new == ConnectionStage::Connected));
    }
}

impl Discord {
    /// Runs serenity's client (which reconnects and resumes by itself) until `shutdown`.
    pub(crate) async fn gateway(
        &self,
        events: mpsc::UnboundedSender<Incoming>,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        tokio::pin!(shutdown);
        let intents = GatewayIntents::GUILDS
            | GatewayIntents::GUILD_MESSAGES
            | GatewayIntents::DIRECT_MESSAGES
            | GatewayIntents::MESSAGE_CONTENT;
        loop {
            // The token and the gateway's URL first: serenity itself would fall back to
            // Discord's public gateway, whatever the API URL, and retry a refused token forever.
            let checked = tokio::select! {
                () = &mut shutdown => return,
                checked = self.check() => checked,
            };
            if let Err(error) = checked {
                tracing::warn!(%error, "Discord not reachable; trying again");
                self.health.failed(&error.to_string());
                self.health.disconnected();
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(RETRY_PAUSE) => {}
                }
                continue;
            }
            let built = ClientBuilder::new_with_http(http_client(&self.settings), intents)
                .event_handler(Handler {
                    events: events.clone(),
                    collector: Arc::default(),
                })
                .into_future();
            let built = tokio::select! {
                () = &mut shutdown => return,
                client = built => client,
            };
            match built {
                Ok(mut client) => {
                    let shards = client.shard_manager.clone();
                    tokio::select! {
                        () = &mut shutdown => {
                            shards.shutdown_all().await;
                            return;
                        }
                        ended = client.start() => {
                            let error = match ended {
                                Ok(()) => "the gateway connection ended".to_owned(),
                                Err(error) => error.to_string(),
                            };
                            tracing::warn!(%error, "Discord gateway stopped; starting again");
                            self.health.failed(&error);
                            self.health.disconnected();
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "Discord client not built; trying again");
                    self.health.failed(&error.to_string());
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(RETRY_PAUSE) => {}
            }
        }
    }

    /// Checks the token (the bot's own user) and that the API names a gateway.
    pub(crate) async fn check(&self) -> Result<(), serenity::Error> {
        let me = self.http.get_current_user().await?;
        self.known().own_id = me.id.get();
        self.http.get_gateway().await?;
        Ok(())
    }

    /// Handles one gateway event; what it means for the helpdesk goes to `sink` until stored.
    pub(crate) async fn take<S: Sink<ChatEvent> + Suggest + Choose, C: Cursor>(
        &self,
        event: Incoming,
        sink: &S,
        cursors: &C,
        stopped: &watch::Receiver<bool>,
    ) {
        let chat_event = match event {
            Incoming::Ready(ready, collector_in_place) => {
                self.known().own_id = ready.user.id.get();
                self.http.set_application_id(ready.application.id);
                self.health.succeeded();
                tracing::info!(bot = ready.user.name, "Discord session ready");
                self.register_commands().await;
                // Dropped unsent only if the handler stopped; catching up is right either way.
                let _ = collector_in_place.await;
                self.catch_up(sink, cursors, stopped).await;
                None
            }
            Incoming::Resumed => {
                self.health.succeeded();
                self.health.update(|state| state.resumes += 1);
                tracing::info!("Discord session resumed");
                self.catch_up(sink, cursors, stopped).await;
                None
            }
            Incoming::Stage(connected) => {
                if connected {
                    self.health.succeeded();
                } else {
                    self.health.disconnected();
                }
                None
            }
            Incoming::Thread(thread) => {
                self.known().channels.insert(
                    thread.id.get(),
                    ChannelFacts {
                        guild: true,
                        parent: thread.parent_id.map(ChannelId::get),
                    },
                );
                None
            }
            Incoming::Message(message) => {
                self.take_message(&message, sink, cursors, stopped).await;
                None
            }
            Incoming::Update(update) => self.event_of_update(&update).await,
            Incoming::Deleted {
                channel,
                message,
                guild,
            } => {
                // Deletions in the agents' place are their own business.
                (guild.is_none()).then(|| ChatEvent::Removed {
                    channel: ChannelKind::Discord,
                    conversation: channel.get().to_string(),
                    external_id: message.get().to_string(),
                    raw: serde_json::to_vec(&serde_json::json!({
                        "t": "MESSAGE_DELETE",
                        "d": {"id": message.get().to_string(), "channel_id": channel.get().to_string()},
                    }))
                    .unwrap_or_default(),
                })
            }
            Incoming::Command(command) => self.event_of_command(&command).await,
            Incoming::Autocomplete(typing) => {
                self.answer_autocomplete(&typing, sink).await;
                None
            }
            Incoming::Component(press) => {
                self.answer_choice(&press, sink).await;
                None
            }
        };
        if let Some(chat_event) = chat_event {
            self.hand_over(chat_event, sink, stopped).await;
        }
    }

    /// Hands `chat_event` to `sink` until it is stored (or the bot stops); true once stored.
    pub(crate) async fn hand_over<S: Sink<ChatEvent>>(
        &self,
        chat_event: ChatEvent,
        sink: &S,
        stopped: &watch::Receiver<bool>,
    ) -> bool {
        loop {
            match sink.accept(vec![chat_event.clone()]).await {
                Ok(()) => {
                    // An event stored proves the session works.
                    self.health.succeeded();
                    self.health.stored();
                    return true;
                }
                Err(error) => {
                    tracing::warn!(%error, "Discord event not stored; trying again");
                    self.health.failed(&error.to_string());
                    let mut stopped = stopped.clone();
                    tokio::select! {
                        _ = stopped.wait_for(|stop| *stop) => return false,
                        () = tokio::time::sleep(RETRY_PAUSE) => {}
                    }
                }
            }
        }
    }
}
