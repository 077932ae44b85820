-- Real Redshift: 0 EVEN, 1 KEY, 8 ALL, 10 AUTO(ALL), 11 AUTO(EVEN), 12 AUTO(KEY).
select oid, reldiststyle from pg_class where relkind = 'r'
