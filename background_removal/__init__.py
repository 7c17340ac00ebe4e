"""Background removal with U^2-Net: the application built on the course's models.

* ``background_removal.recipe``: rembg's pre- and post-processing and the cut-out (NumPy and Pillow).
* ``background_removal.weights``: the official checkpoints, loaded into the course's PyTorch models.
* ``background_removal.fast``: the same models on ONNX Runtime, several images per run (the fast path).
* ``background_removal.cli``: ``python -m background_removal IN... --out DIR`` (RGBA cut-outs).
* ``background_removal.export``: a single-file ONNX model for rembg and onnxruntime.
* ``background_removal.names``: the model names, importable without torch.

Kept out of ``utils/`` (the course core students read): this is tooling around a trained model.
"""
