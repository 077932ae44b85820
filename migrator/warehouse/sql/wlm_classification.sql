-- WLM routing rules (STV_WLM_CLASSIFICATION_CONFIG): "(query group: name)" -> a service class.
select id, trim(condition), action_service_class
from stv_wlm_classification_config
order by id
