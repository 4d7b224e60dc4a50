"""``pixtag scrape``: collect per-class images from hashtag timelines, keeping only what may and
should be trained on.

Flow per class (``scrape_class``, the unit the Airflow DAG maps over):

1. page the hashtag timelines of every spelling of the class (``cat``, ``Cats``,
   ``CatsOfPixelfed``: found through the same normalisation as ``trending``), newest first,
   merged and de-duplicated by post id, looking at up to ``posts_factor x per_class`` posts;
2. screen each post (:func:`screen_post`, pure): public, unlocked, not sensitive, no spoiler,
   account not opted out, exactly one class (or, with ``two_class_posts: all_tags``, one or
   more: such an image is labelled with every class tag of its post, column ``labels``); then
   each image (:func:`screen_media`);
3. download the media in deterministic batches with bounded concurrency (the media host is not
   the API: downloads are bounded by concurrency, not by the API rate), decode and check them
   (:func:`pixtag.data.images.prepare`), store originals and 224x224 images content-addressed;
4. keep the first of exact (sha256) and near (perceptual hash) duplicates.

Background (``scrape_class(label=BACKGROUND)``): the newest posts of the local public timeline
that carry none of the classes' tags (neither a raw spelling nor a normalised word), under the
same consent, privacy, image and ledger rules, kept under the reserved label
:data:`pixtag.core.dataset.BACKGROUND` so that the model learns what is none of the classes.

``assemble`` then merges the classes (and the background) in a fixed order, drops duplicates across classes and
writes ``manifest.parquet`` and ``dropped.parquet``. Every decision is a pure function of the
posts and bytes, applied in a fixed order, so a re-run (or a run after a crash) yields the same
manifest; a per-media record (``fetched/``) written after the files lets it skip downloads.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import re
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pixtag.core import dataset, logs
from pixtag.core.config import Settings
from pixtag.core.dataset import BACKGROUND
from pixtag.core.errors import PixtagError
from pixtag.core.storage import Storage, open_storage
from pixtag.data.images import CHECKS_VERSION, ImageRejected, PhashIndex, prepare
from pixtag.sources.http import AddressPolicy, BlockedURL, HTTPError, HttpSession, ResponseTooLarge, max_rate
from pixtag.sources.pixelfed import Client, MediaAttachment, Status, _id_key

log = logs.get_logger(__name__)

OPT_OUT_MARKERS = ("#nobot", "#noai", "#noindex", "#nosearch", "#noarchive")
IMAGE_TYPES = ("image",)
PARTS = "parts"
FETCHED = "fetched"
OVERCOLLECT = 1.05  # a class keeps a few extra images to absorb cross-class duplicates



class NoClassesError(PixtagError):
    """Nothing to scrape: no class set given nor configured."""


# ------------------------------------------------------------------------- pure rules ------
def post_classes(status: Status, classes: Iterable[str]) -> set[str]:
    """The classes a post carries: classes among the normalised words of its hashtags."""
    from pixtag.tags.normalize import normalize

    wanted = set(classes)
    words: set[str] = set()
    for tag in status.hashtags:
        words.update(normalize(tag))
    return words & wanted


def _strip_html(text: str) -> str:
    return re.sub(r"<[^>]+>", " ", text or "")


def screen_post(status: Status, classes_of_post: set[str], several: bool = False) -> tuple[str, str] | None:
    """Why a post must not be used (``(reason, detail)``), or ``None`` when it may be.

    Privacy first: only public posts of unlocked accounts that have not opted out; unknown
    values count as "no" (a post whose lock state cannot be read is not used). A post tagged
    with several classes is dropped (``multiple_classes``, the study's rule) unless ``several``.
    """
    if status.visibility != "public":
        return "not_public", f"visibility {status.visibility}"
    account = status.account
    if account.locked is not False:
        return "locked_account", "account is locked" if account.locked else "lock state unknown"
    note = _strip_html(account.note).lower()
    for marker in OPT_OUT_MARKERS:
        if re.search(re.escape(marker) + r"\b", note):
            return "opted_out", f"bio says {marker}"
    if account.indexable is False:
        return "opted_out", "account is not indexable"
    if account.discoverable is False:
        return "opted_out", "account is not discoverable"
    if status.spoiler_text.strip():
        return "spoiler", "post has a content warning"
    if status.sensitive is not False:
        return "sensitive", "post is marked sensitive" if status.sensitive else "sensitivity unknown"
    if len(classes_of_post) > 1 and not several:
        return "multiple_classes", ",".join(sorted(classes_of_post))
    if not classes_of_post:
        return "no_class", "no hashtag normalises to a class"
    if not status.media_attachments:
        return "no_media", "post has no media"
    return None


def screen_background(status: Status, classes: Iterable[str],
                      spellings: set[str]) -> tuple[str, str] | None:
    """Why a timeline post must not be a background image, or ``None``: the privacy rules of
    :func:`screen_post`, then no hashtag may be a class's spelling or normalise to a class."""
    verdict = screen_post(status, {BACKGROUND})
    if verdict:
        return verdict
    carried = post_classes(status, classes) | {t.lower() for t in status.hashtags if t.lower() in spellings}
    if carried:
        return "class_tag", ",".join(sorted(carried))
    return None


def screen_media(media: MediaAttachment) -> tuple[str, str] | None:
    """Why one attachment must not be downloaded, or ``None``."""
    if media.is_nsfw:
        return "media_nsfw", "attachment marked NSFW"
    if media.type not in IMAGE_TYPES:
        return "not_image", f"attachment type {media.type}"
    if not media.url or media.url.endswith("/no-preview.png"):
        return "no_media_url", "attachment has no usable URL"
    return None


def class_variants(label: str, known_tags: Iterable[str]) -> list[str]:
    """Hashtags to page for a class: the class, its plural, and every known tag normalising to it."""
    from pixtag.tags.normalize import normalize

    variants = {label, f"{label}s"}
    for tag in known_tags:
        if label in normalize(tag):
            variants.add(tag.lstrip("#").lower())
    return sorted(variants)


# ------------------------------------------------------------------------- records ---------
@dataclass
class Candidate:
    """One attachment of a screened post, in processing order."""

    status: Status
    media: MediaAttachment
    label: str
    labels: tuple[str, ...] = ()  # every class tag of the post (``label`` among them); () for ``label`` alone


@dataclass
class ClassSummary:
    label: str
    posts_seen: int = 0
    kept: int = 0
    downloaded: int = 0
    reused: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    api_requests: int = 0
    api_rps_max: float = 0.0


def _dropped_row(status: Status, media: MediaAttachment | None, label: str, tag: str,
                 reason: str, detail: str) -> dict[str, Any]:
    return {
        "post_id": status.id,
        "media_id": media.id if media else "",
        "account": status.account.acct or status.account.username,
        "tag": tag,
        "label": label,
        "reason": reason,
        "detail": detail,
        "media_url": (media.url or "") if media else "",
    }


def _manifest_row(c: Candidate, meta: dict[str, Any], size: int) -> dict[str, Any]:
    sha = meta["sha256"]
    return {
        "post_id": c.status.id,
        "media_id": c.media.id,
        "account": c.status.account.acct or c.status.account.username,
        "label": c.label,
        dataset.LABELS: dataset.join_labels(c.labels or (c.label,)),
        "sha256": sha,
        "phash": meta["phash"],
        "mode": "RGB",
        "width": size,
        "height": size,
        "orig_width": meta["orig_width"],
        "orig_height": meta["orig_height"],
        "cropped": meta["cropped"],
        "sensitive": bool(c.status.sensitive),
        "visibility": c.status.visibility,
        "created_at": c.status.created_at.isoformat() if c.status.created_at else "",
        "media_url": c.media.url or "",
        "license": (c.media.license.title or "") if c.media.license else "",
        "path": dataset.image_key(sha),
        "original_path": dataset.original_key(sha, meta["ext"]),
    }


# ------------------------------------------------------------------------- I/O -------------
def media_session(settings: Settings, base_url: str) -> HttpSession:
    """HTTP for media: the instance host and allowed media hosts only, no API throttle. Only
    the instance's own host (and hosts in ``allow_private_hosts``) may be non-public."""
    host = (urlsplit(base_url).hostname or "").lower()
    policy = AddressPolicy(
        allowed_hosts={host, *(h.lower() for h in settings.allowed_media_hosts)},
        private_ok_hosts={host, *(h.lower() for h in settings.allow_private_hosts)},
    )
    return HttpSession(
        policy=policy,
        rate=None,
        timeout=settings.request_timeout,
        max_retries=settings.max_retries,
        max_retry_after=settings.max_retry_after,
        max_bytes=settings.max_image_bytes,
        pool_size=settings.download_concurrency,
        backoff_initial=settings.retry_backoff,
        backoff_max=settings.retry_backoff_max,
    )


def _fetched_key(url: str) -> str:
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
    return f"{FETCHED}/{digest[:2]}/{digest}.json"


class Fetcher:
    """Downloads, checks and stores media; remembers what it fetched so re-runs skip it."""

    def __init__(self, settings: Settings, store: Storage, http: HttpSession):
        self.settings, self.store, self.http = settings, store, http
        self.downloaded = 0
        self.reused = 0

    def fetch(self, url: str) -> dict[str, Any]:
        """``{"sha256", "phash", ...}`` for a usable image, or ``{"reason", "detail"}``."""
        key = _fetched_key(url)
        if self.store.exists(key):
            record = self.store.read_json(key)
            # A rejection of the bytes (corrupt, grayscale, animated, ...) is final; a kept
            # image is reused while its stored files are there and it passed today's checks.
            if "reason" in record or (record.get("checks") == CHECKS_VERSION
                                      and self.store.exists(dataset.image_key(record["sha256"]))):
                self.reused += 1
                return record
            original = dataset.original_key(record["sha256"], record["ext"])
            if self.store.exists(original):  # kept under older checks: judged again, offline
                self.reused += 1
                return self._judge(key, self.store.read_bytes(original), record.get("content_type"))
        try:
            fetched = self.http.request("GET", url, auth=False, throttle=False, accept="image/*")
        except HTTPError as exc:
            reason = ("too_large" if isinstance(exc, ResponseTooLarge)
                      else "blocked_url" if isinstance(exc, BlockedURL) else "download_failed")
            return {"reason": reason, "detail": str(exc)[:300]}
        self.downloaded += 1
        return self._judge(key, fetched.content, fetched.content_type)

    def _judge(self, key: str, data: bytes, content_type: str | None) -> dict[str, Any]:
        """Check and store one image's bytes; remember the verdict under ``key``."""
        try:
            prepared = prepare(data, max_pixels=self.settings.max_image_pixels,
                               size=self.settings.image_size)
        except ImageRejected as exc:
            record: dict[str, Any] = {
                "reason": exc.reason, "detail": exc.detail,
                "content_type": content_type,
            }
        else:
            self.store.write_bytes(dataset.original_key(prepared.sha256, prepared.ext), data)
            self.store.write_bytes(dataset.image_key(prepared.sha256), prepared.data)
            record = {
                "sha256": prepared.sha256, "ext": prepared.ext, "phash": prepared.phash,
                "orig_width": prepared.orig_width, "orig_height": prepared.orig_height,
                "orig_mode": prepared.orig_mode, "cropped": prepared.cropped,
                "content_type": content_type, "checks": CHECKS_VERSION,
            }
        # Written last and atomically: its presence means the files above are complete.
        self.store.write_json(key, record)
        return record


# ------------------------------------------------------------------------- per class -------
def _merged_timelines(client: Client, tags: list[str]) -> Iterator[tuple[Status, str]]:
    """Posts of several hashtag timelines, newest first, each post once (with its tag)."""
    def keyed(tag: str) -> Iterator[tuple[tuple[int, ...], str, str, Status]]:
        for status in client.iter_hashtag(tag):
            number, _ = _id_key(status.id)
            yield (-number,), status.id, tag, status

    seen: set[str] = set()
    for _, post_id, tag, status in heapq.merge(*(keyed(t) for t in tags)):
        if post_id not in seen:
            seen.add(post_id)
            yield status, tag


def _known_tags(settings: Settings, client: Client, home: Storage) -> list[str]:
    """Hashtags seen lately: the newest stored trending run (in ``home``, the opened
    ``settings.storage``) and the instance's trending list (the copy that run kept, else asked
    for now)."""
    from pixtag.tags.trending import INSTANCE_TRENDING, instance_trending, latest_run

    run = latest_run(home)
    listed = run.extra.get(INSTANCE_TRENDING) if run is not None else None
    if listed is None:
        listed = instance_trending(client) or []
    return (list(run.raw) if run is not None else []) + list(listed)


def _ledger_index(settings: Settings, home: Storage) -> PhashIndex:
    index = PhashIndex(settings.phash_distance)
    try:
        from pixtag.data.ledger import read_phashes
    except ImportError:  # pragma: no cover - the ledger module ships with pixtag
        return index
    for value in sorted(read_phashes(home)):
        index.add(value, "ledger")
    return index


class _ClassCollector:
    """The state of one class's scrape: what was kept, dropped, seen and is in flight."""

    def __init__(self, settings: Settings, label: str, classes: list[str], store: Storage,
                 fetcher: Fetcher, per_class: int, bar: Any, *, home: Storage):
        self.settings, self.label, self.classes = settings, label, classes
        self.fetcher, self.per_class, self.bar = fetcher, per_class, bar
        self.want = math.ceil(per_class * OVERCOLLECT) + 1
        self.budget = math.ceil(per_class * settings.posts_factor)
        self.exclusions = dataset.read_exclusions(store)
        self.ledger = _ledger_index(settings, home)  # home: settings.storage, opened
        self.kept: list[dict[str, Any]] = []
        self.dropped: list[dict[str, Any]] = []
        self.seen_sha: set[str] = set()
        self.seen_posts: set[str] = set()
        self.near = PhashIndex(settings.phash_distance)
        self.inflight: deque[tuple[int, Candidate, Future[dict[str, Any]]]] = deque()
        self.seq = 0
        self.filled_at: int | None = None  # sequence number of the candidate that filled the class
        self.spellings: set[str] = set()  # hashtags of screened posts that normalise to the class

    @property
    def done(self) -> bool:
        return self.filled_at is not None or len(self.seen_posts) >= self.budget

    def collect(self, posts: Iterable[tuple[Status, str]], pool: ThreadPoolExecutor) -> None:
        """Screen posts in order, download candidates concurrently, judge them in order.

        No more candidates are in flight than could still be kept, so a download is never
        started for a class that is already full: a re-run, whose stored media are judged at
        once, downloads nothing the first run did not (and the instance serves no spare files).
        """
        window = self.settings.download_concurrency * 4
        for status, tag in posts:
            if self.done:
                break
            if status.id in self.seen_posts:
                continue
            self.seen_posts.add(status.id)
            self.seq += 1
            self._screen(status, tag, pool)
            self._settle(window)
        self._settle(0)

    def _screen(self, status: Status, tag: str, pool: ThreadPoolExecutor) -> None:
        from pixtag.tags.normalize import normalize

        self.spellings.update(t.lower() for t in status.hashtags if self.label in normalize(t))
        carried = post_classes(status, self.classes)
        verdict = screen_post(status, carried, several=self.settings.two_class_posts == "all_tags")
        if status.id in self.exclusions["post_id"]:
            verdict = ("excluded", "excluded by a reviewer")
        if verdict:
            self._drop(status, None, tag, verdict)
            return
        self._fetch_media(status, tag, pool, tuple(sorted(carried | {self.label})))

    def _fetch_media(self, status: Status, tag: str, pool: ThreadPoolExecutor,
                     labels: tuple[str, ...] = ()) -> None:
        """Each attachment of an accepted post: dropped with its reason, or its download started."""
        for media in status.media_attachments:
            media_verdict = screen_media(media)
            if media_verdict:
                self._drop(status, media, tag, media_verdict)
            else:
                future = pool.submit(self.fetcher.fetch, media.url or "")
                self.inflight.append((self.seq, Candidate(status, media, self.label, labels), future))

    def _drop(self, status: Status, media: MediaAttachment | None, tag: str, verdict: tuple[str, str]) -> None:
        self.dropped.append(_dropped_row(status, media, self.label, tag, *verdict) | {"_seq": self.seq})

    def _settle(self, window: int) -> None:
        """Judge finished downloads strictly in candidate order (so the outcome never depends on
        which download finished first) until at most ``window`` are in flight, and fewer than
        could still be kept: then the candidates in flight cannot fill the class by themselves,
        so the next post is needed whatever the timing, and none after the class is full is."""
        while self.inflight and self.filled_at is None and (
                len(self.inflight) > min(window, self.want - len(self.kept) - 1) or self.inflight[0][2].done()):
            seq, cand, future = self.inflight.popleft()
            rec = future.result()
            verdict = _judge(cand, rec, self.seen_sha, self.near, self.ledger, self.exclusions)
            if verdict:
                self.dropped.append(_dropped_row(cand.status, cand.media, self.label, "", *verdict) | {"_seq": seq})
                continue
            self.seen_sha.add(rec["sha256"])
            self.near.add(rec["phash"], rec["sha256"])
            self.kept.append(_manifest_row(cand, rec, self.settings.image_size))
            self.bar.update(1 if len(self.kept) <= self.per_class else 0)
            if len(self.kept) >= self.want:
                self.filled_at = seq

    def finish(self) -> list[dict[str, Any]]:
        """Dropped rows in screening order (those screened after the class filled up depend on
        timing, so they are forgotten)."""
        for _, _, future in self.inflight:
            future.cancel()
        rows = [r for r in self.dropped if self.filled_at is None or r["_seq"] <= self.filled_at]
        return [{k: v for k, v in r.items() if k != "_seq"} for r in sorted(rows, key=lambda r: r["_seq"])]


class _BackgroundCollector(_ClassCollector):
    """Background images: timeline posts that carry no class tag, kept under BACKGROUND."""

    def __init__(self, *args: Any, spellings: set[str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.class_spellings = spellings
        # Most timeline posts are usable, but class posts are skipped: look further.
        self.budget = math.ceil(self.per_class * self.settings.posts_factor * 2)

    def _screen(self, status: Status, tag: str, pool: ThreadPoolExecutor) -> None:
        verdict = screen_background(status, self.classes, self.class_spellings)
        if verdict is None and status.id in self.exclusions["post_id"]:
            verdict = ("excluded", "excluded by a reviewer")
        if verdict is None and not status.media_attachments:
            verdict = ("no_media", "post has no media")
        if verdict:
            self._drop(status, None, tag, verdict)
            return
        self._fetch_media(status, tag, pool)


def _page_public_timeline(client: Client, collector: _ClassCollector, spellings: set[str]) -> list[dict[str, Any]]:
    """Background: the public timeline's newest posts, skipping those with a class's tag; the
    dropped rows."""
    with ThreadPoolExecutor(collector.settings.download_concurrency) as pool:
        log.info("background: paging the public timeline, skipping posts tagged %s",
                 ", ".join(f"#{t}" for t in sorted(spellings)))
        collector.collect(((s, "") for s in client.iter_public(collector.budget)), pool)
        return collector.finish()


def _page_class_timelines(client: Client, collector: _ClassCollector, tags: list[str]) -> list[dict[str, Any]]:
    """A class: its tags' timelines merged, then the spellings found on its own posts when those
    run dry before the class is full; the dropped rows."""
    label = collector.label
    with ThreadPoolExecutor(collector.settings.download_concurrency) as pool:
        log.info("class %s: paging %s", label, ", ".join(f"#{t}" for t in tags))
        collector.collect(_merged_timelines(client, tags), pool)
        more = sorted(collector.spellings - set(tags))
        if more and not collector.done:
            log.info("class %s: also paging %s (found on its posts)", label, ", ".join(f"#{t}" for t in more))
            collector.collect(_merged_timelines(client, more), pool)
        return collector.finish()


def scrape_class(
    settings: Settings,
    label: str,
    classes: list[str],
    out: str,
    *,
    instance_url: str | None = None,
    per_class: int | None = None,
    progress: bool = True,
    store: Storage | None = None,
) -> ClassSummary:
    """Collect one class into ``out/parts/<label>.parquet`` (and its dropped rows): the timelines
    of its spellings (from the stored trending runs and the instance's trending hashtags, then
    those found on its own posts, :func:`_page_class_timelines`); for :data:`BACKGROUND`,
    ``settings.background_for(len(classes))`` images of the public timeline instead.
    ``store``: ``out`` already opened. The trending runs and the ledger are read from
    ``settings.storage``: the same storage when ``out`` is it (the DAG), opened once otherwise.
    """
    from tqdm import tqdm

    if label == BACKGROUND:
        wanted = settings.background_for(len([c for c in classes if c != BACKGROUND]))
    else:
        wanted = per_class or settings.per_class
    store = store or open_storage(out, settings.s3_endpoint_url)
    home = store if out == settings.storage else open_storage(settings.storage, settings.s3_endpoint_url)
    summary = ClassSummary(label)
    started = time.monotonic()
    with Client(settings, instance_url) as client:
        http = media_session(settings, client.base_url)
        fetcher = Fetcher(settings, store, http)
        bar = tqdm(total=wanted, desc=f"{label:>10}", unit="img",
                   disable=not (progress and logs.progress_enabled()), leave=True)
        known = _known_tags(settings, client, home)
        if label == BACKGROUND:
            spellings = {t.lower() for c in classes for t in class_variants(c, known)}
            collector: _ClassCollector = _BackgroundCollector(
                settings, label, classes, store, fetcher, wanted, bar, spellings=spellings, home=home)
            dropped = _page_public_timeline(client, collector, spellings)
        else:
            collector = _ClassCollector(settings, label, classes, store, fetcher, wanted, bar, home=home)
            dropped = _page_class_timelines(client, collector, class_variants(label, known))
        bar.close()
        http.close()
        summary.api_requests = len(client.http.sent)
        summary.api_rps_max = max_rate(client.http.sent)
        for reason, count in client.unparseable.items():
            dropped.append({"post_id": "", "media_id": "", "account": "", "tag": "", "label": label,
                            "reason": "unparseable", "detail": f"{count}x {reason}", "media_url": ""})

    _write_part(store, label, collector.kept, dropped)
    summary.posts_seen = len(collector.seen_posts)
    summary.kept = min(len(collector.kept), wanted)
    summary.downloaded, summary.reused = fetcher.downloaded, fetcher.reused
    summary.dropped = _count(dropped)
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def _write_part(store: Storage, label: str, kept: list[dict[str, Any]], dropped: list[dict[str, Any]]) -> None:
    """One label's scrape part: its kept rows and its dropped rows (``parts/<label>*.parquet``)."""
    store.write_parquet(f"{PARTS}/{label}.parquet", dataset.to_frame(kept, dataset.MANIFEST_COLUMNS))
    store.write_parquet(f"{PARTS}/{label}.dropped.parquet", dataset.to_frame(dropped, dataset.DROPPED_COLUMNS))


def _judge(cand: Candidate, rec: dict[str, Any], seen_sha: set[str], near: PhashIndex,
           ledger: PhashIndex, exclusions: dict[str, set[str]]) -> tuple[str, str] | None:
    if "reason" in rec:
        return rec["reason"], rec.get("detail", "")
    sha = rec["sha256"]
    if sha in exclusions["sha256"]:
        return "excluded", "excluded by a reviewer"
    if ledger.nearest(rec["phash"]):
        return "suggested_by_pixtag", "image is in the suggestion ledger (never train on own output)"
    if sha in seen_sha:
        return "duplicate_exact", f"same bytes as {sha[:12]}"
    hit = near.nearest(rec["phash"])
    if hit:
        return "duplicate_near", f"phash within {hit[1]} of {hit[0][:12]}"
    return None


def _count(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["reason"]] = counts.get(row["reason"], 0) + 1
    return dict(sorted(counts.items()))


# ------------------------------------------------------------------------- merge -----------
@dataclass
class DatasetSummary:
    out: str
    classes: list[str]  # the classes the dataset holds (the ones asked for, minus left_out)
    counts: dict[str, int]
    dropped: dict[str, int]
    images: int
    by_class: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> its ClassSummary
    left_out: dict[str, str] = field(default_factory=dict)  # class -> why it is not in this dataset

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LEFT_OUT = "class_left_out"  # the dropped rows' reason for the images of a class left out


def too_few_images(counts: dict[str, int], settings: Settings) -> dict[str, str]:
    """The classes of ``counts`` (class -> images) too small to train, each with the line a person
    reads: fewer than ``min_per_class`` images."""
    return {label: f"{n} images, minimum {settings.min_per_class}"
            for label, n in counts.items() if n < settings.min_per_class}


def balanced_caps(counts: dict[str, int], settings: Settings) -> dict[str, int]:
    """How many images each class of ``counts`` may keep so that the largest is at most
    ``balance_ratio`` times the smallest (what the validation suites check): a small class that
    passed ``min_per_class`` is never left out for balance; the larger ones keep their first
    ``balance_ratio × smallest`` images instead. Empty when ``counts`` is already balanced."""
    if not counts:
        return {}
    cap = math.floor(min(counts.values()) * settings.balance_ratio)
    return {label: cap for label, n in counts.items() if n > cap}


def left_out_line(left_out: dict[str, str]) -> str:
    """One line for a person: ``left out this run: horse (0 images, minimum 50)``."""
    return "left out this run: " + ", ".join(f"{label} ({why})" for label, why in left_out.items())


def _merge(rows: Any, labels: list[str], keep: dict[str, int], distance: int) -> tuple[Any, Any]:
    """The manifest of ``labels`` (cross-class duplicates out, each label's first ``keep`` rows)
    and the rows dropped as cross-class duplicates."""
    import pandas as pd

    rows = rows[rows["label"].isin(labels)].reset_index(drop=True)
    clash = cross_class_rows(rows, distance)
    kept = rows[~clash]
    manifest = pd.concat([kept[kept["label"] == label].head(keep[label]) for label in labels] or [kept],
                         ignore_index=True)
    return dataset.to_frame(manifest.to_dict("records"), dataset.MANIFEST_COLUMNS), rows[clash]


def _dropped_frame(rows: Any, reason: str, detail: Any) -> Any:
    return dataset.to_frame(
        [{**{k: r[k] for k in ("post_id", "media_id", "account", "label", "media_url")}, "tag": "",
          "reason": reason, "detail": detail(r) if callable(detail) else detail}
         for r in rows.to_dict("records")], dataset.DROPPED_COLUMNS)


def _trainable(rows: Any, labels: list[str], keep: dict[str, int], settings: Settings
               ) -> tuple[list[str], Any, Any, dict[str, str]]:
    """The labels kept, their merged manifest, the cross-class duplicates and the classes left out
    (with why). First the classes too small by their own scrape are left out, then (merging again)
    those that cross-class duplicates with the classes kept bring below the minimum: a left-out
    class's images cost no other class anything. Then the classes kept are balanced
    (:func:`balanced_caps`)."""
    own = rows["label"].value_counts()
    left_out = too_few_images({c: min(int(own.get(c, 0)), keep[c]) for c in labels if c != BACKGROUND}, settings)
    while True:
        labels = [label for label in labels if label not in left_out]
        manifest, clashing = _merge(rows, labels, keep, settings.phash_distance)
        found = {c: int(n) for c, n in manifest["label"].value_counts().items() if c != BACKGROUND}
        more = too_few_images({c: found.get(c, 0) for c in labels if c != BACKGROUND}, settings)
        if not more:
            break
        left_out |= more
    caps = balanced_caps(found, settings)
    if caps:  # the larger classes keep their first images, the smallest keeps all of its own
        log.info("balance_ratio %g: %s keep their first %d images", settings.balance_ratio,
                 ", ".join(sorted(caps)), min(caps.values()))
        manifest, clashing = _merge(rows, labels, keep | caps, settings.phash_distance)
    return labels, manifest, clashing, left_out


def assemble(settings: Settings, classes: list[str], out: str,
             per_class: int | None = None, store: Storage | None = None) -> DatasetSummary:
    """Merge the per-class parts into ``manifest.parquet`` and ``dropped.parquet``.

    An image found under two classes (same bytes or a near duplicate) cannot be labelled
    with confidence, so every copy of it is dropped (``duplicate_cross_class``): no image is
    in two classes (nor both a class image and a background image). Then each class keeps its
    first ``per_class`` rows, the background its first ``settings.background_for(len(classes))``.

    A class with too few images to train (:func:`too_few_images`) is left out of this dataset:
    its images are dropped rows (``class_left_out``), it is named with its reason in
    ``left_out``, and the others are merged again without it (so its images cost no other class
    a cross-class duplicate). The classes kept are balanced within ``balance_ratio`` by keeping
    the larger ones' first images (:func:`balanced_caps`), never by leaving out a class that has
    its minimum. ``dataset.json`` records the classes kept. A class set too small to
    train is left to the caller. ``store``: ``out`` already opened.
    """
    import pandas as pd

    per_class = per_class or settings.per_class
    store = store or open_storage(out, settings.s3_endpoint_url)
    labels = labels_to_scrape(settings, classes)
    parts = [store.read_parquet(f"{PARTS}/{label}.parquet") for label in labels]
    dropped_frames = [store.read_parquet(f"{PARTS}/{label}.dropped.parquet") for label in labels]
    rows = pd.concat(parts, ignore_index=True) if parts else dataset.empty_frame(dataset.MANIFEST_COLUMNS)
    rows = one_row_per_media(rows)
    background = settings.background_for(len([c for c in labels if c != BACKGROUND]))
    keep = {label: background if label == BACKGROUND else per_class for label in labels}
    labels, manifest, clashing, left_out = _trainable(rows, labels, keep, settings)
    if left_out:
        log.warning("%s", left_out_line(left_out))
        left_rows = rows[rows["label"].isin(left_out)]
        dropped_frames.append(_dropped_frame(left_rows, LEFT_OUT, lambda r: left_out[r["label"]]))
    dropped_frames.append(_dropped_frame(clashing, "duplicate_cross_class",
                                         "the same image is posted under another class"))
    dropped = pd.concat([f for f in dropped_frames if len(f)] or [dataset.empty_frame(dataset.DROPPED_COLUMNS)],
                        ignore_index=True)
    # A two-class post shows up in both classes' timelines: record it once. Rows that name no
    # post (the counts of entries that did not parse) are all kept.
    repeated = (dropped["post_id"] != "") & dropped.duplicated(subset=["post_id", "media_id", "reason"])
    dropped = dropped[~repeated].reset_index(drop=True)
    store.write_parquet(dataset.DROPPED, dropped)
    store.write_parquet(dataset.MANIFEST, manifest)
    kept_classes = [c for c in labels if c != BACKGROUND]
    dataset.write_info(store, kept_classes, background if BACKGROUND in labels else 0)
    counts = manifest["label"].value_counts().reindex(labels, fill_value=0)
    return DatasetSummary(
        out=store.uri,
        classes=kept_classes,
        counts={k: int(v) for k, v in counts.items()},
        dropped={k: int(v) for k, v in dropped["reason"].value_counts().sort_index().items()},
        images=len(manifest),
        left_out=left_out,
    )


def one_row_per_media(rows: Any) -> Any:
    """A post tagged with several classes (kept with ``two_class_posts: all_tags``) is collected
    from each of its classes' timelines: one row per media, the first (in label order), which
    carries every label in ``labels``. Parts written before ``labels`` existed get it from ``label``."""
    if dataset.LABELS not in rows:
        rows = rows.assign(**{dataset.LABELS: rows["label"]})
    rows[dataset.LABELS] = rows[dataset.LABELS].fillna(rows["label"])
    several = rows[dataset.LABELS].str.contains(dataset.LABEL_SEPARATOR, regex=False).fillna(False)
    repeated = several & rows.duplicated(subset=["post_id", "media_id"])
    return rows[~repeated].reset_index(drop=True)


def labels_to_scrape(settings: Settings, classes: Iterable[str]) -> list[str]:
    """The classes, then :data:`BACKGROUND` when background images are wanted."""
    labels = [c for c in classes if c != BACKGROUND]
    return [*labels, BACKGROUND] if settings.background_images > 0 else labels


def cross_class_rows(rows: Any, distance: int) -> Any:
    """Boolean mask of rows whose image (exact or near duplicate) also appears under another label."""
    import numpy as np

    from pixtag.data.images import near_duplicate_pairs

    mask = np.zeros(len(rows), dtype=bool)
    labels = rows["label"].to_numpy()
    for i, j, _ in near_duplicate_pairs(list(rows["phash"]), distance):
        if labels[i] != labels[j]:
            mask[i] = mask[j] = True
    by_sha = rows.groupby("sha256")["label"].nunique()
    mask |= rows["sha256"].isin(by_sha[by_sha > 1].index).to_numpy()
    return mask


def scrape(settings: Settings, classes: list[str] | None = None, per_class: int | None = None,
           out: str | None = None, *, instance_url: str | None = None,
           progress: bool = True) -> DatasetSummary:
    """Scrape every class, then :func:`assemble` the dataset. Returns a small summary."""
    classes = classes or settings.classes
    if not classes:
        raise NoClassesError("no classes: pass --classes or set PIXTAG_CLASSES "
                               "(or run `pixtag classes --auto`)")
    out = out or default_dataset_uri(settings)
    per = {}
    for label in labels_to_scrape(settings, classes):
        per[label] = asdict(scrape_class(settings, label, classes, out, instance_url=instance_url,
                                         per_class=per_class, progress=progress))
    summary = assemble(settings, classes, out, per_class)
    summary.by_class = per
    return summary


def default_dataset_uri(settings: Settings) -> str:
    """The dataset lives at the storage root, beside the feature cache and the ledger."""
    return settings.storage


__all__ = ["assemble", "scrape", "scrape_class", "screen_media", "screen_post"]
