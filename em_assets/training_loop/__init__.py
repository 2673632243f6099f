"""Fine-tuning a causal LM in this process (rs-LoRA or full, CPU or CUDA), one idea per module:

- ``settings``: ``TrainingSettings`` (the paper's recipe); ``errors``: ``TrainingError``
- ``precision``: device, bf16 / fp32, autocast
- ``adapters``: LoRA wrapping (or unfreezing) of a loaded model
- ``loss``: next-token loss on assistant tokens, logits only where the loss is taken
- ``kernels``: ``FastForwards``, same-maths fast paths of a step
- ``loop``: ``train()``, the optimizer step and the metrics
- ``checkpoint``: save / reload a trained model with its manifest
- ``memory``, ``inference``: peak RSS; greedy replies and logits

Nothing is imported here, so ``settings`` loads without torch.
"""
