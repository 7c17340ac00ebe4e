"""Background removal with U^2-Net: the application built on the course's models.

* ``background_removal.weights``: the official checkpoints, and the official pre- and post-processing.
* ``background_removal.cli``: ``python -m background_removal IN... --out DIR`` (RGBA cut-outs).
* ``background_removal.export``: a single-file ONNX model for rembg and onnxruntime.

Kept out of ``utils/`` (the course core students read): this is tooling around a trained model.
"""
