"""Make training/photos/ from the sample photographs of Debian's opencv-doc package and the
photographs among Debian's desktop wallpapers.

    apt-get install opencv-doc            # or: apt-get download opencv-doc && dpkg -x opencv-doc_*.deb DIR
    apt-get install mate-backgrounds plasma-workspace-wallpapers \
        lomiri-wallpapers-16.04 lomiri-wallpapers-20.04   # or apt-get download + dpkg -x into ROOT
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
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

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
    # Since recipe version 6: lomiri-wallpapers-16.04 and -20.04 20.04.0-2 (Debian 12).
    "steel_cables_beach": ("lomiri-wallpapers-16.04", "usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg"),
    "sunlit_leaves_sky": ("lomiri-wallpapers-16.04", "usr/share/backgrounds/Dragonfly_by_Bolly.jpg"),
    "paint_brushes_jar": ("lomiri-wallpapers-16.04", "usr/share/backgrounds/Picture_1A_by_freespace.jpg"),
    "room_wine_beanbag": ("lomiri-wallpapers-16.04", "usr/share/backgrounds/Wine_by_Jakkub_Mede.jpg"),
    "autumn_mountain_meadow": (
        "lomiri-wallpapers-16.04",
        "usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg",
    ),
    "film_grain_colours": (
        "lomiri-wallpapers-16.04",
        "usr/share/backgrounds/analogpattern_by_Peter_Nerlich.jpg",
    ),
    "dogs_at_window": ("lomiri-wallpapers-16.04", "usr/share/backgrounds/friends_by_Aitzol_Berasategi.jpg"),
    "forest_stream_rocks": ("lomiri-wallpapers-16.04", "usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg"),
    "rocky_peaks_path": (
        "lomiri-wallpapers-16.04",
        "usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg",
    ),
    "nuthatch_tree_bark": ("lomiri-wallpapers-20.04", "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg"),
}


def import_photo(source: Path, target: Path) -> tuple[int, int]:
    """Copy one photo as JPEG, scaled down (never up) to MAX_SIDE; returns its new (h, w)."""
    img = cv2.imread(str(source), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(source)
    h, w = img.shape[:2]
    scale = min(1.0, MAX_SIDE / max(h, w))
    if scale < 1.0:
        img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(target), img, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    return img.shape[0], img.shape[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=Path, default=EXAMPLES, help="opencv-doc's examples folder")
    parser.add_argument(
        "--root", type=Path, default=Path("/"), help="where the wallpaper packages are unpacked"
    )
    parser.add_argument("--out", type=Path, default=PHOTOS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sources = {name: args.examples / file for name, file in SOURCES.items()}
    sources |= {name: args.root / file for name, (_, file) in WALLPAPERS.items()}
    for name, source in sources.items():
        h, w = import_photo(source, args.out / f"{name}.jpg")
        print(f"{name}: {source} -> {w}x{h}")


if __name__ == "__main__":
    main()
