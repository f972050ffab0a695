"""The ICP plug-in against a fake PIMS: delivery, uploads, failures, archive, --check."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from integrations.icp_plugin.__main__ import build_parser
from integrations.icp_plugin.check import run_check
from integrations.icp_plugin.config import ConfigError, load_settings
from integrations.icp_plugin.files import SettleTracker, is_plain_xml_name
from integrations.icp_plugin.plugin import Plugin

from .conftest import TODAY, make_settings
from .fakepims import PASSWORD, FakePims, work_request_xml

ROOT = Path(__file__).resolve().parents[2]

RESULT = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE message SYSTEM "result_20.dtd">
<message message_id="1" message_dt="11/22/2026 02:40:11.120 PM" message_type="Result"
 message_sub_type="New_Results" message_dtd_version_number="2.0">
<header><from_application_id>a</from_application_id><to_application_id>b</to_application_id>
</header><body><result requisition_number="%s" diagnostic_set_id="20261122_140311_%s"
 instrument="Catalyst_One"><run_dt>11/22/2026 02:40:10.880 PM</run_dt><results>
<assay_result assay_name="SDMA"><result_value_uom_cd>\xce\xbcg/dL</result_value_uom_cd>
<result_value>9</result_value><result_qualifier>=</result_qualifier></assay_result>
</results></result></body></message>"""


def result_file(folder: Path, name: str, requisition: str = "100042", *, age: float = 0) -> Path:
    path = folder / name
    path.write_bytes(RESULT % (requisition.encode(), requisition.encode()))
    if age:
        stamp = path.stat().st_mtime - age
        os.utime(path, (stamp, stamp))
    return path


def data_dir(root: Path) -> Path:
    return root / "Results" / "Data"


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


# --- work requests ----------------------------------------------------------------------


def test_work_requests_are_written_verbatim_then_acknowledged(pims, interlink, make_plugin):
    tricky = work_request_xml(
        813, "100043", first_name='Zoë & "Bob" <Ltd>', last_name="王小明", patient_name="Rosa"
    )
    pims.add_work_request(812, "100042")
    pims.add_work_request(813, "100043", xml=tricky)

    assert make_plugin().run_cycle() == 0

    requests = interlink / "Requests"
    assert files_in(requests) == ["WR-812.xml", "WR-813.xml"]
    assert (requests / "WR-813.xml").read_bytes() == tricky.encode("utf-8")
    assert (requests / "WR-812.xml").read_bytes() == pims.work_requests[0]["xml"].encode()
    assert pims.acked == [812, 813]
    # the ack came only once the file was on disk
    assert pims.file_on_disk_at_ack == {812: True, 813: True}
    assert pims.pending() == []


def test_unit_list_is_sent_without_spaces(pims, interlink, clock):
    settings = load_settings(
        argparse.Namespace(
            password=PASSWORD,
            work_request_url=pims.work_request_url,
            results_url=pims.results_url,
            unit_id=" 1, 2 ",
            interlink_root=str(interlink),
        ),
        environ={},
    )
    Plugin(settings, clock=clock, sleep=clock.sleep).run_cycle()
    assert {user for _method, _path, user in pims.calls} == {"1,2"}


@pytest.mark.parametrize(
    "bad_name", ["../evil.xml", "sub/WR-1.xml", "..\\evil.xml", "C:evil.xml", "WR-1.txt", ".xml"]
)
def test_unsafe_file_name_is_refused_and_not_acknowledged(
    pims, interlink, make_plugin, plugin_log, bad_name
):
    pims.add_work_request(900, "100099", file_name=bad_name)
    pims.add_work_request(901, "100100")

    make_plugin().run_cycle()

    assert pims.acked == [901]
    assert files_in(interlink / "Requests") == ["WR-901.xml"]
    assert not (interlink / "evil.xml").exists()
    assert "Refused work request 900" in plugin_log.text


def test_plain_xml_names():
    assert is_plain_xml_name("WR-812.xml")
    assert is_plain_xml_name("WR 812.XML")
    for name in ("../a.xml", "a/b.xml", "a\\b.xml", "a..xml", "CON.xml", "a.xml ", None, 5):
        assert not is_plain_xml_name(name), name


def test_unwritable_requests_folder_means_no_ack(pims, interlink, make_plugin, plugin_log):
    # Root ignores permissions, so make "Requests" a plain file instead of a folder.
    requests = interlink / "Requests"
    requests.rmdir()
    requests.write_text("not a folder")
    pims.add_work_request(812, "100042")
    plugin = make_plugin()

    assert plugin.run_cycle() > 0

    assert pims.acked == []
    assert len(pims.pending()) == 1
    assert f"Cannot write to folder {requests}" in plugin_log.text
    assert "812 was not acknowledged" in plugin_log.text

    # Once the folder is right, the same request is served again and delivered.
    requests.unlink()
    requests.mkdir()
    assert plugin.run_cycle() == 0
    assert pims.acked == [812]
    assert files_in(requests) == ["WR-812.xml"]


def test_requests_folder_under_a_file_is_reported_and_not_acked(pims, interlink, make_plugin):
    blocker = interlink / "blocker"
    blocker.write_text("")
    pims.add_work_request(812, "100042")

    make_plugin(requests_dir=blocker / "Requests").run_cycle()

    assert pims.acked == []
    assert pims.file_on_disk_at_ack == {}


def test_rewriting_an_unacknowledged_request_is_harmless(pims, interlink, make_plugin):
    """A crash after the write but before the ack: the same file is written again."""
    item = pims.add_work_request(812, "100042")
    (interlink / "Requests" / "WR-812.xml").write_text(item["xml"])

    make_plugin().run_cycle()

    assert pims.acked == [812]
    assert (interlink / "Requests" / "WR-812.xml").read_text() == item["xml"]
    assert files_in(interlink / "Requests") == ["WR-812.xml"]


# --- uploads ----------------------------------------------------------------------------


def test_results_upload_oldest_first_and_are_archived(pims, interlink, make_plugin):
    data = data_dir(interlink)
    result_file(data, "newer.xml", "2", age=10)
    result_file(data, "older.xml", "1", age=100)
    report = interlink / "Results" / "Reports" / "20261122_140311_1.pdf"
    report.write_bytes(b"%PDF-1.4\n...\n%%EOF")
    sent_older = (data / "older.xml").read_bytes()

    assert make_plugin().run_cycle() == 0

    results = pims.uploads_of("result")
    assert [u.file_name for u in results] == ["older.xml", "newer.xml"]
    assert [u.status for u in results] == [201, 201]
    assert results[0].body == sent_older
    assert results[0].content_type == "application/xml"
    [pdf] = pims.uploads_of("report")
    assert (pdf.file_name, pdf.content_type, pdf.status) == (
        "20261122_140311_1.pdf",
        "application/pdf",
        201,
    )
    archive = data / "archive" / TODAY.isoformat()
    assert files_in(archive) == ["newer.xml", "older.xml"]
    assert (archive / "older.xml").read_bytes() == sent_older
    assert files_in(data) == []
    assert files_in(interlink / "Results" / "Reports" / "archive" / TODAY.isoformat()) == [
        "20261122_140311_1.pdf"
    ]


def test_rejected_result_goes_to_failed_folder(pims, interlink, make_plugin, plugin_log):
    data = data_dir(interlink)
    (data / "garbage.xml").write_bytes(b"this is not XML at all")
    result_file(data, "good.xml")

    make_plugin().run_cycle()

    assert files_in(data / "failed") == ["garbage.xml", "garbage.xml.error.txt"]
    assert (data / "failed" / "garbage.xml").read_bytes() == b"this is not XML at all"
    assert "The file is not XML" in (data / "failed" / "garbage.xml.error.txt").read_text()
    assert "The PIMS rejected result file garbage.xml: The file is not XML" in plugin_log.text
    # the rejection did not hold up the next file
    assert files_in(data / "archive" / TODAY.isoformat()) == ["good.xml"]


def test_server_error_keeps_the_file_and_retries_after_backoff(
    pims, interlink, make_plugin, clock, plugin_log
):
    data = data_dir(interlink)
    result_file(data, "run.xml")
    pims.forced.append((503, {"Retry-After": "30"}))
    plugin = make_plugin()

    assert plugin.run_cycle() > 0
    assert files_in(data) == ["run.xml"]
    assert "HTTP 503" in plugin_log.text
    assert "trying again in 30 s" in plugin_log.text

    calls = len(pims.calls)
    plugin.run_cycle()  # still backing off: the server is left alone
    assert len(pims.calls) == calls
    assert files_in(data) == ["run.xml"]

    clock.advance(31)
    assert plugin.run_cycle() == 0
    assert files_in(data) == []
    assert [u.status for u in pims.uploads_of("result")] == [503, 201]
    assert "works again" in plugin_log.text


def test_network_down_keeps_the_file_and_it_is_sent_later(interlink, clock, plugin_log):
    pims = FakePims().start()
    port = pims.port
    pims.stop()  # nothing listens there now
    result_file(data_dir(interlink), "run.xml")
    pims.add_work_request(812, "100042")
    plugin = Plugin(make_settings(pims, interlink), clock=clock, sleep=clock.sleep)

    assert plugin.run_cycle() > 0
    assert f"Cannot reach http://127.0.0.1:{port}/" in plugin_log.text
    assert "is the PIMS running" in plugin_log.text
    assert files_in(data_dir(interlink)) == ["run.xml"]
    assert files_in(interlink / "Requests") == []
    delay = plugin.backoff.remaining()
    assert 0 < delay <= 5

    pims.start(port)
    try:
        clock.advance(delay)
        assert plugin.run_cycle() == 0
    finally:
        pims.stop()
    assert files_in(data_dir(interlink)) == []
    assert [u.status for u in pims.uploads_of("result")] == [201]
    assert pims.acked == [812]


def test_wrong_password_is_logged_clearly_and_nothing_moves(
    pims, interlink, make_plugin, plugin_log
):
    pims.add_work_request(812, "100042")
    result_file(data_dir(interlink), "run.xml")

    plugin = make_plugin(password="wrong-password-here")
    assert plugin.run_cycle() > 0

    assert "The server refused the password for unit(s) 1,2: check the Password setting" in (
        plugin_log.text
    )
    assert files_in(interlink / "Requests") == []
    assert files_in(data_dir(interlink)) == ["run.xml"]
    assert pims.acked == [] and pims.uploads == []
    assert plugin.backoff.remaining() > 0


def test_disabled_connection_names_what_to_do(pims, interlink, make_plugin, plugin_log):
    pims.disabled.add(2)
    make_plugin().run_cycle()
    assert "The IVLS connection of unit 2 is disabled" in plugin_log.text
    assert "Enable the IVLS connection" in plugin_log.text


def test_too_many_attempts_waits_as_long_as_the_server_asks(pims, interlink, make_plugin):
    result_file(data_dir(interlink), "run.xml")
    pims.forced.append((429, {"Retry-After": "120"}))
    plugin = make_plugin()
    plugin.run_cycle()
    assert plugin.backoff.remaining() == pytest.approx(120)
    assert files_in(data_dir(interlink)) == ["run.xml"]


def test_too_large_file_stays_and_others_still_go(pims, interlink, make_plugin, plugin_log):
    data = data_dir(interlink)
    result_file(data, "huge.xml", "1", age=100)
    result_file(data, "small.xml", "2", age=10)
    pims.forced.append((413, {}))
    plugin = make_plugin()

    plugin.run_cycle()

    assert files_in(data) == ["huge.xml"]
    assert files_in(data / "archive" / TODAY.isoformat()) == ["small.xml"]
    assert "huge.xml" in plugin_log.text and "larger than the PIMS accepts" in plugin_log.text
    plugin.run_cycle()  # held back for a while, not hammered every cycle
    assert len(pims.uploads_of("result")) == 2


def test_file_still_being_written_is_not_uploaded(pims, interlink, make_plugin, clock):
    path = data_dir(interlink) / "growing.xml"
    path.write_bytes(RESULT[:100])
    plugin = make_plugin()

    def keep_writing():
        with path.open("ab") as fh:
            fh.write(b"<!-- more -->")

    clock.on_sleep = keep_writing
    plugin.run_cycle()
    assert pims.uploads == []
    assert files_in(data_dir(interlink)) == ["growing.xml"]

    # The writer finishes; the file is the same at two looks 2 s apart: now it goes.
    clock.on_sleep = None
    path.write_bytes(RESULT % (b"1", b"1"))
    plugin.run_cycle()
    assert [u.body for u in pims.uploads_of("result")] == [RESULT % (b"1", b"1")]


def test_a_file_must_stay_unchanged_for_the_settle_time(tmp_path, clock):
    path = tmp_path / "run.xml"
    path.write_bytes(b"<message/>")
    tracker = SettleTracker(2.0, clock)

    assert tracker.look([path]) == ([], 2.0)
    clock.advance(1.5)
    settled, wait = tracker.look([path])
    assert settled == [] and wait == pytest.approx(0.5)
    clock.advance(0.5)
    assert tracker.look([path]) == ([path], None)

    path.write_bytes(b"<message>changed</message>")
    assert tracker.look([path]) == ([], 2.0)


def test_empty_file_is_never_uploaded(pims, interlink, make_plugin, clock):
    (data_dir(interlink) / "empty.xml").write_bytes(b"")
    plugin = make_plugin()
    plugin.run_cycle()
    clock.advance(60)
    plugin.run_cycle()
    assert pims.uploads == []


def test_crash_between_upload_and_move_gives_a_duplicate_and_loses_nothing(
    pims, interlink, make_plugin
):
    data = data_dir(interlink)
    result_file(data, "run.xml")
    plugin = make_plugin()
    plugin.run_cycle()
    archive = data / "archive" / TODAY.isoformat()
    # As if the plug-in had been killed after the upload, before the move:
    shutil.copy2(archive / "run.xml", data / "run.xml")

    make_plugin().run_cycle()

    assert [u.status for u in pims.uploads_of("result")] == [201, 200]
    assert files_in(archive) == ["run-1.xml", "run.xml"]
    assert (archive / "run.xml").read_bytes() == (archive / "run-1.xml").read_bytes()


def test_auto_send_off_delivers_requests_but_keeps_results(pims, interlink, make_plugin):
    pims.add_work_request(812, "100042")
    result_file(data_dir(interlink), "run.xml")

    make_plugin(auto_send=False).run_cycle()

    assert pims.acked == [812]
    assert pims.uploads == []
    assert files_in(data_dir(interlink)) == ["run.xml"]


# --- archive ----------------------------------------------------------------------------


def test_archive_folders_older_than_archive_days_are_pruned(pims, interlink, make_plugin):
    data = data_dir(interlink)
    reports = interlink / "Results" / "Reports"
    days = {
        "2000-01-01": False,
        (TODAY - dt.timedelta(days=31)).isoformat(): False,
        (TODAY - dt.timedelta(days=30)).isoformat(): True,
        (TODAY - dt.timedelta(days=1)).isoformat(): True,
        TODAY.isoformat(): True,
    }
    for base in (data, reports):
        for day in days:
            (base / "archive" / day).mkdir(parents=True)
            (base / "archive" / day / "x.xml").write_text("x")
        (base / "archive" / "keep-me").mkdir()
    (data / "failed").mkdir()
    (data / "failed" / "bad.xml").write_text("x")

    make_plugin(archive_days=30).run_cycle()

    for base in (data, reports):
        left = {p.name for p in (base / "archive").iterdir()}
        assert left == {day for day, kept in days.items() if kept} | {"keep-me"}
    assert (data / "failed" / "bad.xml").exists()


def test_archive_days_zero_keeps_everything(pims, interlink, make_plugin):
    old = data_dir(interlink) / "archive" / "2000-01-01"
    old.mkdir(parents=True)
    make_plugin(archive_days=0).run_cycle()
    assert old.exists()


# --- settings and --check ---------------------------------------------------------------


def test_settings_come_from_file_then_environment_then_flags(tmp_path, monkeypatch):
    ini = tmp_path / "icp.ini"
    ini.write_text(
        "[icp]\n"
        "password = from-file-%-password\n"
        "work_request_url = https://pims.example/api/ivls/v1/work-requests/\n"
        "results_url = https://pims.example/api/ivls/v1/results\n"
        "unit_id = 1, 2, 3\n"
        f"interlink_root = {tmp_path / 'IL'}\n"
        "results_reports_dir = Elsewhere/Reports\n"
        "auto_send = no\n"
    )
    parser = build_parser()

    settings = load_settings(parser.parse_args(["--config", str(ini)]), environ={})
    assert settings.password == "from-file-%-password"
    assert settings.unit_id == "1,2,3"
    assert settings.results_url == "https://pims.example/api/ivls/v1/results/"
    assert settings.reports_url == "https://pims.example/api/ivls/v1/reports/"
    assert settings.status_url == "https://pims.example/api/ivls/v1/status/"
    assert settings.ack_url(812) == "https://pims.example/api/ivls/v1/work-requests/812/ack/"
    assert settings.requests_dir == tmp_path / "IL" / "Requests"
    assert settings.results_data_dir == tmp_path / "IL" / "Results" / "Data"
    assert settings.results_reports_dir == tmp_path / "IL" / "Elsewhere" / "Reports"
    assert (settings.archive_days, settings.poll_interval, settings.settle_seconds) == (30, 10, 2)
    assert settings.auto_send is False

    env = {"ICP_PASSWORD": "from-environment"}
    assert load_settings(parser.parse_args(["--config", str(ini)]), environ=env).password == (
        "from-environment"
    )
    flags = parser.parse_args(
        ["--config", str(ini), "--password", "from-flag", "--unit-id", "7", "--auto-send"]
    )
    settings = load_settings(flags, environ=env)
    assert (settings.password, settings.unit_id, settings.auto_send) == ("from-flag", "7", True)


def test_example_settings_file_is_valid():
    example = ROOT / "integrations" / "icp_plugin" / "example.ini"
    settings = load_settings(build_parser().parse_args(["--config", str(example)]), environ={})
    assert settings.unit_id == "1"
    assert settings.results_url.endswith("/api/ivls/v1/results/")
    assert settings.archive_days == 30 and settings.auto_send is True


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--unit-id", "1,,2"], "Unit ID must be"),
        (["--results-url", "ftp://x/results/"], "must be a full http"),
        (["--password", ""], "Password is not set"),
    ],
)
def test_unusable_settings_are_explained(flags, message):
    base = [
        "--password=secret-secret",
        "--work-request-url=http://h/api/ivls/v1/work-requests/",
        "--results-url=http://h/api/ivls/v1/results/",
        "--unit-id=1",
    ]
    with pytest.raises(ConfigError, match=message):
        load_settings(build_parser().parse_args(base + flags), environ={})


def test_check_passes_when_all_is_well(pims, interlink):
    lines: list[str] = []
    assert run_check(make_settings(pims, interlink), out=lines.append) == 0
    assert all(line.startswith("OK") for line in lines[:-1])
    assert any("Password accepted for unit(s) 1,2" in line for line in lines)
    assert lines[-1] == "All checks passed."


def test_check_fails_with_advice(pims, interlink):
    shutil.rmtree(interlink / "Results" / "Reports")
    lines: list[str] = []
    settings = make_settings(pims, interlink, password="wrong-password-here")

    assert run_check(settings, out=lines.append) == 1

    failures = [line for line in lines if line.startswith("FAIL")]
    assert any("refused the password for unit(s) 1,2" in line for line in failures)
    assert any("Results reports folder" in line and "does not exist" in line for line in failures)
    assert any(line.startswith("OK") and "Requests folder" in line for line in lines)


def test_check_says_when_the_server_cannot_be_reached(interlink):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pims = FakePims(port=port)
    lines: list[str] = []
    assert run_check(make_settings(pims, interlink), out=lines.append) == 1
    assert any(
        line.startswith("FAIL") and f"Cannot reach http://127.0.0.1:{port}/" in line
        for line in lines
    )


# --- the command line -------------------------------------------------------------------


def test_command_line_once_and_check(pims, interlink, tmp_path):
    ini = tmp_path / "icp.ini"
    ini.write_text(
        "[icp]\n"
        f"work_request_url = {pims.work_request_url}\n"
        f"results_url = {pims.results_url}\n"
        "unit_id = 1, 2\n"
        f"interlink_root = {interlink}\n"
        "settle_seconds = 0.2\n"
    )
    pims.add_work_request(812, "100042")
    result_file(data_dir(interlink), "run.xml")
    env = {**os.environ, "ICP_PASSWORD": PASSWORD}
    command = [sys.executable, "-m", "integrations.icp_plugin", "--config", str(ini)]

    once = subprocess.run(
        [*command, "--once"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert once.returncode == 0, once.stderr
    assert "Delivered work request 812" in once.stderr
    assert pims.acked == [812]
    assert files_in(data_dir(interlink)) == []

    check = subprocess.run(
        [*command, "--check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout
    assert "All checks passed." in check.stdout

    env["ICP_PASSWORD"] = "not-the-password"
    check = subprocess.run(
        [*command, "--check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 1
    assert "FAIL" in check.stdout and "check the Password setting" in check.stdout
