"""Plug-in and simulator together against the fake PIMS: request out, results back."""

from __future__ import annotations

import defusedxml.ElementTree as DET

from integrations.ivls_simulator.simulator import Simulator

from .conftest import TODAY


def test_work_request_travels_to_the_ivls_and_results_come_back(pims, interlink, make_plugin):
    pims.add_work_request(812, "100042", codes=("CHEM17", "SDMA", "SNAPFF"), species="FELINE")
    plugin = make_plugin()

    plugin.run_cycle()  # the request goes into Requests and is acknowledged
    assert pims.acked == [812]

    Simulator(interlink, delay=0, seed=3, corrections=True).serve(once=True)
    plugin.run_cycle()  # the results and the report go up

    results = pims.uploads_of("result")
    assert [u.status for u in results] == [201, 201, 201, 201]
    roots = [DET.fromstring(u.body) for u in results]
    subs = [(r.find("body/result").get("instrument"), r.get("message_sub_type")) for r in roots]
    # each correction goes up after the run it corrects
    assert subs.index(("Catalyst_One", "New_Results")) < subs.index(
        ("Catalyst_One", "Replace_Previous_Results")
    )
    assert subs.index(("SNAP", "New_Results")) < subs.index(("SNAP", "Replace_Previous_Results"))
    for root in roots:
        result = root.find("body/result")
        assert result.get("requisition_number") == "100042"
        assert result.find("patient").get("patient_id") == "1207"
        assert result.find("patient").get("patient_species") == "FELINE"
    set_id = roots[0].find("body/result").get("diagnostic_set_id")
    [report] = pims.uploads_of("report")
    assert (report.file_name, report.status) == (f"{set_id}.pdf", 201)

    data = interlink / "Results" / "Data"
    assert [p for p in data.iterdir() if p.is_file()] == []
    assert len(list((data / "archive" / TODAY.isoformat()).iterdir())) == 4
    assert list((interlink / "Requests").glob("*.xml")) == []
