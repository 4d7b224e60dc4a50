"""``pixtag review``: one HTML contact sheet per class, and the reviewer's exclusions.

Each sheet shows every image of a class as a thumbnail captioned with its *contact-sheet
index* ``label:n`` (the n-th row of that label in manifest order, counting excluded rows too,
so indices do not move when images are excluded). ``--exclude cat:12,cat:40`` or
``--exclude-sha SHA`` adds images to ``exclusions.json``; :func:`pixtag.core.dataset.read_manifest`,
later scrapes and training honour it. Exclusions are stored by sha256 (stable), never by index.

The helpers :func:`contact_refs`, :func:`excluded_mask` and :func:`map_stored` are shared with
``pixtag validate`` and ``pixtag describe``.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pixtag.core import dataset
from pixtag.core.config import Settings
from pixtag.core.errors import PixtagError
from pixtag.core.storage import Storage, open_storage

if TYPE_CHECKING:
    import pandas as pd

REVIEW_DIR = "reports/review"
THUMB_SIZE = 128
READ_WORKERS = 8
READ_CHUNK = 256
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
REQUIRED_COLUMNS = ("label", "sha256", "path")

T = TypeVar("T")


class ReviewError(PixtagError, ValueError):
    """A review request cannot be carried out (unknown index, malformed sha256, ...)."""


# ------------------------------------------------------------------ shared helpers ---------
def read_raw_manifest(store: Storage) -> pd.DataFrame:
    """The whole manifest, excluded rows included (a clear error when it is missing or broken)."""
    if not store.exists(dataset.MANIFEST):
        raise PixtagError(f"no dataset at {store.uri}: {dataset.MANIFEST} is missing")
    try:
        return store.read_parquet(dataset.MANIFEST)
    except (OSError, ValueError) as exc:
        raise PixtagError(f"cannot read {store.url(dataset.MANIFEST)}: {exc}") from None


def read_exclusions(store: Storage) -> dict[str, set[str]]:
    """:func:`pixtag.core.dataset.read_exclusions`, with a clear error for a malformed file."""
    try:
        return dataset.read_exclusions(store)
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError) as exc:
        raise PixtagError(f"{store.url(dataset.EXCLUSIONS)} is malformed ({exc}); expected "
                          '{"sha256": [...], "post_id": [...]}') from None


def contact_refs(frame: pd.DataFrame) -> pd.Series:
    """``label:n`` for each row: its position among rows of the same label, in manifest order."""
    labels = frame["label"].astype("string").fillna("?")
    return labels + ":" + labels.groupby(labels, sort=False).cumcount().astype("string")


def excluded_mask(frame: pd.DataFrame, exclusions: dict[str, set[str]]) -> pd.Series:
    """True for rows that :func:`pixtag.core.dataset.read_manifest` drops (same rule)."""
    import pandas as pd

    mask = pd.Series(False, index=frame.index)
    for column in ("sha256", "post_id"):
        if exclusions[column] and column in frame:
            mask |= frame[column].isin(exclusions[column]).fillna(False).astype(bool)
    return mask


def map_stored(store: Storage, keys: list[str], func: Callable[[bytes], T],
               workers: int = READ_WORKERS) -> Iterator[T | Exception]:
    """``func(bytes)`` for each key, in order, read in parallel (useful on S3).

    A failure (missing object, undecodable image, ...) is yielded as the exception instead of
    a result, so one bad image never stops a report.
    """

    def one(key: str) -> T | Exception:
        try:
            return func(store.read_bytes(key))
        except Exception as exc:  # reported per image by the caller
            return exc

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(keys), READ_CHUNK):
            yield from pool.map(one, keys[start:start + READ_CHUNK])


def safe_name(label: str) -> str:
    """A file name for a class label (hashtags are mostly word characters already)."""
    return re.sub(r"[^\w-]", "_", label) or "_"


# ------------------------------------------------------------------ exclusions -------------
def parse_refs(values: Iterable[str]) -> list[str]:
    """``["cat:12,cat:40", "dog:3"]`` → ``["cat:12", "cat:40", "dog:3"]``."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def resolve_refs(frame: pd.DataFrame, refs: Iterable[str]) -> list[str]:
    """The sha256 of each ``label:n`` or sha256 in ``refs``; unknown ones raise, naming all."""
    index = dict(zip(contact_refs(frame), frame["sha256"], strict=True))
    shas, unknown = [], []
    for ref in refs:
        if SHA256_RE.match(ref.lower()):
            shas.append(ref.lower())
        elif ref in index:
            shas.append(str(index[ref]))
        else:
            unknown.append(ref)
    if unknown:
        raise ReviewError(
            f"unknown contact-sheet index {', '.join(unknown)}: use label:n as shown on the "
            "sheet (n counts from 0) or a full sha256"
        )
    return shas


def check_shas(values: Iterable[str]) -> list[str]:
    """Full lowercase sha256 hex digests; anything else raises."""
    shas = [v.strip().lower() for v in values if v.strip()]
    bad = [v for v in shas if not SHA256_RE.match(v)]
    if bad:
        raise ReviewError(f"not a sha256 (64 hex digits): {', '.join(bad)}")
    return shas


def read_exclusions_doc(store: Storage) -> dict[str, Any]:
    """The raw exclusions document (unknown keys kept), or an empty one."""
    if not store.exists(dataset.EXCLUSIONS):
        return {"sha256": [], "post_id": []}
    try:
        doc = store.read_json(dataset.EXCLUSIONS)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReviewError(f"{store.url(dataset.EXCLUSIONS)} is not valid JSON ({exc}); "
                          "fix it by hand, nothing was changed") from None
    if not isinstance(doc, dict) or not all(
            isinstance(doc.get(k, []), list) for k in ("sha256", "post_id")):
        raise ReviewError(f"{store.url(dataset.EXCLUSIONS)} must be an object with lists "
                          "'sha256' and 'post_id'; nothing was changed")
    return doc


def update_exclusions(store: Storage, add: list[str],
                      remove: list[str]) -> tuple[list[str], list[str]]:
    """Add/remove sha256 exclusions (one atomic write, only when something changes).

    Returns the sha256 actually added and actually removed.
    """
    doc = read_exclusions_doc(store)
    current = set(doc.get("sha256", []))
    added = sorted(set(add) - current)
    removed = sorted(current & (set(remove) - set(add)))
    if added or removed:
        doc["sha256"] = sorted((current | set(added)) - set(removed))
        doc.setdefault("post_id", [])
        store.write_json(dataset.EXCLUSIONS, doc)
    return added, removed


# ------------------------------------------------------------------ contact sheets ---------
def thumbnail_data_uri(data: bytes, size: int = THUMB_SIZE) -> str:
    """A small JPEG thumbnail as a ``data:`` URI (sheets are self-contained files)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        thumb = image.convert("RGB")
    thumb.thumbnail((size, size))
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
.grid{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0;width:%(size)dpx;text-align:center;font-size:12px}
figure img,figure .missing{width:%(size)dpx;height:%(size)dpx;object-fit:cover;display:block}
figure .missing{background:#eee;line-height:%(size)dpx;color:#a00}
figure.excluded img{opacity:.3;outline:3px solid #c00}
figure.excluded figcaption{color:#c00;font-weight:bold}
code{background:#f3f3f3;padding:0 .3em}
""".replace("%(size)d", str(THUMB_SIZE))


def _figure(ref: str, sha: str, thumb: str | Exception, excluded: bool, also: str = "") -> str:
    caption = html.escape(ref) + (f" +{html.escape(also)}" if also else "") + (" excluded" if excluded else "")
    title = html.escape(f"{ref} sha256 {sha}")
    if isinstance(thumb, Exception):
        body = f'<div class="missing" title="{html.escape(str(thumb))}">unreadable</div>'
    else:
        body = f'<img src="{thumb}" alt="{html.escape(ref)}" title="{title}" loading="lazy">'
    css = ' class="excluded"' if excluded else ""
    return f'<figure{css} id="{html.escape(ref)}">{body}<figcaption>{caption}</figcaption></figure>'


def render_sheet(label: str, rows: pd.DataFrame, thumbs: list[str | Exception],
                 dataset_uri: str) -> str:
    """The HTML contact sheet of one class (``rows``: ref, sha256, excluded; an image with several
    labels is captioned with the others, ``cat:12 +dog``)."""
    also = [" +".join(other for other in labels if other != label) for labels in dataset.label_sets(rows)] \
        if "label" in rows else [""] * len(rows)
    figures = "\n".join(
        _figure(ref, str(sha), thumb, bool(excl), extra)
        for ref, sha, excl, thumb, extra in zip(rows["ref"], rows["sha256"], rows["excluded"], thumbs, also,
                                                strict=True)
    )
    n_excl = int(rows["excluded"].sum())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    label_html = html.escape(label)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pixtag review: #{label_html}</title>
<style>{_STYLE}</style></head><body>
<h1>#{label_html}: {len(rows)} images, {n_excl} excluded</h1>
<p>Dataset <code>{html.escape(dataset_uri)}</code>, {stamp}. Exclude images by their index:
<code>pixtag review {html.escape(dataset_uri)} --exclude {label_html}:12,{label_html}:40</code>;
undo with <code>--restore {label_html}:12</code>.</p>
<div class="grid">
{figures}
</div></body></html>
"""


def render_index(counts: dict[str, dict[str, int]], files: dict[str, str],
                 dataset_uri: str) -> str:
    """A small page linking the per-class sheets."""
    items = "\n".join(
        f'<li><a href="{html.escape(files[label])}">#{html.escape(label)}</a>: '
        f'{c["images"]} images, {c["excluded"]} excluded</li>'
        for label, c in counts.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pixtag review</title>
<style>{_STYLE}</style></head><body>
<h1>Contact sheets</h1><p>Dataset <code>{html.escape(dataset_uri)}</code></p>
<ul>
{items}
</ul></body></html>
"""


# ------------------------------------------------------------------ the stage --------------
@dataclass
class ReviewResult:
    """What ``review`` did: where the sheets are and how the exclusions changed."""

    dataset: str
    index: str
    sheets: dict[str, str]
    counts: dict[str, dict[str, int]]
    added: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    excluded_total: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_columns(frame: pd.DataFrame, uri: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame]
    if missing:
        raise ReviewError(f"the manifest at {uri} lacks column(s) {', '.join(missing)}; "
                          "run `pixtag validate` for a full report")


def write_sheets(store: Storage, rows: pd.DataFrame, target: Storage
                 ) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """One sheet per label plus ``index.html`` into ``target``; returns (sheet URIs, counts).

    ``rows``: the manifest with ``ref`` (contact-sheet index) and ``excluded`` columns.
    """
    sheets, counts, files = {}, {}, {}
    for label, group in rows.groupby(rows["label"].astype("string").fillna("?"), sort=True):
        label = str(label)
        thumbs = list(map_stored(store, [str(p) for p in group["path"]], thumbnail_data_uri))
        files[label] = f"{safe_name(label)}.html"
        target.write_text(files[label], render_sheet(label, group, thumbs, store.uri))
        sheets[label] = target.url(files[label])
        counts[label] = {"images": len(group), "excluded": int(group["excluded"].sum())}
    target.write_text("index.html", render_index(counts, files, store.uri))
    return sheets, counts


def review(dataset_uri: str, settings: Settings, *, exclude: Iterable[str] = (),
           exclude_sha: Iterable[str] = (), restore: Iterable[str] = (),
           out: str | None = None) -> ReviewResult:
    """Apply exclusions, then write one contact sheet per class (and an index page).

    Sheets go to ``out`` (a local folder or any storage URI) or else the dataset's
    ``reports/review/``. Every argument is checked before anything is written.
    """
    store = open_storage(dataset_uri, settings.s3_endpoint_url)
    frame = read_raw_manifest(store)
    _check_columns(frame, store.uri)
    add = resolve_refs(frame, parse_refs(exclude)) + check_shas(parse_refs(exclude_sha))
    remove = resolve_refs(frame, parse_refs(restore))
    added, restored = update_exclusions(store, add, remove)

    rows = frame.assign(ref=contact_refs(frame),
                        excluded=excluded_mask(frame, read_exclusions(store)))
    target = open_storage(out, settings.s3_endpoint_url) if out else store.child(REVIEW_DIR)
    sheets, counts = write_sheets(store, rows, target)
    return ReviewResult(dataset=store.uri, index=target.url("index.html"), sheets=sheets,
                        counts=counts, added=added, restored=restored,
                        excluded_total=int(rows["excluded"].sum()))
