-- Only schemas on the search_path appear here: callers set it first (see inventory.py).
select trim(schemaname), trim(tablename), trim("column"), trim(type), trim(encoding), distkey, sortkey, "notnull"
from pg_table_def
where schemaname not in ('pg_catalog', 'information_schema')
