delete from {marker} where migration = %s and schema_name = %s and table_name = %s
