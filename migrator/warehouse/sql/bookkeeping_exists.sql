select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'migrator_bookkeeping' and c.relname = %s
