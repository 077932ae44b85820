select schemaname, viewname, definition
from pg_views
where schemaname not in ('pg_catalog', 'information_schema', 'pg_internal', 'catalog_history', 'pg_automv',
                         'redshift_sys', 'migrator_bookkeeping')
