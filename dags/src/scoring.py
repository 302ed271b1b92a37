"""A scoring service and its client, for the ``serve_scoring`` example DAG.

``load`` is the service's init function (once per worker process, with the run's parameters);
``score`` its handler, per request (DigitalHub's, Nuclio's ``(context, event)``). ``score_batch`` is
an ordinary job that calls the service over HTTP.
"""

import json
import urllib.request


def load(context, weights):
    # What a real service loads once (a model): here, the weights of a linear score.
    context.weights = weights
    context.logger.info(f"scoring with weights {weights}")


def score(context, event):
    rows = json.loads(event.body)["rows"]
    return {"scores": [sum(w * x for w, x in zip(context.weights, row, strict=True)) for row in rows]}


def score_batch(url, rows):
    request = urllib.request.Request(
        url, data=json.dumps({"rows": rows}).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())["scores"]
