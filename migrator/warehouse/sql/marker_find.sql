-- A table's committed load of one attempt, from any marker table ({marker} is one of them; the
-- caller joins one such select per marker table with UNION ALL). The attempt names one UNLOAD
-- (a new attempt unloads to a new prefix), and a load of it is only run again when the earlier
-- one did not commit, so at most one row matches.
select attempt, manifest, rows, loaded_at from {marker}
where migration = %s and schema_name = %s and table_name = %s and attempt = %s
