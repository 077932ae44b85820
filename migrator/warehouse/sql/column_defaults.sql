-- Real Redshift keeps the default (and an IDENTITY column's seed/step) in pg_attrdef.adsrc,
-- e.g. "identity"(100416, 0, '1,1'::text).
select trim(n.nspname), trim(c.relname), trim(a.attname), d.adsrc
from pg_attrdef d
join pg_class c on c.oid = d.adrelid
join pg_namespace n on n.oid = c.relnamespace
join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
where c.relkind = 'r'
