-- Every user column with its schema named explicitly (pg_table_def shows only the first table
-- of a name on the search_path, so two schemas holding a table "t" would share one set of
-- columns). format_type gives the type as DDL spells it, modifiers included.
select n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
  and n.nspname not in ('information_schema', 'catalog_history', 'migrator_bookkeeping')
  and left(n.nspname, 3) <> 'pg_'
order by n.nspname, c.relname, a.attnum
