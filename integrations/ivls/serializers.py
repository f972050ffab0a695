"""The plug-in API's wire format (ICP-API.md), as small explicit serializers.

Responses are built from plain dicts by the views; these classes describe them for the
OpenAPI schema and keep the field list in one place.
"""

from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="What is wrong, in plain words.")


class WorkRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    unit_id = serializers.IntegerField(help_text="The department (Unit ID) it is for.")
    requisition_number = serializers.CharField()
    action = serializers.ChoiceField(choices=["New", "Cancel"])
    created_at = serializers.DateTimeField()
    file_name = serializers.CharField(help_text="Write `xml` to Requests\\<file_name>.")
    xml = serializers.CharField(help_text="The work_request_20 file, verbatim.")


class WorkRequestListSerializer(serializers.Serializer):
    work_requests = WorkRequestSerializer(many=True)
    has_more = serializers.BooleanField()


class WorkRequestAckSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["delivered"])


class ReportOutcomeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    id = serializers.IntegerField(required=False)
    error = serializers.CharField(required=False)


class ResultPostSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "ignored"])
    id = serializers.IntegerField()
    report = ReportOutcomeSerializer(
        required=False, help_text="Only when a multipart `report` part was sent."
    )


class ResultRejectedSerializer(serializers.Serializer):
    error = serializers.CharField()
    id = serializers.IntegerField(help_text="The stored (rejected) file, for support.")


class ResultUploadSerializer(serializers.Serializer):
    """The multipart form of POST results/."""

    file = serializers.FileField(help_text="The result XML, as InterLink wrote it.")
    report = serializers.FileField(required=False, help_text="The run's PDF report.")


class ReportUploadSerializer(serializers.Serializer):
    """The multipart form of POST reports/."""

    file = serializers.FileField(help_text="The PDF from Results\\Reports.")


class ResultFileStatusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(
        choices=[
            "received",
            "matched",
            "unmatched",
            "needs_review",
            "duplicate",
            "rejected",
            "failed",
            "ignored",
        ]
    )
    requisition_number = serializers.CharField(allow_blank=True)
    diagnostic_set_id = serializers.CharField(allow_blank=True)
    received_at = serializers.DateTimeField()
    detail = serializers.CharField(allow_blank=True)


class ReportPostSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["accepted", "duplicate"])
    id = serializers.IntegerField()
    diagnostic_set_id = serializers.CharField()
    attached = serializers.BooleanField(
        help_text="False while the run's result file has not arrived; it is attached then."
    )


class StatusSerializer(serializers.Serializer):
    units = serializers.ListField(child=serializers.IntegerField())
    server_time = serializers.DateTimeField()
    pending_work_requests = serializers.IntegerField()
