-- What the reports read, by time: tickets by creation and first response, status changes by
-- when they happened, ratings by when they were given. Keep in step with migrations/sqlite.

-- New tickets in a period, counted from the index alone for every grouping.
CREATE INDEX tickets_created_report ON tickets (created_at, department_id, assignee_id, channel);
-- Backlog at a period's end starts from the tickets active now.
CREATE INDEX tickets_status_created ON tickets (status, created_at, department_id, assignee_id, channel);
-- First responses in a period with what their time and group need.
CREATE INDEX tickets_first_response ON tickets (first_response_at, created_at, department_id, assignee_id, channel)
    WHERE first_response_at IS NOT NULL;
-- Status changes (resolved, reopened) by time, with their values.
CREATE INDEX ticket_events_status_at ON ticket_events (at, ticket_id, old_value, new_value)
    WHERE kind = 'status';
CREATE INDEX satisfaction_surveys_rated ON satisfaction_surveys (rated_at) WHERE rated_at IS NOT NULL;
