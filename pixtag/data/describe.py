"""``pixtag describe``: the study's descriptive figures of a dataset, as PNG + a JSON summary.

Figures (matplotlib, Agg backend) and the matching numbers in ``summary.json``:

- ``pixel_counts.png``: histogram of the originals' pixel counts (width x height), per class;
- ``aspect_ratio.png``: the originals' aspect ratio (width / height) per class (mean, quartiles);
- ``cropped_share.png``: share of images per class that the resize rule centre-cropped;
- ``intensity.png``: distribution of the stored images' pixel values per channel (range,
  mean, std, 1st/99th percentile);
- ``mean_images.png``: the mean stored image of each class;
- ``dynamic_range.png``: histogram of the per-image dynamic range (max - min pixel value over
  the image's channels) of the stored images;
- ``copies_pixel_counts.png`` / ``copies_aspect_ratio.png``: the same two figures for the
  stored (``image_size``) copies;
- ``originals_intensity.png``, ``originals_dynamic_range.png``, ``originals_mean_images.png``:
  the pixel figures for the stored originals (where the manifest has ``original_path``; each
  original is resized to ``image_size`` for the class mean only).

Each figure ``NAME.png`` has its numbers beside it in ``NAME.json``.

Rows a reviewer excluded are left out (the dataset as training sees it, as
:func:`pixtag.core.dataset.read_manifest` returns it). The stored images are read once, streamed;
the dataset is never modified.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.core.config import Settings
from pixtag.core.errors import PixtagError
from pixtag.core.storage import Storage, open_storage
from pixtag.data.review import excluded_mask, map_stored, read_exclusions, read_raw_manifest

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

DESCRIBE_DIR = "reports/describe"
CHANNELS = ("R", "G", "B")
REQUIRED_COLUMNS = ("label", "orig_width", "orig_height", "cropped", "path")


# ------------------------------------------------------------------ numbers ----------------
def _r(value: float) -> float:
    return round(float(value), 4)


def quartiles(values: pd.Series) -> dict[str, float]:
    """mean, min, q1, median, q3, max of ``values`` (rounded)."""
    q = values.quantile([0.0, 0.25, 0.5, 0.75, 1.0]).to_numpy()
    return {"mean": _r(values.mean()), "min": _r(q[0]), "q1": _r(q[1]), "median": _r(q[2]),
            "q3": _r(q[3]), "max": _r(q[4])}


def manifest_stats(frame: pd.DataFrame) -> dict[str, Any]:
    """Per-class counts, pixel counts, aspect ratios and cropped shares from the manifest."""
    pixels = frame["orig_width"].astype("float64") * frame["orig_height"].astype("float64")
    aspect = frame["orig_width"].astype("float64") / frame["orig_height"].astype("float64")
    by_class = {}
    for label, idx in frame.groupby("label", sort=True).groups.items():
        by_class[str(label)] = {
            "count": len(idx),
            "pixel_count": quartiles(pixels[idx]),
            "aspect_ratio": quartiles(aspect[idx]),
            "cropped_share": _r(frame.loc[idx, "cropped"].astype(bool).mean()),
        }
    return {"images": len(frame), "pixel_count": quartiles(pixels),
            "aspect_ratio": quartiles(aspect),
            "cropped_share": _r(frame["cropped"].astype(bool).mean()), "classes": by_class}


def _decode(size: int) -> Any:
    """Decode to RGB; returns (pixels at ``size`` x ``size``, full-size histogram per channel,
    full-size dynamic range) so that an original's statistics are its own, not its resize's."""
    def decode(data: bytes) -> tuple[np.ndarray, np.ndarray, int]:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")
        full = np.asarray(rgb, dtype=np.uint8)
        hist = np.stack([np.bincount(full[..., c].ravel(), minlength=256) for c in range(3)])
        spread = int(full.max()) - int(full.min())
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size))
        return np.asarray(rgb, dtype=np.uint8), hist, spread

    return decode


@dataclass
class PixelStats:
    """Streaming accumulators over the stored images."""

    size: int
    histogram: np.ndarray = field(default_factory=lambda: np.zeros((3, 256), dtype=np.int64))
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    ranges: list[int] = field(default_factory=list)
    unreadable: int = 0

    def add(self, label: str, pixels: np.ndarray, histogram: np.ndarray | None = None,
            dynamic_range: int | None = None) -> None:
        """One image: ``pixels`` (size x size, for the class mean) and, when they differ from
        those of ``pixels`` (an original), its own channel histogram and dynamic range."""
        self.ranges.append(int(pixels.max()) - int(pixels.min()) if dynamic_range is None
                           else dynamic_range)
        if histogram is None:
            histogram = np.stack([np.bincount(pixels[..., c].ravel(), minlength=256)
                                  for c in range(3)])
        self.histogram += histogram
        if label not in self.sums:
            self.sums[label] = np.zeros((self.size, self.size, 3), dtype=np.float64)
            self.counts[label] = 0
        self.sums[label] += pixels
        self.counts[label] += 1

    def mean_images(self) -> dict[str, np.ndarray]:
        return {k: (self.sums[k] / self.counts[k]).round().astype(np.uint8)
                for k in sorted(self.sums)}

    def channel_stats(self) -> dict[str, dict[str, float]]:
        """min, max, mean, std, p01, p99 of the pixel values of each channel."""
        values = np.arange(256, dtype=np.float64)
        out = {}
        for c, name in enumerate(CHANNELS):
            hist = self.histogram[c]
            total = hist.sum()
            if not total:
                continue
            nonzero = np.nonzero(hist)[0]
            mean = (values * hist).sum() / total
            cdf = np.cumsum(hist) / total
            out[name] = {
                "min": int(nonzero[0]), "max": int(nonzero[-1]), "mean": _r(mean),
                "std": _r(np.sqrt(((values - mean) ** 2 * hist).sum() / total)),
                "p01": int(np.searchsorted(cdf, 0.01)), "p99": int(np.searchsorted(cdf, 0.99)),
            }
        return out


    def dynamic_range(self) -> dict[str, float]:
        """Quartiles of the per-image dynamic range (max - min pixel value, all channels)."""
        import pandas as pd

        return quartiles(pd.Series(self.ranges, dtype="float64")) if self.ranges else {}


def pixel_stats(store: Storage, frame: pd.DataFrame, size: int, column: str = "path") -> PixelStats:
    """Read every image of ``column`` (stored copies, or ``original_path``) once and accumulate
    histograms, dynamic ranges and per-class sums."""
    stats = PixelStats(size)
    paths = [str(p) for p in frame[column]]
    for label, decoded in zip(frame["label"], map_stored(store, paths, _decode(size)),
                              strict=True):
        if isinstance(decoded, Exception):
            stats.unreadable += 1
        else:
            pixels, histogram, spread = decoded
            stats.add(str(label), pixels, histogram, spread)
    return stats


def originals_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows whose original is stored (a non-empty ``original_path``)."""
    if "original_path" not in frame:
        return frame.iloc[0:0]
    keep = frame["original_path"].fillna("").astype(str) != ""
    return frame[keep].reset_index(drop=True)


def copies_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The manifest with the stored copies' sizes in the ``orig_*`` columns (for the figures)."""
    if "width" not in frame or "height" not in frame:
        return frame.iloc[0:0]
    return frame.assign(orig_width=frame["width"], orig_height=frame["height"])


# ------------------------------------------------------------------ figures ----------------
def _png(fig: Figure) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fig_pixel_counts(frame: pd.DataFrame, title: str = "Original pixel counts") -> bytes:
    plt = _pyplot()
    pixels = frame["orig_width"].astype("float64") * frame["orig_height"].astype("float64")
    from matplotlib.ticker import NullFormatter

    low, high = max(pixels.min(), 1), max(pixels.max(), 2)
    one_size = high <= low  # the stored copies: one bin around it, linear axis
    bins = np.linspace(low * 0.9, high * 1.1, 3) if one_size else np.geomspace(low, high, 30)
    fig, ax = plt.subplots(figsize=(7, 4))
    groups = [(str(k), pixels[v]) for k, v in frame.groupby("label", sort=True).groups.items()]
    ax.hist([g for _, g in groups], bins=bins, stacked=True, label=[k for k, _ in groups])
    if not one_size:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # dozens of minor labels: slow, unreadable
    ax.set(title=title, xlabel="width x height (pixels)", ylabel="images")
    ax.legend(fontsize="small")
    return _png(fig)


def fig_aspect_ratio(frame: pd.DataFrame,
                     title: str = "Aspect ratio of the originals (mean ▲, quartiles)") -> bytes:
    plt = _pyplot()
    aspect = frame["orig_width"].astype("float64") / frame["orig_height"].astype("float64")
    groups = [(str(k), aspect[v].to_numpy())
              for k, v in frame.groupby("label", sort=True).groups.items()]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot([g for _, g in groups], showmeans=True)
    ax.set_xticks(range(1, len(groups) + 1), [k for k, _ in groups])
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax.set(title=title, ylabel="width / height")
    return _png(fig)


def fig_cropped_share(stats: dict[str, Any]) -> bytes:
    plt = _pyplot()
    labels = list(stats["classes"])
    shares = [stats["classes"][k]["cropped_share"] for k in labels]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(labels, shares)
    ax.set_ylim(0, 1)
    ax.set(title="Share centre-cropped by the resize rule", ylabel="share of images")
    return _png(fig)


def fig_intensity(pixels: PixelStats, title: str = "Pixel intensity per channel (stored images)") -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for c, (name, colour) in enumerate(zip(CHANNELS, ("red", "green", "blue"), strict=True)):
        total = pixels.histogram[c].sum() or 1
        ax.plot(np.arange(256), pixels.histogram[c] / total, color=colour, label=name)
    ax.set(title=title, xlabel="value",
           ylabel="share of pixels", xlim=(0, 255))
    ax.legend()
    return _png(fig)


def fig_mean_images(pixels: PixelStats, title: str = "Mean image per class") -> bytes:
    plt = _pyplot()
    means = pixels.mean_images()
    fig, axes = plt.subplots(1, max(len(means), 1), figsize=(2.2 * max(len(means), 1), 2.6),
                             squeeze=False)
    for ax, (label, image) in zip(axes[0], means.items(), strict=False):
        ax.imshow(image)
        ax.set_title(f"{label} (n={pixels.counts[label]})", fontsize="small")
    for ax in axes[0]:
        ax.axis("off")
    fig.suptitle(title)
    return _png(fig)


def fig_dynamic_range(pixels: PixelStats, title: str) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(pixels.ranges, bins=np.arange(0, 257, 8))
    ax.set(title=title, xlabel="max - min pixel value of an image", ylabel="images", xlim=(0, 256))
    return _png(fig)


# ------------------------------------------------------------------ the stage --------------
def _check_columns(frame: pd.DataFrame, uri: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame]
    if missing:
        raise PixtagError(f"the manifest at {uri} lacks column(s) {', '.join(missing)}; "
                          "run `pixtag validate` for a full report")
    if frame.empty:
        raise PixtagError(f"the dataset at {uri} has no images to describe")


def _pixel_tables(pixels: PixelStats) -> dict[str, Any]:
    means = pixels.mean_images()
    return {
        "intensity": {"channels": pixels.channel_stats(),
                      "histogram": {n: pixels.histogram[c].tolist() for c, n in enumerate(CHANNELS)}},
        "dynamic_range": {"quartiles": pixels.dynamic_range(), "per_image": pixels.ranges},
        "mean_images": {label: {"count": pixels.counts[label],
                                "mean_rgb": [_r(v) for v in image.mean(axis=(0, 1))]}
                        for label, image in means.items()},
    }


def _copies_figures(copies: Any, figures: dict[str, bytes], tables: dict[str, Any]) -> dict[str, Any]:
    """The stored copies' (the study's resized images) pixel counts and aspect ratios, added to
    ``figures`` and ``tables``; their stats (``{}`` without copies)."""
    if copies.empty:
        return {}
    copy_stats = manifest_stats(copies)
    figures["copies_pixel_counts"] = fig_pixel_counts(copies, "Pixel counts of the stored copies")
    figures["copies_aspect_ratio"] = fig_aspect_ratio(copies, "Aspect ratio of the stored copies")
    tables["copies_pixel_counts"] = {k: c["pixel_count"] for k, c in copy_stats["classes"].items()}
    tables["copies_aspect_ratio"] = {k: c["aspect_ratio"] for k, c in copy_stats["classes"].items()}
    return copy_stats


def _originals_figures(store: Storage, originals: Any, images: int, size: int, figures: dict[str, bytes],
                       tables: dict[str, Any]) -> dict[str, Any]:
    """The kept originals' intensity, dynamic range and mean image per class, added to
    ``figures`` and ``tables``; what the summary says of them."""
    original: dict[str, Any] = {"stored": len(originals), "missing": images - len(originals)}
    if originals.empty:
        return original
    opixels = pixel_stats(store, originals, size, column="original_path")
    figures["originals_intensity"] = fig_intensity(opixels, "Pixel intensity per channel (originals)")
    figures["originals_dynamic_range"] = fig_dynamic_range(opixels, "Dynamic range of the originals")
    figures["originals_mean_images"] = fig_mean_images(opixels, f"Mean original per class (resized to {size} px)")
    otables = _pixel_tables(opixels)
    tables |= {f"originals_{k}": v for k, v in otables.items()}
    return original | {"intensity": opixels.channel_stats(), "dynamic_range": opixels.dynamic_range(),
                       "unreadable": opixels.unreadable,
                       "mean_image_rgb": {k: v["mean_rgb"] for k, v in otables["mean_images"].items()}}


def describe(dataset_uri: str, settings: Settings, out: str | None = None,
             store: Storage | None = None) -> dict[str, Any]:
    """Write the figures, their tables and ``summary.json`` to ``out`` or
    ``<dataset>/reports/describe``.

    Returns the summary (also what ``summary.json`` holds), with the figures' locations.
    ``store``: ``dataset_uri`` already opened.
    """
    store = store or open_storage(dataset_uri, settings.s3_endpoint_url)
    raw = read_raw_manifest(store)
    frame = raw[~excluded_mask(raw, read_exclusions(store))].reset_index(drop=True)
    _check_columns(frame, store.uri)
    stats = manifest_stats(frame)
    pixels = pixel_stats(store, frame, settings.image_size)
    copies = copies_frame(frame)
    originals = originals_frame(frame)
    target = open_storage(out, settings.s3_endpoint_url) if out else store.child(DESCRIBE_DIR)
    tables = _pixel_tables(pixels)
    figures = {
        "pixel_counts": fig_pixel_counts(frame),
        "aspect_ratio": fig_aspect_ratio(frame),
        "cropped_share": fig_cropped_share(stats),
        "intensity": fig_intensity(pixels),
        "dynamic_range": fig_dynamic_range(pixels, "Dynamic range of the stored images"),
        "mean_images": fig_mean_images(pixels),
    }
    tables |= {"pixel_counts": {k: c["pixel_count"] for k, c in stats["classes"].items()}
               | {"all": stats["pixel_count"]},
               "aspect_ratio": {k: c["aspect_ratio"] for k, c in stats["classes"].items()}
               | {"all": stats["aspect_ratio"]},
               "cropped_share": {k: c["cropped_share"] for k, c in stats["classes"].items()}
               | {"all": stats["cropped_share"]}}
    copy_stats = _copies_figures(copies, figures, tables)
    original = _originals_figures(store, originals, len(frame), settings.image_size, figures, tables)
    for name, png in figures.items():
        target.write_bytes(f"{name}.png", png)
        target.write_json(f"{name}.json", tables[name])
    for label, c in tables["mean_images"].items():
        stats["classes"][label]["mean_image_rgb"] = c["mean_rgb"]
    summary = {
        "dataset": store.uri,
        **stats,
        "intensity": pixels.channel_stats(),
        "dynamic_range": pixels.dynamic_range(),
        "unreadable_images": pixels.unreadable,
        "copies": {k: copy_stats[k] for k in ("pixel_count", "aspect_ratio")} if copy_stats else {},
        "originals": original,
        "figures": {name: target.url(f"{name}.png") for name in figures},
        "tables": {name: target.url(f"{name}.json") for name in figures},
        "summary": target.url("summary.json"),
    }
    target.write_json("summary.json", summary)
    return summary
