"""The PyTorch pieces of a tuned encoder: a transformer encoder, mean pooling and a linear head.

Imported only when a model is trained or loaded (it imports torch). Mean pooling over the attention mask
is what all-MiniLM-L6-v2 was trained with, so the fine-tuned encoder starts from embeddings that already
separate topics, and the head only has to learn where the boundary is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn


class EncoderNet(nn.Module):
    """Token ids → (batch, outputs) logits: encoder, masked mean pooling, dropout, linear head."""

    def __init__(self, encoder: nn.Module, outputs: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        config: Any = encoder.config
        hidden = int(config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None
                ) -> torch.Tensor:
        return self.head(self.dropout(self.pooled(input_ids, attention_mask, inputs_embeds, token_type_ids)))

    def pooled(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
               inputs_embeds: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None
               ) -> torch.Tensor:
        """(batch, hidden) mean of the token vectors over the attention mask."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                           token_type_ids=token_type_ids)
        hidden = out.last_hidden_state  # (batch, tokens, hidden)
        assert attention_mask is not None
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, tokens, 1)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)

    def input_embeddings(self) -> nn.Module:
        """The token embedding table (what integrated gradients attributes to)."""
        base: Any = self.encoder
        if hasattr(base, "get_input_embeddings"):
            return base.get_input_embeddings()
        raise TypeError("encoder has no input embeddings")

    def save_head(self, path: Path) -> None:
        from safetensors.torch import save_file

        save_file({"weight": self.head.weight.detach().contiguous(), "bias": self.head.bias.detach().contiguous()},
                  str(path))

    def load_head(self, path: Path) -> None:
        from safetensors.torch import load_file

        state = load_file(str(path))
        self.head.weight.data.copy_(state["weight"])
        self.head.bias.data.copy_(state["bias"])


def load_encoder(path: Path) -> Any:
    from transformers import AutoModel

    from plait.models.hf import quiet_transformers

    quiet_transformers()
    return AutoModel.from_pretrained(str(path))


def lora_encoder(encoder: Any, *, r: int, alpha: int, dropout: float) -> Any:
    """Wrap a BERT-style encoder with LoRA on its attention query and value projections."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=["query", "value"],
                        bias="none")
    return get_peft_model(encoder, config)


def probe_head(net: EncoderNet, features: torch.Tensor, targets: torch.Tensor,
               loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *, steps: int = 300,
               lr: float = 1e-2) -> None:
    """Fit the head alone on frozen features before fine-tuning ("linear probe, then fine-tune").

    A random head sends large, meaningless gradients into the pretrained encoder during the first steps
    and, with the few steps a small data set allows, the run ends before the head has learned much;
    starting from the best linear head on the pretrained features avoids both (Kumar et al., 2022,
    "Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution").
    """
    optimizer = torch.optim.Adam(net.head.parameters(), lr=lr)
    for _ in range(steps):  # full batch: the features of a few hundred examples fit in memory
        optimizer.zero_grad()
        loss = loss_fn(net.head(features), targets)
        loss.backward()
        optimizer.step()


def quiet_peft() -> None:
    """peft asks transformers about gradient checkpointing through a name transformers has deprecated."""
    import warnings

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    return trainable, total
