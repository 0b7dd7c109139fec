"""A python-class model that takes the feature matrix, like sklearn."""

import numpy as np


class FeatureSum:
    manta_input = "features"
    n_features_in_ = 3

    def __init__(self, model_dir):
        pass

    def predict(self, X):
        assert isinstance(X, np.ndarray) and X.dtype == np.float64, type(X)
        return X.sum(axis=1)
