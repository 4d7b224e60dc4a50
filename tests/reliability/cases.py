"""What the reliability suite tries, in one place.

The tests run these lists (parametrized or looped), and ``test_readme_figures.py`` checks that
the README's "Reliability" table quotes the counts below, so the figures cannot drift from
what is actually tried.
"""

from __future__ import annotations

from pixtag_demo.faults import Faults

# --- faults of the instance -------------------------------------------------------------------
# Settings that keep retries fast in tests (the defaults wait up to minutes, as a real
# instance deserves).
FAST_RETRIES = {"max_retry_after": 0.05, "retry_backoff": 0.01, "retry_backoff_max": 0.05,
                "request_timeout": 0.5}

FAULT_KINDS = {
    "429_retry_after": "429 with Retry-After",
    "429_no_retry_after": "429 without Retry-After",
    "5xx": "500/502/503",
    "reset": "connection reset",
    "slow": "response slower than the timeout",
    "truncated": "truncated body (Content-Length not met)",
    "corrupt_media": "corrupt media bytes",
    "html": "HTML error page with status 200",
    "malformed_json": "malformed JSON with status 200",
    "unexpected_json": "unexpected JSON (wrong shape, missing fields, wrong types)",
    "repeat_page": "pagination that repeats",
    "endless_pages": "pagination that never ends",
}

# Each knob at a rate that retries absorb: the scrape must give the clean run's manifest. Seeds
# are chosen so that each knob fires within the first few requests of a scrape.
ABSORBED = {
    "429_retry_after": Faults(seed=1, rate_429=0.25, retry_after=0),
    "429_no_retry_after": Faults(seed=2, rate_429=0.25, retry_after=None),
    "5xx": Faults(seed=3, rate_5xx=0.25),
    "slow": Faults(seed=4, slow_rate=0.15, slow_seconds=1.5),
    "truncated": Faults(seed=5, truncate_media_rate=0.25),
    "html": Faults(seed=13, html_error_rate=0.3),
    "malformed_json": Faults(seed=14, malformed_json_rate=0.3),
    "repeat_page": Faults(seed=8, repeat_page=2),
    "mixed": Faults(seed=9, rate_429=0.08, retry_after=0, rate_5xx=0.08, slow_rate=0.05, slow_seconds=1.5,
                    truncate_media_rate=0.08, html_error_rate=0.05, malformed_json_rate=0.05),
}
ABSORBED_RETRIES = 8

# Each API knob always on: one clear error naming the endpoint (and status), in bounded time.
PERSISTENT_API = {
    "429_retry_after": (Faults(rate_429=1.0, retry_after=0), "returned HTTP 429"),
    "429_no_retry_after": (Faults(rate_429=1.0, retry_after=None), "returned HTTP 429"),
    "5xx": (Faults(seed=1, rate_5xx=1.0), "returned HTTP 50[023]"),
    "slow": (Faults(slow_rate=1.0, slow_seconds=2.0), "timed out after 0.5s"),
    "html": (Faults(html_error_rate=1.0), "expected JSON, got text/html"),
    "malformed_json": (Faults(malformed_json_rate=1.0), "malformed JSON"),
}
PERSISTENT_RETRIES = 2
# Each media knob always on: every image is a counted drop, the scrape still completes.
PERSISTENT_MEDIA = {
    "truncated": (Faults(truncate_media_rate=1.0), {"download_failed"}),
    "corrupt_media": (Faults(seed=2, corrupt_media_rate=1.0), {"corrupt_image", "not_image"}),
}

# --- SSRF: DNS names that resolve where pixtag must never go ---------------------------------
DNS_TRAPS = {
    "metadata.evil.example": "169.254.169.254",
    "loopback.evil.example": "127.0.0.1",
    "private.evil.example": "10.0.0.7",
    "carrier-nat.evil.example": "100.64.0.1",
    "v6-loopback.evil.example": "::1",
    "v4-mapped.evil.example": "::ffff:192.168.1.1",
    "unique-local.evil.example": "fd00::1",
}

# --- crash safety: SIGKILL points (seeded) ---------------------------------------------------
KILL_SEED = 20261126
SCRAPE_KILLS = 3
FEATURE_KILLS = 2
TRAIN_KILLS = 4  # spread over the train task's and the register task's MLflow writes

# --- bad settings and Params -----------------------------------------------------------------
BAD_ENV = {  # env var -> (value, field named in the error)
    "PIXTAG_REQUEST_RATE": ("0", "request_rate"),
    "PIXTAG_INSTANCE_URL": ("ftp://pixel.example", "instance_url"),
    "PIXTAG_MAX_RETRIES": ("-1", "max_retries"),
    "PIXTAG_DOWNLOAD_CONCURRENCY": ("lots", "download_concurrency"),
    "PIXTAG_STORAGE": ("gs://bucket/x", "storage"),
    "PIXTAG_BATCH_SIZE": ("0", "batch_size"),
    "PIXTAG_WEIGHTS": ("not json", "weights"),
    "PIXTAG_ACCURACY_FLOOR": ("1.5", "accuracy_floor"),
    "PIXTAG_TOLERANCE": ("-0.1", "tolerance"),
    "PIXTAG_PROMOTION": ("sometimes", "promotion"),
    "PIXTAG_LOG_LEVEL": ("LOUD", "log_level"),
}
BAD_PARAMS = {  # DAG Param -> (value outside its schema, also a bad setting)
    "per_class": 5,
    "accuracy_floor": 1.5,
    "tolerance": -1,
    "backbone": "resnet_from_the_internet",
    "posts_to_sample": 0,
    "add_tags": ["not a tag!"],
}

BAD_YAML = {  # file content -> what the error names
    "per_clas: 3\nbatch_size: many\n": ("unknown setting 'per_clas'", "invalid setting 'batch_size'"),
    "classes: [cat\n": ("the config file is not valid YAML",),
}
# Param values that get past a lax client but that the settings refuse (the form's schema is
# stricter still).
BAD_FOR_SETTINGS = {"per_class": 0, "accuracy_floor": 1.5, "tolerance": -1, "posts_to_sample": 0}

# --- privacy ---------------------------------------------------------------------------------
# Every kind of non-consenting post planted in the local instance (test_privacy.py).
PLANTED_DEMO = ("locked", "unlisted", "private", "direct", "sensitive", "spoiler", "media_nsfw",
                "bio_nobot", "bio_noai", "bio_noindex", "bio_nosearch", "bio_noarchive", "not_indexable")
# ... and the ones only a misbehaving server can send (a scripted instance).
PLANTED_SCRIPTED = ("discoverable_false", "locked_unknown", "sensitive_unknown", "private_shown",
                    "direct_shown", "unlisted_shown", "nsfw_as_string", "indexable_as_zero")

# --- the bot (test_bot.py) ---------------------------------------------------------------------
# Instance errors while the bot polls its notifications and while it posts its answers; each at a
# rate its retries absorb (seeded so that the first request on the route is hit), then one always
# on until it is lifted.
BOT_FAULTS = {
    "poll_429": Faults(seed=2, rate_429=0.5, retry_after=0, routes=("GET /api/v1/notifications",)),
    "poll_5xx": Faults(seed=10, rate_5xx=0.5, routes=("GET /api/v1/notifications",)),
    "poll_timeout": Faults(seed=12, slow_rate=0.5, slow_seconds=1.0, routes=("GET /api/v1/notifications",)),
    "post_429": Faults(seed=13, rate_429=0.5, retry_after=0, routes=("POST /api/v1/statuses",)),
    "post_5xx": Faults(seed=14, rate_5xx=0.5, routes=("POST /api/v1/statuses",)),
    # a timed-out post that the instance still makes: the retry is refused by its Idempotency-Key
    "post_timeout": Faults(seed=15, slow_rate=0.5, slow_seconds=1.0, routes=("POST /api/v1/statuses",)),
    "post_down": Faults(rate_5xx=1.0, routes=("POST /api/v1/statuses",)),
}
BOT_KILLS = 4  # SIGKILLs of `pixtag bot --once` at seeded points between reading and recording
# Mentions no bot should trust, each answered rightly or refused in the log while the bot runs on.
BOT_HOSTILE = ("no_media", "too_many_media", "video", "animation", "decompression_bomb", "truncated_jpeg",
               "ssrf_remote_media", "deleted_before_answer", "parent_deleted", "sensitive", "content_warning",
               "someone_elses_post", "nobot_author", "flood")
