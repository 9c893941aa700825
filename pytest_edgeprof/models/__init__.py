"""What is measured: the model zoo, the grid, variants (pruned), and accuracy."""
