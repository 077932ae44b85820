select groname, grolist from pg_group
