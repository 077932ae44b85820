select trim(schemaname), trim(tablename), trim(location) from svv_external_tables
