"""Compress: make models smaller and faster, each result a catalog entry with a measured report.

    plait compress news --method onnx-int8 --eval held-out.csv     # one variant, measured against news
    plait compress minilm -M torch-int8 -M prune -M distill          # several; Lee news by default
    plait compress news --budget-ms 20 --budget-mb 30 --eval data.csv  # the best variant that fits

Where things are:

- ``methods``: the methods by name and what they apply to (``--list``), chains with ``+``;
- ``quantize`` (ONNX Runtime and PyTorch int8), ``export`` (ONNX), ``prune`` (magnitude, heads, neurons,
  layers), ``distill`` (knowledge distillation, also repairs pruned models), ``gguf`` (llama.cpp
  requantization and perplexity);
- ``source``: what kind of model is being compressed; ``data``: evaluation and training sets;
- ``measure``: size, memory, latency, throughput and quality side by side; ``report``: table, JSON, HTML;
- ``variants``: build, measure and register (all or nothing); ``budget``: the best variant within a budget;
- ``recipes``: derived built-ins (``minilm-q8``) built on first use.
"""
