"""InterLink XML codec: result files in, work request files out. No database needed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from decimal import Decimal

import defusedxml.ElementTree as SafeET
import pytest

from integrations.ivls.interlink import (
    GENDERS,
    SPECIES,
    InterLinkError,
    ParsedMessage,
    WorkRequestData,
    parse_result,
    parse_work_request,
    render_work_request,
)
from labs.rundata import RUN_NEW, RUN_REPLACE, RUN_RESEND, RUN_RESTORE
from tests.conftest import OWN_INTERLINK, SHARED_INTERLINK

# Real, de-identified InterLink files kept beside the checkout, and this project's own.
SHARED_FIXTURES = SHARED_INTERLINK
OWN_FIXTURES = OWN_INTERLINK

MU = "\u03bc"
MICRO_SIGN = "\u00b5"

LONG_NOTE = (
    "Platelet clumps were detected; the automated platelet count may be falsely low.\n"
    "Review a blood film before acting on it.   Yeast forms are present in the urine\n"
    "sediment: consider a culture if clinical signs fit. This note is long on purpose,\n"
    "so that nothing truncates interpretive text; it ends with a word, not a space: end."
)


@pytest.fixture
def real_file(shared_interlink):
    def read(name: str) -> bytes:
        return (shared_interlink / name).read_bytes()

    return read


def own_file(name: str) -> bytes:
    return (OWN_FIXTURES / name).read_bytes()


def result_document(
    inner: str = "",
    *,
    sub_type: str = "New_Results",
    result_attrs: str = 'requisition_number="1" diagnostic_set_id="D1" instrument="SNAP"',
    declaration: str = '<?xml version="1.0" encoding="UTF-8"?>',
) -> str:
    return (
        f"{declaration}\n"
        '<!DOCTYPE message SYSTEM "result_20.dtd">\n'
        f'<message message_id="9" message_dt="01/01/2026 10:00:00 AM" message_type="Result" '
        f'message_sub_type="{sub_type}" message_dtd_version_number="2.0">'
        f"<header/><body><result {result_attrs}>{inner}</result></body></message>"
    )


def one_assay(value: str, ranges: str = "") -> str:
    return (
        '<results><assay_result assay_name="X">'
        f"<result_value>{value}</result_value>"
        f"<assay_reference_range>{ranges}</assay_reference_range>"
        "</assay_result></results>"
    )


def assays_by_code(message: ParsedMessage):
    assert message.run is not None
    return {assay.code: assay for assay in message.run.assays}


# --- the real files -------------------------------------------------------------------


def test_catalyst_one_reads_run_identity_people_and_time(real_file):
    message = parse_result(real_file("catalyst-one.xml"))

    assert (message.message_type, message.message_sub_type, message.message_id) == (
        "Result",
        "New_Results",
        "1",
    )
    run = message.run
    assert run.run_id == "20110909_103647_92"
    assert run.instrument == "Catalyst_One"
    assert run.kind == RUN_NEW
    assert run.requisition_number == "1"
    assert run.run_time_text == "09/09/2011 10:36:47.880 AM"
    assert run.run_time == dt.datetime(2011, 9, 9, 10, 36, 47, 880000)  # noqa: DTZ001
    assert (run.client_id, run.client_first_name, run.client_last_name) == (
        "000001",
        "王小明",
        "OO",
    )
    assert (run.patient_id, run.patient_name, run.breed) == ("000001", "娜娜", "比熊")
    assert (run.species, run.gender) == ("CANINE", "MALE_INTACT")
    assert (run.doctor_first_name, run.doctor_last_name) == ("doctor", "vet")
    assert run.notes == ()


def test_catalyst_one_assays_with_ranges(real_file):
    run = parse_result(real_file("catalyst-one.xml")).run

    assert [a.code for a in run.assays] == ["GLU", "BUN", "CREA", "SDMA"]
    crea = run.assays[2]
    assert crea.value_text == "1.7"
    assert crea.value_number == Decimal("1.7")
    assert crea.unit == "mg/dL"
    assert (crea.critical_low, crea.low, crea.high, crea.critical_high) == (
        Decimal("0.0"),
        Decimal("0.5"),
        Decimal("1.8"),
        Decimal("15.0"),
    )
    assert crea.qualifier == "="


def test_catalyst_one_ignores_stray_text_inside_assay_result(real_file):
    # The file has a bare "41" between </assay_reference_range> and <result_qualifier>.
    raw = real_file("catalyst-one.xml")
    assert b"</assay_reference_range>\n41\n<result_qualifier>" in raw

    glu = parse_result(raw).run.assays[0]

    assert glu.code == "GLU"
    assert glu.value_text == "117"
    assert glu.value_number == Decimal("117")
    assert (glu.critical_low, glu.low, glu.high, glu.critical_high) == (
        Decimal("15"),
        Decimal("74"),
        Decimal("143"),
        Decimal("700"),
    )
    assert glu.qualifier == "="


def test_catalyst_one_micro_sign_is_stored_as_greek_mu(real_file):
    raw = real_file("catalyst-one.xml")
    assert MICRO_SIGN.encode() in raw

    sdma = assays_by_code(parse_result(raw))["SDMA"]

    assert sdma.unit == f"{MU}g/dL"
    assert MICRO_SIGN not in sdma.unit
    assert sdma.value_number == Decimal("9")


def test_snap_triple_run_started_on_ivls_has_empty_ids(real_file):
    run = parse_result(real_file("snap-triple.xml")).run

    assert run.run_id == "20240516_150509_15933"
    assert run.instrument == "SNAP"
    assert run.requisition_number == ""
    assert run.client_id == ""
    assert run.patient_id == ""
    assert (run.client_first_name, run.client_last_name) == ("", "")
    assert run.patient_name == "test2"
    assert run.species == "FELINE"
    assert run.gender == ""  # the attribute is missing
    assert run.breed == ""  # the element is missing
    assert run.run_time == dt.datetime(2024, 5, 16, 15, 6, 49, 618000)  # noqa: DTZ001


def test_snap_triple_text_values_keep_text_and_have_no_number(real_file):
    run = parse_result(real_file("snap-triple.xml")).run

    assert [(a.code, a.value_text) for a in run.assays] == [
        ("FeLV", "Positive"),
        ("FIV", "Negative"),
        ("HW", "Positive"),
    ]
    for assay in run.assays:
        assert assay.value_number is None
        assert assay.unit == ""
        assert (assay.low, assay.high, assay.critical_low, assay.critical_high) == (
            None,
            None,
            None,
            None,
        )
        assert assay.qualifier == "="


# --- this project's synthetic files ----------------------------------------------------


def test_big5_file_is_decoded_by_its_declaration():
    raw = own_file("big5-chemistry.xml")
    # Make sure the fixture really is Big5 bytes, not UTF-8.
    assert b'encoding="Big5"' in raw
    assert "小白".encode("big5") in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")

    message = parse_result(raw)

    run = message.run
    assert (run.client_first_name, run.client_last_name) == ("美玲", "陳")
    assert (run.patient_name, run.breed) == ("小白", "米克斯")
    assert (run.doctor_first_name, run.doctor_last_name) == ("志明", "林")
    assert run.notes == ("樣本輕微溶血。",)
    assert run.requisition_number == "100077"
    assert (run.run_id, run.instrument) == ("20260302_091455_07", "Catalyst_Dx")
    t4 = assays_by_code(message)["T4"]
    assert t4.unit == f"{MU}g/dL"
    assert (t4.low, t4.high, t4.critical_low, t4.critical_high) == (
        Decimal("0.8"),
        Decimal("4.7"),
        None,
        None,
    )


def test_replace_previous_results_is_a_replace_run():
    message = parse_result(own_file("replace-previous-results.xml"))

    assert message.message_sub_type == "Replace_Previous_Results"
    run = message.run
    assert run.kind == RUN_REPLACE
    assert (run.run_id, run.instrument) == ("20261122_140311_17", "ProCyte_Dx")
    assert run.client_last_name == "Meikäläinen"
    # Without milliseconds, and 12 AM is just after midnight.
    assert run.run_time_text == "11/22/2026 12:05:10 AM"
    assert run.run_time == dt.datetime(2026, 11, 22, 0, 5, 10)  # noqa: DTZ001
    wbc = assays_by_code(message)["WBC"]
    assert wbc.value_text == "+12.40"
    assert wbc.value_number == Decimal("12.40")
    assert wbc.unit == f"K/{MU}L"


def test_text_values_are_kept_exactly_without_a_number():
    assays = assays_by_code(parse_result(own_file("text-values.xml")))

    assert assays["YEAST"].value_text == "1+ Few yeast seen."
    assert assays["PLT_EST"].value_text == "100-150 K/uL (Mildly decreased)"
    assert assays["BACc_LEFT"].value_text == "--.-- Result Suppressed. See below."
    for code in ("YEAST", "PLT_EST", "BACc_LEFT"):
        assert assays[code].value_number is None


def test_empty_or_missing_range_elements_are_none():
    assays = assays_by_code(parse_result(own_file("text-values.xml")))

    yeast, plt = assays["YEAST"], assays["PLT_EST"]
    assert (yeast.low, yeast.high, yeast.critical_low, yeast.critical_high) == (None,) * 4
    # <low>n/a</low> and self-closing elements
    assert (plt.low, plt.high, plt.critical_low, plt.critical_high) == (None,) * 4
    assert assays["BACc_LEFT"].low is None
    assert assays["fPL"].high is None  # no assay_reference_range at all
    assert assays["UPC"].high == Decimal("0.5")
    assert assays["UPC"].low is None


def test_qualifiers_are_read_as_written():
    assays = assays_by_code(parse_result(own_file("text-values.xml")))

    assert assays["UPC"].qualifier == "<"
    assert assays["fPL"].qualifier == ">"
    assert assays["PLT_EST"].qualifier == "-"
    assert assays["YEAST"].qualifier == "="
    assert assays["UPC"].value_number == Decimal("0.1")


def test_stray_text_between_elements_is_ignored():
    upc = assays_by_code(parse_result(own_file("text-values.xml")))["UPC"]

    assert upc.value_text == "0.1"
    assert upc.qualifier == "<"
    assert "stray" not in upc.value_text + upc.qualifier + upc.unit


def test_long_instrument_note_is_kept_exactly_and_blank_notes_dropped():
    run = parse_result(own_file("text-values.xml")).run

    assert run.notes == (LONG_NOTE, "Second note.")


def test_text_fields_are_stripped_and_escapes_resolved():
    message = parse_result(own_file("text-values.xml"))

    run = message.run
    assert run.kind == RUN_RESEND
    assert run.client_first_name == "Ann-Marie"
    assert run.client_last_name == "O'Brien & Sons"
    assert run.instrument == "IDEXX_inVue_Dx"
    assert [a.code for a in run.assays] == ["YEAST", "PLT_EST", "BACc_LEFT", "UPC", "fPL"]
    assert assays_by_code(message)["fPL"].unit == f"{MU}g/L"


def test_unparseable_run_time_keeps_text_and_gives_none():
    run = parse_result(own_file("text-values.xml")).run

    assert run.run_time_text == "not a time"
    assert run.run_time is None


def test_acknowledgement_is_not_a_run():
    message = parse_result(own_file("acknowledgement.xml"))

    assert message == ParsedMessage(
        message_type="Acknowledgement",
        message_sub_type="Work_Request_Received",
        message_id="20",
        run=None,
    )


# --- inline variations -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sub_type", "kind"),
    [
        ("New_Results", RUN_NEW),
        ("Replace_Previous_Results", RUN_REPLACE),
        ("Restore_Previous_Results", RUN_RESTORE),
        ("Resend_of_Previous_Results", RUN_RESEND),
        ("Something_Newer", RUN_NEW),
        ("", RUN_NEW),
    ],
)
def test_sub_type_maps_to_run_kind(sub_type, kind):
    message = parse_result(result_document(sub_type=sub_type).encode())

    assert message.run.kind == kind
    assert message.message_sub_type == sub_type


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("117", Decimal("117")),
        ("  1.7 ", Decimal("1.7")),
        ("-0.5", Decimal("-0.5")),
        ("+3.", Decimal("3")),
        (".25", Decimal("0.25")),
        ("0", Decimal("0")),
        ("1+ Few yeast seen.", None),
        ("100-150 K/uL (Mildly decreased)", None),
        ("--.-- Result Suppressed. See below.", None),
        ("--.--", None),
        ("Positive", None),
        ("1e3", None),
        ("NaN", None),
        ("Infinity", None),
        ("1,5", None),
        ("١٢", None),  # Arabic-Indic digits are not an analyser number
        ("", None),
    ],
)
def test_value_number_only_for_plain_numbers(text, number):
    assay = parse_result(result_document(one_assay(text)).encode()).run.assays[0]

    assert assay.value_text == text.strip()
    assert assay.value_number == number
    if number is not None:
        assert isinstance(assay.value_number, Decimal)


def test_range_bounds_that_are_text_are_none():
    ranges = "<low>&lt;5</low><high> 12.5 </high><critical_low>-</critical_low>"
    assay = parse_result(result_document(one_assay("7", ranges)).encode()).run.assays[0]

    assert (assay.low, assay.high, assay.critical_low, assay.critical_high) == (
        None,
        Decimal("12.5"),
        None,
        None,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09/09/2011 10:36:47.880 AM", dt.datetime(2011, 9, 9, 10, 36, 47, 880000)),  # noqa: DTZ001
        ("05/16/2024 03:06:49.618 PM", dt.datetime(2024, 5, 16, 15, 6, 49, 618000)),  # noqa: DTZ001
        ("12/31/2025 12:00:00 PM", dt.datetime(2025, 12, 31, 12, 0, 0)),  # noqa: DTZ001
        ("12/31/2025 12:59:59 AM", dt.datetime(2025, 12, 31, 0, 59, 59)),  # noqa: DTZ001
        ("1/2/2025 1:02:03 pm", dt.datetime(2025, 1, 2, 13, 2, 3)),  # noqa: DTZ001
        ("02/30/2025 01:00:00 PM", None),
        ("13/01/2025 01:00:00 PM", None),
        ("01/01/2025 13:00:00 PM", None),
        ("2025-01-01T10:00:00", None),
        ("", None),
    ],
)
def test_run_time_formats(text, expected):
    run = parse_result(result_document(f"<run_dt>{text}</run_dt>").encode()).run

    assert run.run_time == expected
    assert run.run_time_text == text


def test_missing_elements_give_empty_strings():
    run = parse_result(result_document().encode()).run

    assert run.assays == ()
    assert run.notes == ()
    assert run.run_time is None
    assert (run.client_id, run.patient_name, run.doctor_last_name, run.run_time_text) == (
        "",
        "",
        "",
        "",
    )


def test_assay_code_keeps_case_and_accepts_any_code():
    inner = (
        '<results><assay_result assay_name="BACc_LEFT"><result_value>1</result_value>'
        '</assay_result><assay_result assay_name="bacc_left"><result_value>2</result_value>'
        "</assay_result></results>"
    )
    run = parse_result(result_document(inner).encode()).run

    assert [a.code for a in run.assays] == ["BACc_LEFT", "bacc_left"]


@pytest.mark.parametrize(
    ("codec", "declared"),
    [
        ("big5", "big5"),
        ("cp950", "cp950"),
        ("gbk", "GBK"),
        ("shift_jis", "Shift_JIS"),
        ("cp1252", "windows-1252"),
        ("iso8859-15", "ISO-8859-15"),
    ],
)
def test_legacy_encodings_are_decoded(codec, declared):
    name = {"big5": "王小明", "cp950": "王小明", "gbk": "王小明", "shift_jis": "山田花子"}.get(
        codec, "Müller Österberg"
    )
    document = result_document(
        f'<client client_id="1"><first_name>{name}</first_name></client>',
        declaration=f'<?xml version="1.0" encoding="{declared}"?>',
    )

    run = parse_result(document.encode(codec)).run

    assert run.client_first_name == name


def test_windows_1252_micro_sign_becomes_greek_mu():
    inner = (
        '<results><assay_result assay_name="T4"><result_value_uom_cd>\xb5g/dL'
        "</result_value_uom_cd><result_value>2.1</result_value></assay_result></results>"
    )
    raw = result_document(
        inner, declaration="<?xml version='1.0' encoding='windows-1252'?>"
    ).encode("cp1252")
    assert b"\xb5g/dL" in raw

    assert parse_result(raw).run.assays[0].unit == f"{MU}g/dL"


def test_big5_label_with_windows_cp950_bytes_still_decodes():
    # The euro sign exists only in Microsoft's code page 950, which Windows writes
    # under the "Big5" label.
    document = result_document(
        "<instrument_notes><instrument_note>費用 €12</instrument_note></instrument_notes>",
        declaration='<?xml version="1.0" encoding="Big5"?>',
    )
    raw = document.encode("cp950")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("big5")

    assert parse_result(raw).run.notes == ("費用 €12",)


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_byte_order_mark_is_honoured(codec):
    document = result_document(
        '<client client_id="1"><first_name>Äiti 王</first_name></client>',
        declaration=f'<?xml version="1.0" encoding="{codec.removesuffix("-sig").upper()}"?>',
    )
    raw = document.encode(codec)
    if codec == "utf-16-be":
        raw = b"\xfe\xff" + raw

    assert parse_result(raw).run.client_first_name == "Äiti 王"


def test_utf16_label_on_utf8_bytes_is_read_as_utf8():
    document = result_document(
        '<client client_id="1"><first_name>Jääskeläinen</first_name></client>',
        declaration='<?xml version="1.0" encoding="utf-16"?>',
    )

    assert parse_result(document.encode("utf-8")).run.client_first_name == "Jääskeläinen"


def test_no_declaration_means_utf8():
    raw = (
        '<message message_type="Result"><body><result diagnostic_set_id="D" instrument="I">'
        "<client><first_name>Jääskeläinen</first_name></client></result></body></message>"
    ).encode()

    assert parse_result(raw).run.client_first_name == "Jääskeläinen"


# --- files that must be refused -------------------------------------------------------------


def refused(content: bytes) -> str:
    with pytest.raises(InterLinkError) as caught:
        parse_result(content)
    return str(caught.value)


def test_interlink_error_is_a_value_error():
    assert issubclass(InterLinkError, ValueError)


@pytest.mark.parametrize(
    "content",
    [b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", b"PK\x03\x04\x14\x00\x06\x00", b"hello, world"],
)
def test_garbage_bytes_are_not_xml(content):
    assert "not XML" in refused(content)


def test_empty_file_is_refused():
    assert "empty" in refused(b"  \n")


def test_truncated_file_is_not_well_formed_and_names_the_line():
    raw = result_document(one_assay("117")).encode()
    message = refused(raw[: len(raw) // 2 + 7])

    assert "not well-formed XML" in message
    assert "line" in message


def test_real_file_cut_short_is_refused(real_file):
    raw = real_file("catalyst-one.xml")

    assert "not well-formed XML" in refused(raw[:1000])


def test_mismatched_tags_are_refused():
    message = refused(b'<?xml version="1.0"?>\n<message>\n<body></message>')

    assert "mismatched tag" in message
    assert "line 3" in message


def test_wrong_root_is_refused():
    message = refused(b'<?xml version="1.0"?><html><body>Hello</body></html>')

    assert "<html>" in message
    assert "not an InterLink message" in message


def test_result_message_without_result_element_is_refused():
    raw = b'<message message_type="Result" message_sub_type="New_Results"><body/></message>'

    assert "no <result> element" in refused(raw)


@pytest.mark.parametrize(
    ("attrs", "missing"),
    [
        ('diagnostic_set_id="" instrument="SNAP"', "diagnostic_set_id"),
        ('instrument="SNAP"', "diagnostic_set_id"),
        ('diagnostic_set_id="D1"', "instrument"),
        ('diagnostic_set_id="D1" instrument="  "', "instrument"),
    ],
)
def test_result_without_run_identity_is_refused(attrs, missing):
    message = refused(result_document(result_attrs=attrs).encode())

    assert f"no {missing}" in message


def test_assay_without_name_is_refused():
    inner = "<results><assay_result><result_value>1</result_value></assay_result></results>"

    assert "no assay_name" in refused(result_document(inner).encode())


def test_unknown_encoding_is_refused():
    raw = result_document(declaration='<?xml version="1.0" encoding="klingon-8"?>').encode()

    assert "klingon-8" in refused(raw)


def test_non_text_codec_is_refused():
    raw = result_document(declaration='<?xml version="1.0" encoding="base64"?>').encode()

    assert "'base64'" in refused(raw)


def test_bytes_invalid_for_declared_encoding_are_refused():
    raw = result_document("<run_dt>\xe9</run_dt>").encode("latin-1")
    message = refused(raw)

    assert "not valid UTF-8" in message
    assert "names no other encoding" not in message
    assert "b'\\xe9" in message


def test_undeclared_non_utf8_bytes_are_refused():
    raw = b'<message message_type="Result"><body>\xe9</body></message>'

    assert "not valid UTF-8 (its first line names no other encoding)" in refused(raw)


def test_bytes_invalid_for_big5_are_refused():
    raw = result_document(declaration='<?xml version="1.0" encoding="Big5"?>').encode()
    raw = raw.replace(b"<header/>", b"<header>\xff\xff</header>")

    assert "not valid Big5" in refused(raw)


def test_billion_laughs_is_refused_quickly():
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    raw = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE message [<!ENTITY lol0 "lol">{entities}]>\n'
        '<message message_type="Result"><body><result diagnostic_set_id="&lol9;" '
        'instrument="SNAP"/></body></message>'
    ).encode()
    started = time.monotonic()

    message = refused(raw)

    assert time.monotonic() - started < 2
    assert "entities" in message


def test_external_entity_is_refused_and_not_read():
    raw = (
        b'<?xml version="1.0"?>\n'
        b'<!DOCTYPE message [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n'
        b'<message message_type="Result"><body><result diagnostic_set_id="D" instrument="I">'
        b"<client><first_name>&secret;</first_name></client></result></body></message>"
    )

    message = refused(raw)

    assert "entities" in message
    assert "root:" not in message


def test_external_parameter_entity_is_refused():
    raw = (
        b'<?xml version="1.0"?>\n'
        b'<!DOCTYPE message [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>\n'
        b'<message message_type="Result"/>'
    )

    assert "entities" in refused(raw)


def test_undefined_entity_is_not_well_formed():
    raw = result_document("<run_dt>&nbsp;</run_dt>").encode()

    assert "undefined entity" in refused(raw)


# --- work requests ----------------------------------------------------------------------------


def work_request(**changes) -> WorkRequestData:
    values = {
        "message_id": 812,
        "sent_at_local": dt.datetime(2026, 11, 22, 14, 3, 11),  # noqa: DTZ001
        "action": "New",
        "sender_id": "pims-test-instance",
        "requisition_number": "100042",
        "client_id": "311",
        "client_first_name": "Maria",
        "client_last_name": "Virtanen",
        "patient_id": "1207",
        "patient_name": "Rosa",
        "species": "CANINE",
        "gender": "FEMALE_SPAYED",
        "breed": "Labrador Retriever",
        "birth_date": dt.date(2019, 3, 14),
        "weight": Decimal("27.4"),
        "weight_unit": "kg",
        "doctor_first_name": "Anna",
        "doctor_last_name": "Korhonen",
        "service_codes": ("CHEM17", "SDMA"),
    }
    values.update(changes)
    return WorkRequestData(**values)


EXPECTED_WORK_REQUEST = """\
<?xml version="1.0" encoding="UTF-8"?>
<message message_id="812" message_dt="11/22/2026 02:03:11 PM" message_type="Work_Request" \
message_sub_type="New" message_dtd_version_number="2.0">
  <header>
    <from_application_id>pims-test-instance</from_application_id>
    <to_application_id></to_application_id>
  </header>
  <body>
    <work_request requisition_number="100042">
      <client client_id="311">
        <first_name>Maria</first_name>
        <last_name>Virtanen</last_name>
      </client>
      <patient patient_id="1207" patient_species="CANINE" patient_gender="FEMALE_SPAYED">
        <patient_name>Rosa</patient_name>
        <patient_breed>Labrador Retriever</patient_breed>
        <patient_birth_dt>03/14/2019</patient_birth_dt>
        <patient_weight patient_weight_uom="kgs"><weight>27.4</weight></patient_weight>
      </patient>
      <doctor>
        <first_name>Anna</first_name>
        <last_name>Korhonen</last_name>
      </doctor>
      <service_add><service_cd>CHEM17</service_cd></service_add>
      <service_add><service_cd>SDMA</service_cd></service_add>
    </work_request>
  </body>
</message>
"""


def test_work_request_renders_the_contract_example():
    assert render_work_request(work_request()) == EXPECTED_WORK_REQUEST


def test_work_request_round_trips():
    data = work_request()

    assert parse_work_request(render_work_request(data)) == data
    assert parse_work_request(render_work_request(data).encode("utf-8")) == data


@pytest.mark.parametrize(
    "name",
    [
        "Smith & Wesson",
        "<script>alert(1)</script>",
        'Rex "the Wrecker"',
        "O'Connor",
        "]]> & &amp; &lt;",
        "Äijälä-Öhman Åsa",
        "王小明",
        "محمد الأحمد",
        "  spaced  out  ",
        "line one\nline two",
        "🐕 emoji",
    ],
)
def test_work_request_names_round_trip_exactly(name):
    data = work_request(
        client_first_name=name,
        client_last_name=name,
        patient_name=name,
        breed=name,
        doctor_first_name=name,
        doctor_last_name=name,
        requisition_number=f"R-{name}",
        client_id=name,
        patient_id=name,
        sender_id="id&<>\"'",
    )

    xml = render_work_request(data)

    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    SafeET.fromstring(xml.encode("utf-8"))  # well-formed for any XML reader
    assert parse_work_request(xml) == data


def test_work_request_escapes_markup_in_text():
    xml = render_work_request(work_request(client_last_name="A & B <C>"))

    assert "<last_name>A &amp; B &lt;C&gt;</last_name>" in xml


def test_control_characters_are_dropped_so_the_file_stays_readable():
    xml = render_work_request(work_request(patient_name="Ro\x00s\x1ba\x0b"))

    assert parse_work_request(xml).patient_name == "Rosa"


@pytest.mark.parametrize(
    ("weight", "unit", "uom", "text"),
    [
        (Decimal("27.4"), "kg", "kgs", "27.4"),
        (Decimal("60"), "lb", "lbs", "60.0"),
        (Decimal("60.0"), "lb", "lbs", "60.0"),
        (Decimal("4.25"), "kg", "kgs", "4.3"),
        (Decimal("0.04"), "kg", "kgs", "0"),  # rounds to zero: unknown
        (Decimal("1E+2"), "kg", "kgs", "100.0"),
        (None, "kg", "kgs", "0"),
        (Decimal("0"), "lb", "lbs", "0"),
    ],
)
def test_work_request_weight(weight, unit, uom, text):
    xml = render_work_request(work_request(weight=weight, weight_unit=unit))

    assert f'<patient_weight patient_weight_uom="{uom}"><weight>{text}</weight>' in xml
    parsed = parse_work_request(xml)
    assert parsed.weight_unit == unit
    assert parsed.weight == (None if text == "0" else Decimal(text))


def test_work_request_unknown_birth_date_is_an_empty_element():
    data = work_request(birth_date=None, weight=None)
    xml = render_work_request(data)

    assert "<patient_birth_dt></patient_birth_dt>" in xml
    assert parse_work_request(xml) == data


@pytest.mark.parametrize(
    ("sent_at", "text"),
    [
        (dt.datetime(2026, 1, 2, 0, 5, 0), "01/02/2026 12:05:00 AM"),  # noqa: DTZ001
        (dt.datetime(2026, 1, 2, 12, 30, 9), "01/02/2026 12:30:09 PM"),  # noqa: DTZ001
        (dt.datetime(2026, 12, 31, 23, 59, 59), "12/31/2026 11:59:59 PM"),  # noqa: DTZ001
        (dt.datetime(2026, 7, 4, 9, 8, 7), "07/04/2026 09:08:07 AM"),  # noqa: DTZ001
    ],
)
def test_work_request_message_time(sent_at, text):
    xml = render_work_request(work_request(sent_at_local=sent_at))

    assert f'message_dt="{text}"' in xml
    assert parse_work_request(xml).sent_at_local == sent_at


def test_cancel_work_request_round_trips():
    data = work_request(action="Cancel", service_codes=())
    xml = render_work_request(data)

    assert 'message_sub_type="Cancel"' in xml
    assert "service_add" not in xml
    assert parse_work_request(xml) == data


def test_every_species_and_gender_round_trips():
    for species in SPECIES:
        for gender in GENDERS:
            data = work_request(species=species, gender=gender)
            assert parse_work_request(render_work_request(data)) == data


def test_species_and_genders_are_the_interlink_lists():
    assert SPECIES == (
        "CANINE",
        "FELINE",
        "EQUINE",
        "BOVINE",
        "OVINE",
        "CAPRINE",
        "PORCINE",
        "AVIAN",
        "LAGOMORPH",
        "FERRET",
        "RODENT",
        "REPTILE",
        "OTHER",
    )
    assert GENDERS == (
        "MALE_INTACT",
        "MALE_NEUTERED",
        "FEMALE_INTACT",
        "FEMALE_SPAYED",
        "UNKNOWN",
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"species": "DOG"},
        {"species": "canine"},
        {"gender": "F"},
        {"action": "Delete"},
        {"weight_unit": "kgs"},
        {"sent_at_local": dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC)},
    ],
)
def test_work_request_data_refuses_values_interlink_would_not_take(changes):
    with pytest.raises(ValueError):
        work_request(**changes)


def test_work_request_data_is_frozen_and_codes_are_a_tuple():
    data = work_request(service_codes=["CHEM17"])

    assert data.service_codes == ("CHEM17",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.action = "Cancel"


def test_parse_work_request_refuses_a_result_file():
    with pytest.raises(InterLinkError, match="not a Work_Request"):
        parse_work_request(own_file("replace-previous-results.xml"))


def test_parse_work_request_refuses_bad_species():
    xml = render_work_request(work_request()).replace('"CANINE"', '"DOG"')

    with pytest.raises(InterLinkError, match="species"):
        parse_work_request(xml)
