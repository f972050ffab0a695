"""The IVLS/InterLink simulator: request files in, InterLink result files and PDFs out."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import defusedxml.ElementTree as DET
import pytest

from integrations.ivls_simulator import make_pdf, make_result_xml, parse_work_request
from integrations.ivls_simulator.simulator import Simulator

from .conftest import FakeClock
from .fakepims import work_request_xml

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 22, 14, 3, 11, 120000)  # noqa: DTZ001 - InterLink wall time
RUN_DT = re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}\.\d{3} (AM|PM)$")


def catalogue() -> dict[str, dict[str, str]]:
    """The catalogue read straight from the CSV, independently of the simulator's reader."""
    text = (ROOT / "billing" / "data" / "idexx_catalog.csv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return {row["code"]: row for row in csv.DictReader(io.StringIO("\n".join(lines)))}


CATALOG = catalogue()


def parse(data: bytes):
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    assert b'<!DOCTYPE message SYSTEM "result_20.dtd">' in data.split(b"\n")[1]
    return DET.fromstring(data)


def assays(root) -> dict[str, dict[str, str]]:
    out = {}
    for el in root.iterfind("body/result/results/assay_result"):
        out[el.get("assay_name")] = {
            "unit": el.findtext("result_value_uom_cd") or "",
            "value": el.findtext("result_value") or "",
            "low": el.findtext("assay_reference_range/low") or "",
            "high": el.findtext("assay_reference_range/high") or "",
            "critical_low": el.findtext("assay_reference_range/critical_low") or "",
            "critical_high": el.findtext("assay_reference_range/critical_high") or "",
            "qualifier": el.findtext("result_qualifier") or "",
        }
    return out


def request(codes=("CHEM17", "SDMA"), **kwargs) -> bytes:
    return work_request_xml(812, "100042", codes, **kwargs).encode()


def test_chem17_and_sdma_for_a_dog():
    xml = make_result_xml(
        request(first_name='Zoë & "Bob"', patient_name="Rosa <2>"), seed=1, now=NOW
    )
    root = parse(xml)

    assert root.tag == "message"
    assert root.get("message_type") == "Result"
    assert root.get("message_sub_type") == "New_Results"
    assert root.get("message_dtd_version_number") == "2.0"
    assert RUN_DT.match(root.get("message_dt"))
    result = root.find("body/result")
    assert result.get("requisition_number") == "100042"
    assert result.get("instrument") == "Catalyst_One"
    assert re.fullmatch(r"\d{8}_\d{6}_812", result.get("diagnostic_set_id"))
    assert result.findtext("run_dt") == "11/22/2026 02:03:11.120 PM"
    assert result.find("client").get("client_id") == "311"
    assert result.findtext("client/first_name") == 'Zoë & "Bob"'
    assert result.find("patient").get("patient_id") == "1207"
    assert result.find("patient").get("patient_species") == "CANINE"
    assert result.findtext("patient/patient_name") == "Rosa <2>"
    assert result.findtext("doctor/last_name") == "Korhonen"
    assert root.findtext("header/to_application_id") == "pims-test"

    found = assays(root)
    assert list(found) == CATALOG["CHEM17"]["yields"].split() + ["SDMA"]
    for code, got in found.items():
        row = CATALOG[code]
        assert got["unit"] == row["unit"], code
        assert (got["low"], got["high"]) == (row["dog_low"], row["dog_high"]), code
        assert (got["critical_low"], got["critical_high"]) == (
            row["critical_low"],
            row["critical_high"],
        )
        assert got["qualifier"] == "="
        Decimal(got["value"])  # every chemistry value is a number
    assert found["SDMA"]["unit"] == "\u03bcg/dL"


def test_cat_gets_feline_ranges_and_other_species_dog_ranges():
    cat = assays(parse(make_result_xml(request(("CHEM10",), species="FELINE"), seed=1, now=NOW)))
    horse = assays(parse(make_result_xml(request(("CHEM10",), species="EQUINE"), seed=1, now=NOW)))
    assert (cat["GLU"]["low"], cat["GLU"]["high"]) == (CATALOG["GLU"]["cat_low"], "159")
    assert (horse["GLU"]["low"], horse["GLU"]["high"]) == ("74", "143")
    assert CATALOG["GLU"]["cat_high"] == "159"


def test_snap_gives_text_values():
    root = parse(make_result_xml(request(("SNAP4DX",)), seed=3, now=NOW))
    assert root.find("body/result").get("instrument") == "SNAP"
    found = assays(root)
    assert list(found) == ["HW", "Ehrlichia", "Lyme", "Anaplasma"]
    for got in found.values():
        assert got["value"] in ("Positive", "Negative")
        assert got["unit"] == got["low"] == got["high"] == ""


def test_each_instrument_gets_its_own_file_with_one_set_id():
    req = request(("CHEM17", "CBC", "SNAPFF"))
    files = {
        inst: parse(make_result_xml(req, seed=1, now=NOW, instrument=inst))
        for inst in ("Catalyst_One", "ProCyteDx", "SNAP")
    }
    ids = {root.find("body/result").get("diagnostic_set_id") for root in files.values()}
    assert len(ids) == 1
    assert "HGB" in assays(files["ProCyteDx"]) and "HGB" not in assays(files["Catalyst_One"])
    assert list(assays(files["SNAP"])) == ["FeLV", "FIV"]


def out_of_range(found: dict[str, dict[str, str]]) -> int:
    return sum(
        1
        for a in found.values()
        if a["low"] and not Decimal(a["low"]) <= Decimal(a["value"]) <= Decimal(a["high"])
    )


def test_values_repeat_for_a_seed_and_some_fall_outside_the_range():
    req = request(("CHEM17", "CBC"))
    for inst in ("Catalyst_One", "ProCyteDx"):
        assert make_result_xml(req, seed=5, now=NOW, instrument=inst) == make_result_xml(
            req, seed=5, now=NOW, instrument=inst
        )
    assert make_result_xml(req, seed=5, now=NOW) != make_result_xml(req, seed=6, now=NOW)

    total = outside = 0
    for seed in range(10):
        for inst in ("Catalyst_One", "ProCyteDx"):
            found = assays(parse(make_result_xml(req, seed=seed, now=NOW, instrument=inst)))
            ranged = [a for a in found.values() if a["low"]]
            total += len(ranged)
            outside += out_of_range(found)
    assert 0.05 * total < outside < 0.4 * total


def test_ratios_follow_the_values_they_divide():
    found = assays(parse(make_result_xml(request(("CHEM17",)), seed=2, now=NOW)))
    ratio = Decimal(found["BUN"]["value"]) / Decimal(found["CREA"]["value"])
    assert abs(Decimal(found["BUN/CREA"]["value"]) - ratio) <= 1


def test_big5_file_declares_big5_and_decodes():
    req = request(("CHEM17", "SDMA"), first_name="小明", last_name="王", patient_name="旺財")
    data = make_result_xml(req, seed=1, now=NOW, encoding="big5")

    assert data.startswith(b'<?xml version="1.0" encoding="Big5"?>')
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("big5")
    root = DET.fromstring(re.sub(r"^<\?xml[^>]*\?>", "", text))
    assert root.findtext("body/result/client/first_name") == "小明"
    assert root.findtext("body/result/patient/patient_name") == "旺財"
    assert assays(root)["SDMA"]["unit"] == "\u03bcg/dL"


def test_replace_previous_results_changes_exactly_one_value():
    req = request(("CHEM17",))
    first = parse(make_result_xml(req, seed=4, now=NOW))
    fixed = parse(make_result_xml(req, seed=4, now=NOW, sub_type="Replace_Previous_Results"))
    assert fixed.get("message_sub_type") == "Replace_Previous_Results"
    for attr in ("diagnostic_set_id", "instrument", "requisition_number"):
        assert fixed.find("body/result").get(attr) == first.find("body/result").get(attr)
    a, b = assays(first), assays(fixed)
    assert [c for c in a if a[c]["value"] != b[c]["value"]] != []
    assert len([c for c in a if a[c]["value"] != b[c]["value"]]) == 1


def test_pdf_is_a_valid_one_page_pdf():
    data = make_pdf(["Diagnostic set 20261122_140311_812", "Rosa (CANINE) (test) \\ done"])
    assert data.startswith(b"%PDF-") and data.endswith(b"%%EOF")
    start = int(re.search(rb"startxref\n(\d+)\n", data).group(1))
    assert data[start:].startswith(b"xref\n0 6\n")
    offsets = re.findall(rb"(\d{10}) 00000 n ", data[start:])
    for number, offset in enumerate(offsets, start=1):
        assert data[int(offset) :].startswith(b"%d 0 obj" % number)
    assert b"/Count 1" in data
    length = int(re.search(rb"/Length (\d+)", data).group(1))
    stream = data.split(b"stream\n", 1)[1].split(b"\nendstream", 1)[0]
    assert len(stream) == length


# --- the folder-watching simulator ------------------------------------------------------


def tree(tmp_path: Path) -> Path:
    root = tmp_path / "IL"
    (root / "Requests").mkdir(parents=True)
    return root


def test_request_file_becomes_results_and_a_report(tmp_path):
    root = tree(tmp_path)
    (root / "Requests" / "WR-812.xml").write_bytes(request(("CHEM17", "SDMA", "CBC", "SNAP4DX")))

    Simulator(root, delay=0, seed=1).serve(once=True)

    data = sorted((root / "Results" / "Data").iterdir())
    assert len(data) == 3
    roots = [DET.fromstring(p.read_bytes()) for p in data]
    results = [r.find("body/result") for r in roots]
    assert {r.get("instrument") for r in results} == {"Catalyst_One", "ProCyteDx", "SNAP"}
    assert {r.get("requisition_number") for r in results} == {"100042"}
    [set_id] = {r.get("diagnostic_set_id") for r in results}
    for path, result in zip(data, results, strict=True):
        assert path.name == f"{set_id}_{result.get('instrument')}.xml"
    [pdf] = (root / "Results" / "Reports").iterdir()
    assert pdf.name == f"{set_id}.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-") and pdf.read_bytes().endswith(b"%%EOF")
    assert list((root / "Requests").glob("*.xml")) == []
    assert [p.name for p in (root / "Requests" / "processed").iterdir()] == ["WR-812.xml"]
    # no temporary files left behind
    assert not [p for p in root.rglob(".*") if p.is_file()]


def test_cancel_removes_a_pending_request_without_results(tmp_path):
    root = tree(tmp_path)
    clock = FakeClock()
    sim = Simulator(root, delay=60, seed=1, clock=clock)
    sim.ensure_folders()
    (root / "Requests" / "WR-812.xml").write_bytes(request())
    sim.scan()
    assert len(sim.pending) == 1

    cancel = work_request_xml(813, "100042", ("CHEM17", "SDMA"), action="Cancel")
    (root / "Requests" / "WR-813.xml").write_text(cancel)
    sim.scan()
    clock.advance(120)
    sim.run_due()

    assert sim.pending == {}
    assert list((root / "Requests").glob("*.xml")) == []
    assert list((root / "Results" / "Data").iterdir()) == []
    assert list((root / "Results" / "Reports").iterdir()) == []


def test_cancel_then_new_runs_only_the_new_request(tmp_path):
    root = tree(tmp_path)
    sim = Simulator(root, delay=0, seed=1)
    sim.ensure_folders()
    requests = root / "Requests"
    (requests / "WR-1.xml").write_text(work_request_xml(1, "7", ("CHEM17", "SNAPFF")))
    (requests / "WR-2.xml").write_text(work_request_xml(2, "7", ("CHEM17",), action="Cancel"))
    (requests / "WR-3.xml").write_text(work_request_xml(3, "7", ("SNAPFF",)))
    sim.serve(once=True)

    [only] = (root / "Results" / "Data").iterdir()
    assert DET.fromstring(only.read_bytes()).find("body/result").get("instrument") == "SNAP"


def test_ivls_run_and_corrections(tmp_path):
    root = tree(tmp_path)
    sim = Simulator(root, delay=0, seed=1, corrections=True)
    sim.ensure_folders()
    written = sim.ivls_run()

    xmls = [p for p in written if p.suffix == ".xml"]
    assert len(xmls) == 2
    first, fixed = (DET.fromstring(p.read_bytes()) for p in xmls)
    assert fixed.get("message_sub_type") == "Replace_Previous_Results"
    result = first.find("body/result")
    assert result.get("requisition_number") == ""
    assert result.find("client").get("client_id") == ""
    assert result.find("patient").get("patient_id") == ""
    assert result.find("patient").get("patient_species") == "FELINE"
    assert fixed.find("body/result").get("diagnostic_set_id") == result.get("diagnostic_set_id")
    assert xmls[0].stat().st_mtime_ns <= xmls[1].stat().st_mtime_ns


def test_work_request_parser_reads_the_contract_example():
    parsed = parse_work_request(request(("CHEM17", "SDMA"), species="FELINE"))
    assert parsed.message_id == "812"
    assert parsed.requisition_number == "100042"
    assert parsed.service_codes == ("CHEM17", "SDMA")
    assert (parsed.client_id, parsed.patient_id, parsed.species) == ("311", "1207", "FELINE")
    assert (parsed.weight, parsed.weight_uom) == ("27.4", "kgs")


def test_simulator_command_line(tmp_path):
    root = tree(tmp_path)
    (root / "Requests" / "WR-812.xml").write_bytes(request(("SDMA",)))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "integrations.ivls_simulator",
            "--root",
            str(root),
            "--delay",
            "0",
            "--seed",
            "9",
            "--once",
            "--encoding",
            "big5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    [result] = (root / "Results" / "Data").iterdir()
    assert result.read_bytes().startswith(b'<?xml version="1.0" encoding="Big5"?>')
    assert len(list((root / "Results" / "Reports").iterdir())) == 1
