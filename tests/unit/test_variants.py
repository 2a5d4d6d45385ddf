import pytest

from omnicheck.errors import UsageError
from omnicheck.variants import parse_variants, variant_label


def test_names_default_to_folder_and_reference_defaults_to_first(tmp_path):
    variants = parse_variants([str(tmp_path / "bf16"), f"w4={tmp_path / 'nvfp4'}"])
    assert [v.name for v in variants] == ["bf16", "w4"]
    assert variants[0].is_reference and not variants[1].is_reference


def test_reference_by_name_moves_first():
    variants = parse_variants(["a=/x/a", "b=/x/b", "c=/x/c"], reference="b")
    assert [v.name for v in variants] == ["b", "a", "c"]
    assert variants[0].is_reference


def test_reference_by_path(tmp_path):
    (tmp_path / "ref").mkdir()
    variants = parse_variants([f"q={tmp_path}/q", f"r={tmp_path}/ref"], reference=str(tmp_path / "ref" / "."))
    assert variants[0].name == "r"


def test_url_variants_keep_served_name():
    (variant,) = parse_variants(["http://gpu-box:8000/v1#org/model-w4a4"])
    assert variant.is_url and variant.url == "http://gpu-box:8000/v1"
    assert variant.served_name == "org/model-w4a4" and variant.name == "model-w4a4"
    (named,) = parse_variants(["w4=http://h:1/v1"])
    assert named.name == "w4" and named.url == "http://h:1/v1"


@pytest.mark.parametrize(
    "specs, reference, expected",
    [
        (["a=/x", "a=/y"], None, "share the name 'a'"),
        (["a=/x"], "zzz", "--reference 'zzz' names no --model"),
        (["a="], None, "has no path"),
    ],
)
def test_bad_specs_are_one_line_usage_errors(specs, reference, expected):
    with pytest.raises(UsageError) as err:
        parse_variants(specs, reference)
    assert expected in str(err.value) and "fix:" in str(err.value) and "\n" not in str(err.value)


def test_messages_name_the_architecture_unless_the_variant_already_does():
    assert variant_label("w4a4", "gemma4_unified") == "w4a4 (gemma4_unified)"
    assert variant_label("whisper", "whisper") == "whisper"
    assert variant_label("served", None) == "served"
