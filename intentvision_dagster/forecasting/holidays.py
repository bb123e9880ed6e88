"""Per-tenant holiday calendars for Prophet: the optional ``holidays_country`` key of ``tenants.yaml``."""

from __future__ import annotations

from pathlib import Path

import yaml


def load_tenant_holidays(path: Path) -> dict[str, str]:
    """{tenant: country code} for tenants that set ``holidays_country`` (e.g. ``US``, ``DE``).

    The code must be one the ``holidays`` package knows (Prophet's ``add_country_holidays``); a wrong one
    is refused with the file, tenant and value.
    """
    import holidays

    document = yaml.safe_load(Path(path).read_text()) or {}
    tenants = document.get("tenants") or {}
    known = holidays.list_supported_countries()
    calendars = {}
    for tenant, entry in tenants.items():
        country = (entry or {}).get("holidays_country")
        if country is None:
            continue
        if str(country) not in known:
            raise ValueError(
                f"{Path(path).name}: tenant {tenant!r}: field 'holidays_country' is {country!r}, "
                "expected a country code such as US, GB or DE"
            )
        calendars[str(tenant)] = str(country)
    return calendars
