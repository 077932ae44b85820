-- Type oid -> SQL name, for rebuilding routine signatures from proargtypes/prorettype.
select oid, format_type(oid, null) from pg_type
