"""A small, real training job for the demo: an MLP on a synthetic classification task.

About a minute on two cores. Run it under the collector:
    carbonpipe collect --run-id demo-1 --user alice --model mlp-demo \
        -- python examples/train_sklearn.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0, help="train for about this long")
    parser.add_argument("--samples", type=int, default=20_000)
    args = parser.parse_args()
    x, y = make_classification(n_samples=args.samples, n_features=64, n_informative=32,
                               n_classes=4, random_state=0)  # fmt: skip
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0)
    model = MLPClassifier(hidden_layer_sizes=(256, 128), random_state=0)
    classes = np.unique(y)
    try:  # under `carbonpipe collect`, epochs reach the events (the run page's per-epoch table)
        from collector.progress import report
    except ImportError:  # run on its own
        def report(**_: object) -> None:
            return None
    start, epoch = time.monotonic(), 0
    while time.monotonic() - start < args.seconds:
        report(epoch=epoch, step=epoch * len(x_tr))
        model.partial_fit(x_tr, y_tr, classes=classes)
        epoch += 1
        acc = model.score(x_te, y_te)
        print(f"epoch {epoch:3d}  loss {model.loss_:.4f}  test accuracy {acc:.3f}", flush=True)
    print(f"trained {epoch} epochs in {time.monotonic() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
