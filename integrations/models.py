# The integrations app keeps each vendor's models in its own package.
from integrations.ivls.models import (  # noqa: F401
    AuthFailure,
    ExchangeLogEntry,
    InboundResultContent,
    InboundResultFile,
    InboundResultFileDepartment,
    IVLSConnection,
    PollCounter,
    WorkRequest,
)
