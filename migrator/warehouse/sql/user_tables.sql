-- Every user table, empty ones included (svv_table_info omits tables without rows).
-- redshift_sys is the local sandbox's catalog schema; migrator_bookkeeping is ours.
-- mv_tbl__<view>__N are Redshift's backing tables of materialized views: the views are
-- recreated and refreshed after the data, so their storage is never copied.
select n.nspname, c.relname, c.oid
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r'
  and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast', 'pg_internal', 'catalog_history',
                        'pg_automv', 'redshift_sys', 'migrator_bookkeeping')
  and left(n.nspname, 8) <> 'pg_temp_'
  and left(c.relname, 8) <> 'mv_tbl__'
