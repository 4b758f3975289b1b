"""What a tuning run is asked to do: the user-facing configuration of ``plait tune``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plait.errors import InputError

Method = Literal["head", "finetune", "lora"]
TaskName = Literal["classify", "multilabel", "regress", "instruct"]

# Per method: (epochs, learning rate, early-stopping patience). A linear head on frozen embeddings
# trains in milliseconds per epoch and needs many; a transformer fine-tune needs few, at a small rate
# (the encoder is already good), and LoRA's low-rank matrices start at zero and take a larger rate.
DEFAULTS: dict[str, tuple[int, float, int]] = {
    "head": (100, 1e-2, 10),
    "finetune": (3, 5e-5, 2),
    "lora": (4, 1e-3, 2),
    "instruct": (3, 3e-4, 1),
}
DEFAULT_BASE = {"finetune": "minilm", "lora": "minilm", "instruct": "smollm2"}


class TuneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task: TaskName = "classify"
    method: Method = "head"
    base: str | None = Field(default=None, description="head: the embedder (default: the embed_model setting); "
                             "finetune/lora: the encoder (minilm); instruct: the chat model (smollm2)")
    epochs: int | None = Field(default=None, ge=1, le=1000)
    learning_rate: float | None = Field(default=None, gt=0, lt=1)
    batch_size: int = Field(default=16, ge=1, le=1024)
    max_length: int = Field(default=128, ge=8, le=2048, description="tokens per example seen by the model")
    seed: int = 0
    patience: int | None = Field(default=None, ge=1, description="epochs without improvement before stopping")
    validation: float = Field(default=0.15, ge=0.0, lt=0.9)
    test: float = Field(default=0.15, ge=0.0, lt=0.9)
    weight_decay: float = Field(default=0.01, ge=0.0)
    class_weights: bool = Field(default=False, description="weight the loss by inverse label frequency")
    oversample: bool = Field(default=False, description="repeat examples of rare labels in training")
    tune_threshold: bool = Field(default=False, description="choose per-label decision thresholds on validation")
    lora_r: int = Field(default=8, ge=1, le=256)
    lora_alpha: int = Field(default=16, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    dedupe: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> TuneConfig:
        if self.task == "instruct" and self.method != "lora":
            raise InputError("an instruct task tunes a chat model with LoRA: use --method lora")
        if self.oversample and self.task != "classify":
            raise InputError("--oversample applies to single-label classification")
        if self.task == "regress" and (self.class_weights or self.tune_threshold):
            raise InputError("class weights and thresholds apply to classification, not regression")
        if self.validation == 0 and (self.tune_threshold or self.task != "instruct"):
            raise InputError("a validation share above 0 is needed for early stopping and thresholds")
        return self

    @property
    def kind(self) -> str:
        return "instruct" if self.task == "instruct" else self.method

    @property
    def resolved_epochs(self) -> int:
        return self.epochs or DEFAULTS[self.kind][0]

    @property
    def resolved_learning_rate(self) -> float:
        return self.learning_rate or DEFAULTS[self.kind][1]

    @property
    def resolved_patience(self) -> int:
        return self.patience or DEFAULTS[self.kind][2]
