-- Fallback where SVV_REDSHIFT_COLUMNS is missing: pg_table_def for ONE schema, run with the
-- search_path set to that schema alone (pg_table_def lists only what the path makes visible).
select trim(schemaname), trim(tablename), trim("column"), trim(encoding), distkey, sortkey
from pg_table_def
where schemaname = %s
