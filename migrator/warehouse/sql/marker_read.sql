select attempt, manifest, rows, loaded_at from {marker}
where migration = %s and schema_name = %s and table_name = %s
order by attempt desc
