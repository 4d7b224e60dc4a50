"""``pixtag validate``: check a dataset with Great Expectations before anything trains on it.

The expectation suites are data, in ``expectations/*.json`` (GX's own suite format); values
that depend on the settings are ``{"$PARAMETER": name}`` placeholders filled at run time
(:func:`expectation_parameters`). Two frames are validated, each by its own suite:

``manifest``
    the manifest rows that training would read (exclusions applied) plus facts derived from
    the stored files: each image's decoded mode and size, whether its content is colour
    (:func:`pixtag.data.images.is_grayscale`), any read/decode error, and its nearest near
    duplicate (phash distance ``<= phash_distance``), what is wrong with an image's several
    labels (``labels_problem``: optional column ``labels``, :func:`labels_problems`); ``row_ref``
    (contact-sheet index and path) names the offending rows in reports.
``class_counts``
    one row per class: ``count`` and ``ratio_to_smallest``. "Balanced within ratio" means
    largest/smallest ``<= balance_ratio``, i.e. every ``ratio_to_smallest <= balance_ratio``.
``background``
    the background rows (label :data:`pixtag.core.dataset.BACKGROUND`): at least
    ``min_background`` of them when the scrape collected background (``dataset.json``), and
    none that is also a class image (same bytes or a near duplicate: ``class_overlap``).

GX decides pass/fail; Data Docs are rendered into ``<dataset>/reports/data_docs/`` (or
``docs_dir``; for S3 they are rendered locally and uploaded). Validation only reads the dataset.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixtag.core import dataset, logs
from pixtag.core.config import Settings
from pixtag.core.dataset import BACKGROUND
from pixtag.core.errors import PixtagError
from pixtag.core.storage import Storage, open_storage
from pixtag.data.images import is_grayscale, near_duplicate_pairs
from pixtag.data.review import (
    contact_refs,
    excluded_mask,
    map_stored,
    read_exclusions,
    read_raw_manifest,
)

if TYPE_CHECKING:
    import pandas as pd

# Installed from a wheel: package data pixtag/expectations/ (pyproject's pixtag.expectations); in a
# checkout: expectations/ at the top, beside the package (this module is pixtag/data/validate.py).
_PACKAGED_SUITES = Path(__file__).resolve().parents[1] / "expectations"
SUITE_DIR = _PACKAGED_SUITES if _PACKAGED_SUITES.is_dir() else Path(__file__).resolve().parents[2] / "expectations"
SUITES = ("manifest", "class_counts", "background")
INDEX_COLUMNS = {"manifest": "row_ref", "class_counts": "label", "background": "row_ref"}
DOCS_SITE = "pixtag_data_docs"  # the ephemeral context's own site is "local_site"
log = logging.getLogger(__name__)

DOCS_KEY = "reports/data_docs"
VERDICTS_KEY = "reports/validations"
PHASH_RE = r"[0-9a-f]{16}"
MAX_DETAILS = 5
RESULT_FORMAT = "COMPLETE"  # docs and results list the offending rows (row_ref) too


class SuiteError(PixtagError, ValueError):
    """An expectation suite file is missing or not a valid GX suite."""


class NoClassesError(PixtagError, ValueError):
    """Validation needs the class set and none was given."""


# ------------------------------------------------------------------ report -----------------
@dataclass
class FailedExpectation:
    """One expectation that did not hold, with a few offending values."""

    suite: str
    expectation: str
    description: str
    column: str | None
    unexpected_count: int | None
    details: list[str] = field(default_factory=list)

    def line(self) -> str:
        target = f"({self.column})" if self.column else ""
        count = f": {self.unexpected_count} unexpected" if self.unexpected_count else ""
        return f"{self.suite}: {self.expectation}{target}: {self.description}{count}"


@dataclass
class ValidationReport:
    """JSON-able outcome of :func:`validate` (the DAG puts ``to_dict()`` in XCom)."""

    dataset: str
    success: bool
    rows: int  # rows validated (manifest minus exclusions)
    excluded: int
    classes: dict[str, int]
    evaluated: int
    passed: int
    failed: list[FailedExpectation]
    docs: str | None  # the Data Docs index.html (path or URI)
    cached: bool = False  # the verdict of an earlier validation of exactly these inputs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        failed = [FailedExpectation(**f) for f in data.get("failed", [])]
        return cls(**{**data, "failed": failed})

    def summary(self) -> str:
        """A few readable lines: verdict, class counts, each failure with examples, docs."""
        verdict = "PASSED" if self.success else "FAILED"
        lines = [
            f"{verdict}: {self.dataset}: {self.passed}/{self.evaluated} expectations met "
            f"({self.rows} rows, {self.excluded} excluded)",
            "classes: " + ", ".join(f"{k} {v}" for k, v in self.classes.items()),
        ]
        for failure in self.failed:
            lines.append(f"  x {failure.line()}")
            lines.extend(f"      {d}" for d in failure.details)
        if self.docs:
            lines.append(f"Data Docs: {self.docs}")
        return "\n".join(lines)


# ------------------------------------------------------------------ derived facts ----------
def _image_facts(data: bytes) -> dict[str, Any]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return {"image_mode": image.mode, "image_width": image.width,
                "image_height": image.height, "image_is_color": not is_grayscale(image),
                "image_error": None}


def _error_text(exc: Exception) -> str:
    """Short: the row's reference already names the file."""
    if isinstance(exc, FileNotFoundError):
        return "file does not exist"
    return f"{type(exc).__name__}: {str(exc)[:120]}"


def image_facts(store: Storage, paths: pd.Series) -> pd.DataFrame:
    """Decode every stored image: mode, size, colour content, or the error that stopped it."""
    import pandas as pd

    keys = [p if isinstance(p, str) and p else "" for p in paths.astype("object")]
    facts: list[dict[str, Any]] = [{"image_error": "no path in the manifest"}] * len(keys)
    wanted = [i for i, key in enumerate(keys) if key]
    decoded = map_stored(store, [keys[i] for i in wanted], _image_facts)
    with logs.progress(total=len(wanted), desc="decoding", unit="img") as bar:
        for i, fact in zip(wanted, decoded, strict=True):
            facts[i] = {"image_error": _error_text(fact)} if isinstance(fact, Exception) else fact
            bar.update()
    frame = pd.DataFrame(facts, index=paths.index)
    return frame.reindex(columns=["image_mode", "image_width", "image_height",
                                  "image_is_color", "image_error"]).astype(
        {"image_mode": "string", "image_width": "Int64", "image_height": "Int64",
         "image_is_color": "boolean", "image_error": "string"})


def near_duplicates(frame: pd.DataFrame, refs: pd.Series, distance: int) -> pd.Series:
    """For each row, its closest *other* image within ``distance`` (as ``ref (distance d)``).

    Pairs with the same sha256 are exact duplicates, left to the uniqueness check.
    """
    import pandas as pd

    result = pd.Series(pd.NA, index=frame.index, dtype="string")
    if "phash" not in frame or "sha256" not in frame:
        return result
    phash = frame["phash"].astype("string")
    valid = phash.str.fullmatch(PHASH_RE).fillna(False).astype(bool)
    rows = list(frame.index[valid])
    sha = frame["sha256"]
    best: dict[Any, int] = {}
    for i, j, dist in near_duplicate_pairs(list(phash[valid]), distance):
        a, b = rows[i], rows[j]
        if pd.notna(sha[a]) and sha[a] == sha[b]:
            continue
        if dist < best.get(b, distance + 1):
            best[b] = dist
            result[b] = f"{refs[a]} (distance {dist})"
    return result


def labels_problems(frame: pd.DataFrame, classes: list[str]) -> list[str | None]:
    """Per row, what is wrong with its ``labels`` (None when nothing, or when the manifest has no
    such column): it must hold the row's ``label``, and several labels only classes of the set
    (the background is one label alone)."""
    if dataset.LABELS not in frame or "label" not in frame:
        return [None] * len(frame)
    known = set(classes)
    out: list[str | None] = []
    for label, value in zip(frame["label"], frame[dataset.LABELS], strict=True):
        names = [v for v in str(value).split(dataset.LABEL_SEPARATOR) if v] if isinstance(value, str) else []
        if not names:
            out.append(None)
        elif label not in names:
            out.append(f"label {label} is not among its labels {value}")
        elif len(names) > 1 and not set(names) <= known:
            out.append(f"labels {value}: {', '.join(sorted(set(names) - known))} not a class of the set")
        else:
            out.append(None)
    return out


def class_counts(labels: pd.Series, classes: list[str]) -> pd.DataFrame:
    """label, count and ratio_to_smallest for each class of ``classes`` (in that order)."""
    import pandas as pd

    counts = labels.value_counts().reindex(classes, fill_value=0).astype("int64")
    smallest = int(counts.min()) if len(counts) else 0
    ratio = counts / smallest if smallest > 0 else pd.Series(pd.NA, index=counts.index)
    return pd.DataFrame({"label": classes, "count": counts.to_numpy(),
                         "ratio_to_smallest": ratio.astype("Float64").to_numpy()})


def background_frame(frame: pd.DataFrame, distance: int) -> pd.DataFrame:
    """The background rows, each with ``class_overlap``: the class image it repeats, if any."""
    import pandas as pd

    if "label" not in frame or "sha256" not in frame:
        return pd.DataFrame({"row_ref": pd.Series([], dtype="string"),
                             "class_overlap": pd.Series([], dtype="object")})
    is_bg = (frame["label"] == BACKGROUND).fillna(False).to_numpy()
    overlap: list[str | None] = [None] * len(frame)
    class_sha = dict(zip(frame["sha256"][~is_bg], frame["row_ref"][~is_bg], strict=True))
    for i in range(len(frame)):
        if is_bg[i] and frame["sha256"].iloc[i] in class_sha:
            overlap[i] = f"same bytes as {class_sha[frame['sha256'].iloc[i]]}"
    if "phash" in frame:
        hashes = [h if isinstance(h, str) else "0" * 16 for h in frame["phash"]]
        for a, b, dist in near_duplicate_pairs(hashes, distance):
            if is_bg[a] != is_bg[b]:
                bg, other = (a, b) if is_bg[a] else (b, a)
                overlap[bg] = overlap[bg] or f"near duplicate of {frame['row_ref'].iloc[other]} (distance {dist})"
    out = frame[is_bg][["row_ref"]].copy()
    out["class_overlap"] = [overlap[i] for i in range(len(frame)) if is_bg[i]]
    return out.reset_index(drop=True)


@dataclass
class Frames:
    """What the suites validate, plus counts for the report."""

    manifest: pd.DataFrame
    class_counts: pd.DataFrame
    excluded: int
    background: Any = None


def build_frames(store: Storage, settings: Settings, classes: list[str]) -> Frames:
    """Read the manifest (applying exclusions) and derive the facts the suites check."""
    import pandas as pd

    raw = read_raw_manifest(store)
    refs = contact_refs(raw) if "label" in raw else pd.Series(
        [f"row:{i}" for i in range(len(raw))], index=raw.index, dtype="string")
    if "path" in raw:
        refs = refs + " " + raw["path"].astype("string").fillna("(no path)")
    excluded = excluded_mask(raw, read_exclusions(store))
    frame = raw.assign(row_ref=refs)[~excluded].reset_index(drop=True)
    paths = frame["path"] if "path" in frame else pd.Series([None] * len(frame), dtype="object")
    facts = image_facts(store, paths)
    frame = frame.assign(**{column: facts[column] for column in facts})
    frame = frame.assign(near_duplicate_of=near_duplicates(frame, frame["row_ref"],
                                                           settings.phash_distance),
                         labels_problem=pd.Series(labels_problems(frame, classes), index=frame.index,
                                                  dtype="object"))
    labels = frame["label"] if "label" in frame else pd.Series([], dtype="string")
    return Frames(manifest=frame, class_counts=class_counts(labels, classes),
                  excluded=int(excluded.sum()),
                  background=background_frame(frame, settings.phash_distance))


# ------------------------------------------------------------------ suites -----------------
def _gx() -> Any:
    """Import Great Expectations (~6 s), its INFO chatter silenced (it logs every import)."""
    logging.getLogger("great_expectations").setLevel(
        max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    import great_expectations as gx

    return gx


def expectation_parameters(settings: Settings, classes: list[str],
                           background: int = 0) -> dict[str, Any]:
    """Values for the suites' ``$PARAMETER`` placeholders (``background``: images the scrape
    was asked for; the suite wants at least ``min(min_per_class, background)`` of them)."""
    return {
        "manifest_columns": list(dataset.MANIFEST_COLUMNS),
        "classes": list(classes),
        "labels": [*classes, BACKGROUND],
        "min_background": min(settings.min_per_class, background),
        "image_size": settings.image_size,
        "min_per_class": settings.min_per_class,
        "balance_ratio": settings.balance_ratio,
    }


def load_suite_doc(name: str, suite_dir: Path = SUITE_DIR) -> dict[str, Any]:
    """The JSON suite ``<suite_dir>/<name>.json`` (GX's suite serialisation)."""
    path = Path(suite_dir) / f"{name}.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise SuiteError(f"expectation suite {path} does not exist") from None
    except ValueError as exc:
        raise SuiteError(f"expectation suite {path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("expectations"), list):
        raise SuiteError(f"expectation suite {path} needs a list 'expectations'")
    return doc


def build_suite(doc: dict[str, Any], name: str) -> Any:
    """A GX ExpectationSuite from its JSON; an invalid expectation raises (GX would drop it)."""
    gx = _gx()
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    expectations = []
    for n, config in enumerate(doc["expectations"]):
        try:
            expectations.append(ExpectationConfiguration(**config).to_domain_obj())
        except Exception as exc:  # GX raises several unrelated types here
            kind = config.get("type", "?") if isinstance(config, dict) else config
            raise SuiteError(f"suite {name}, expectation #{n} ({kind}): {exc}") from None
    return gx.ExpectationSuite(name=doc.get("name") or name, expectations=expectations,
                               meta=doc.get("meta"), notes=doc.get("notes"))


def _context(docs_dir: Path) -> Any:
    """An ephemeral GX context, quiet, whose only Data Docs site writes to ``docs_dir``."""
    gx = _gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    site = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={DOCS_SITE: site},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def run_suites(frames: dict[str, pd.DataFrame], suites: dict[str, Any],
               params: dict[str, Any], docs_dir: Path) -> dict[str, Any]:
    """Validate each frame with its suite through a Checkpoint; Data Docs go to ``docs_dir``.

    One checkpoint per frame: a checkpoint passes the same batch (dataframe) to all of its
    validation definitions. The docs are built once, after both ran (rendering is the slow
    part: an UpdateDataDocsAction per checkpoint would render everything twice).
    """
    gx = _gx()
    context = _context(docs_dir)
    source = context.data_sources.add_pandas("pixtag")
    results = {}
    for name, frame in frames.items():
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        suite = context.suites.add(suites[name])
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite))
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=name, validation_definitions=[definition],
            result_format={"result_format": RESULT_FORMAT,
                           "unexpected_index_column_names": [INDEX_COLUMNS[name]]},
        ))
        run = checkpoint.run(batch_parameters={"dataframe": frame},
                             expectation_parameters=params)
        results[name] = next(iter(run.run_results.values()))
    context.build_data_docs(site_names=[DOCS_SITE])
    return results


# ------------------------------------------------------------------ summarising ------------
def _exception_message(info: dict[str, Any]) -> str | None:
    """The first exception message in GX's exception_info (flat or keyed by metric)."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("exception_message"):
            return str(value["exception_message"])
    return None


def _short(value: Any) -> str:
    if hasattr(value, "item"):  # numpy scalar → plain Python value
        value = value.item()
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def failure_details(result: dict[str, Any], index_column: str) -> list[str]:
    """Readable examples of what failed: offending rows with their values, missing columns."""
    details = []
    mismatched = (result.get("details") or {}).get("mismatched") or {}
    if mismatched.get("missing"):
        details.append("missing column(s): " + ", ".join(mismatched["missing"]))
    rows = result.get("partial_unexpected_index_list") or []
    for row in rows[:MAX_DETAILS]:
        ref = row.get(index_column, "?")
        values = ", ".join(f"{k}={_short(v)}" for k, v in row.items() if k != index_column)
        details.append(f"{ref}: {values}")
    if not rows and result.get("partial_unexpected_list"):
        details.append("values: " + ", ".join(
            _short(v) for v in result["partial_unexpected_list"][:MAX_DETAILS]))
    if not details and "observed_value" in result:
        details.append(f"observed: {_short(result['observed_value'])}")
    count = result.get("unexpected_count") or 0
    if count > MAX_DETAILS and rows:
        details.append(f"... and {count - MAX_DETAILS} more (see Data Docs)")
    return details


def summarise(suite: str, result: Any, order: list[str] | None = None
              ) -> list[FailedExpectation]:
    """The failed expectations of one GX suite validation result, in suite order when the
    expectation ids (``order``) are given."""
    rank = {eid: n for n, eid in enumerate(order or [])}
    items = sorted(result.results, key=lambda r: rank.get(r.expectation_config.id, len(rank)))
    failed = []
    for item in items:
        if item.success:
            continue
        config = item.expectation_config
        data = item.result or {}
        details = failure_details(data, INDEX_COLUMNS[suite])
        message = _exception_message(item.exception_info or {})
        if message:
            details.insert(0, "error: " + message.removeprefix("Error: "))
        failed.append(FailedExpectation(
            suite=suite, expectation=config.type, description=config.description or "",
            column=config.kwargs.get("column"), unexpected_count=data.get("unexpected_count"),
            details=details,
        ))
    return failed


# ------------------------------------------------------------------ docs -------------------
def publish_docs(local_dir: Path, target: Storage) -> str:
    """Copy rendered Data Docs into ``target`` (a folder or S3 prefix); return index.html URI."""
    for path in sorted(local_dir.rglob("*")):
        if path.is_file():
            target.write_bytes(path.relative_to(local_dir).as_posix(), path.read_bytes())
    return target.url("index.html")


def _resolve_classes(settings: Settings, classes: list[str] | None,
                     recorded: list[str] | None = None) -> list[str]:
    """The class set to validate against: the one given (``--classes``), else the one the dataset
    records (``dataset.json``, written by every scrape), else the settings' ``classes``."""
    chosen = [c.lstrip("#").strip().lower() for c in (classes or recorded or settings.classes or [])
              if c.strip()]
    if not chosen:
        raise NoClassesError("validate needs the class set and this dataset records none (no dataset.json: "
                             "pixtag scrape did not write it): pass --classes cat,dog,... (or set "
                             "`classes` in the settings, PIXTAG_CLASSES)")
    return list(dict.fromkeys(chosen))


# ------------------------------------------------------------------ the stage --------------
def validation_key(store: Storage, settings: Settings, classes: list[str], docs: dict[str, Any]) -> str:
    """What a verdict depends on: the manifest's content, the exclusions, the suites and their
    parameters (images are content-addressed by the manifest's sha256, so they are covered)."""
    import pandas as pd

    raw = read_raw_manifest(store)
    digest = hashlib.sha256(",".join(raw.columns).encode())
    digest.update(pd.util.hash_pandas_object(raw, index=False).to_numpy().tobytes())
    exclusions = {k: sorted(v) for k, v in read_exclusions(store).items()}
    digest.update(json.dumps({"exclusions": exclusions, "suites": docs, "phash_distance": settings.phash_distance,
                              "parameters": expectation_parameters(
                                  settings, classes, int(dataset.read_info(store).get("background", 0)))},
                             sort_keys=True, default=str).encode())
    return digest.hexdigest()


def validate(dataset_uri: str, settings: Settings, docs_dir: str | Path | None = None,
             classes: list[str] | None = None, suite_dir: str | Path | None = None,
             reuse: bool = False, store: Storage | None = None) -> ValidationReport:
    """Validate the dataset at ``dataset_uri`` (folder or ``s3://``); never modifies it.

    Data Docs go to ``docs_dir`` (folder or storage URI) or else ``<dataset>/reports/data_docs``.
    With ``reuse`` (the DAG), the verdict of an earlier validation of exactly the same inputs
    (see :func:`validation_key`) is returned, ``cached: true``, and new verdicts are kept under
    ``<dataset>/reports/validations/``. ``store``: ``dataset_uri`` already opened.
    """
    store = store or open_storage(dataset_uri, settings.s3_endpoint_url)
    class_set = _resolve_classes(settings, classes, dataset.read_info(store).get("classes"))
    docs = {name: load_suite_doc(name, Path(suite_dir or SUITE_DIR)) for name in SUITES}
    memo = f"{VERDICTS_KEY}/{validation_key(store, settings, class_set, docs)}.json"
    if reuse and store.exists(memo):
        report = ValidationReport.from_dict(store.read_json(memo))
        report.cached = True
        log.info("validation: reusing the verdict on the same manifest, exclusions and suites (%s)",
                 "passed" if report.success else "failed")
        return report
    report = _validate(store, settings, class_set, docs, docs_dir)
    if reuse:  # only then: without it, validation never writes into the dataset
        store.write_json(memo, report.to_dict())
    return report


def _validate(store: Storage, settings: Settings, class_set: list[str], docs: dict[str, Any],
              docs_dir: str | Path | None) -> ValidationReport:
    frames = build_frames(store, settings, class_set)
    suites = {name: build_suite(doc, name) for name, doc in docs.items()}
    target = (open_storage(docs_dir, settings.s3_endpoint_url) if docs_dir is not None
              else store.child(DOCS_KEY))
    with tempfile.TemporaryDirectory(prefix="pixtag-docs-") as tmp:
        background = int(dataset.read_info(store).get("background", 0))
        results = run_suites({"manifest": frames.manifest, "class_counts": frames.class_counts,
                              "background": frames.background},
                             suites, expectation_parameters(settings, class_set, background), Path(tmp))
        index = publish_docs(Path(tmp), target)
    failed = [f for name, result in results.items()
              for f in summarise(name, result, [e.id for e in suites[name].expectations])]
    stats = [r.statistics for r in results.values()]
    counts = frames.class_counts.set_index("label")["count"]
    if len(frames.background):
        counts[BACKGROUND] = len(frames.background)
    return ValidationReport(
        dataset=store.uri,
        success=all(r.success for r in results.values()),
        rows=len(frames.manifest),
        excluded=frames.excluded,
        classes={str(k): int(v) for k, v in counts.items()},
        evaluated=sum(int(s["evaluated_expectations"]) for s in stats),
        passed=sum(int(s["successful_expectations"]) for s in stats),
        failed=failed,
        docs=index,
    )
