"""ONNX export of a registered model: one graph from raw columns to predictions.

The registered pipeline is ``[features, model]``. The feature pipeline is
exported column by column with :class:`~lockstep.inference.onnx.graph.FrameGraph`
(each step's ``lockstep_onnx``); the model pipeline, standard scikit-learn
steps plus lockstep's stateful transformers, with skl2onnx in double
precision; the two graphs are joined feature column by feature column
(:mod:`.build`). The graph's inputs are the raw columns, one tensor ``[N, 1]``
each: ``int64`` for integers that cannot be missing, ``double`` for other
numbers and booleans (NaN is missing), ``string`` for text (the empty string
is missing), ``double`` microseconds since 1970-01-01 UTC for dates and times
(NaN is missing) (:mod:`.inputs`). Its outputs are ``label`` and
``probabilities`` (classifiers) or ``variable`` (regressors).

This package's root imports only :mod:`.inputs`: running a graph needs no
exporter.
"""

from lockstep.inference.onnx.inputs import input_kind, microseconds, onnx_inputs

__all__ = ["input_kind", "microseconds", "onnx_inputs"]
