"""Hand-written torch models: TAN (MobileNetV2 multi-task) and the U-Net / PSPNet baselines."""
