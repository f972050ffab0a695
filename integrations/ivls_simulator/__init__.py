"""A stand-in for IDEXX VetLab Station and InterLink, writing InterLink's files.

``python -m integrations.ivls_simulator --root DIR`` plays the clinic side on
a folder tree; :func:`make_result_xml` builds one result file for tests.
"""

from .interlink import make_pdf, make_result_xml, parse_work_request

__all__ = ["make_pdf", "make_result_xml", "parse_work_request"]
