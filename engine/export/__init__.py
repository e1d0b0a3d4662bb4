"""What a run recorded, sent elsewhere: TensorBoard, MLflow, W&B and a tidy CSV.

`records` turns a run's events into backend-neutral records (scalars, histograms, images) and
its config and summary into run information; each `to_*` module writes those records with its
ecosystem's own library; `export` converts whole runs (`gdw export`); `live` streams a training
run's events as they are written (`--log`). Torch-free; every backend library is imported only
when that backend is used.
"""
