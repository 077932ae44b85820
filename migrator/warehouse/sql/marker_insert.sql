insert into {marker} (migration, schema_name, table_name, attempt, manifest, rows, loaded_at)
values (%s, %s, %s, %s, %s, %s, getdate())
