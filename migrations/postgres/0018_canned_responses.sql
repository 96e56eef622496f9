-- Canned responses: a named reply text with placeholders and optional actions applied with it.
-- `owner_agent_id` NULL is a shared one (kept by admins); otherwise the agent's own. A name is
-- unique per owner, ignoring case, since chat looks names up ignoring case. `tags` is a
-- space-separated list of normalized tags added with the reply. Keep in step with
-- migrations/sqlite.
CREATE TABLE canned_responses (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    owner_agent_id BIGINT REFERENCES agents(id) ON DELETE CASCADE,
    status TEXT CHECK (status IN ('new', 'open', 'pending', 'resolved', 'closed')),
    priority TEXT CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    tags TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX canned_responses_name
    ON canned_responses (COALESCE(owner_agent_id, 0), lower(name));
