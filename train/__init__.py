"""Workstation training: offline MNIST (data.py), model zoo (models.py), training (train.py), reports (report.py)."""
