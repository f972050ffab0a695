"""List pages read in a number of queries that does not grow with what they list."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import ConsultationFactory
from tests.ui.helpers import complete_chem17


def count(http, url) -> int:
    http.get(url)  # warm the session
    with CaptureQueriesContext(connection) as queries:
        assert http.get(url).status_code == 200
    return len(queries)


def test_worklist_and_results_history_are_flat(vet_client, department, patient, vet, chem17):
    order, analytes = chem17
    urls = [
        reverse("labs:worklist") + "?status=complete",
        reverse("labs:patient_results", args=[patient.pk]),
        reverse("patients:patient_detail", args=[patient.pk]),
        reverse("patients:search"),
    ]
    complete_chem17(
        ConsultationFactory(department=department, patient=patient, vet=vet), order, analytes, vet
    )
    before = [count(vet_client, url) for url in urls]
    for index in range(19):
        complete_chem17(
            ConsultationFactory(department=department, patient=patient, vet=vet),
            order,
            analytes,
            vet,
            run_id=f"more-{index}",
        )
    after = [count(vet_client, url) for url in urls]
    assert before == after


def test_item_list_is_flat(admin_client_, department, chem17):
    from tests.factories import LabPanelFactory, lab_item

    item_list = department.item_list
    url = reverse("labs:item_list")
    LabPanelFactory(item_list=item_list, items=[lab_item(department, "P0")])
    before = count(admin_client_, url)
    for index in range(20):
        LabPanelFactory(item_list=item_list, items=[lab_item(department, f"P{index + 1}")])
    assert count(admin_client_, url) == before
