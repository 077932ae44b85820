select trim(schemaname), trim(databasename) from svv_external_schemas
