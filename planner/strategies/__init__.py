"""Strategy models behind one interface (`base`): predict latencies at a rate (`predict`), and
find goodput. Deployments and scenarios live in `planner.deployment` and `planner.scenario`."""

from planner.strategies.predict import Goodput, Prediction, goodput, predict

__all__ = ["Goodput", "Prediction", "goodput", "predict"]
