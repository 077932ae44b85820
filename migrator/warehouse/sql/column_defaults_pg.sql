-- Fallback for catalogs without pg_attrdef.adsrc (the PostgreSQL-based sandbox): the same
-- shape, with identity columns rendered the way Redshift's adsrc spells them.
select n.nspname, c.relname, a.attname,
       case when a.attidentity in ('a', 'd')
            then '"identity"(0, 0, ''' || s.seqstart || ',' || s.seqincrement || '''::text)'
            else pg_get_expr(d.adbin, d.adrelid) end
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
left join pg_sequence s on a.attidentity in ('a', 'd')
     and s.seqrelid = pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname)::regclass
where c.relkind = 'r' and a.attnum > 0 and not a.attisdropped and (d.adbin is not null or a.attidentity in ('a', 'd'))
