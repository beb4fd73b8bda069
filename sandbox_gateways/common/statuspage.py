"""Atlassian Statuspage v2 `summary.json`, one component per region."""

from __future__ import annotations

from typing import Any

from sandbox_gateways.common.faults import REGIONS, STATUS_PAGE_VALUES, FaultConfig

_INDICATORS = {
    "operational": ("none", "All Systems Operational"),
    "degraded_performance": ("minor", "Partially Degraded Service"),
    "partial_outage": ("major", "Partial System Outage"),
    "major_outage": ("critical", "Major System Outage"),
}


def build_summary(
    provider: str, display_name: str, configs: dict[str, FaultConfig], started_at: str
) -> dict[str, Any]:
    page_id = f"sandbox-{provider}"
    components = []
    worst = 0
    updated_at = started_at
    for position, region in enumerate(REGIONS, start=1):
        config = configs[region]
        worst = max(worst, STATUS_PAGE_VALUES.index(config.status_page))
        updated_at = max(updated_at, config.updated_at)
        components.append(
            {
                "id": f"{page_id}-{region}",
                "name": region.upper(),
                "status": config.status_page,
                "created_at": started_at,
                "updated_at": config.updated_at,
                "position": position,
                "description": f"{display_name} API, {region.upper()} region",
                "showcase": False,
                "start_date": None,
                "group_id": None,
                "page_id": page_id,
                "group": False,
                "only_show_if_degraded": False,
            }
        )
    indicator, description = _INDICATORS[STATUS_PAGE_VALUES[worst]]
    return {
        "page": {
            "id": page_id,
            "name": f"{display_name} (sandbox)",
            "url": "",
            "time_zone": "Etc/UTC",
            "updated_at": updated_at,
        },
        "status": {"indicator": indicator, "description": description},
        "components": components,
        "incidents": [],
        "scheduled_maintenances": [],
    }
