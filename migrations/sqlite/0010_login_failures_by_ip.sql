-- Failed sign-ins are limited per client IP as well as per address, so one client cannot try a
-- few passwords on each of many addresses. The IP is that of the connection (or, when the
-- settings say a proxy in front is trusted, the one it reports). Keep in step with the other
-- store's migration.
ALTER TABLE login_failures ADD COLUMN ip TEXT;
CREATE INDEX login_failures_ip ON login_failures (ip, at);
