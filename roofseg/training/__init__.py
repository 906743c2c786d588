"""Fitting the ResNet34 U-Net: model, losses and metrics, strategy, callbacks, reports."""
