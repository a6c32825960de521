"""Classification losses for imbalanced and screening tasks.

Both losses take logits of shape ``(n_samples, n_classes)`` and integer class
indices, like :class:`torch.nn.CrossEntropyLoss`, and accept the same
``weight`` (per-class weights, used for ``class_weight``) and
``label_smoothing`` arguments, so :class:`CNNClassifier` can swap them freely.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["FalseNegativeLoss", "FocalLoss"]


def _smoothed_targets(target, n_classes, label_smoothing):
    q = F.one_hot(target, n_classes).to(torch.float32)
    if label_smoothing:
        q = q * (1.0 - label_smoothing) + label_smoothing / n_classes
    return q


class FocalLoss(nn.Module):
    """Focal loss (Lin et al., 2017) for multi-class classification.

    ``loss = -sum_c w_c q_c (1 - p_c)^gamma log p_c`` per sample, where ``p``
    is the softmax of the logits, ``q`` the (optionally smoothed) one-hot
    target and ``w`` the class weights; the batch's sum is divided by the
    sum of the weights of its targets. It down-weights easy, well-classified
    samples. ``gamma=0`` is the cross-entropy, weights and label smoothing
    included.

    Parameters
    ----------
    gamma : float, default=2.0
        Focusing parameter.
    weight : torch.Tensor of shape (n_classes,), default=None
        Per-class weights (the ``alpha`` of the paper); the mean over the
        batch is weighted as in :class:`torch.nn.CrossEntropyLoss`.
    label_smoothing : float, default=0.0
        Mass spread uniformly over the classes in the target.

    Examples
    --------
    >>> import torch
    >>> from skmedimg.neural import FocalLoss
    >>> loss = FocalLoss(gamma=0.0)
    >>> logits, target = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    >>> bool(torch.isclose(loss(logits, target), torch.nn.functional.cross_entropy(
    ...     logits, target)))
    True
    """

    def __init__(self, gamma=2.0, weight=None, label_smoothing=0.0):
        super().__init__()
        self.gamma = float(gamma)
        self.label_smoothing = float(label_smoothing)
        self.register_buffer(
            "weight", None if weight is None else torch.as_tensor(weight).float()
        )

    def forward(self, logits, target):
        """Mean focal loss of a batch."""
        logits = logits.float()
        log_p = F.log_softmax(logits, dim=-1)
        q = _smoothed_targets(target, logits.shape[-1], self.label_smoothing)
        focus = (1.0 - log_p.exp()).clamp_min(0.0) ** self.gamma
        if self.weight is None:
            return -(q * focus * log_p).sum(dim=-1).mean()
        # As CrossEntropyLoss: each class's term (the smoothed mass included)
        # weighted by that class's weight; the sum divided by the weights of
        # the targets.
        w = self.weight.to(log_p.dtype)
        total = -(q * w * focus * log_p).sum()
        return total / w[target].sum().clamp_min(1e-12)


class FalseNegativeLoss(nn.Module):
    """Cross-entropy plus a penalty for calling a diseased case negative.

    For screening, missing a disease (a false negative) costs more than a
    false alarm. This loss adds, for every sample whose true class is not the
    negative ("normal", "no tumour") class, ``fn_weight * -log(1 - p_neg)``,
    where ``p_neg`` is the predicted probability of the negative class. It
    pushes probability away from "negative" for positive cases only, which
    raises sensitivity at the cost of specificity.

    Parameters
    ----------
    negative_index : int, default=0
        Index (in ``classes_``) of the negative class.
    fn_weight : float, default=2.0
        Weight of the false-negative penalty; ``0`` gives the cross-entropy.
    weight : torch.Tensor of shape (n_classes,), default=None
        Per-class weights of the cross-entropy term.
    label_smoothing : float, default=0.0
        Label smoothing of the cross-entropy term.

    Examples
    --------
    >>> import torch
    >>> from skmedimg.neural import FalseNegativeLoss
    >>> logits = torch.tensor([[2.0, 0.0], [2.0, 0.0]])
    >>> target = torch.tensor([0, 1])  # the second is a missed positive
    >>> strict = FalseNegativeLoss(negative_index=0, fn_weight=5.0)
    >>> bool(strict(logits, target) > FalseNegativeLoss(fn_weight=0.0)(logits, target))
    True
    """

    def __init__(
        self, negative_index=0, fn_weight=2.0, weight=None, label_smoothing=0.0
    ):
        super().__init__()
        self.negative_index = int(negative_index)
        self.fn_weight = float(fn_weight)
        self.label_smoothing = float(label_smoothing)
        self.register_buffer(
            "weight", None if weight is None else torch.as_tensor(weight).float()
        )

    def forward(self, logits, target):
        """Mean loss of a batch."""
        logits = logits.float()
        ce = F.cross_entropy(
            logits,
            target,
            weight=self.weight,
            label_smoothing=self.label_smoothing,
        )
        log_p = F.log_softmax(logits, dim=-1)
        # log(1 - p_neg) computed stably as logsumexp over the other classes.
        others = torch.cat(
            [log_p[:, : self.negative_index], log_p[:, self.negative_index + 1 :]],
            dim=-1,
        )
        log_not_neg = torch.logsumexp(others, dim=-1)
        positive = (target != self.negative_index).to(logits.dtype)
        penalty = -(positive * log_not_neg).sum() / logits.shape[0]
        return ce + self.fn_weight * penalty
