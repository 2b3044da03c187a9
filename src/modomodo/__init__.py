"""modomodo: multi-domain data mixtures for multimodal RLVR (GRPO), as Kubeflow-native MLOps."""

__version__ = "0.1.0"
