"""The InterLink Cloud Plug-in: carries files between IDEXX InterLink and the PIMS.

Runs on the clinic's InterLink PC: ``python -m integrations.icp_plugin``.
Standard library only (plus defusedxml), so it runs on a bare Python install.
"""

__version__ = "1.0"
