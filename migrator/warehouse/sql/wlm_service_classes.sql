-- WLM queues (STV_WLM_SERVICE_CLASS_CONFIG; superusers see rows): slots and memory per slot (MB).
select service_class, trim(name), num_query_tasks, query_working_mem, query_group_wild_card
from stv_wlm_service_class_config
order by service_class
