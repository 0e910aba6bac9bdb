"""The base of every stateful layer: parameters, gradients, state dicts."""

from __future__ import annotations

import numpy as np


class Layer:
    """A stateful op with ``forward``/``backward``, owning its parameters.

    Attributes
    ----------
    params : dict of str to ndarray
        The learnable arrays (``"weight"``, ``"bias"``; empty for parameter-free
        layers). Optimisers update these arrays in place.
    grads : dict of str to ndarray
        Same keys and shapes as ``params``. ``backward`` *adds* into them, as
        PyTorch's ``.grad`` does; clear them with :meth:`zero_grad`.

    Notes
    -----
    ``forward`` (also ``layer(x)``) caches what ``backward`` needs;
    ``backward(grad_output)`` returns the gradient with respect to the input.
    Calling ``backward`` before ``forward`` raises ``RuntimeError``.
    """

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._cache = None

    # -------------------------------------------------------------- protocol
    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def zero_grad(self) -> None:
        """Set every parameter gradient to zero (in place)."""
        for grad in self.grads.values():
            grad[...] = 0

    def _saved(self):
        """What ``forward`` cached, or ``RuntimeError`` if it has not run."""
        if self._cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called before forward(): run forward first"
            )
        return self._cache

    def _accumulate(self, name: str, grad: np.ndarray) -> None:
        target = self.grads[name]
        target += grad.astype(target.dtype, copy=False)

    # -------------------------------------------------------------- parameters
    def _add_param(self, name: str, value: np.ndarray) -> None:
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)

    def _set_param(self, name: str, value) -> None:
        """Write ``value`` into the existing parameter array (its identity is kept)."""
        if name not in self.params:
            raise ValueError(f"{type(self).__name__} has no parameter {name!r}")
        target = self.params[name]
        value = np.asarray(value)
        if value is target:  # e.g. ``layer.weight -= step`` already updated it in place
            return
        if value.shape != target.shape:
            raise ValueError(f"{name} must have shape {target.shape}; got {value.shape}")
        target[...] = value

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, under PyTorch's keys and in PyTorch's shapes."""
        return {name: value.copy() for name, value in self.params.items()}

    def load_state_dict(self, state_dict) -> None:
        """Copy parameters in (cast to the layer's dtype), e.g. from a PyTorch layer.

        Accepts ``{k: v.numpy() for k, v in torch_layer.state_dict().items()}``.
        The parameter arrays keep their identity: the values are written into them.

        Raises
        ------
        ValueError
            A key is missing or unexpected, or an array has the wrong shape.
        """
        missing = sorted(set(self.params) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(self.params))
        if missing or unexpected:
            raise ValueError(
                f"state_dict keys do not match {type(self).__name__}'s parameters:"
                f" missing {missing}, unexpected {unexpected}"
            )
        arrays = {name: np.asarray(value) for name, value in state_dict.items()}
        for name, value in arrays.items():  # check everything before writing anything
            if value.shape != self.params[name].shape:
                raise ValueError(
                    f"state_dict[{name!r}] must have shape {self.params[name].shape};"
                    f" got {value.shape}"
                )
        for name, value in arrays.items():
            self.params[name][...] = value

    # -------------------------------------------------------------- display
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
