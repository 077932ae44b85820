-- ALTER DEFAULT PRIVILEGES entries, one row per privilege; schema_name NULL for entries
-- without IN SCHEMA; object_type RELATION | FUNCTION | PROCEDURE; grantee_type user | group |
-- role | public.
select trim(schema_name), trim(object_type), trim(owner_name), trim(privilege_type), trim(grantee_name),
       trim(grantee_type), admin_option
from svv_default_privileges
