"""The README's "Reliability" table quotes what this suite actually tries (tests/reliability/cases.py)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO
from tests.reliability import cases
from tests.reliability.test_hostile_media import SSRF_URLS, media_cases
from tests.reliability.test_secrets import PLACES, TOKEN, forms


def figures(photos: Path) -> dict[str, list[str]]:
    """Row label -> phrases (with counts) the row must contain."""
    kills = cases.SCRAPE_KILLS + cases.FEATURE_KILLS + cases.TRAIN_KILLS
    return {
        "Faults from the instance": [
            f"{len(cases.FAULT_KINDS)} fault kinds", f"{len(cases.ABSORBED)} runs with faults at rates retries absorb",
            f"{len(cases.PERSISTENT_API) + len(cases.PERSISTENT_MEDIA)} with a fault always on",
            f"1 + {cases.PERSISTENT_RETRIES} tries"],
        "Hostile media and SSRF": [
            f"{len(media_cases(photos))} hostile media", f"{len(SSRF_URLS)} forbidden URLs",
            f"{len(cases.DNS_TRAPS)} DNS names"],
        "Secrets": [f"{len(forms(TOKEN))} encodings", f"{len(PLACES)} places"],
        "Crash safety": [
            f"{kills} SIGKILLs", f"{kills} resumes", f"scrape {cases.SCRAPE_KILLS}",
            f"feature extraction {cases.FEATURE_KILLS}", f"training and gate tasks {cases.TRAIN_KILLS}"],
        "Bad settings and Params": [
            f"{len(cases.BAD_ENV)} bad environment values", f"{len(cases.BAD_YAML)} bad YAML files",
            f"{len(cases.BAD_PARAMS)} bad Params", f"{len(cases.BAD_FOR_SETTINGS)} Params"],
        "The bot": [f"{len(cases.BOT_FAULTS)} instance faults", f"{cases.BOT_KILLS} SIGKILLs",
                    f"{len(cases.BOT_HOSTILE)} hostile mentions"],
        "Privacy": [f"{len(cases.PLANTED_DEMO)} kinds of non-consenting posts",
                    f"{len(cases.PLANTED_SCRIPTED)} kinds only a misbehaving server sends"],
    }


def test_the_readme_quotes_the_suite(photos: Path) -> None:
    text = (REPO / "README.md").read_text()
    section = text.split("## Reliability", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| ")}
    for label, phrases in figures(photos).items():
        assert label in rows, f"README Reliability table has no row {label!r}"
        for phrase in phrases:
            assert phrase in rows[label], f"row {label!r} should say {phrase!r}"
