"""Make training/photos/ from the sample photographs of Debian's opencv-doc package and the
photographs among Debian's desktop wallpapers, and training/cutouts/ from the photographed
objects among Tux Paint's stamps.

    apt-get install opencv-doc            # or: apt-get download opencv-doc && dpkg -x opencv-doc_*.deb DIR
    apt-get install mate-backgrounds plasma-workspace-wallpapers \
        lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 \
        tuxpaint-stamps-default            # or apt-get download + dpkg -x into ROOT
    python training/import_photos.py      # --examples DIR/usr/share/doc/opencv-doc/examples --root ROOT

The demo model's training recipe (version 4 on) draws backgrounds from these photos as well
as from those that installed Python packages ship (synth.TRAIN_PHOTOS). They are committed,
scaled down so that the longer side is at most MAX_SIDE, so that training needs no apt
package; this script is how they were made, and shows where each one comes from. Their
license is in training/photos/README.md.

The choice: real scenes (animals, plants, streets, buildings, aerial views) in which no flat
circle, triangle, rectangle or star is the subject. Left out: the calibration chessboards,
drawings and renders, the logo, text pages, and the photos of round or boxy things (fruits,
balls, sweets, boxes, a circuit board, a notebook, a number plate). Of the wallpapers (recipe
version 5 on), the photographs only: not the renders, vector art and logos (all of
gnome-backgrounds 43.1), and not the photos of round things (rain drops, a ladybird's spots,
a flower seen flat as a disc), a maple leaf (a star), or a boat's plate with text. Of the
Lomiri wallpapers (recipe version 6 on), likewise: not the renders (all of ukui-wallpapers),
and not a fig in a bowl, two round lamps, a clock face, dandelion seed heads, or the sun's disc.
Of Tux Paint's stamps (recipe version 7 on): the photographed animals, tools, household things,
trees and a truck; not the drawings and cartoons (clothes, a hedgehog, a pizza slice, goal
posts), and not the round or boxy things (balls, wheels, a light bulb, a button, a measuring
tape, a racket, a rambutan, a toolbox, bins, post boxes, a gas bottle).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

EXAMPLES = Path("/usr/share/doc/opencv-doc/examples")  # opencv-doc 4.6.0+dfsg-12 (Debian 12)
PHOTOS = Path(__file__).resolve().parent / "photos"
MAX_SIDE = 800
QUALITY = 92

# Name in the recipe: file under opencv-doc's examples/ (OpenCV's samples/data and friends).
SOURCES: dict[str, str] = {
    "plant": "alphamat/input_images/plant.jpg",
    "baboon": "data/baboon.jpg",
    "squirrel": "data/squirrel_cls.jpg",
    "chicky": "data/chicky_512.png",
    "leuven_a": "data/leuvenA.jpg",
    "leuven_b": "data/leuvenB.jpg",
    "home": "data/home.jpg",
    "building": "data/building.jpg",
    "aloe": "data/aloeL.jpg",
    "aerial_1": "data/aero1.jpg",
    "aerial_3": "data/aero3.jpg",
    "butterfly": "data/butterfly.jpg",
    "robin": "hfs/data/000.jpg",
    "street_1": "text/scenetext01.jpg",
    "street_3": "text/scenetext03.jpg",
    "street_4": "text/scenetext04.jpg",
    "street_5": "text/scenetext05.jpg",
    "street_6": "text/scenetext06.jpg",
}

# Name in the recipe: (Debian package, file in it), for the wallpapers (mate-backgrounds 1.26.0-1,
# plasma-workspace-wallpapers 4:5.27.5-2, lomiri-wallpapers-* 20.04.0-2 in Debian 12); their
# license: photos/README.md.
_LOMIRI = "usr/share/backgrounds"
WALLPAPERS: dict[str, tuple[str, str]] = {
    "leaf_veins_green": ("mate-backgrounds", "usr/share/backgrounds/mate/nature/Blinds.jpg"),
    "dune_grass_sea": ("mate-backgrounds", "usr/share/backgrounds/mate/nature/Dune.jpg"),
    "orange_petals_macro": ("mate-backgrounds", "usr/share/backgrounds/mate/nature/FreshFlower.jpg"),
    "red_marigold_bokeh": ("mate-backgrounds", "usr/share/backgrounds/mate/nature/Garden.jpg"),
    "young_grass_blades": ("mate-backgrounds", "usr/share/backgrounds/mate/nature/GreenMeadow.jpg"),
    "storm_clouds_road_blur": ("mate-backgrounds", "usr/share/backgrounds/mate/nature/Storm.jpg"),
    "weathered_wood_planks": ("mate-backgrounds", "usr/share/backgrounds/mate/nature/Wood.jpg"),
    "jetty_planks_lake": (
        "plasma-workspace-wallpapers",
        "usr/share/wallpapers/BytheWater/contents/images/2560x1600.jpg",
    ),
    "misty_lake_blue_hour": (
        "plasma-workspace-wallpapers",
        "usr/share/wallpapers/DarkestHour/contents/images/2560x1600.jpg",
    ),
    "wavy_facade_bw": (
        "plasma-workspace-wallpapers",
        "usr/share/wallpapers/Grey/contents/images/2560x1600.jpg",
    ),
    "spruce_forest_path": (
        "plasma-workspace-wallpapers",
        "usr/share/wallpapers/Path/contents/images/2560x1600.jpg",
    ),
    "lake_dawn_reeds": (
        "plasma-workspace-wallpapers",
        "usr/share/wallpapers/summer_1am/contents/images/2560x1600.jpg",
    ),
    # Since recipe version 6: lomiri-wallpapers-16.04 and -20.04 20.04.0-2 (Debian 12), in _LOMIRI.
    "steel_cables_beach": ("lomiri-wallpapers-16.04", f"{_LOMIRI}/Bridge_by_Sander_Klootwijk.jpg"),
    "sunlit_leaves_sky": ("lomiri-wallpapers-16.04", f"{_LOMIRI}/Dragonfly_by_Bolly.jpg"),
    "paint_brushes_jar": ("lomiri-wallpapers-16.04", f"{_LOMIRI}/Picture_1A_by_freespace.jpg"),
    "room_wine_beanbag": ("lomiri-wallpapers-16.04", f"{_LOMIRI}/Wine_by_Jakkub_Mede.jpg"),
    "autumn_mountain_meadow": ("lomiri-wallpapers-16.04", f"{_LOMIRI}/aitzgorri_by_Aitzol_Berasategi.jpg"),
    "film_grain_colours": ("lomiri-wallpapers-16.04", f"{_LOMIRI}/analogpattern_by_Peter_Nerlich.jpg"),
    "dogs_at_window": ("lomiri-wallpapers-16.04", f"{_LOMIRI}/friends_by_Aitzol_Berasategi.jpg"),
    "forest_stream_rocks": ("lomiri-wallpapers-16.04", f"{_LOMIRI}/life_by_Aitzol_Berasategi.jpg"),
    "rocky_peaks_path": ("lomiri-wallpapers-16.04", f"{_LOMIRI}/picosdeeuropa_by_Aitzol_Berasategi.jpg"),
    "nuthatch_tree_bark": ("lomiri-wallpapers-20.04", f"{_LOMIRI}/Kleiber_by_Lukas_Baubkus.jpg"),
}

# Since recipe version 7: photographed objects cut out on transparency, pasted under the shapes
# and on hard negatives (synth.OBJECT_CUTOUTS). Name in the recipe: file under STAMPS in Debian's
# tuxpaint-stamps-default 2022.06.04-1 (Tux Paint's stamps; license: cutouts/README.md).
CUTOUTS_DIR = Path(__file__).resolve().parent / "cutouts"
CUTOUT_MAX_SIDE = 320
STAMPS = Path("usr/share/tuxpaint/stamps")
CUTOUTS: dict[str, str] = {
    "adelaide_rosella": "animals/birds/adelaide-rosella.png",
    "albino_peahen": "animals/birds/albino_peahen.png",
    "blackbird": "animals/birds/blackbird.png",
    "chicken_profile": "animals/birds/chicken_profile.png",
    "crow": "animals/birds/crow.png",
    "crowned_crane": "animals/birds/crowned_crane.png",
    "cuckoo": "animals/birds/cuckoo.png",
    "drake": "animals/birds/drake.png",
    "duck": "animals/birds/duck.png",
    "gander": "animals/birds/gander.png",
    "guineafowl": "animals/birds/guineafowl.png",
    "helmeted_guineafowl": "animals/birds/helmeted_guineafowl.png",
    "hen": "animals/birds/hen.png",
    "heron_greatblue": "animals/birds/heron_greatblue.png",
    "heron_greatblue_flying": "animals/birds/heron_greatblue_flying.png",
    "lark": "animals/birds/lark.png",
    "little_penguin": "animals/birds/little-penguin.png",
    "magellanic_penguin": "animals/birds/magellanic_penguin.png",
    "magpie": "animals/birds/magpie.png",
    "nandou": "animals/birds/nandou.png",
    "ostrich": "animals/birds/ostrich.png",
    "owl": "animals/birds/owl.png",
    "peacock": "animals/birds/peacock.png",
    "pelican": "animals/birds/pelican.png",
    "penguin": "animals/birds/penguin.png",
    "pigeon": "animals/birds/pigeon.png",
    "pink_flamingo": "animals/birds/pink_flamingo.png",
    "quetzal": "animals/birds/quetzal.png",
    "rainbow_lorikeet": "animals/birds/rainbow-lorikeet.png",
    "rooster": "animals/birds/rooster.png",
    "seagull": "animals/birds/seagull.png",
    "silver_gull": "animals/birds/silver-gull.png",
    "tucan": "animals/birds/tucan.png",
    "turkey": "animals/birds/turkey.png",
    "vulture": "animals/birds/vulture.png",
    "badger": "animals/mammals/badger.png",
    "elephant": "animals/mammals/elephant.png",
    "ferret": "animals/mammals/ferret.png",
    "giraffe": "animals/mammals/giraffe.png",
    "hippopotamus": "animals/mammals/hippopotamus.png",
    "pig": "animals/mammals/pig.png",
    "pig_golden": "animals/mammals/pig_golden.png",
    "pig_golden2": "animals/mammals/pig_golden2.png",
    "rabbit_little": "animals/mammals/rabbit_little.png",
    "rhino_black": "animals/mammals/rhino_black.png",
    "wildboar": "animals/mammals/wildboar.png",
    "bison": "animals/mammals/bovines/bison.png",
    "bull": "animals/mammals/bovines/bull.png",
    "cow": "animals/mammals/bovines/cow.png",
    "cow_white": "animals/mammals/bovines/cow_white.png",
    "gnu_baby_stand": "animals/mammals/bovines/gnu-baby-stand.png",
    "gnu_baby": "animals/mammals/bovines/gnu-baby.png",
    "gnu_sitting": "animals/mammals/bovines/gnu-sitting.png",
    "gnu_stand": "animals/mammals/bovines/gnu-stand.png",
    "goat": "animals/mammals/bovines/goat.png",
    "indian_blackbuck": "animals/mammals/bovines/indian_blackbuck.png",
    "mountaingoat": "animals/mammals/bovines/mountaingoat.png",
    "ram": "animals/mammals/bovines/ram.png",
    "sheep": "animals/mammals/bovines/sheep.png",
    "sheep_lamb": "animals/mammals/bovines/sheep_lamb.png",
    "yak": "animals/mammals/bovines/yak.png",
    "zebu": "animals/mammals/bovines/zebu.png",
    "beaver": "animals/mammals/rodents/beaver.png",
    "capybara": "animals/mammals/rodents/capybara.png",
    "marmot": "animals/mammals/rodents/marmot.png",
    "mouse": "animals/mammals/rodents/mouse.png",
    "rabbit_2": "animals/mammals/rodents/rabbit-2.png",
    "rabbit": "animals/mammals/rodents/rabbit.png",
    "rat": "animals/mammals/rodents/rat.png",
    "squirrel": "animals/mammals/rodents/squirrel.png",
    "bluegroper": "animals/fish/bluegroper.png",
    "butterflyfish": "animals/fish/butterflyfish.png",
    "clownfish": "animals/fish/clownfish.png",
    "coraltrout": "animals/fish/coraltrout.png",
    "dolphinfish": "animals/fish/dolphinfish.png",
    "lionfish": "animals/fish/lionfish.png",
    "lobster": "animals/fish/lobster.png",
    "moonwrasse": "animals/fish/moonwrasse.png",
    "seahorse": "animals/fish/seahorse.png",
    "shrimp": "animals/fish/shrimp.png",
    "stripedfish": "animals/fish/stripedfish.png",
    "brown_slug": "animals/insects/Brown_slug.png",
    "woodlouse": "animals/insects/Woodlouse.png",
    "bee": "animals/insects/bee.png",
    "fly": "animals/insects/fly.png",
    "grasshopper": "animals/insects/grasshopper.png",
    "hornet": "animals/insects/hornet.png",
    "hoverfly": "animals/insects/hoverfly.png",
    "mantis": "animals/insects/mantis.png",
    "xanthia": "animals/insects/xanthia.png",
    "cementmixer": "household/tools/cementmixer.png",
    "hammer": "household/tools/hammer.png",
    "mallet_metal": "household/tools/mallet_metal.png",
    "paintbrush_large": "household/tools/paintbrush_large.png",
    "plyers": "household/tools/plyers.png",
    "saw": "household/tools/saw.png",
    "spade": "household/tools/spade.png",
    "wrench": "household/tools/wrench.png",
    "wrench_adjustable": "household/tools/wrench_adjustable.png",
    "wrench_plumbers": "household/tools/wrench_plumbers.png",
    "kettle": "household/kettle.png",
    "key": "household/key.png",
    "rubberduck": "household/rubberduck.png",
    "toilet": "household/toilet.png",
    "clothespin_new": "clothes/clothespin_new.png",
    "trophy_cup": "sports/trophy_cup.png",
    "birch": "plants/trees/birch.png",
    "holly_leaves": "plants/trees/holly_leaves.png",
    "holm_oak": "plants/trees/holm_oak.png",
    "liberia_palm": "plants/trees/liberia-palm.png",
    "pinecone": "plants/trees/pinecone.png",
    "tree336": "plants/trees/tree336.png",
    "garbagetruck": "vehicles/garbagetruck.png",
    "frog_1": "animals/amphibians/frog-1.png",
    "frog": "animals/amphibians/frog.png",
}


def read_image(path: Path, *, alpha: bool = False) -> np.ndarray:
    """An image file as BGR uint8 (``alpha``: BGRA, and it must have an alpha channel); a
    clear error, not None, when there is none. The one image reader of training/."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED if alpha else cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"no image at {path}")
    if alpha and (img.ndim != 3 or img.shape[2] != 4):
        raise ValueError(f"{path} has no alpha channel")
    return img


def scale_down(img: np.ndarray, max_side: int) -> np.ndarray:
    """``img`` with its longer side at most ``max_side`` (never scaled up)."""
    h, w = img.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return img


def import_photo(source: Path, target: Path) -> tuple[int, int]:
    """Copy one photo as JPEG, scaled down (never up) to MAX_SIDE; returns its new (h, w)."""
    img = scale_down(read_image(source), MAX_SIDE)
    cv2.imwrite(str(target), img, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    return img.shape[0], img.shape[1]


def import_cutout(source: Path, target: Path) -> tuple[int, int]:
    """Copy one cut-out object (a PNG with transparency) as WebP with its alpha kept lossless,
    scaled down (never up) to CUTOUT_MAX_SIDE; returns its new (h, w)."""
    img = scale_down(read_image(source, alpha=True), CUTOUT_MAX_SIDE)
    cv2.imwrite(str(target), img, [cv2.IMWRITE_WEBP_QUALITY, QUALITY])
    return img.shape[0], img.shape[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=Path, default=EXAMPLES, help="opencv-doc's examples folder")
    parser.add_argument(
        "--root", type=Path, default=Path("/"), help="where the wallpaper and stamp packages are unpacked"
    )
    parser.add_argument("--out", type=Path, default=PHOTOS)
    parser.add_argument("--cutouts", type=Path, default=CUTOUTS_DIR)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sources = {name: args.examples / file for name, file in SOURCES.items()}
    sources |= {name: args.root / file for name, (_, file) in WALLPAPERS.items()}
    for name, source in sources.items():
        h, w = import_photo(source, args.out / f"{name}.jpg")
        print(f"{name}: {source} -> {w}x{h}")
    args.cutouts.mkdir(parents=True, exist_ok=True)
    for name, file in CUTOUTS.items():
        source = args.root / STAMPS / file
        h, w = import_cutout(source, args.cutouts / f"{name}.webp")
        print(f"{name}: {source} -> {w}x{h}")


if __name__ == "__main__":
    main()
