"""The training loop shared by the torch predictors: log-ratio MSE, AdamW, early stopping on the validation split's
mean relative error, the best epoch's weights kept."""

import copy
from typing import Callable, Dict, Optional

import numpy as np

from trainer.predictors.base import FitHistory, ProgressFn


def relative_error(pred_log, y: np.ndarray) -> float:
    return float(np.mean(np.abs(np.exp(pred_log) - y) / y)) if len(y) else float("nan")


def train_module(module, forward: Callable[[np.ndarray], object], n_train: int, y_train: np.ndarray,
                 validate: Callable[[], np.ndarray], y_val: np.ndarray, hyper: Dict[str, object], seed: int,
                 progress: Optional[ProgressFn] = None) -> FitHistory:
    """forward(indices) -> predicted log ratios of those training examples; validate() -> log ratios of the
    validation split (the training split stands in when there is no validation split)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    target = torch.as_tensor(np.log(y_train), dtype=torch.float32)
    optimizer = torch.optim.AdamW(module.parameters(), lr=float(hyper["lr"]), weight_decay=float(hyper["weight_decay"]))
    epochs, patience, batch = int(hyper["epochs"]), int(hyper["patience"]), int(hyper["batch_size"])
    history = FitHistory()
    best_error, best_state = float("inf"), copy.deepcopy(module.state_dict())
    for epoch in range(1, epochs + 1):
        module.train()
        order = rng.permutation(n_train)
        for start in range(0, n_train, batch):
            index = order[start:start + batch]
            loss = torch.nn.functional.mse_loss(forward(index), target[index])
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


def state_to_numpy(module) -> Dict[str, np.ndarray]:
    return {name: value.detach().cpu().numpy().copy() for name, value in module.state_dict().items()}


def numpy_to_state(module, tensors: Dict[str, np.ndarray]) -> None:
    import torch

    module.load_state_dict({name: torch.from_numpy(np.array(value)) for name, value in tensors.items()})
    module.eval()


def finetune(parameters, forward: Callable[[], object], y: np.ndarray, steps: int, lr: float) -> None:
    """A few full-batch steps on a new device's K samples (log-ratio MSE), only on the given parameters."""
    import torch

    parameters = list(parameters)
    target = torch.as_tensor(np.log(y), dtype=torch.float32)
    optimizer = torch.optim.Adam(parameters, lr=lr)
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(forward(), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
