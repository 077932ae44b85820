select schemaname, viewname, definition
from pg_views
where schemaname not in ('information_schema', 'catalog_history', 'migrator_bookkeeping')
  and left(schemaname, 3) <> 'pg_'
