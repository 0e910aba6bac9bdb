import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "numconv",
    deadline=None,  # the first example of a new dtype pays Numba's compile time
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=60,
    derandomize=True,  # the same examples every run: CI failures reproduce
)
settings.register_profile("thorough", parent=settings.get_profile("numconv"), max_examples=600)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "numconv"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    return torch


# Written out, not read from the dispatch, so that a new algorithm fails
# test_conv_algorithms until it is added here (and so tested).
CONV_ALGORITHMS = [
    "direct",
    "gemm",
    "depthwise",
    "pointwise",
    "winograd",
    "winograd4",
    "winograd3d",
    "polyphase",
    "depth_slices",
    "planar_gemm",
    "tap_sums",
    "phase_sums",
]


@pytest.fixture(scope="module", params=CONV_ALGORITHMS)
def each_algorithm(request):
    """Run a module's tests once per convolution algorithm, forced in the dispatch."""
    from numconv import _dispatch

    with _dispatch.forced(request.param):
        yield request.param
