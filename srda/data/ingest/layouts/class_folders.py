"""2D class folders, the Kaggle / Heywhale Alzheimer MRI layout: ``{class}/*`` or
``{train,test,val}/{class}/*`` (split folders merged, each image keeping its split's name)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from srda.data.ingest.files import IMAGE_EXTS, hidden_dir, walk
from srda.data.ingest.layouts import NO_SPLIT, ImageLayout, ImageListing, register
from srda.errors import InputError

log = logging.getLogger(__name__)

_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "test": "test",
    "testing": "test",
    "val": "val",
    "valid": "val",
    "validation": "val",
}
# Known class-name families, mildest first: classes of one family are ordered by severity.
_SEVERITY: tuple[tuple[str, ...], ...] = (
    ("NonDemented", "VeryMildDemented", "MildDemented", "ModerateDemented"),
    ("NoImpairment", "VeryMildImpairment", "MildImpairment", "ModerateImpairment"),
    ("CN", "SMC", "EMCI", "MCI", "LMCI", "AD"),
)


def _class_key(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", name.lower())


_KNOWN_CLASSES = {_class_key(c): c for family in _SEVERITY for c in family}


def _order_classes(keys: Iterable[str], names: Mapping[str, str]) -> list[str]:
    keys = list(keys)
    for family in _SEVERITY:
        rank = {_class_key(c): i for i, c in enumerate(family)}
        if all(k in rank for k in keys):
            return [names[k] for k in sorted(keys, key=rank.__getitem__)]
    return sorted((names[k] for k in keys), key=lambda n: (n.lower(), n))


def _subdirs(folder: Path, skip: set[Path]) -> list[Path]:
    return sorted(
        c
        for c in folder.iterdir()
        if c.is_dir() and not hidden_dir(c.name) and c.resolve() not in skip
    )


def _has_images(folder: Path) -> bool:
    return any(c.is_file() and c.suffix.lower() in IMAGE_EXTS for c in folder.iterdir())


def listing(root: Path, skip: set[Path]) -> ImageListing:
    """The class folders under ``root`` and their image files (names only, nothing opened)."""
    # An unzipped download often wraps the data in one extra folder: step into it.
    while True:
        children = _subdirs(root, skip)
        if (
            len(children) == 1
            and children[0].name.lower() not in _SPLIT_NAMES
            and not _has_images(root)
            and not _has_images(children[0])  # then it is a (lone) class folder
        ):
            log.info("%s: one sub-folder only, looking inside %s", root, children[0].name)
            root = children[0]
            continue
        break
    splits = [c for c in children if c.name.lower() in _SPLIT_NAMES]
    if splits and len(splits) != len(children):
        others = ", ".join(c.name for c in children if c not in splits)
        raise InputError(
            root,
            f"mixes split folders ({', '.join(c.name for c in splits)}) with other folders "
            f"({others}); expected {{class}}/ or {{train,test}}/{{class}}/ sub-folders",
        )
    class_dirs: list[tuple[str, Path]] = []
    if splits:
        for s in splits:
            sub = _subdirs(s, skip)
            if not sub:
                raise InputError(s, "split folder has no class folders")
            class_dirs += [(_SPLIT_NAMES[s.name.lower()], c) for c in sub]
    else:
        class_dirs = [(NO_SPLIT, c) for c in children]
    if not class_dirs:
        raise InputError(
            root,
            "no class folders found; expected path/{class}/*.png|jpg or "
            "path/{train,test}/{class}/*.png|jpg",
        )

    names: dict[str, str] = {}
    entries: list[tuple[str, str, Path]] = []
    for split, cdir in class_dirs:
        key = _class_key(cdir.name) or cdir.name
        names.setdefault(key, _KNOWN_CLASSES.get(key, cdir.name))
        files = walk(cdir, IMAGE_EXTS)
        if not files:
            raise InputError(cdir, "class folder has no images (.png, .jpg, .jpeg, .bmp, .tif)")
        entries += [(split, key, f) for f in files]
    if len(names) < 2:
        raise InputError(
            root, f"found only one class folder ({next(iter(names.values()))}); need two or more"
        )
    if splits:
        for key, name in names.items():
            missing = sorted({s for s, _ in class_dirs} - {s for s, k, _ in entries if k == key})
            if missing:
                log.warning(
                    "%s: class %s has no folder in split %s", root, name, ", ".join(missing)
                )
    return ImageListing(root, entries, names, _order_classes(names, names))


register(ImageLayout("class_folders", lambda root: True, listing, rank=0))
