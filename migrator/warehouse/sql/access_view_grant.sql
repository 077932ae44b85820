select has_table_privilege(%s, 'select')
