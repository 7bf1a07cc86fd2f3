"""The training loop shared by the torch predictors: log-ratio MSE over one column per training device (missing
measurements masked), AdamW, early stopping on the validation split's mean relative error, the best epoch's weights
kept."""

import copy
from typing import Callable, Dict, Optional

import numpy as np

from trainer.predictors.base import FitHistory, ProgressFn


def relative_error(pred_log, y: np.ndarray) -> float:
    """Mean |p - t| / t over the measured entries of y ([n] or [n, devices], NaN = not measured)."""
    pred = np.exp(np.asarray(pred_log, dtype=np.float64)).reshape(np.shape(y))
    known = np.isfinite(y)
    return float(np.mean(np.abs(pred[known] - y[known]) / y[known])) if known.any() else float("nan")


def train_module(module, forward: Callable[[np.ndarray], object], n_train: int, y_train: np.ndarray,
                 validate: Callable[[], np.ndarray], y_val: np.ndarray, hyper: Dict[str, object], seed: int,
                 progress: Optional[ProgressFn] = None) -> FitHistory:
    """forward(indices) -> [batch, devices] predicted log ratios of those training examples; validate() -> the same
    for the validation split (the training split stands in when there is no validation split). y: [n, devices]."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    known = torch.as_tensor(np.isfinite(y_train))
    target = torch.as_tensor(np.log(np.where(np.isfinite(y_train), y_train, 1.0)), dtype=torch.float32)
    optimizer = torch.optim.AdamW(module.parameters(), lr=float(hyper["lr"]), weight_decay=float(hyper["weight_decay"]))
    epochs, patience, batch = int(hyper["epochs"]), int(hyper["patience"]), int(hyper["batch_size"])
    history = FitHistory()
    best_error, best_state = float("inf"), copy.deepcopy(module.state_dict())
    for epoch in range(1, epochs + 1):
        module.train()
        order = rng.permutation(n_train)
        for start in range(0, n_train, batch):
            index = order[start:start + batch]
            mask = known[index]
            loss = torch.nn.functional.mse_loss(forward(index)[mask], target[index][mask])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        module.eval()
        with torch.no_grad():
            error = relative_error(validate(), y_val)
        history.val_errors.append(error)
        history.epochs = epoch
        if error < best_error:
            best_error, best_state, history.best_epoch = error, copy.deepcopy(module.state_dict()), epoch
        if progress is not None:
            progress(epoch, epochs, error)
        if epoch - history.best_epoch >= patience:
            break
    module.load_state_dict(best_state)
    module.eval()
    return history


def initial_bias(y: np.ndarray) -> np.ndarray:
    """Per device, the mean log ratio of its measured training items (the output bias to start from)."""
    logs = np.log(np.where(np.isfinite(y), y, np.nan))
    return np.nan_to_num(np.nanmean(logs, axis=0)).astype(np.float32)


def state_to_numpy(module) -> Dict[str, np.ndarray]:
    return {name: value.detach().cpu().numpy().copy() for name, value in module.state_dict().items()}


def numpy_to_state(module, tensors: Dict[str, np.ndarray]) -> None:
    import torch

    module.load_state_dict({name: torch.from_numpy(np.array(value)) for name, value in tensors.items()})
    module.eval()
