-- A fresh helpdesk routes tickets no rule sends elsewhere to a default department (the setting
-- workflow.default_department, "General" unless changed), so agents added without a department
-- get tickets from the first mail on. Least open tickets shares them fairly from the start.
-- An existing department of that name is kept as it is. Keep in step with the other store's
-- migration.
INSERT INTO departments (name, assignment_strategy, created_at)
VALUES ('General', 'least_open', now())
ON CONFLICT (name) DO NOTHING;
