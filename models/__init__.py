"""Architectures and the Lightning classification module."""

from .convnet import ConvNet
from .densenet import DenseNet
from .mlp import MLP
from .registry import build_model, count_parameters, describe, model_config
from .resnet import ResNet

__all__ = ["MLP", "ConvNet", "ResNet", "DenseNet", "build_model", "model_config", "describe", "count_parameters"]
