"""A python-class model that sleeps as long as its input says."""

import time


class Sleeper:
    def __init__(self, model_dir):
        pass

    def predict(self, inputs):
        for x in inputs:
            time.sleep(float(x.get("sleep", 0)))
        return [{"slept": x.get("sleep", 0)} for x in inputs]
