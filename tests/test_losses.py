"""The losses other than the book's squared error, and biases."""

import numpy as np
import pytest

from grokreg import Network


# -- losses and biases --------------------------------------------------------------------------

@pytest.mark.parametrize("loss, bias", [("softmax_cross_entropy", True),
                                        ("softmax_cross_entropy", False), ("mse", True)])
def test_other_losses_and_biases_learn(splits, loss, bias):
    x, y, _, _, xt, yt = splits
    net = Network(32, seed=0, loss=loss, bias=bias)
    history = net.fit(x, y, epochs=8, alpha=0.01)
    assert history.history["error"][-1] < history.history["error"][0]
    assert net.score(xt, yt) > 0.6  # 8 epochs on 300 images; chance is 0.1
    assert bool(np.any(net.bias_1)) == bias and bool(np.any(net.bias_2)) == bias
    if loss == "softmax_cross_entropy":
        error = net.evaluate(xt, yt)[0]
        logits = net.decision_function(xt)
        shifted = logits - logits.max(axis=1, keepdims=True)
        expected = np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(yt)), yt])
        assert error == pytest.approx(expected, rel=1e-10)


def test_book_mode_refuses_other_losses_and_biases():
    with pytest.raises(ValueError, match="loss='mse' and no biases"):
        Network(book=True, loss="softmax_cross_entropy")
    with pytest.raises(ValueError, match="loss='mse' and no biases"):
        Network(book=True, bias=True)
    with pytest.raises(ValueError, match="loss"):
        Network(loss="hinge")
