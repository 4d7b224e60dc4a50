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
CLEAN_SKEW = 1.6  # post dates are skewed towards now (instances grow): days = max * u ** skew
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
    def habit(self) -> str:
        """The spelling someone adds to every post out of habit (``#CatsOfPixelfed``)."""
        return next((v for v, _ in self.variants if v.endswith("OfPixelfed")),
                    self.variants[0][0] if self.variants else self.base)

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
    # ../shared/data/photos_more. A nickname never normalises to another class's word (pixtag
    # normalize), and none is a generic word (food, insect, noodle, wildlife) that could outrank
    # a class in trending or be its hypernym.
    "butterfly": ClassTags("butterfly", (("Butterflies", 0.25), ("ButterflyPhotography", 0.15)),
                           (("lepidoptera", 0.05),)),
    "deer": ClassTags("deer", (("DeerOfPixelfed", 0.2), ("Deers", 0.05)), (("fawn", 0.06),)),
    "fox": ClassTags("fox", (("Foxes", 0.25), ("FoxesOfPixelfed", 0.15)), (("RedFox", 0.08),)),
    "hedgehog": ClassTags("hedgehog", (("Hedgehogs", 0.25), ("HedgehogsOfPixelfed", 0.2)),
                          (("hedgie", 0.08),)),
    "motorcycle": ClassTags("motorcycle", (("Motorcycles", 0.25), ("MotorcyclesOfPixelfed", 0.15)),
                            (("motorbike", 0.06), ("moto", 0.06))),
    "mushroom": ClassTags("mushroom", (("Mushrooms", 0.3), ("MushroomsOfPixelfed", 0.12)),
                          (("fungi", 0.1), ("FungiFriday", 0.06), ("shroom", 0.05))),
    "pizza": ClassTags("pizza", (("PizzaTime", 0.15), ("HomemadePizza", 0.12), ("Pizzas", 0.05))),
    "rabbit": ClassTags("rabbit", (("Rabbits", 0.2), ("RabbitsOfPixelfed", 0.15)),
                        (("bunny", 0.12),)),
    "ramen": ClassTags("ramen", (("RamenTime", 0.12), ("RamenLover", 0.08)),
                       (("tonkotsu", 0.05),)),
    "snail": ClassTags("snail", (("Snails", 0.25), ("SnailsOfPixelfed", 0.15))),
    "spider": ClassTags("spider", (("Spiders", 0.25), ("SpidersOfPixelfed", 0.15)),
                        (("spiderweb", 0.05),)),
    "squirrel": ClassTags("squirrel", (("Squirrels", 0.25), ("SquirrelsOfPixelfed", 0.15)),
                          (("RedSquirrel", 0.06),)),
    "sushi": ClassTags("sushi", (("SushiTime", 0.12), ("SushiLover", 0.08)), (("nigiri", 0.06),)),
}
COMPANION_RATE = 0.12
MIXED_ALBUM_BIG_RATE = 0.35  # albums mixing two classes: share with two photos of the first
BASE_CAPITALISED_RATE = 0.1

# Off-topic tags: (spelling, share of public posts). The first block is the frequent one.
OFF_TOPIC: tuple[tuple[str, float], ...] = (
    ("photography", 0.35), ("mastodon", 0.08), ("travel", 0.10), ("thursday", 0.08),
    ("Halloween", 0.06), ("war", 0.05), ("Pixelfed", 0.05), ("fediverse", 0.04),
    # long tail. Concrete nouns (animal, pet, sunset, sky, art, photo, street...) stay at 1 % or
    # less: with eighteen classes a class is only some 3 % of the timeline, and each of them
    # must stay below every class in trending.
    ("nature", 0.03), ("art", 0.01), ("weekend", 0.02), ("summer", 0.02), ("autumn", 0.02),
    ("GoldenHour", 0.02), ("bokeh", 0.015), ("macro", 0.015), ("BlackAndWhite", 0.015),
    ("PhotoOfTheDay", 0.01), ("StreetPhotography", 0.006), ("analog", 0.01), ("film", 0.01),
    ("love", 0.015), ("mood", 0.01), ("sunday", 0.015), ("music", 0.01), ("FediPhoto", 0.006),
    ("animal", 0.01), ("pet", 0.008), ("sunset", 0.01), ("sky", 0.008), ("tree", 0.006),
    ("garden", 0.008), ("coffee", 0.006), ("beach", 0.005),
)
FILLER_FALLBACK_TAGS = ("photography", "nature", "travel", "abstract", "weekend", "GoldenHour")
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
    "animals_insects": (("insect", 0.4), ("bees", 0.3), ("bugs", 0.3)),  # ants, bees, a wasp
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
    "butterfly": ("Landed right in front of me", "Wings open for one second", "Garden visitor",
                  "Finally sat still", "Summer colours"),
    "deer": ("Early morning in the park", "We looked at each other for a while",
             "Quiet visitor at the edge of the woods", "Trail camera caught this one"),
    "fox": ("Urban fox on the night shift", "Saw this one on my way home", "Sly",
            "Camera trap surprise", "That tail"),
    "hedgehog": ("Night visitor in the garden", "Tiny and spiky", "Found him under the hedge",
                 "Please put out water for them", "Rescue update"),
    "motorcycle": ("Sunday ride", "Bike night", "Garage day", "Parked outside the cafe",
                   "Ready for the pass road"),
    "mushroom": ("Found on today's walk", "Forest floor treasure", "Autumn in the woods",
                 "Do not eat, just admire", "After the rain"),
    "pizza": ("Friday night", "First try with the new oven", "Dinner is served",
              "Crust goals", "Best slice in town"),
    "rabbit": ("Ears up", "Morning zoomies", "Dandelion thief", "Nap time",
               "Spotted in the meadow"),
    "ramen": ("Rainy day lunch", "Slurp", "Broth simmered all day", "Found a new place",
              "Worth the queue"),
    "snail": ("Slow morning", "After the rain", "Tiny architect", "Garden patrol",
              "Taking its time"),
    "spider": ("Garden weaver", "Found in the shed", "Not as scary up close",
               "Morning dew on the web", "Eight legs, zero worries"),
    "squirrel": ("Caught stealing from the feeder", "Nut season", "Park regular",
                 "Posing for once", "Busy busy"),
    "sushi": ("Date night", "Omakase", "Lunch break treat", "Fresh", "Made it at home"),
}
MIXED_CAPTIONS = ("Photo dump from the week", "Weekend dump", "Camera roll clean-out",
                  "Bits and pieces", "A bit of everything today")
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
    """Known spellings for the demo classes (photos5, photos_more); for others the name, its
    plural and NameOfPixelfed."""
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

