-- The change feed without a NOTIFY per ticket change. Every notifying transaction takes the
-- notification queue's lock at commit and holds it through the commit's disk flush, so a
-- NOTIFY from this trigger serialised intake and assignment. The web servers now read the feed
-- on a short poll and announce what they found with one NOTIFY of their own (see web/live.rs).
CREATE OR REPLACE FUNCTION tickets_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO ticket_changes (ticket_id, number, kind, assignee_id, department_id)
        VALUES (NEW.id, NEW.number, 'created', NEW.assignee_id, NEW.department_id);
    ELSIF (NEW.status, NEW.priority, NEW.department_id, NEW.assignee_id, NEW.updated_at)
          IS DISTINCT FROM (OLD.status, OLD.priority, OLD.department_id, OLD.assignee_id, OLD.updated_at) THEN
        INSERT INTO ticket_changes (ticket_id, number, kind, assignee_id, previous_assignee_id,
                                    department_id)
        VALUES (NEW.id, NEW.number, 'updated', NEW.assignee_id, OLD.assignee_id, NEW.department_id);
    END IF;
    RETURN NULL;
END;
$$;
