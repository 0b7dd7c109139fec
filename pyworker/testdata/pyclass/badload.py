"""A python-class model whose constructor fails."""


class BadLoad:
    def __init__(self, model_dir):
        raise FileNotFoundError("weights.bin is missing from " + model_dir)

    def predict(self, inputs):
        return inputs
