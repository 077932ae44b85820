-- Every user table, empty ones included (svv_table_info omits tables without rows).
-- Names starting with pg_ are reserved for system schemas (users cannot create them);
-- catalog_history is Redshift's, migrator_bookkeeping is ours.
-- mv_tbl__<view>__N are Redshift's backing tables of materialized views: the views are
-- recreated and refreshed after the data, so their storage is never copied.
select n.nspname, c.relname, c.oid
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r'
  and n.nspname not in ('information_schema', 'catalog_history', 'migrator_bookkeeping')
  and left(n.nspname, 3) <> 'pg_'
  and left(c.relname, 8) <> 'mv_tbl__'
