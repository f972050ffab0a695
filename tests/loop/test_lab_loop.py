"""The whole lab loop on loopback, each part its own process: web server (gunicorn), Celery
worker, the plug-in and the IVLS simulator sharing an InterLink folder tree."""

import signal
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from billing.models import ConsultationLine, Item
from integrations.ivls.models import InboundResultFile, WorkRequest
from integrations.ivls.services import connection_configure
from labs.models import LabRun, Referral, ResultDocument
from labs.services import referral_create
from tests.conftest import ROOT, free_port, process_env, wait_for
from tests.factories import (
    ConsultationFactory,
    DepartmentFactory,
    PatientFactory,
    WeightFactory,
    department_item_list,
    ivls_item,
    lab_item,
)

PASSWORD = "loop-test-password-1"
pytestmark = [pytest.mark.worker]


class Processes:
    def __init__(self):
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, cmd: list[str], env: dict, log_dir: Path) -> None:
        log = (log_dir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(  # noqa: S603
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self, name: str, sig=signal.SIGTERM) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


@pytest.fixture
def processes():
    procs = Processes()
    yield procs
    procs.stop_all()


def _wait_http(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_orders_come_back_as_results_through_plugin_and_simulator(
    celery_worker_process, processes, tmp_path
):
    d1 = DepartmentFactory(time_zone="Europe/Helsinki")
    d2 = DepartmentFactory(time_zone="Europe/Helsinki", item_list=department_item_list(d1))
    for department in (d1, d2):
        connection_configure(department=department, enabled=True, password=PASSWORD)
    chem = ivls_item(d1, "CHEM10", yields=["ALB", "ALKP", "ALT", "BUN", "CREA", "GLU", "TP"])
    sdma = ivls_item(d1, "SDMA", price="39.00")
    snap = ivls_item(d1, "SNAP4DX", yields=["HW", "Ehrlichia", "Lyme", "Anaplasma"])
    # GLU is in the item list with a price: the CHEM10 line yields it, so it is charged zero.
    lab_item(d1, "GLU", price="12.00", name="Glucose")
    patients = [PatientFactory(name=f"Patient {i}") for i in range(4)]
    for patient in patients:
        WeightFactory(patient=patient, value=Decimal("21.5"))

    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    root = tmp_path / "interlink"
    for folder in ("Requests", "Results/Data", "Results/Reports"):
        (root / folder).mkdir(parents=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = process_env()
    processes.start(
        "web",
        [sys.executable, "-m", "gunicorn", "pims.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"],
        env,
        log_dir,
    )
    wait_for(lambda: _wait_http(port), timeout=30)
    simulator = [sys.executable, "-m", "integrations.ivls_simulator", "--root", str(root),
                 "--delay", "0.5", "--seed", "7", "--poll", "0.2"]  # fmt: skip
    plugin = [
        sys.executable, "-m", "integrations.icp_plugin",
        "--unit-id", f"{d1.pk}, {d2.pk}", "--password", PASSWORD,
        "--work-request-url", f"{base}/api/ivls/v1/work-requests/",
        "--results-url", f"{base}/api/ivls/v1/results/",
        "--interlink-root", str(root), "--poll-interval", "0.5", "--settle-seconds", "0.3",
    ]  # fmt: skip
    processes.start("simulator", simulator, env, log_dir)
    processes.start("plugin", plugin, env, log_dir)

    orders = [
        (patients[0], d1, [chem, sdma]),
        (patients[1], d2, [snap]),
        (patients[2], d1, [chem]),
    ]
    referrals = []
    for patient, department, items in orders:
        consultation = ConsultationFactory(patient=patient, department=department)
        referrals.append(referral_create(consultation=consultation, items=items))

    # Once the first results are back, kill the plug-in hard and start it again while the
    # last order is still on its way.
    wait_for(lambda: Referral.objects.filter(status="complete").exists(), timeout=60)
    processes.stop("plugin", signal.SIGKILL)
    late = referral_create(
        consultation=ConsultationFactory(patient=patients[3], department=d2), items=[sdma]
    )
    referrals.append(late)
    processes.start("plugin", plugin, env, log_dir)

    def all_complete():
        return Referral.objects.filter(pk__in=[r.pk for r in referrals], status="complete").count()

    try:
        wait_for(lambda: all_complete() == len(referrals), timeout=90)
        wait_for(
            lambda: ResultDocument.objects.filter(referral__in=referrals).count() >= 4, timeout=30
        )
    except BaseException:
        for log in sorted(log_dir.iterdir()):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}")
        raise

    # Every work request was delivered exactly once as far as the server is concerned.
    assert not WorkRequest.objects.filter(delivered_at__isnull=True).exists()
    # One run per instrument per referral: nothing duplicated by the restart.
    chem_ref, snap_ref, chem_only, sdma_ref = referrals
    assert LabRun.objects.filter(referral=chem_ref).count() == 1  # Catalyst: CHEM10 + SDMA
    assert LabRun.objects.filter(referral=snap_ref).count() == 1
    assert LabRun.objects.filter(referral=sdma_ref).count() == 1
    assert not InboundResultFile.objects.exclude(status__in=["matched", "duplicate"]).exists()
    # Results landed on the right lines, with units and flags where the range allows.
    glu = chem_ref.results.get(code="GLU", is_current=True)
    assert glu.unit == "mg/dL" and glu.value_number is not None and glu.flag in {
        "N", "L", "H", "LL", "HH"}  # fmt: skip
    assert snap_ref.results.get(code="HW").value_text in {"Positive", "Negative"}
    assert snap_ref.results.get(code="HW").flag == ""
    # An analyte with an item is added at zero (its ordering line pays); unknown ones are
    # created as zero-price lab items.
    glu_charge = ConsultationLine.objects.get(consultation=chem_ref.consultation, item__code="GLU")
    assert glu_charge.unit_price == Decimal("0.00")
    alt = Item.objects.get(item_list=department_item_list(d1), code="ALT")
    assert alt.auto_created and alt.price == Decimal("0.00")
    # Nothing was lost or left behind in InterLink's folders.
    assert not list((root / "Results" / "Data").glob("*.xml"))
    assert not list((root / "Results" / "Reports").glob("*.pdf"))
    archived = list((root / "Results" / "Data" / "archive").rglob("*.xml"))
    assert len(archived) == InboundResultFile.objects.count()
