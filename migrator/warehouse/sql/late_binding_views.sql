select trim(schemaname), trim(viewname) from svv_late_binding_views
