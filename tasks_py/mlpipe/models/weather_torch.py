"""Example PyTorch model: the weather example's data and features, a small torch regressor.

Same raw files, preprocessing, features, split, predictions and metrics as
:mod:`mlpipe.models.weather` (:class:`~mlpipe.models.weather.WeatherData`); the model is
:class:`WeatherNet`, an MLP (``hidden`` units, tanh; ``hidden=0``: a linear regressor) that
standardises its inputs and its target itself (the training rows' means and deviations are
buffers of the module), trained with Adam on the mean squared error of the standardised
target.

* **Deterministic**: training and prediction run on one CPU thread with
  ``torch.use_deterministic_algorithms``; the initial weights and the order of the
  mini-batches come from ``seed`` (the process's global torch RNG and settings are restored
  afterwards). The same data, parameters and seed give the same weights, bit for bit.
* **Logged with MLflow's pytorch flavour** in its ``pt2`` format (``torch.export``: no
  pickle, loadable as pyfunc without mlpipe: ``mlflow.pyfunc.load_model(uri).predict`` of a
  float32 array of the feature columns, in the order of the MLmodel's
  ``metadata["mlpipe.weather_torch"]["features"]``).
* **Retraining continues from the parent's weights**: :meth:`WeatherTorchModel.load_model`
  rebuilds the :class:`WeatherNet` from the logged architecture (MLmodel metadata) and
  loads the logged program's ``state_dict``; ``continue_training`` trains a copy of it
  further (the parent's standardisation kept, a fresh optimizer).

* **ONNX export** (``mlpipe convert`` / ``check``): torch's ``torch.export``-based exporter
  (onnxscript, of the ``[onnx]`` extra), one float32 input ``input`` of any number of rows.

The training loss of every epoch (``train_loss``; step 0 is the loss before the first
update) is logged into the active MLflow run and kept on the model as ``loss_history``.

Needs the ``torch`` extra, the CPU build (tasks_py/README.md, "The PyTorch example model").
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

try:
    import torch
    from torch import nn
except ImportError as exc:  # the loader shows this message as the plugin's import error
    raise ImportError(
        f"the weather-torch model plugin needs PyTorch ({exc}): install the CPU build, "
        "pip install 'mlpipe[torch]' --find-links https://download.pytorch.org/whl/cpu/torch/ "
        "(tasks_py/README.md, 'The PyTorch example model')"
    ) from exc

from mlpipe.errors import BadInput
from mlpipe.models.weather import WeatherData, _number

METADATA_KEY = "mlpipe.weather_torch"
FORMAT = 1  # of the metadata: bump when WeatherNet's layout changes
LOSS_METRIC = "train_loss"


@contextmanager
def deterministic(seed: int | None = None) -> Iterator[None]:
    """One CPU thread and deterministic algorithms (and with ``seed``, torch's global RNG seeded
    in a fork of it); the process's previous settings and RNG state are restored afterwards."""
    threads = torch.get_num_threads()
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        if seed is None:
            yield
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.set_num_threads(threads)


class WeatherNet(nn.Module):
    """Feature rows (float32, the columns ``features`` in order) -> next-day ``temp_max``."""

    x_mean: torch.Tensor
    x_std: torch.Tensor
    y_mean: torch.Tensor
    y_std: torch.Tensor

    def __init__(self, features: Sequence[str], hidden: int) -> None:
        super().__init__()
        width = len(features)
        self.features = list(features)
        self.hidden = hidden
        self.loss_history: list[float] = []
        self.register_buffer("x_mean", torch.zeros(width))
        self.register_buffer("x_std", torch.ones(width))
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))
        layers: list[nn.Module] = (
            [nn.Linear(width, hidden), nn.Tanh(), nn.Linear(hidden, 1)]
            if hidden
            else [nn.Linear(width, 1)]
        )
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = (x.to(self.x_mean.dtype) - self.x_mean) / self.x_std
        out: torch.Tensor = self.net(scaled).squeeze(-1) * self.y_std + self.y_mean
        return out

    def standardise(self, x: np.ndarray, y: np.ndarray) -> None:
        """Take the input and target scales from training rows (a constant column: scale 1)."""
        x_std = x.std(axis=0)
        y_std = float(y.std())
        self.x_mean.copy_(torch.from_numpy(x.mean(axis=0)))
        self.x_std.copy_(torch.from_numpy(np.where(x_std > 0, x_std, 1.0)))
        self.y_mean.fill_(float(y.mean()))
        self.y_std.fill_(y_std if y_std > 0 else 1.0)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the standardised target."""
        out: torch.Tensor = (((self(x) - y) / self.y_std) ** 2).mean()
        return out

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predictions for the rows of ``frame`` (its columns ``features``), as float64."""
        x = _tensor(frame[self.features].to_numpy())
        with deterministic(), torch.no_grad():
            self.eval()
            out: np.ndarray = self(x).to(torch.float64).numpy()
        return out


def _tensor(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))


class WeatherTorchModel(WeatherData):
    """Next-day ``temp_max`` regression with PyTorch on seattle-weather style observations."""

    name = "weather-torch"
    train_params: Mapping[str, Any] = {
        "hidden": 16,
        "epochs": 50,
        "lr": 0.01,
        "batch_size": 64,
        "weight_decay": 0.0,
        "seed": 0,
    }
    continue_params: Mapping[str, Any] = {
        "epochs": 20,
        "lr": 0.001,
        "batch_size": 64,
        "weight_decay": 0.0,
        "seed": 0,
    }

    # ------------------------------------------------------------ learning
    def _tensors(self, data: pd.DataFrame) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        x, y = self._xy(data)
        return list(x.columns), _tensor(x.to_numpy()), _tensor(y)

    def train(self, data: pd.DataFrame, params: Mapping[str, Any]) -> WeatherNet:
        features, x, y = self._tensors(data)
        hidden = int(_number(params, "hidden", 16, 0, 4096))
        seed = int(_number(params, "seed", 0, 0, 2**31))
        with deterministic(seed):
            net = WeatherNet(features, hidden)  # initial weights from the seed
        net.standardise(x.numpy().astype(np.float64), y.numpy().astype(np.float64))
        return self._fit(net, x, y, params, self.train_params)

    def continue_training(
        self, model: WeatherNet, data: pd.DataFrame, params: Mapping[str, Any]
    ) -> WeatherNet:
        features, x, y = self._tensors(data)
        if features != model.features:
            raise BadInput(
                f"new data has features {features} but the model was trained on "
                f"{model.features}; preprocess with the same settings"
            )
        net = copy.deepcopy(model)  # the parent's weights and standardisation
        return self._fit(net, x, y, params, self.continue_params)

    def _fit(
        self,
        net: WeatherNet,
        x: torch.Tensor,
        y: torch.Tensor,
        params: Mapping[str, Any],
        defaults: Mapping[str, Any],
    ) -> WeatherNet:
        epochs = int(_number(params, "epochs", defaults["epochs"], 1, 100_000))
        lr = _number(params, "lr", defaults["lr"], 1e-9, 10)
        batch = int(_number(params, "batch_size", defaults["batch_size"], 1, 1_000_000))
        decay = _number(params, "weight_decay", defaults["weight_decay"], 0, 10)
        seed = int(_number(params, "seed", defaults["seed"], 0, 2**31))
        with deterministic(seed):
            order = torch.Generator().manual_seed(seed)
            optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=decay)
            losses = [self._full_loss(net, x, y)]  # step 0: before any update
            for _ in range(epochs):
                net.train()
                shuffled = torch.randperm(len(x), generator=order)
                for start in range(0, len(x), batch):
                    rows = shuffled[start : start + batch]
                    optimizer.zero_grad()
                    torch.autograd.backward(net.loss(x[rows], y[rows]))
                    optimizer.step()
                losses.append(self._full_loss(net, x, y))
        net.eval()
        net.loss_history = losses
        _log_losses(losses)
        return net

    @staticmethod
    def _full_loss(net: WeatherNet, x: torch.Tensor, y: torch.Tensor) -> float:
        net.eval()
        with torch.no_grad():
            return float(net.loss(x, y))

    def training_loss(self, model: WeatherNet, data: pd.DataFrame) -> float:
        """The training loss of ``model`` on the labelled rows of ``data`` (what step 0 of
        ``train_loss`` is for the rows it trains on)."""
        _, x, y = self._tensors(data)
        with deterministic():
            return self._full_loss(model, x, y)

    # --------------------------------------------------------------- MLflow
    def log_model(self, model: Any, sample: pd.DataFrame, registered_name: str) -> str:
        import mlflow
        import mlflow.pytorch
        from mlflow.models import infer_signature

        net: WeatherNet = model
        example = np.ascontiguousarray(sample[net.features].head(5).to_numpy(dtype=np.float32))
        with torch.no_grad():
            output = net(torch.from_numpy(example)).numpy()
        info = mlflow.pytorch.log_model(
            net,
            name="model",
            signature=infer_signature(example, output),
            input_example=example,
            registered_model_name=registered_name,
            serialization_format="pt2",  # torch.export: no pickle, no mlpipe needed to load
            metadata={
                METADATA_KEY: {"format": FORMAT, "features": net.features, "hidden": net.hidden}
            },
            # explicit requirements: MLflow would otherwise load the model to guess them
            pip_requirements=[f"{p}=={dist_version(p)}" for p in ("torch", "numpy")],
        )
        return str(info.registered_model_version)

    def load_model(self, uri: str) -> WeatherNet:
        import mlflow.artifacts
        import mlflow.pytorch
        from mlflow.models import Model

        local = uri if Path(uri).is_dir() else mlflow.artifacts.download_artifacts(uri)
        meta = (Model.load(local).metadata or {}).get(METADATA_KEY)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise BadInput(
                f"{uri}: not a weather-torch model of format {FORMAT} (MLmodel metadata "
                f"{METADATA_KEY!r} is {meta!r}); log it with the weather-torch plugin"
            )
        program = mlflow.pytorch.load_model(local)
        net = WeatherNet([str(f) for f in meta["features"]], int(meta["hidden"]))
        net.load_state_dict(program.state_dict())
        net.eval()
        return net

    # ----------------------------------------------------------------- ONNX
    # (mlpipe convert / check: mlpipe.models.OnnxConvertible)
    def to_onnx(self, model: Any, sample: pd.DataFrame) -> bytes:
        """``model`` through torch's ``torch.export`` ONNX exporter (onnxscript, of the
        ``[onnx]`` extra): one float32 input ``input`` of shape ``[rows, features]`` (any
        number of rows), one output ``output`` of shape ``[rows]``."""
        from mlpipe.models.onnx import OnnxUnsupported, import_extra

        import_extra("onnxscript", f"converting a {self.name} model to ONNX")
        net: WeatherNet = model
        missing = [c for c in net.features if c not in sample.columns]
        if missing:
            raise BadInput(f"ONNX export: the sample rows lack the model's features {missing}")
        example = _tensor(sample[net.features].head(2).to_numpy())
        rows = torch.export.Dim("rows", min=1)
        net.eval()
        registry = logging.getLogger("torch.onnx")  # "torchvision is not installed" per op
        level = registry.level
        registry.setLevel(logging.ERROR)
        try:
            with deterministic(), torch.no_grad():
                program = torch.onnx.export(
                    net,
                    (example,),
                    dynamo=True,
                    input_names=["input"],
                    output_names=["output"],
                    dynamic_shapes={"x": {0: rows}},
                    verbose=False,
                )
        except Exception as exc:  # the exporter: an operator without ONNX translation
            raise OnnxUnsupported(
                f"torch.onnx cannot export the {self.name} model: {exc.__class__.__name__}: {exc}"
            ) from None
        finally:
            registry.setLevel(level)
        if program is None:  # pragma: no cover - dynamo=True always returns the program
            raise OnnxUnsupported(f"torch.onnx gave no program for the {self.name} model")
        return bytes(program.model_proto.SerializeToString())

    def onnx_inputs(self, data: pd.DataFrame) -> dict[str, np.ndarray]:
        """The exported model's input: the feature columns as float32 (what the net computes in)."""
        x = data[self.feature_columns(data)].to_numpy()
        return {"input": np.ascontiguousarray(x, dtype=np.float32)}

    def predict_values(self, model: Any, data: pd.DataFrame) -> np.ndarray:
        net: WeatherNet = model
        return net.predict(data)


def _log_losses(losses: Sequence[float]) -> None:
    """``train_loss`` per epoch into the active MLflow run (none: nothing logged)."""
    import mlflow
    from mlflow.entities import Metric

    run = mlflow.active_run()
    if run is None:
        return
    now = int(time.time() * 1000)
    metrics = [Metric(LOSS_METRIC, v, now, step) for step, v in enumerate(losses)]
    client = mlflow.MlflowClient()
    for start in range(0, len(metrics), 1000):  # MLflow's log_batch takes 1000 metrics a call
        client.log_batch(run.info.run_id, metrics=metrics[start : start + 1000])
