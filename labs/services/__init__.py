"""Lab services: the stable entry points named in the design (keyword-only, one
transaction each)."""

from labs.services.catalog import panel_create, panel_update
from labs.services.matching import result_document_record, run_record
from labs.services.referrals import (
    referral_cancel,
    referral_create,
    referral_line_remove,
    referral_progress_update,
    result_record,
)
from labs.services.review import run_attach, run_dismiss, run_identity_confirm

__all__ = [
    "panel_create",
    "panel_update",
    "referral_cancel",
    "referral_create",
    "referral_line_remove",
    "referral_progress_update",
    "result_document_record",
    "result_record",
    "run_attach",
    "run_dismiss",
    "run_identity_confirm",
    "run_record",
]
