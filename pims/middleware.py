from django.utils import timezone


class DepartmentTimeZoneMiddleware:
    """Pages show times in the zone of the department the user works in.

    ``pims.access`` activates the zone once it knows the department; this resets it after
    every response, since an activated zone would otherwise stay with the worker thread and
    leak into the next request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
