"""Facts about the demo practice that seed_demo and runstack share."""

from pathlib import Path

# The demo practice's shared IVLS password (departments 1 and 2 share one IVLS).
DEMO_IVLS_PASSWORD = "demo-ivls-shared-2026"  # noqa: S105 - published demo secret
DEMO_UNITS = "1,2"
DEMO_USER_PASSWORD = "demo-pass-2026"  # noqa: S105 - published demo secret


def plugin_command(python: str, base_url: str, root: Path) -> list[str]:
    return [
        python,
        "-m",
        "integrations.icp_plugin",
        "--unit-id",
        DEMO_UNITS,
        "--password",
        DEMO_IVLS_PASSWORD,
        "--work-request-url",
        f"{base_url}/api/ivls/v1/work-requests/",
        "--results-url",
        f"{base_url}/api/ivls/v1/results/",
        "--interlink-root",
        str(root),
        "--poll-interval",
        "2",
    ]
