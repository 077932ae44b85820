select usename, usesuper, usecreatedb, usesysid from pg_user
