"""Lab services: the stable entry points named in the design (keyword-only, one
transaction each)."""

from labs.services.referrals import (
    referral_cancel,
    referral_create,
    referral_line_remove,
    referral_progress_update,
    result_record,
)

__all__ = [
    "referral_cancel",
    "referral_create",
    "referral_line_remove",
    "referral_progress_update",
    "result_record",
]
