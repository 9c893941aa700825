"""The suite users run: `pytest benchmarks/ --device cpu|cuda|jetson`.

Each model x variant x batch size x input shape of the grid is one test, id'd like
`resnet50-base-b8-224x224`; options --models, --batch-sizes, --shapes and --grid choose the grid.
"""


def test_inference(edgeprof, edgeprof_cell, edgeprof_model):
    edgeprof(edgeprof_model, cell=edgeprof_cell)
