"""Callbacks inside real PyTorch Lightning / Hugging Face Trainer / Keras fits (CPU, tiny).

Run with the frameworks venv: see requirements-frameworks.txt. Each callback starts the
collector for the fit (run_id given) and its events carry epoch and step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.contracts import validation_errors
from collector import progress
from collector.publish import MemorySink

pytestmark = pytest.mark.frameworks


def _kwargs(tmp_path: Path, sink: MemorySink, run_id: str) -> dict[str, Any]:
    return dict(
        run_id=run_id,
        user_id="u",
        model_name="tiny",
        interval_s=0.1,
        sink=sink,
        home=tmp_path / "home",
        zone="GB",
    )


def _check(sink: MemorySink, epochs: int, steps: int) -> None:
    evs = sink.events
    assert evs and evs[-1]["event_type"] == "end"
    assert all(validation_errors(e) == [] for e in evs)
    assert evs[-1]["epoch"] == epochs - 1 and evs[-1]["step"] == steps
    progress.reset()


def test_lightning(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pl = pytest.importorskip("lightning.pytorch")
    from collector.callbacks.lightning import CarbonpipeCallback

    class Tiny(pl.LightningModule):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 1)

        def training_step(self, batch: Any, idx: int) -> Any:
            x, y = batch
            return torch.nn.functional.mse_loss(self.lin(x), y)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randn(16, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    sink = MemorySink()
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[CarbonpipeCallback(**_kwargs(tmp_path, sink, "pl"))],
        default_root_dir=str(tmp_path),
    )
    trainer.fit(Tiny(), loader)
    _check(sink, epochs=2, steps=8)


def test_huggingface_trainer(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from collector.callbacks.huggingface import CarbonpipeCallback

    class Tiny(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 1)

        def forward(self, x: Any, labels: Any = None) -> dict[str, Any]:
            out = self.lin(x)
            return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}

    data = [{"x": torch.randn(4), "labels": torch.randn(1)} for _ in range(16)]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "hf"),
        num_train_epochs=2,
        per_device_train_batch_size=4,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    sink = MemorySink()
    trainer = transformers.Trainer(
        model=Tiny(),
        args=args,
        train_dataset=data,
        callbacks=[CarbonpipeCallback(**_kwargs(tmp_path, sink, "hf"))],
    )
    trainer.train()
    _check(sink, epochs=2, steps=8)


def test_keras(tmp_path: Path) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    np = pytest.importorskip("numpy")
    from collector.callbacks.keras import CarbonpipeCallback

    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    sink = MemorySink()
    model.fit(
        np.random.rand(16, 4),
        np.random.rand(16, 1),
        epochs=2,
        batch_size=4,
        verbose=0,
        callbacks=[CarbonpipeCallback(**_kwargs(tmp_path, sink, "keras"))],
    )
    _check(sink, epochs=2, steps=8)
