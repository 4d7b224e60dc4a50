"""A person's answer to the promotion approval (Airflow's required action): approving moves
``@champion`` to the version and records who; rejecting leaves the champion and records why."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pixtag.model.promotion.versions import CHALLENGER, CHAMPION, TAG, aliases
from pixtag.model.tracking import connect

if TYPE_CHECKING:
    from pixtag.core.config import Settings

log = logging.getLogger(__name__)


def record_approval(settings: Settings, version: str, approved: bool, user: str, note: str = "") -> dict[str, Any]:
    """A person's answer to the promotion approval (Airflow's required action): approving moves
    ``@champion`` to ``version`` and records who; rejecting leaves the champion and records why."""
    from datetime import UTC, datetime

    name = settings.model_name
    client = connect(settings)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    if approved:
        tags = {"approved_by": user, "approved_at": when, "approval_note": note, "decision": "promoted",
                "was_champion": "true"}
    else:
        tags = {"rejected_by": user, "rejected_at": when, "rejection_reason": note or "(no reason given)",
                "decision": "rejected_by_person"}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, TAG + key, value)
    card = client.get_model_version(name, version).description or ""
    said = (f"**Approved by {user}** ({when}) in Airflow: now `@{CHAMPION}`." if approved else
            f"**Rejected by {user}** ({when}) in Airflow: {tags['rejection_reason']}")
    client.update_model_version(name, version, description=f"{card}\n{said}{' ' + note if approved and note else ''}\n")
    if approved:  # last, as in the gate
        client.set_registered_model_alias(name, CHAMPION, version)
        if aliases(client, name).get(CHALLENGER) == version:
            client.delete_registered_model_alias(name, CHALLENGER)
    verb = f"approved by {user}: now @{CHAMPION}" if approved else f"rejected by {user}: {tags['rejection_reason']}"
    log.info("%s v%s %s", name, version, verb)
    return {"model_name": name, "version": version, "approved": approved, "by": user, "note": note,
            "new_champion": approved, "message": f"{name} v{version} {verb}"}
