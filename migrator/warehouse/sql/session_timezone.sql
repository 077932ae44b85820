-- Timestamps with a zone render in UTC in every session of the tool (checksums, text staging),
-- whatever the user's or the parameter group's default ("timezone"; ALTER USER ... SET timezone
-- changes a user's default). Set once per session outside any transaction.
SET timezone TO 'UTC'
