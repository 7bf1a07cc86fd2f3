"""trainer.domain: which models lie outside the layers a predictor was fitted on (their intervals rest on the residuals
of held-out models that were unlike the rest, trainer.intervals)."""

import json

import pytest
from conftest import tiny_conv_model

from trainer.domain import NOVEL_SHARE, Domain
from trainer.encoding import DEFAULT_VOCABULARY, encode_model


def _encoded(channels, size):
    return encode_model(tiny_conv_model(channels, size), DEFAULT_VOCABULARY)


@pytest.fixture(scope="module")
def domain():
    return Domain.of([_encoded(8, 16), _encoded(32, 32)], DEFAULT_VOCABULARY)


def test_models_inside_the_training_layers_are_not_novel(domain):
    inside = [_encoded(8, 16), _encoded(16, 24), _encoded(32, 32)]  # the training models and one between them
    assert domain.novel_share(inside, DEFAULT_VOCABULARY).tolist() == [0.0, 0.0, 0.0]
    assert not domain.novel(inside, DEFAULT_VOCABULARY).any()


def test_a_larger_map_or_more_channels_is_novel(domain):
    shares = domain.novel_share([_encoded(16, 96), _encoded(128, 16)], DEFAULT_VOCABULARY)
    assert shares.min() >= NOVEL_SHARE and domain.novel([_encoded(16, 96)], DEFAULT_VOCABULARY).tolist() == [True]


def test_an_op_no_training_model_had_is_outside():
    only_pool = Domain({"GlobalAveragePool": ((0, 0),) * 6})  # a domain without convs
    assert only_pool.novel([_encoded(8, 16)], DEFAULT_VOCABULARY).tolist() == [True]


def test_the_domain_survives_json(domain):
    again = Domain.from_dict(json.loads(json.dumps(domain.to_dict())))
    assert again == domain
    models = [_encoded(16, 24), _encoded(16, 96)]
    assert again.novel(models, DEFAULT_VOCABULARY).tolist() == domain.novel(models, DEFAULT_VOCABULARY).tolist()
