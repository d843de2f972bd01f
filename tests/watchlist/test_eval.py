"""Measuring the watchlist (issue 19): the metrics, `scout score --eval`, the alert threshold, and the
default alert's promise on the dev evaluation lists the repository holds (bench/data/watchlist-eval)."""
from __future__ import annotations

import json

import pytest

from scout.cli import score as score_cli
from scout.config import Settings
from scout.watchlist import evaluation as ev
from scout.watchlist import load_watchlist
from tests.conftest import ROOT, run_scout, scout_env

SMALL = ROOT / "tests" / "data" / "watchlist-eval-small"
DEV = ROOT / "bench" / "data" / "watchlist-eval"


def test_metrics_on_hand_made_scores():
    assert ev.auc([3, 2], [1, 0]) == 1.0
    assert ev.auc([0, 0], [0, 0]) == 0.5                      # all tied
    assert ev.auc([2, 0], [1, 1]) == 0.5
    # the lowest threshold flagging at most 25 % of benign: >= 5 flags one of four
    assert ev.threshold_at([0, 1, 5, 2], 0.25) == 5
    assert ev.caught_at([9, 5, 4, 0], [0, 1, 5, 2], 0.25) == (0.5, 5)
    # nothing may be flagged: above every benign score
    assert ev.caught_at([9, 5], [5, 5], 0.0) == (0.5, 6)
    assert ev.flagged([], 1) == 0.0


def test_fold_split_is_fixed_by_name():
    names = [f"n{i}.example" for i in range(200)]
    folds = [ev.fold_of(n) for n in names]
    assert folds == [ev.fold_of(n) for n in names]
    assert 60 < sum(folds) < 140                              # roughly halves


def test_evaluate_small_folder():
    names = ev.read_eval_dir(SMALL)
    assert set(names) == {"phish", "benign_top", "benign_hosts"}
    assert len(names["phish"]) == 6                           # the comment line is skipped
    r = ev.evaluate(names, ev.watchlist_scorer(load_watchlist(None)), 50)
    assert r["skipped"] == {"phish": 1, "benign_top": 0, "benign_hosts": 0}   # 203.0.113.7
    assert r["phish"] == 5 and r["phish_scored"] == 1.0
    top, hosts = r["sets"]["benign_top"], r["sets"]["benign_hosts"]
    assert top["auc"] == 1.0 and top["caught_at_fpr"] == 1.0
    # quietgarden.com (a plain name, label_length only) ranks below secure.example.org (keyword)
    assert hosts["auc"] == pytest.approx(24 / 25)
    # the skipped address counted as a miss scoring 0: ties with three of four benign_top names
    assert top["auc_all"] == pytest.approx((20 + 1.5) / 24)
    assert r["alert_caught"] == 0.8 and top["alert_flagged"] == hosts["alert_flagged"] == 0.0


@pytest.mark.parametrize("files,message", [
    ({}, "no phish.txt"),
    ({"phish.txt": "a.example\n"}, "at least one non-empty benign_*.txt"),
    ({"phish.txt": "a.example\n", "benign_x.txt": "# nothing\n"}, "empty: benign_x"),
])
def test_bad_eval_folder(tmp_path, capsys, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert score_cli.main(["--eval", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_eval_command_prints_every_figure(capsys):
    assert score_cli.main(["--eval", str(SMALL), "--alert-min-score", "50"]) == 0
    out = capsys.readouterr().out
    assert "left out, as the pipeline never scores them: phish 1" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("benign_")}
    assert rows["benign_top"][1:4] == ["4", "1.000", "0.896"]          # names, AUC, AUC with the skipped
    assert rows["benign_hosts"][-2:] == ["0.54", "1.2%"]              # phishing_catcher's reference
    assert "alert at score >= 50: catches 80.0% of phishing" in out
    assert score_cli.main(["--eval", str(SMALL), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sets"]["benign_top"]["names"] == 4 and data["alert_threshold"] == Settings().alert_min_score


def test_alert_follows_the_effective_threshold(capsys, tmp_path):
    assert score_cli.main(["--json", "--alert-min-score", "61", "pаypal.com", "paypa1.tk"]) == 0
    got = [(x["score"], x["alert"]) for x in map(json.loads, capsys.readouterr().out.splitlines())]
    assert got == [(60, False), (100, True)]
    assert score_cli.main(["--json", "--alert-min-score", "0", "paypa1.tk"]) == 0   # 0: alerts off
    assert json.loads(capsys.readouterr().out)["alert"] is False
    assert score_cli.main(["--alert-min-score", "50", "paypa1.tk", "example.com"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["100", "!", "paypa1.tk"] and lines[1].split()[:2] == ["0", "example.com"]
    # ALERT_MIN_SCORE from the environment, in a real `scout score` process
    r = run_scout(["score", "--json", "pаypal.com"], scout_env(ALERT_MIN_SCORE="70"), cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["alert"] is False
    r = run_scout(["score", "--json", "pаypal.com"], scout_env(ALERT_MIN_SCORE="60"), cwd=tmp_path, timeout=60)
    assert json.loads(r.stdout)["alert"] is True


def test_score_needs_names_or_eval(capsys):
    with pytest.raises(SystemExit) as e:
        score_cli.main([])
    assert e.value.code == 2 and "give names to score, or --eval DIR" in capsys.readouterr().err


def test_default_alert_keeps_its_promise_on_the_dev_lists():
    """The README's figures: the default ALERT_MIN_SCORE flags <= 1 % of benign registered domains and
    <= 2 % of benign hostnames and catches >= 20 % of phishing; AUC >= 0.85 against every benign set."""
    threshold = Settings().alert_min_score
    r = ev.evaluate(ev.read_eval_dir(DEV), ev.watchlist_scorer(load_watchlist(None)), threshold)
    assert set(r["sets"]) == {"benign_top", "benign_tail", "benign_hosts"}
    for key, row in r["sets"].items():
        assert row["alert_flagged"] <= row["alert_limit"], (key, row)
        assert row["auc"] >= 0.85, (key, row)
    assert r["alert_caught"] >= 0.20, r
