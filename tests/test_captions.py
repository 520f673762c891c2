"""Caption -> label parsing with the shipped synonym files: tricky sentences, and every file's integrity."""

import json

import numpy as np
import pytest

from bench.data.base import DataError
from bench.data.captions import SYNONYM_DIR, CaptionParser, load_synonyms, surface_forms
from bench.data.voc import VOC_CLASSES

# MS-COCO 2014 instances json category names, in category-id order
COCO_CLASSES = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
]
# NUS-WIDE Concepts81.txt (= TaI-DPT datasets/data_helpers.py nuswide_object_categories)
NUS_CLASSES = (
    "airport animal beach bear birds boats book bridge buildings cars castle cat cityscape clouds computer coral "
    "cow dancing dog earthquake elk fire fish flags flowers food fox frost garden glacier grass harbor horses "
    "house lake leaf map military moon mountain nighttime ocean person plane plants police protest railroad "
    "rainbow reflection road rocks running sand sign sky snow soccer sports statue street sun sunset surf "
    "swimmers tattoo temple tiger tower town toy train tree valley vehicle water waterfall wedding whales "
    "window zebra").split()


@pytest.fixture(scope="module")
def coco_parser():
    return CaptionParser.from_file("coco", COCO_CLASSES)


def _names(parser, caption):
    return sorted(parser.classnames[c] for c in parser.classes_in(caption))


@pytest.mark.parametrize("caption, expected", [
    # regular and irregular plurals (inflect), uncountables
    ("Two dogs chasing three cats", ["cat", "dog"]),
    ("Men and women sharing knives", ["knife", "person"]),
    ("Some people near the sheep", ["person", "sheep"]),
    ("The mice are next to the keyboards", ["keyboard", "mouse"]),
    ("A pair of skis and a snowboard", ["skis", "snowboard"]),
    # synonyms
    ("A kitten on the sofa watching television", ["cat", "couch", "tv"]),
    ("A doughnut beside a mug", ["cup", "donut"]),
    # a compound class containing another class's name: both, either, no-space and hyphenated forms
    ("A hot dog on a plate", ["hot dog"]),
    ("A dog eating a hot dog", ["dog", "hot dog"]),
    ("a dog in the park", ["dog"]),
    ("Two hotdogs with mustard", ["hot dog"]),
    ("HOT-DOGS for sale!!!", ["hot dog"]),
    ("A teddy bear sitting on a bench", ["bench", "teddy bear"]),
    ("A bear holding a teddy bear", ["bear", "teddy bear"]),
    ("a microwave oven above the oven", ["microwave", "oven"]),
    ("a toaster oven on the counter", ["toaster"]),
    ("A boy swings a baseball bat", ["baseball bat", "person"]),
    ("A pit bull next to a bull", ["cow", "dog"]),
    # multi-word dataset names, punctuation, capitals, possessives
    ("A Motor-Cycle, parked by a FIRE HYDRANT.", ["fire hydrant", "motorcycle"]),
    ("the dog's bowl", ["bowl", "dog"]),
    ("Stop sign; traffic lights.", ["stop sign", "traffic light"]),
    # whole words only
    ("A catalog of dogma", []),
    ("A sunny afternoon in the mountains.", []),
])
def test_coco_parser_on_tricky_captions(coco_parser, caption, expected):
    assert _names(coco_parser, caption) == expected


def test_parse_corpus_discards_captions_without_a_class(coco_parser):
    captions, labels = coco_parser.parse_corpus(["A sunny afternoon.", "A Cat and two DOGS.", "Nothing here"])
    assert captions == ["A Cat and two DOGS."]
    expected = np.full((1, 80), -1, np.int8)
    expected[0, [COCO_CLASSES.index("cat"), COCO_CLASSES.index("dog")]] = 1
    np.testing.assert_array_equal(labels, expected)


def test_a_phrase_naming_two_classes_is_an_error():
    with pytest.raises(DataError, match="names two classes"):
        CaptionParser(["dog", "hound"], [["dog"], ["dogs"]])  # 'dogs' is also the plural of 'dog'


@pytest.mark.parametrize("name, classes", [("coco", COCO_CLASSES), ("voc2007", VOC_CLASSES), ("nuswide", NUS_CLASSES)])
def test_synonym_file_matches_the_dataset_reader(name, classes):
    data = load_synonyms(name)
    assert [c["name"] for c in data["classes"]] == list(classes)
    parser = CaptionParser.from_file(name, classes)  # raises when a phrase names two classes
    for c, cls in enumerate(data["classes"]):
        words = cls["synonyms"]
        assert words and len(set(words)) == len(words), cls["name"]
        for word in [cls["name"], *words]:  # every listed word finds its own class, alone in a sentence
            assert parser.classes_in(f"There is a {word} here.") == {c}, word


def test_every_shipped_synonym_file_loads_without_conflicts():
    files = sorted(SYNONYM_DIR.glob("*.json"))
    assert {"coco", "voc2007", "nuswide"} <= {p.stem for p in files}
    for path in files:
        data = json.loads(path.read_text())
        CaptionParser.from_file(str(path))
        assert all(isinstance(c["synonyms"], list) for c in data["classes"]), path


def test_first_synonyms_are_taidpt_prompt_names():
    from bench.methods._parts.names import first_synonyms

    # TaI-DPT data_helpers.py: coco_object_categories = first synonyms
    assert first_synonyms("coco", ["motorcycle", "airplane", "person", "tv"]) == \
        ["motor bike", "aeroplane", "person", "tv"]
    # its VOC prompts use the VOC names, and NUS names are the concepts: first synonym = name
    assert first_synonyms("voc2007", VOC_CLASSES) == VOC_CLASSES
    assert first_synonyms("nuswide", NUS_CLASSES) == NUS_CLASSES


def test_a_class_missing_from_the_synonym_file_is_a_data_error():
    from bench.methods._parts.names import first_synonyms

    with pytest.raises(DataError, match=r"synonym file coco lacks 1 class\(es\) \['unicorn'\]; set dataset.synonyms"):
        first_synonyms("coco", ["person", "unicorn"])
    with pytest.raises(DataError, match=r"synonym file coco lacks 1 class\(es\) \['unicorn'\]"):
        CaptionParser.from_file("coco", ["person", "unicorn"])
    tags = [f"tag{i}" for i in range(925)]  # NUS-WIDE's zsl class list without a tag synonym file: one short line
    with pytest.raises(DataError, match=r"lacks 925 class\(es\) \['tag0', .*'tag9', '... 915 more'\]"):
        CaptionParser.from_file("nuswide", tags)


def test_surface_forms_of_a_compound():
    assert surface_forms("Hot-Dog") == {"hot dog", "hot dogs", "hotdog", "hotdogs"}
