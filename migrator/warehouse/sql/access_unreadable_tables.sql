-- User tables this session may not SELECT (regular users see them in pg_class, but not their
-- rows, and svv_redshift_columns/svv_table_info leave them out silently).
select n.nspname, c.relname
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r'
  and n.nspname not in ('information_schema', 'catalog_history', 'migrator_bookkeeping')
  and left(n.nspname, 3) <> 'pg_'
  -- CASE: the table's name resolves only with USAGE on its schema (else an error, not false).
  and not (case when has_schema_privilege(n.nspname, 'usage')
                then has_table_privilege(quote_ident(n.nspname) || '.' || quote_ident(c.relname), 'select')
                else false end)
order by 1, 2
