-- Reports on a million tickets (docs/DESIGN-NOTES.md, "Reports' query plans"). Keep in step
-- with migrations/sqlite.

-- A ticket's report columns by id: status changes, SLA targets and the backlog's correction
-- look their ticket up in this narrow index instead of the table's wide rows.
CREATE INDEX tickets_report_dims ON tickets (id, created_at, department_id, assignee_id, channel);

-- Status changes by time with their ticket and values; `kind` in the columns too, so that
-- SQLite reads the index alone (it does not take a partial index's condition as given).
DROP INDEX ticket_events_status_at;
CREATE INDEX ticket_events_status_at ON ticket_events (at, ticket_id, old_value, new_value, kind)
    WHERE kind = 'status';

-- SLA targets that ended in a period: breached ones by when, met ones without a breach by
-- when, each with its ticket (the old single-column indexes sent the met ones through every
-- unbreached target); `breached_at` in the columns for the same reason as `kind` above.
DROP INDEX sla_targets_met;
DROP INDEX sla_targets_breached;
CREATE INDEX sla_targets_breached ON sla_targets (breached_at, ticket_id)
    WHERE breached_at IS NOT NULL;
CREATE INDEX sla_targets_met ON sla_targets (met_at, ticket_id, breached_at)
    WHERE breached_at IS NULL AND met_at IS NOT NULL;

-- Surveys sent and rated in a period, with what their groups and figures need.
DROP INDEX satisfaction_surveys_sent;
CREATE INDEX satisfaction_surveys_sent
    ON satisfaction_surveys (sent_at, department_id, agent_id, channel, rating);
DROP INDEX satisfaction_surveys_rated;
CREATE INDEX satisfaction_surveys_rated
    ON satisfaction_surveys (rated_at, department_id, agent_id, channel, rating)
    WHERE rated_at IS NOT NULL;

-- The planner's statistics for the new indexes (a large database has them at once, not only
-- after someone runs ANALYZE).
ANALYZE tickets;
ANALYZE sla_targets;
ANALYZE satisfaction_surveys;
