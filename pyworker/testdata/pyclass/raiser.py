"""A python-class model that raises what its input asks for."""


class Raiser:
    def __init__(self, model_dir):
        pass

    def predict(self, inputs):
        out = []
        for x in inputs:
            kind = x.get("raise") if isinstance(x, dict) else None
            if kind == "value":
                raise ValueError("feature 'weight' must be positive")
            if kind == "zero":
                return [1 / 0]
            if kind == "key":
                return [x["missing"]]
            if kind == "exit":
                raise SystemExit(3)
            out.append({"ok": x.get("n", 0)})
        return out
