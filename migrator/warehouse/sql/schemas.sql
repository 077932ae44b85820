select n.nspname, pg_get_userbyid(n.nspowner), n.nspacl
from pg_namespace n
where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast', 'pg_internal', 'catalog_history',
                        'pg_automv', 'redshift_sys', 'migrator_bookkeeping')
  and left(n.nspname, 8) <> 'pg_temp_' and left(n.nspname, 14) <> 'pg_toast_temp_'
