-- The SELECT behind every view and materialized view (Redshift lists an MV as a view, relkind
-- 'v', over an internal table; PostgreSQL as relkind 'm'). Kept apart from svv_mv_info: the
-- catalog function pg_get_viewdef runs on the leader node only.
select n.nspname, c.relname, pg_get_viewdef(c.oid, true)
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('v', 'm')
  and n.nspname not in ('information_schema', 'catalog_history', 'migrator_bookkeeping')
  and left(n.nspname, 3) <> 'pg_'
