-- Where the bot posted about a ticket in an agents' place (a Telegram group message, a Discord
-- message or thread): an agent's reply to such a post, or a message in such a thread, acts on
-- its ticket.
CREATE TABLE chat_posts (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    external_id TEXT NOT NULL,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    UNIQUE (channel, external_id)
);
CREATE INDEX chat_posts_ticket ON chat_posts (ticket_id);

-- Agents' chat messages already acted on, written in the same transaction as the action, so
-- an update the platform sends again changes nothing twice.
CREATE TABLE chat_actions (
    channel TEXT NOT NULL,
    external_id TEXT NOT NULL,
    agent_id INTEGER REFERENCES agents(id) ON DELETE SET NULL,
    done_at TEXT NOT NULL,
    PRIMARY KEY (channel, external_id)
);
