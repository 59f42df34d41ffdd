"""History: the record of a fit, and its exports."""
import json

from grokreg import Network


# -- history ----------------------------------------------------------------------------------

def test_history_exports(splits, tmp_path):
    x, y, xv, yv, xt, yt = splits
    history = Network(8, seed=0).fit(x, y, epochs=3, validation_data=(xv, yv),
                                     test_data=(xt, yt), eval_every=2)
    text = history.to_csv()
    lines = text.splitlines()
    assert lines[0] == ("epoch,error,accuracy,alpha,val_error,val_accuracy,test_error,"
                        "test_accuracy")
    assert len(lines) == 4 and lines[2].endswith(",,,,") and float(lines[1].split(",")[-1]) > 0
    history.to_csv(tmp_path / "h.csv")
    assert (tmp_path / "h.csv").read_text() == text
    loaded = json.loads(history.to_json())
    assert loaded["history"]["test_accuracy"][1] is None
    assert loaded["history"]["accuracy"] == history.history["accuracy"]
    assert loaded["stop_reason"] == "completed" and loaded["params"]["eval_every"] == 2
    book = history.book_lines().splitlines()
    assert len(book) == 2 and book[0].startswith("I:0 Train-Err:") and "Val-Acc:" in book[0]
