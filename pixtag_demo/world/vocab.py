"""How people on the demo instance tag, name and caption things, and the builder's shares.

Hashtag spellings per class, off-topic tags, the everyday photos' tags, the per-post and
per-media quirks (spec §6), licences, names, bios and captions: the tables
:mod:`pixtag_demo.world.builder` draws from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ALBUM_RATE = 0.06  # share of clean posts that are albums of 2-3 photos
VARIANT_ONLY_EVERY = 30  # one clean post in this many carries only a variant, not the base tag
CLEAN_MAX_DAYS = 175  # clean posts stay inside the 6-month tag wall
FILLER_PER_PHOTO = 0.3  # off-topic posts (synthetic images) per photo
NOISE_PER_PHOTO = 0.25  # #nofilter posts, mostly private/unlisted (short tag-timeline pages)
TEXT_PER_PHOTO = 0.03  # media-less posts
DIRECT_POSTS = 3


# ------------------------------------------------------------------------------- hashtags ----
@dataclass(frozen=True)
class ClassTags:
    """How people tag one class: the base tag, spelling variants, nicknames, a companion."""

    base: str
    variants: tuple[tuple[str, float], ...]  # (tag, probability on a clean post)
    nicknames: tuple[tuple[str, float], ...] = ()
    companion: str | None = None  # only ever next to another class tag (e.g. #caturday)

    @property
    def names(self) -> list[str]:
        names = [self.base, *(v for v, _ in self.variants), *(n for n, _ in self.nicknames)]
        return [*names, self.companion] if self.companion else names


KNOWN_CLASS_TAGS: dict[str, ClassTags] = {
    "cat": ClassTags("cat", (("Cats", 0.25), ("CatsOfPixelfed", 0.2)), (("kitty", 0.08),),
                     companion="caturday"),
    "dog": ClassTags("dog", (("Dogs", 0.25), ("DogsOfPixelfed", 0.2)), (("puppy", 0.08),)),
    "bird": ClassTags("bird", (("Birds", 0.2), ("BirdPhotography", 0.2)), (("birding", 0.08),)),
    "flower": ClassTags("flower", (("Flowers", 0.25), ("FlowerPhotography", 0.15))),
    "car": ClassTags("car", (("Cars", 0.25), ("CarsOfPixelfed", 0.2)), (("carspotting", 0.08),)),
}
COMPANION_RATE = 0.12
BASE_CAPITALISED_RATE = 0.1

# Off-topic tags: (spelling, share of public posts). The first block is the frequent one.
OFF_TOPIC: tuple[tuple[str, float], ...] = (
    ("photography", 0.35), ("mastodon", 0.08), ("travel", 0.10), ("thursday", 0.08),
    ("Halloween", 0.06), ("war", 0.05), ("Pixelfed", 0.05), ("fediverse", 0.04),
    # long tail; concrete nouns (animal, pet, sunset, sky, ...) stay well below any class
    ("nature", 0.03), ("art", 0.02), ("weekend", 0.02), ("summer", 0.02), ("autumn", 0.02),
    ("GoldenHour", 0.02), ("bokeh", 0.015), ("macro", 0.015), ("BlackAndWhite", 0.015),
    ("PhotoOfTheDay", 0.02), ("StreetPhotography", 0.015), ("analog", 0.01), ("film", 0.01),
    ("love", 0.015), ("mood", 0.01), ("sunday", 0.015), ("music", 0.01), ("FediPhoto", 0.015),
    ("animal", 0.03), ("pet", 0.02), ("sunset", 0.025), ("sky", 0.02), ("tree", 0.01),
    ("garden", 0.015), ("coffee", 0.01), ("beach", 0.01),
)
FILLER_FALLBACK_TAGS = ("photography", "nature", "travel", "art", "weekend", "GoldenHour")
CAPITALISED_RATE = 0.15  # an off-topic tag written capitalised in the content

# Everyday photos of none of the classes (``--others``: ``SUBJECT/*.jpg``), tagged as people tag
# them: (spelling, probability) per subject folder. They are recent (the public timeline shows
# 90 days), so they are most of it, as on a real instance; each tag stays below any class tag.
OTHER_TAGS: dict[str, tuple[tuple[str, float], ...]] = {
    "landscape": (("landscape", 0.6), ("mountains", 0.3), ("hiking", 0.25), ("nature", 0.4)),
    "sea_beach": (("sea", 0.5), ("beach", 0.45), ("ocean", 0.3), ("seascape", 0.2)),
    "food_drinks": (("foodporn", 0.5), ("food", 0.4), ("foodphotography", 0.3), ("brunch", 0.1)),
    "buildings_street": (("StreetPhotography", 0.5), ("architecture", 0.45), ("city", 0.3)),
    "people": (("portrait", 0.6), ("people", 0.3), ("PortraitPhotography", 0.25)),
    "indoor_rooms": (("interior", 0.5), ("home", 0.35), ("InteriorDesign", 0.3), ("cozy", 0.2)),
    "forest_trees": (("forest", 0.6), ("trees", 0.4), ("woods", 0.2)),
    "sky_sunset": (("sunset", 0.6), ("sky", 0.4), ("clouds", 0.3)),
    "city_night": (("NightPhotography", 0.5), ("cityscape", 0.4), ("lights", 0.2)),
    "art_museum": (("museum", 0.5), ("painting", 0.35), ("ArtGallery", 0.3)),
    "vehicles_other": (("train", 0.3), ("bicycle", 0.2), ("boat", 0.2), ("transport", 0.3)),
    "animals_land": (("wildlife", 0.5), ("zoo", 0.3), ("animals", 0.3)),
    "animals_sea": (("underwater", 0.5), ("fish", 0.3), ("diving", 0.3), ("marine", 0.2)),
    "animals_insects": (("insect", 0.4), ("butterfly", 0.3), ("bugs", 0.3)),
    "text_drawings": (("sketch", 0.5), ("drawing", 0.4), ("illustration", 0.3)),
}
OTHER_FALLBACK_TAGS = ("photography", "PhotoOfTheDay", "travel", "weekend")
OTHER_MAX_DAYS = 90
# Tags that hold a class word without meaning the class: the study's normalisation splits
# #HotDog into "hot dog", so these posts are class-tagged and must never become background.
OTHER_TRAPS: dict[str, tuple[str, int]] = {"food_drinks": ("HotDog", 2), "people": ("CatWalk", 2)}
# Privacy traps among the everyday photos: (post kind, every n-th photo).
OTHER_PRIVACY: tuple[tuple[str, int], ...] = (("other_sensitive", 37), ("other_locked", 41),
                                              ("other_opt_out", 43))

# Per-post and per-media real-world variance (spec §6), each on a small deterministic minority.
POST_QUIRKS: dict[str, float] = {
    "tags_empty": 0.05,  # `tags: []` while the content carries the hashtag links
    "counts_as_strings": 0.05,
    "date_micro": 0.06,  # six fractional digits
    "date_offset": 0.03,  # +00:00 instead of Z
    "bools_null": 0.05,
}
MEDIA_QUIRKS: dict[str, float] = {
    "type_capitalised": 0.04,  # "Image"
    "meta_null": 0.05,
    "nsfw_as_int": 0.08,  # is_nsfw 0/1 (only visible with _pe=1)
    "legacy_path": 0.05,  # /storage/m/<40hex>/<40hex>/<name>.jpg
    "preview_is_url": 0.04,
    "description_null": 0.05,
}
LICENSES: dict[int, tuple[str, str]] = {  # app/Util/Media/License.php (1 = default -> null)
    5: ("Public Domain", "/site/kb/licenses"),
    6: ("Public Domain (CC0)", "/site/kb/licenses"),
    11: ("CC BY", "https://creativecommons.org/licenses/by/4.0/"),
    12: ("CC BY-SA", "https://creativecommons.org/licenses/by-sa/4.0/"),
    13: ("CC BY-NC", "https://creativecommons.org/licenses/by-nc/4.0/"),
    14: ("CC BY-NC-SA", "https://creativecommons.org/licenses/by-nc-sa/4.0/"),
    15: ("CC BY-ND", "https://creativecommons.org/licenses/by-nd/4.0/"),
    16: ("CC BY-NC-ND", "https://creativecommons.org/licenses/by-nc-nd/4.0/"),
}

# ------------------------------------------------------------------------- people & words ---
FIRST_NAMES = (
    "mira", "tomas", "ana", "jonas", "lea", "noah", "sofia", "elias", "maya", "luca", "ines",
    "oskar", "yara", "felix", "nora", "emil", "zoe", "arne", "lina", "theo", "ida", "milan",
    "rosa", "kai", "vera", "jan", "alma", "leon", "ella", "finn", "hanna", "otto", "clara",
    "nils", "ruth", "pablo", "greta", "ivan", "lotte", "sami", "amira", "bruno", "dana", "erik",
    "fatima", "gus", "helga", "igor", "jade", "karl", "liv", "marek", "nadia", "olga", "pia",
)
SURNAMES = (
    "berg", "novak", "costa", "meyer", "silva", "janssen", "kowal", "moreau", "rossi", "lind",
    "horvat", "dubois", "peters", "nagy", "ferreira", "olsen", "weber", "marin", "kaya", "sato",
)
USERNAME_STYLES = ("{f}", "{f}_{s}", "{f}.photos", "{f}{d}", "{f}_shoots", "the{f}", "{f}_lens",
                   "{s}{f}", "{f}{s}")
BIOS = (
    "Amateur photographer. Mostly walks and whatever crosses my path.",
    "Cats, coffee and code.", "Weekend birder, weekday accountant.",
    "Film and digital. Based in a small town by the sea.", "I photograph my garden. A lot.",
    "Car nerd. Old Volvos forever.", "Dog person. Three of them.", "Just here for the pictures.",
    "Hobbyist with a second-hand camera.", "Teacher, hiker, occasional photographer.",
    "Street and nature, sometimes both.", "Photos from my commute.", "He/him. Lenses and bikes.",
    "Trying to post one photo a day.", "Flowers, bugs and the odd bird.", "",
)
OPT_OUT_BIOS = {
    "#nobot": "Hobby photographer. No bots, no scraping please. #nobot",
    "#noai": "My photos are not training data. #noai",
    "#noindex": "Small account, small audience, please keep it that way. #noindex",
}
CAPTIONS: dict[str, tuple[str, ...]] = {
    "cat": ("Sunday nap", "She owns the sofa now", "Caught mid-yawn", "Window watch duty",
            "The judge has entered the room", "Loaf mode", "Who needs a bed anyway"),
    "dog": ("Walkies!", "Best boy", "Muddy and proud", "Waiting for the ball", "Park day",
            "That face though", "Sleepy after the beach"),
    "bird": ("Spotted this one this morning", "Finally got the shot", "Visitor at the feeder",
             "Early light at the lake", "Perched and posing", "Migration season"),
    "flower": ("Spring is here", "From the garden today", "Macro Monday", "Bloom",
               "After the rain", "The tulips are out"),
    "car": ("Spotted downtown", "Classic beauty", "Car show finds", "Parked in the sun",
            "Not mine, sadly", "Saturday meet"),
}
GENERIC_CAPTIONS = ("Today's find", "Look at this", "Out and about", "Snapshot", "One more")
FILLER_CAPTIONS = ("Morning light", "Out for a walk", "Colours of the day", "Somewhere",
                   "Blurry but I like it", "Light and shadow", "Testing the new lens",
                   "Evening", "Abstract", "Textures")
TEXT_CAPTIONS = ("Does anyone know a good vet nearby?", "New lens arrived, photos soon!",
                 "Is it just me or is the light amazing today?", "Thinking about a photo walk",
                 "Which camera should I buy next?", "Posting more this week, promise")
SPOILERS = ("Vet visit", "Injury (healing well)", "Eye contact", "Food", "Sensitive content",
            "Dead bird, sorry")
ALT_TEXTS = ("Photo", "A photo I took", "", "Picture from my walk", "Close-up")


def class_tags_for(name: str) -> ClassTags:
    """Known spellings for the five demo classes; for others the name, plural, NameOfPixelfed."""
    base = re.sub(r"[^0-9a-z]", "", name.lower()) or "thing"
    if base in KNOWN_CLASS_TAGS:
        return KNOWN_CLASS_TAGS[base]
    camel = "".join(p.capitalize() for p in re.split(r"[^0-9A-Za-z]+", name) if p) or "Thing"
    return ClassTags(base, ((_plural(camel), 0.25), (f"{camel}OfPixelfed", 0.2)))


def _plural(word: str) -> str:
    if word.endswith("y") and word[-2:-1] not in tuple("aeiou"):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"

