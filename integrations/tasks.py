# Celery autodiscovers "<app>.tasks"; the IVLS tasks live in their own package.
from integrations.ivls.tasks import (  # noqa: F401
    exchange_log_prune,
    result_file_process_task,
    result_files_sweep,
)
