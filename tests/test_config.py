import pytest

from segment.config import SegmentConfig


def test_defaults_are_valid_and_serialisable():
    config = SegmentConfig()
    data = config.to_dict()
    assert data["n_components"] == config.n_components
    assert data["save"] == list(config.save)


def test_replace_validates_again():
    config = SegmentConfig().replace(n_components=3)
    assert config.n_components == 3
    with pytest.raises(ValueError, match="n_components"):
        config.replace(n_components=0)
    with pytest.raises(TypeError, match="unknown SegmentConfig field"):
        config.replace(components=3)


def test_save_accepts_comma_separated_string():
    assert SegmentConfig(save="labels, json").save == ("labels", "json")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_components", 0),
        ("n_components", "many"),
        ("n_components", 2.5),
        ("color_space", "xyz"),
        ("covariance_type", "banded"),
        ("position_weight", -1.0),
        ("tol", -1e-3),
        ("reg_covar", -1.0),
        ("max_iter", 0),
        ("n_init", 0),
        ("init_params", "kmeans"),
        ("seed", -1),
        ("fit_sample", -5),
        ("smoothing", -0.5),
        ("merge_cost", -0.1),
        ("min_size", -1),
        ("hole_size", -1),
        ("opening_radius", -1),
        ("denoise", "wavelet"),
        ("denoise_size", 4),
        ("save", ("labels", "pdf")),
        ("max_pixels", 0),
        ("max_side", 0),
        ("n_jobs", 0),
        ("auto_range", (5, 2)),
        ("relabel", "yes"),
    ],
)
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SegmentConfig(**{field: value})


def test_auto_components_accepted():
    assert SegmentConfig(n_components="auto").n_components == "auto"


def test_mode_sets_its_defaults():
    regions, classes = SegmentConfig(), SegmentConfig(mode="classes")
    assert (regions.position_weight, regions.relabel, regions.bias, regions.merge_cost) == (0.5, True, False, 1.0)
    assert (classes.position_weight, classes.relabel, classes.bias, classes.merge_cost) == (0.0, False, True, 0.0)
    assert classes.min_fraction == 0.0 and classes.covariance_type == "tied"
    assert SegmentConfig(mode="classes", bias=False, smoothing=0.0).to_dict()["bias"] is False


def test_replacing_the_mode_takes_its_defaults_unless_given():
    cfg = SegmentConfig(position_weight=0.2).replace(mode="classes", smoothing=3.0)
    assert (cfg.position_weight, cfg.smoothing, cfg.relabel) == (0.0, 3.0, False)
    assert cfg.replace(n_components=3).smoothing == 3.0  # the mode unchanged: nothing reset
    assert cfg.replace(mode="regions") == SegmentConfig(n_components=cfg.n_components)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mode": "pixels"}, "mode must be one of regions, classes"),
        ({"mode": "classes", "merge_cost": 1.0}, "mode 'classes' labels pixels by class"),
        ({"mode": "classes", "relabel": True}, "mode 'classes' labels pixels by class"),
        ({"save": ("labels", "bias")}, "save 'bias' needs bias correction on"),
        ({"bias": "yes"}, "bias must be True or False"),
    ],
)
def test_mode_conflicts_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        SegmentConfig(**changes)
